"""Benchmark: Slipway's data gate vs the naive Great Expectations suite, in the same run.

Data: Fashion-MNIST train + test, 70,000 examples x 784 pixels (+ label), float32 in [0, 1].

* naive - what one writes first with GX: a pandas frame with one column per pixel and one
  ``expect_column_values_to_be_between(0, 1)`` per pixel column plus label, row-count and schema
  expectations (~790 expectations), run by a Checkpoint that updates Data Docs;
* slipway - ``slipway.validation.validate_split``: numpy features (per-row min / max / mean /
  std / NaN count, duplicate groups), 17 GX expectations including drift against a reference
  profile of the training set, Data Docs included.

Both timings start from the same in-memory arrays and end with the Data Docs written; Great
Expectations is imported and both paths are warmed up on 200 rows first, so neither pays for
first-use costs. Then both must reject the catalogue's range (unnormalised 0-255) and NaN cases
(on 5,000-row partitions), and with ``--catalogue`` every case of the catalogue is run through
both to compare detection power. Also timed: the whole validate step (snapshot loaded from a
``file://`` store, validated, Data Docs uploaded).

    .venv/bin/python bench/bench_validation.py [--rows N] [--catalogue] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slipway.config import PipelineConfig, parse_config  # noqa: E402
from slipway.data.dataset import Split  # noqa: E402
from slipway.data.profile import profile_split  # noqa: E402
from slipway.data.sources.idx import read as read_idx_folder  # noqa: E402

# The same setting the shipped pipeline uses (dags/pipelines/fashion_mnist.yaml).
FASHION = Path(os.environ.get("SLIPWAY_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- data


def load_fashion() -> tuple[Split, Split]:
    raw = read_idx_folder(str(FASHION), lambda url: None)
    scale = np.float32(255)
    train = Split((raw.x / scale).astype(np.float32), raw.y.astype(np.int64))
    test = Split((raw.test_x / scale).astype(np.float32), raw.test_y.astype(np.int64))
    return train, test


def config(store_url: str = "file:///tmp/unused") -> PipelineConfig:
    return parse_config(
        {
            "name": "fashion_mnist",
            "model_name": "fashion-mnist",
            "store_url": store_url,
            "data": {"source": {"kind": "idx", "uri": str(FASHION), "scale": 255}, "input_shape": [28, 28]}
            | {"num_classes": 10},
        }
    )


# --------------------------------------------------------------------------- naive GX suite


def naive_validate(split: Split, docs_dir: Path | None, not_null: bool = False) -> bool:
    """One range expectation per pixel column (and a not-null one with ``not_null``), label
    checks, Data Docs; returns success."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    flat = split.x.reshape(len(split.x), int(np.prod(split.x.shape[1:])))
    columns = [f"pixel{i}" for i in range(flat.shape[1])]
    frame = pd.DataFrame(flat, columns=columns)
    frame["label"] = split.y
    sites = {}
    if docs_dir is not None:
        backend = {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)}
        sites["naive"] = {"class_name": "SiteBuilder", "show_how_to_buttons": False, "store_backend": backend}
    context = gx.get_context(
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            data_docs_sites=sites,
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        ),
        mode="ephemeral",
    )
    batch = context.data_sources.add_pandas("naive").add_dataframe_asset("pixels")
    definition = batch.add_batch_definition_whole_dataframe("all")
    expectations: list[Any] = [
        gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1) for c in columns
    ]
    if not_null:
        expectations += [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in columns]
    expectations += [
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(range(10))),
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectTableRowCountToBeBetween(min_value=100),
        gxe.ExpectTableColumnCountToEqual(value=len(columns) + 1),
        gxe.ExpectColumnValuesToBeOfType(column="pixel0", type_="float32"),
        gxe.ExpectColumnValuesToBeOfType(column="label", type_="int64"),
    ]
    suite = context.suites.add(gx.ExpectationSuite(name="naive", expectations=expectations))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name="naive", data=definition, suite=suite)
    )
    actions = [UpdateDataDocsAction(name="docs")] if docs_dir is not None else []
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="naive", validation_definitions=[validation], actions=actions, result_format="SUMMARY"
        )
    )
    return bool(checkpoint.run(batch_parameters={"dataframe": frame}).success)


