"""Typed pipeline configuration: one YAML file per pipeline, validated by pydantic.

Why pydantic: a wrong field must fail loudly at DAG-parse time with the file, the field and the
reason (``ConfigError``), never later inside a training pod. Every model forbids unknown keys so a
typo (``epoch: 10``) is an error rather than a silently ignored setting.

Two conveniences, both resolved at load time so the rest of the code sees plain values:

* ``${VAR}`` and ``${VAR:-default}`` in any string are expanded from the environment, so the same
  file runs on one machine (defaults) and on a cluster (``SLIPWAY_STORE_URL=s3://...``).
* relative ``file://`` URLs and relative data paths are resolved against the config file's folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A pipeline config is invalid; the message names the file, the field and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data


class DataSourceConfig(_Strict):
    """Where the raw examples come from.

    ``kind`` selects the reader (one module per kind in ``slipway/data/sources``):
    ``idx`` (a folder of MNIST-format IDX files, gzipped or not), ``digits`` (scikit-learn's
    bundled 8x8 digits, for fast tests), ``npz`` and ``parquet`` (a file on the artifact store or
    a local path). ``uri`` may contain ``{partition}``, filled from the run's data partition.
    """

    kind: Literal["idx", "digits", "npz", "parquet"]
    uri: str | None = None
    # Divide raw values by this on ingest (255 for 8-bit images); 1 keeps values as they are.
    scale: float = Field(default=1.0, gt=0)
    # Cap the number of examples taken from each split (fast tests, smoke runs). None = all.
    max_examples: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _uri_required(self) -> DataSourceConfig:
        if self.kind != "digits" and not self.uri:
            raise ValueError(f"data source kind {self.kind!r} needs a 'uri'")
        return self


class SplitConfig(_Strict):
    """Deterministic split (seeded permutation). A source with its own test split (IDX t10k) keeps
    it and ``validation_fraction`` is then carved from its training examples; otherwise both
    fractions are shares of all examples. ``stratify`` keeps each class's share in every split.
    """

    validation_fraction: float = Field(default=0.1, ge=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0
    stratify: bool = False

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> SplitConfig:
        if self.validation_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"validation_fraction + test_fraction must be < 1 (got {self.validation_fraction}"
                f" + {self.test_fraction}): nothing would be left to train on"
            )
        return self


class DataConfig(_Strict):
    source: DataSourceConfig
    split: SplitConfig = SplitConfig()
    # Shape of one example (without the batch axis) and the label set: the data contract.
    input_shape: tuple[int, ...]
    num_classes: int = Field(ge=2)
    class_names: list[str] | None = None

    @model_validator(mode="after")
    def _class_names_match(self) -> DataConfig:
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}"
            )
        return self


# --------------------------------------------------------------------------- validation


class ValidationConfig(_Strict):
    """Data-gate thresholds (see ``slipway/validation``). Defaults suit 8-bit images in [0, 1].

    Drift statistics are effect sizes, not p-values (at 70,000 rows every p-value is tiny). The
    defaults were calibrated on Fashion-MNIST (``bench/bench_validation.py --calibrate``, see
    ``bench/README.md``): 200 random clean 5,000-row partitions against the training-set reference
    peak at TV 0.033, shifts 0.036 std and KS 0.024, while a brightness shift (x*0.7+0.2) reaches
    shift 0.91 / KS 0.45, a contrast shift (x*1.3, clipped) std shift 0.84 / KS 0.37, and a strong
    label shift (60 % one class) TV 0.5. Small partitions are noisier, so each drift threshold is
    raised to a noise floor - the statistic's expected value without drift plus
    ``drift_noise_sigmas`` standard deviations at the partition's size - when that is larger
    (both are recorded).
    """

    value_min: float = 0.0
    value_max: float = 1.0
    min_rows: int = Field(default=100, ge=1)
    max_rows: int | None = Field(default=None, ge=1)
    # No class may hold less / more than this share of the rows. None: derived from num_classes,
    # 0.2/K (a fifth of a fair share) and min(3/K, 1 - 0.2/K) - 2 % and 30 % for 10 classes.
    min_class_share: float | None = Field(default=None, ge=0, le=1)
    max_class_share: float | None = Field(default=None, ge=0, le=1)
    max_duplicate_fraction: float = Field(default=0.05, ge=0, le=1)
    # Drift against the champion's reference profile.
    drift_enabled: bool = True
    max_label_drift: float = Field(default=0.1, ge=0, le=1, description="total variation distance")
    max_mean_intensity_shift: float = Field(
        default=0.2, ge=0, description="mean of per-image means, in reference std units"
    )
    max_std_intensity_shift: float = Field(
        default=0.2, ge=0, description="mean of per-image stds, in reference std units"
    )
    max_intensity_ks: float = Field(
        default=0.1, ge=0, le=1, description="KS distance of per-image mean / std distributions"
    )
    drift_noise_sigmas: float = Field(default=5.0, ge=0, description="noise floor of drift thresholds")

    @model_validator(mode="after")
    def _class_shares_ordered(self) -> ValidationConfig:
        if self.max_rows is not None and self.max_rows < self.min_rows:
            raise ValueError(f"max_rows ({self.max_rows}) is below min_rows ({self.min_rows})")
        if self.value_max < self.value_min:
            raise ValueError(f"value_max ({self.value_max}) is below value_min ({self.value_min})")
        lo, hi = self.min_class_share, self.max_class_share
        if lo is not None and hi is not None and hi < lo:
            raise ValueError(f"max_class_share ({hi}) is below min_class_share ({lo})")
        return self

    def class_share_bounds(self, num_classes: int) -> tuple[float, float]:
        """(min, max) share any one class may hold, explicit or derived from ``num_classes``."""
        fair = 1.0 / num_classes
        lo = self.min_class_share if self.min_class_share is not None else 0.2 * fair
        hi = self.max_class_share if self.max_class_share is not None else min(3 * fair, 1 - 0.2 * fair)
        return lo, hi


# --------------------------------------------------------------------------- training


class DenseLayer(_Strict):
    type: Literal["dense"]
    units: int = Field(gt=0)
    activation: str | None = None


class DropoutLayer(_Strict):
    type: Literal["dropout"]
    rate: float = Field(ge=0, lt=1)


class FlattenLayer(_Strict):
    type: Literal["flatten"]


class Conv2DLayer(_Strict):
    type: Literal["conv2d"]
    filters: int = Field(gt=0)
    kernel_size: int = Field(gt=0)
    activation: str | None = None


class MaxPool2DLayer(_Strict):
    type: Literal["maxpool2d"]
    pool_size: int = Field(default=2, gt=0)


LayerConfig = Annotated[
    DenseLayer | DropoutLayer | FlattenLayer | Conv2DLayer | MaxPool2DLayer, Field(discriminator="type")
]


class OptimizerConfig(_Strict):
    name: Literal["adam", "sgd", "rmsprop", "adamw"] = "adam"
    learning_rate: float = Field(default=1e-3, gt=0)


class TrainingConfig(_Strict):
    """The model and how to fit it. Defaults are the reference MNIST-style classifier."""

    layers: list[LayerConfig] = Field(
        default_factory=lambda: [
            FlattenLayer(type="flatten"),
            DenseLayer(type="dense", units=512, activation="relu"),
            DropoutLayer(type="dropout", rate=0.2),
        ],
        min_length=1,
    )
    # The output layer (Dense num_classes softmax) is added by the builder from data.num_classes.
    optimizer: OptimizerConfig = OptimizerConfig()
    batch_size: int = Field(default=128, gt=0)
    epochs: int = Field(default=10, gt=0)
    seed: int = 42
    # Distribution strategy: 'auto' picks MultiWorkerMirrored when TF_CONFIG names several workers.
    strategy: Literal["auto", "default", "mirrored", "multi_worker"] = "auto"


# --------------------------------------------------------------------------- gate


class GateConfig(_Strict):
    """Evaluation gate policy (see ``slipway/evaluation/gate.py``).

    ``None`` disables an optional check; it is still recorded in the Blessing as ``skipped``.
    """

    min_accuracy: float = Field(default=0.8, ge=0, le=1)
    min_class_recall: float | None = Field(default=None, ge=0, le=1)
    # Non-regression: candidate accuracy may be at most this much below the champion's, and a
    # regression only counts when it is statistically significant at this level.
    max_accuracy_drop: float = Field(default=0.005, ge=0, le=1)
    significance_level: float = Field(default=0.05, gt=0, lt=1)
    # Paired bootstrap of the accuracy difference (reported; the decision uses McNemar's test).
    bootstrap_samples: int = Field(default=1000, ge=100)
    bootstrap_seed: int = 0
    max_latency_ms_per_example: float | None = Field(
        default=None, gt=0, description="median ms per example at latency_batch_size"
    )
    # A per-example latency only means something at a stated batch size; the ceiling applies here.
    latency_batch_size: int = Field(default=32, gt=0)
    max_model_size_mb: float | None = Field(
        default=None, gt=0, description="model.keras size, 1 MB = 10^6 bytes"
    )


# --------------------------------------------------------------------------- infrastructure


class LauncherConfig(_Strict):
    """How steps run: ``local`` subprocess (embedded default) or ``kubernetes`` pods."""

    kind: Literal["local", "kubernetes"] = "local"
    python: str | None = Field(default=None, description="interpreter for local steps; default: current")
    # Kubernetes settings (used when kind == kubernetes).
    namespace: str = "slipway"
    image: str = "slipway:latest"
    gpus: int = Field(default=0, ge=0)
    workers: int = Field(default=1, ge=1, description=">1 runs multi-worker training on an Indexed Job")
    service_account: str = "slipway-step"


class MetricsConfig(_Strict):
    """Where pipeline health metrics go: a Pushgateway when set, else a node_exporter textfile."""

    pushgateway_url: str | None = None
    textfile_dir: str = "${SLIPWAY_METRICS_DIR:-.slipway/metrics}"


StepName = Literal["ingest", "validate", "train", "evaluate", "gate", "register", "promote"]


class OrchestrationConfig(_Strict):
    """How Airflow runs the pipeline's DAG besides its cron ``schedule``: data trigger, retries,
    task timeouts and a run deadline (see ``operators/scheduling.py``).

    ``data_asset`` is the URI of an Airflow Asset that stands for "new data for this pipeline":
    each event on it starts a run (combined with ``schedule`` when both are set), and the event's
    ``extra.partition`` selects the partition to ingest. Retries apply to infrastructure failures
    only: bad input fails a task at once. ``run_deadline_minutes`` raises a deadline alert (log and
    metric) when a run is not finished that long after it was queued.
    """

    data_asset: str | None = Field(default=None, description="Asset URI whose events start a run")
    retries: int = Field(default=2, ge=0, le=10)
    retry_delay_seconds: float = Field(default=30, gt=0)
    max_retry_delay_seconds: float = Field(default=600, gt=0, description="cap of the exponential backoff")
    task_timeout_minutes: float = Field(default=60, gt=0)
    step_timeout_minutes: dict[StepName, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: {"train": 240.0}, description="per-task timeouts that differ from the default"
    )
    run_deadline_minutes: float | None = Field(default=None, gt=0)

    @field_validator("data_asset")
    @classmethod
    def _asset_is_uri(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z][a-z0-9+.-]*://\S+$", value):
            raise ValueError(f"data_asset must be a URI such as s3://bucket/prefix, got {value!r}")
        if value is not None and value.startswith("airflow://"):
            raise ValueError("data_asset: the airflow:// scheme is reserved by Airflow")
        return value


class PipelineConfig(_Strict):
    """One retraining pipeline: one YAML file in ``dags/pipelines/``, one ``retrain_<name>`` DAG."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    model_name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    description: str = ""
    owner: str = "mlops"
    schedule: str | None = Field(default=None, description="cron expression, '@daily', or null")
    store_url: str
    data: DataConfig
    validation: ValidationConfig = ValidationConfig()
    training: TrainingConfig = TrainingConfig()
    gate: GateConfig = GateConfig()
    launcher: LauncherConfig = LauncherConfig()
    metrics: MetricsConfig = MetricsConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    # Path of the YAML file this config was loaded from (set by load_config, not by the file).
    source_path: str | None = None

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://")):
            raise ValueError(f"store_url must start with file:// or s3://, got {value!r}")
        return value

    def with_overrides(self, overrides: dict[str, Any] | None) -> PipelineConfig:
        """A copy with nested overrides applied (``{"training": {"epochs": 3}}``), re-validated."""
        if not overrides:
            return self
        merged = _deep_merge(self.model_dump(mode="json"), overrides)
        try:
            return PipelineConfig.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_format_errors(self.source_path or "<overrides>", exc)) from None

    def fingerprint(self) -> str:
        """Stable hash of the settings that change a trained model (for idempotent reruns)."""
        import hashlib

        relevant = self.model_dump(mode="json", include={"data", "training"})
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set and has no default")

        return _ENV_PATTERN.sub(repl, value)
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    return value


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _format_errors(path: str, exc: ValidationError) -> str:
    lines = [f"invalid pipeline config {path}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (typo?)"
        lines.append(f"  {field}: {msg}")
    return "\n".join(lines)


def _resolve_relative(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    store = raw.get("store_url")
    if isinstance(store, str) and store.startswith("file://"):
        local = Path(store[len("file://") :])
        if not local.is_absolute():
            raw["store_url"] = "file://" + str((base / local).resolve())
    source = (raw.get("data") or {}).get("source") or {}
    uri = source.get("uri")
    if isinstance(uri, str) and "://" not in uri and not Path(uri).is_absolute():
        source["uri"] = str((base / uri).resolve())
    metrics = raw.get("metrics") or {}
    textfile = metrics.get("textfile_dir") if isinstance(metrics, dict) else None
    if isinstance(textfile, str) and not Path(textfile).is_absolute():
        metrics["textfile_dir"] = str((base / textfile).resolve())
    return raw


def parse_config(raw: Any, path: str = "<memory>", base_dir: Path | None = None) -> PipelineConfig:
    """Validate an already-parsed mapping; ``path`` is only used in error messages."""
    if not isinstance(raw, dict):
        raise ConfigError(
            f"invalid pipeline config {path}: top level must be a mapping, got {type(raw).__name__}"
        )
    raw = _expand_env(raw)
    if base_dir is not None:
        raw = _resolve_relative(raw, base_dir)
        metrics = raw.setdefault("metrics", {})
        if isinstance(metrics, dict) and "textfile_dir" not in metrics:
            metrics["textfile_dir"] = str((base_dir / _expand_env(MetricsConfig().textfile_dir)).resolve())
    raw["source_path"] = path
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None


def load_config(path: str | os.PathLike[str]) -> PipelineConfig:
    """Load and validate one pipeline YAML file; raises ``ConfigError`` naming file and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read pipeline config {path}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML in pipeline config {path}: {exc}") from None
    return parse_config(raw, str(path), base_dir=path.resolve().parent)


def load_pipelines(folder: str | os.PathLike[str]) -> list[PipelineConfig]:
    """Every ``*.yaml`` / ``*.yml`` pipeline in ``folder``, sorted by file name; names must be unique."""
    folder = Path(folder)
    configs = [load_config(p) for p in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])]
    seen: dict[str, str] = {}
    for cfg in configs:
        if cfg.name in seen:
            raise ConfigError(
                f"pipeline name {cfg.name!r} is used by both {seen[cfg.name]} and {cfg.source_path}"
            )
        seen[cfg.name] = cfg.source_path or ""
    return configs
