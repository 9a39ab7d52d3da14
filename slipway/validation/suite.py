"""The expectation suites, built from the pipeline config and (for drift) the reference.

Two suites, one per frame from ``features.py``:

* ``rows`` - row count, missing values, value range, label set, duplicate fraction;
* ``dataset`` - schema (feature count, example shape, dtypes) and class balance, and one
  expectation per drift, structure and champion-witness statistic (one-row facts all: one frame,
  one GX validation and one Data Docs page instead of two).

Each expectation is wrapped in a ``Check`` with a stable id (``values.max``), a title that states
the threshold, and a message template filled with what was observed when it fails. The id is
stored in the expectation's ``meta`` so GX results map back to checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from slipway.config import DataConfig, ValidationConfig
from slipway.validation.drift import DriftStatistic
from slipway.validation.features import shape_text
from slipway.validation.gx import gxe

BATCHES = ("rows", "dataset")
DRIFT_BATCH = "dataset"  # drift statistics are columns of the one-row dataset frame


@dataclass(frozen=True)
class Check:
    id: str
    batch: str
    title: str
    expectation: gxe.Expectation
    threshold: dict[str, Any]
    # str.format template for a failure, over the observed value, GX result fields and the facts
    failure: str = "observed {observed}"
    # observed value taken from the one-row frame instead of the GX result (dataset, drift)
    observed_column: str | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _expectation(kind: type[gxe.Expectation], check_id: str, notes: str, **kwargs: Any) -> gxe.Expectation:
    return kind(meta={"slipway_check": check_id}, notes=notes or None, **kwargs)


def _num(value: float) -> str:
    return f"{value:g}"


def row_checks(data: DataConfig, cfg: ValidationConfig) -> list[Check]:
    k = data.num_classes
    count_title = (
        f"between {cfg.min_rows} and {cfg.max_rows} rows" if cfg.max_rows else f"at least {cfg.min_rows} rows"
    )
    unexpected = "{unexpected_rows} of {rows} rows ({unexpected_percent:.2f}%)"
    return [
        Check(
            "rows.count",
            "rows",
            count_title,
            _expectation(
                gxe.ExpectTableRowCountToBeBetween,
                "rows.count",
                "validation.min_rows / max_rows",
                min_value=cfg.min_rows,
                max_value=cfg.max_rows,
            ),
            {"min_value": cfg.min_rows, "max_value": cfg.max_rows},
            failure="observed {observed} rows",
        ),
        Check(
            "values.missing",
            "rows",
            "no missing (NaN) values",
            _expectation(
                gxe.ExpectColumnValuesToBeBetween,
                "values.missing",
                "nan_count = NaN values in the row",
                column="nan_count",
                min_value=0,
                max_value=0,
            ),
            {"max_value": 0},
            failure=unexpected + " contain NaN, {nan_values} NaN values in all",
        ),
        Check(
            "values.min",
            "rows",
            f"all values >= {_num(cfg.value_min)}",
            _expectation(
                gxe.ExpectColumnValuesToBeBetween,
                "values.min",
                "value_min = smallest value in the row; validation.value_min",
                column="value_min",
                min_value=cfg.value_min,
            ),
            {"min_value": cfg.value_min},
            failure=unexpected + " go below it, smallest value {value_min:g}",
        ),
        Check(
            "values.max",
            "rows",
            f"all values <= {_num(cfg.value_max)}",
            _expectation(
                gxe.ExpectColumnValuesToBeBetween,
                "values.max",
                "value_max = largest value in the row; validation.value_max",
                column="value_max",
                max_value=cfg.value_max,
            ),
            {"max_value": cfg.value_max},
            failure=unexpected + " exceed it, largest value {value_max:g}",
        ),
        Check(
            "labels.in_set",
            "rows",
            f"labels in 0..{k - 1}",
            _expectation(
                gxe.ExpectColumnValuesToBeInSet,
                "labels.in_set",
                "data.num_classes",
                column="label",
                value_set=list(range(k)),
            ),
            {"value_set": f"0..{k - 1}"},
            failure=unexpected + " have other labels: {labels_outside}",
        ),
        Check(
            "rows.duplicates",
            "rows",
            f"duplicate rows <= {cfg.max_duplicate_fraction:.1%}",
            _expectation(
                gxe.ExpectColumnProportionOfUniqueValuesToBeBetween,
                "rows.duplicates",
                "row_group = id shared by byte-identical rows; validation.max_duplicate_fraction",
                column="row_group",
                min_value=1 - cfg.max_duplicate_fraction,
            ),
            {"max_duplicate_fraction": cfg.max_duplicate_fraction},
            failure="{duplicate_fraction:.1%} of rows ({duplicate_rows} of {rows}) repeat another row",
        ),
    ]


def dataset_checks(data: DataConfig, cfg: ValidationConfig) -> list[Check]:
    shape = tuple(data.input_shape)
    features = int(np.prod(shape))
    lo, hi = cfg.class_share_bounds(data.num_classes)

    def in_set(check_id: str, column: str, title: str, value: Any, notes: str) -> Check:
        expectation = _expectation(
            gxe.ExpectColumnValuesToBeInSet, check_id, notes, column=column, value_set=[value]
        )
        return Check(check_id, "dataset", title, expectation, {"value": value}, observed_column=column)

    return [
        in_set("schema.feature_count", "feature_count", f"{features} features per example", features, ""),
        in_set(
            "schema.example_shape",
            "example_shape",
            f"example shape {shape_text(shape)}",
            shape_text(shape),
            "",
        ),
        in_set("schema.x_dtype", "x_dtype", "inputs are float32", "float32", "snapshot contract"),
        in_set("schema.y_dtype", "y_dtype", "labels are int64", "int64", "snapshot contract"),
        Check(
            "labels.min_class_share",
            "dataset",
            f"every class holds >= {lo:.1%} of rows",
            _expectation(
                gxe.ExpectColumnMinToBeBetween,
                "labels.min_class_share",
                "validation.min_class_share (default 0.2 / num_classes)",
                column="min_class_share",
                min_value=lo,
            ),
            {"min_value": lo},
            failure="class {min_class_name} holds {observed:.1%}",
            observed_column="min_class_share",
        ),
        Check(
            "labels.max_class_share",
            "dataset",
            f"no class holds > {hi:.1%} of rows",
            _expectation(
                gxe.ExpectColumnMaxToBeBetween,
                "labels.max_class_share",
                "validation.max_class_share (default min(3 / num_classes, 1 - 0.2 / num_classes))",
                column="max_class_share",
                max_value=hi,
            ),
            {"max_value": hi},
            failure="class {max_class_name} holds {observed:.1%}",
            observed_column="max_class_share",
        ),
    ]


def drift_checks(statistics: list[DriftStatistic]) -> list[Check]:
    checks = []
    for stat in statistics:
        limit = stat.effective_threshold
        raised = " (raised to the sampling-noise floor)" if stat.noise_floor > stat.threshold else ""
        check_id = f"{stat.group}.{stat.name}"
        checks.append(
            Check(
                check_id,
                DRIFT_BATCH,
                f"{stat.title} <= {limit:.3g}{raised}",
                _expectation(
                    gxe.ExpectColumnMaxToBeBetween,
                    check_id,
                    f"{stat.detail}; configured {stat.threshold:g}, noise floor {stat.noise_floor:.3g}",
                    column=stat.name,
                    max_value=limit,
                ),
                {
                    "max_value": round(limit, 6),
                    "configured": stat.threshold,
                    "noise_floor": round(stat.noise_floor, 6),
                },
                failure="observed {observed:.3f}; " + stat.detail.replace("{", "{{").replace("}", "}}"),
                observed_column=stat.name,
            )
        )
    return checks


def build_checks(data: DataConfig, cfg: ValidationConfig, drift: list[DriftStatistic]) -> list[Check]:
    """Every check for one validation, in report order."""
    return [*row_checks(data, cfg), *dataset_checks(data, cfg), *drift_checks(drift)]