# --------------------------------------------------------------------------- slipway


def slipway_validate(split: Split, docs_dir: Path | None, reference: dict[str, Any]) -> bool:
    from slipway.validation.validator import validate_split

    cfg = config()
    return validate_split(split, cfg.data, cfg.validation, reference=reference, docs_dir=docs_dir).success


def _ingest_result(snapshot_key: str) -> Any:
    """The ingest result the validate step reads, for a snapshot staged by the benchmark."""
    from slipway.results import IngestResult, IngestSource, SplitRows

    return IngestResult(
        snapshot_key=snapshot_key,
        snapshot_hash="bench",
        snapshot_uri=snapshot_key,
        rows=SplitRows(train=0, validation=0, test=0),
        input_shape=[28, 28],
        num_classes=10,
        profile_key=f"{snapshot_key}/profile.json",
        source=IngestSource(
            kind="idx",
            uri=None,
            partition=None,
            scale=255,
            max_examples=None,
            origin="bench",
            own_test_split=False,
        ),
        reused=False,
    )


def slipway_step(everything: Split, reference_split: Split) -> float:
    """The validate step end to end on a ``file://`` store: load snapshot, validate, upload docs."""
    from slipway.data.dataset import Snapshot
    from slipway.data.snapshot import save_snapshot
    from slipway.metrics import MetricsBatch
    from slipway.steps import validate
    from slipway.steps.context import RunContext
    from slipway.validation.reference import promote_reference

    empty = Split(everything.x[:0], everything.y[:0])
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(Path(tmp).as_uri())
        ctx = RunContext.create(cfg, "bench")
        key = save_snapshot(ctx.store, Snapshot(everything, empty, empty), cfg.name)
        promote_reference(
            ctx.store, cfg.name, save_snapshot(ctx.store, Snapshot(reference_split, empty, empty), "ref")
        )
        ctx.write_result("ingest", _ingest_result(key))
        started = time.perf_counter()
        validate.run(ctx, MetricsBatch(cfg.name, "validate"))
        return time.perf_counter() - started


# --------------------------------------------------------------------------- catalogue


def catalogue(train: Split, partition: Split) -> dict[str, Split]:
    """Bad partitions from the test catalogue (the validation-level ones)."""
    rng = np.random.default_rng(3)
    x, y = partition.x, partition.y
    nan = x.copy()
    nan[:40, 10, 10] = np.nan
    labels = y.copy()
    labels[:25] = 10
    dup_x, dup_y = x.copy(), y.copy()
    dup_x[len(x) // 2 :], dup_y[len(y) // 2 :] = x[: len(x) - len(x) // 2], y[: len(y) - len(y) // 2]
    tops = rng.choice(np.flatnonzero(train.y == 0), 3000, replace=False)
    rest = rng.choice(np.flatnonzero(train.y != 0), 2000, replace=False)
    shift = rng.permutation(np.concatenate([tops, rest]))
    return {
        "range: unnormalised 0-255": Split(x * 255, y),
        "NaN values": Split(nan, y),
        "wrong image shape": Split(x.reshape(-1, 14, 56), y),
        "labels outside the set": Split(x, labels),
        "empty partition": Split(x[:0], y[:0]),
        "single class": Split(x[y == 3], y[y == 3]),
        "strong label shift": Split(train.x[shift], train.y[shift]),
        "brightness x*0.7+0.2": Split(x * 0.7 + 0.2, y),
        "contrast x*1.3 clipped": Split(np.clip(x * 1.3, 0, 1), y),
        "many duplicated rows": Split(dup_x, dup_y),
    }


# --------------------------------------------------------------------------- drift calibration


def calibrate(train: Split, everything: Split, partitions: int = 200) -> None:
    """Drift statistics of clean partitions (noise) and of real shifts, against the training set.

    The evidence behind ``ValidationConfig``'s drift defaults (see bench/README.md).
    """
    from slipway.config import ValidationConfig
    from slipway.data.rowstats import row_stats
    from slipway.data.structure import structure_moments
    from slipway.validation.drift import compare_to_reference
    from slipway.validation.structure import compare_structure

    cfg = ValidationConfig()
    reference = profile_split(train)
    rng = np.random.default_rng(1)

    def stats(split: Split) -> dict[str, Any]:
        rs = row_stats(split.x)
        found = compare_to_reference(split.y, rs.mean, rs.std, reference, cfg)
        found += compare_structure(structure_moments(split.x, split.y), reference["structure"], cfg)
        return {d.name: d for d in found}

    print(f"\ndrift calibration: {partitions} clean partitions per size vs the training-set reference")
    for rows in (500, 5000):
        found = [stats(clean) for clean in (_sample(everything, rows, rng) for _ in range(partitions))]
        alarms = sum(1 for f in found if not all(d.passed for d in f.values()))
        print(f"  clean, {rows:,} rows: statistic max / p99 / threshold held to (lowest)")
        for name in found[0]:
            values = np.array([f[name].value for f in found])
            limit = min(f[name].effective_threshold for f in found)
            print(f"    {name:26s} {values.max():.4f} / {np.quantile(values, 0.99):.4f} / {limit:.4f}")
        print(f"    false alarms: {alarms} of {partitions} partitions")
    partition = _sample(everything, 5000, rng)
    shifts = {
        "brightness x*0.7+0.2": Split(partition.x * 0.7 + 0.2, partition.y),
        "contrast x*1.3 clipped": Split(np.clip(partition.x * 1.3, 0, 1), partition.y),
        "dimmer x*0.8": Split(partition.x * 0.8, partition.y),
        "gamma x**0.8": Split(partition.x**0.8, partition.y),
        "label shift 60% class 0": catalogue(train, partition)["strong label shift"],
        **damage_cases(partition),
    }
    print("  shifted / damaged 5,000-row partitions (value, * = over threshold):")
    for label, split in shifts.items():
        found = stats(split)
        text = ", ".join(f"{n} {d.value:.3f}{'' if d.passed else '*'}" for n, d in found.items())
        print(f"    {label:24s} {text}")
        failed = sorted(
            (d for d in found.values() if not d.passed), key=lambda d: -d.value / d.effective_threshold
        )
        caught = "; ".join(f"{d.name} {d.value:.3f} > {d.effective_threshold:.3f}" for d in failed[:3])
        print(f"      -> {'caught by ' + caught if failed else 'NOT caught'}")


def damage_cases(partition: Split) -> dict[str, Split]:
    """Bad data that looks normal (``tests/damage.py``): spatial, domain swap, label corruption."""
    from tests import damage

    return {
        "shift 1 px right": damage.shifted(partition, 0, 1),
        "shift 2 px right": damage.shifted(partition, 0, 2),
        "shift 4 px right": damage.shifted(partition, 0, 4),
        "shift 1 px down": damage.shifted(partition, 1, 0),
        "rotate 10": damage.rotated(partition, 10),
        "rotate 90": damage.rotated(partition, 90),
        "flip left-right": damage.flipped(partition, "horizontal"),
        "flip upside down": damage.flipped(partition, "vertical"),
        "10% digits": damage.domain_swapped(partition, 0.1),
        "30% digits": damage.domain_swapped(partition, 0.3),
        "classes permuted": damage.labels_permuted(partition),
        "swap (0,6),(2,4)": damage.labels_swapped(partition, [(0, 6), (2, 4)]),
        "swap (7,9)": damage.labels_swapped(partition, [(7, 9)]),
        "10% random labels": damage.labels_noisy(partition, 0.1),
        "40% random labels": damage.labels_noisy(partition, 0.4),
    }


def _sample(everything: Split, rows: int, rng: np.random.Generator) -> Split:
    idx = rng.choice(len(everything.y), rows, replace=False)
    return Split(everything.x[idx], everything.y[idx])


# --------------------------------------------------------------------------- main


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=70_000, help="examples to validate (default: all 70,000)")
    parser.add_argument("--repeat", type=int, default=3, help="Slipway runs (median reported)")
    parser.add_argument("--catalogue", action="store_true", help="compare detection on every catalogue case")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    parser.add_argument("--calibrate", action="store_true", help="only print the drift calibration")
    parser.add_argument("--partitions", type=int, default=200, help="clean partitions per size (calibration)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import_s, _ = timed(lambda: __import__("great_expectations"))
    train, test = load_fashion()
    x = np.concatenate([train.x, test.x])[: args.rows]
    everything = Split(x, np.concatenate([train.y, test.y])[: args.rows])
    if args.calibrate:
        calibrate(train, everything, args.partitions)
        return 0
    reference = {"snapshot_key": "bench", "profile": profile_split(train)}
    print(
        f"data: {len(x):,} x {int(np.prod(x.shape[1:]))} + label;"
        f" great_expectations import {import_s:.1f} s (shared, not in the timings)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        warm = Split(everything.x[:200], everything.y[:200])
        naive_validate(Split(warm.x.reshape(200, -1)[:, :8], warm.y), Path(tmp) / "warm-naive", not_null=True)
        slipway_validate(warm, Path(tmp) / "warm-slipway", reference)

        naive_s, naive_ok = timed(lambda: naive_validate(everything, Path(tmp) / "naive"))
        runs = [
            timed(lambda i=i: slipway_validate(everything, Path(tmp) / f"slipway{i}", reference))
            for i in range(args.repeat)
        ]
    slipway_s = statistics.median(t for t, _ in runs)
    step_s = slipway_step(everything, train)
    ratio = naive_s / slipway_s
    print(f"naive GX suite (790 expectations, Data Docs): {naive_s:7.2f} s  passed={naive_ok}")
    times = ", ".join(f"{t:.2f}" for t, _ in runs)
    print(
        f"slipway validate_split (Data Docs):           {slipway_s:7.2f} s  passed={runs[0][1]}  (runs: {times})"
    )
    print(f"speed-up: {ratio:.1f}x  (goal: at least 8x)")
    print(
        f"slipway validate step end to end (snapshot from file:// store, validate, docs uploaded): {step_s:.2f} s"
    )

    rng = np.random.default_rng(0)
    idx = rng.choice(len(everything.y), min(5000, len(everything.y)), replace=False)
    partition = Split(everything.x[idx], everything.y[idx])
    cases = catalogue(train, partition)
    names = list(cases) if args.catalogue else ["range: unnormalised 0-255", "NaN values"]
    detections: dict[str, dict[str, bool]] = {}
    not_null_s = None
    print(f"\nrejected? ({len(partition.y):,}-row partitions)")
    print(f"  {'case':28s} {'naive':7s} {'naive+not-null':15s} slipway")
    for name in ["clean partition", *names]:
        split = partition if name == "clean partition" else cases[name]
        row = {"naive": not naive_validate(split, None)}
        if name == "NaN values":  # the only case per-pixel not-null checks add anything to
            seconds, passed = timed(lambda split=split: naive_validate(split, None, not_null=True))
            row["naive+not-null"] = not passed
            not_null_s = not_null_s or seconds
        row["slipway"] = not slipway_validate(split, None, reference)
        detections[name] = row
        extra = str(row.get("naive+not-null", "-"))
        print(f"  {name:28s} {row['naive']!s:7s} {extra:15s} {row['slipway']!s}")
    if not_null_s:
        print(f"  (naive+not-null = 1,574 expectations: {not_null_s:.1f} s on {len(partition.y):,} rows)")

    bad = [n for n in detections if n != "clean partition"]
    range_nan = (
        detections["range: unnormalised 0-255"]["naive"] and detections["NaN values"]["naive+not-null"]
    )
    range_nan = range_nan and all(
        detections[n]["slipway"] for n in ("range: unnormalised 0-255", "NaN values")
    )
    at_least = all(
        detections[n]["slipway"] >= max(v for k, v in detections[n].items() if k != "slipway") for n in bad
    )
    no_false_alarm = not detections["clean partition"]["slipway"]
    print(f"\nboth reject the range and NaN cases: {range_nan}")
    print(
        f"slipway rejects every case a naive suite rejects: {at_least}; clean partition passes: {no_false_alarm}"
    )

    if args.json:
        figures = {
            "rows": len(everything.y),
            "naive_seconds": round(naive_s, 3),
            "slipway_seconds": round(slipway_s, 3),
            "slipway_runs_seconds": [round(t, 3) for t, _ in runs],
            "speedup": round(ratio, 2),
            "validate_step_seconds": round(step_s, 3),
            "great_expectations_import_seconds": round(import_s, 3),
            "detections": detections,
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if range_nan and at_least and no_false_alarm else 1


if __name__ == "__main__":
    sys.exit(main())
