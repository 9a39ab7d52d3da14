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
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from slipway.errors import BadInputError


class ConfigError(BadInputError, ValueError):
    """A pipeline config is invalid; the message names the file, the field and the problem.

    Bad input like invalid data: a step exits 65 and an operator fails without retry."""


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
    # Structural drift (slipway/validation/structure.py): RMS of standardised differences of the
    # per-pixel mean / std maps and row / column profiles, overall and per class, in reference
    # std units. Calibrated on Fashion-MNIST like the drift thresholds above (bench/README.md).
    structure_enabled: bool = True
    # Structure maps are computed on a seeded uniform sample of at most this many rows (the noise
    # floors are at the sample's size): a 70,000-row snapshot costs what a 20,000-row one does.
    structure_max_rows: int = Field(default=20_000, ge=100)
    max_pixel_mean_shift: float = Field(default=0.1, ge=0, description="per-pixel mean map")
    max_pixel_std_shift: float = Field(default=0.15, ge=0, description="per-pixel std map")
    max_profile_shift: float = Field(default=0.1, ge=0, description="row / column intensity profiles")
    max_class_pixel_mean_shift: float = Field(default=0.25, ge=0, description="worst class's mean map")
    max_class_pixel_std_shift: float = Field(default=0.6, ge=0, description="worst class's std map")
    max_class_profile_shift: float = Field(default=0.3, ge=0, description="worst class's profiles")
    # The champion as a witness (slipway/validation/witness.py): the current champion scores the
    # partition inside the validate step; a collapse against its registration figures rejects it.
    champion_witness: bool = True
    max_witness_accuracy_drop: float = Field(
        default=0.15, ge=0, le=1, description="accuracy at registration minus accuracy on the partition"
    )
    max_witness_prediction_tv: float = Field(
        default=0.15, ge=0, le=1, description="total variation of the predicted-class distribution"
    )
    max_witness_confidence_ks: float = Field(
        default=0.15, ge=0, le=1, description="KS distance of the top-class confidence distribution"
    )

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


# Keras activation names accepted by the layers (checked here so a typo fails at DAG parse time,
# not in the training pod after its retries).
Activation = Literal[
    "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "mish", "sigmoid",
    "hard_sigmoid", "tanh", "softmax", "softplus", "softsign", "exponential", "linear",
]  # fmt: skip


class DenseLayer(_Strict):
    type: Literal["dense"]
    units: int = Field(gt=0)
    activation: Activation | None = None


class DropoutLayer(_Strict):
    type: Literal["dropout"]
    rate: float = Field(ge=0, lt=1)


class FlattenLayer(_Strict):
    type: Literal["flatten"]


class Conv2DLayer(_Strict):
    type: Literal["conv2d"]
    filters: int = Field(gt=0)
    kernel_size: int = Field(gt=0)
    activation: Activation | None = None
    # "same" keeps the spatial size, so stacked conv blocks also fit small inputs (8x8 digits).
    padding: Literal["valid", "same"] = "valid"


class MaxPool2DLayer(_Strict):
    type: Literal["maxpool2d"]
    pool_size: int = Field(default=2, gt=0)


LayerConfig = Annotated[
    DenseLayer | DropoutLayer | FlattenLayer | Conv2DLayer | MaxPool2DLayer, Field(discriminator="type")
]


class OptimizerConfig(_Strict):
    name: Literal["adam", "sgd", "rmsprop", "adamw"] = "adam"
    learning_rate: float = Field(default=1e-3, gt=0)


def _default_layers() -> list[LayerConfig]:
    return [
        FlattenLayer(type="flatten"),
        DenseLayer(type="dense", units=512, activation="relu"),
        DropoutLayer(type="dropout", rate=0.2),
    ]


class TrainingConfig(_Strict):
    """The model and how to fit it. Defaults are the reference MNIST-style classifier."""

    layers: list[LayerConfig] = Field(
        default_factory=lambda: _default_layers(),
        min_length=1,
    )
    # The output layer (Dense num_classes softmax) is added by the builder from data.num_classes.
    optimizer: OptimizerConfig = OptimizerConfig()
    batch_size: int = Field(default=128, gt=0)
    epochs: int = Field(default=10, gt=0)
    seed: int = 42
    # Distribution strategy: 'auto' picks MultiWorkerMirrored when TF_CONFIG names several workers.
    strategy: Literal["auto", "default", "mirrored", "multi_worker"] = "auto"
    # Speed switches (see slipway/training/backend.py and bench/bench_training.py). 'auto' means:
    # Keras on TensorFlow when a GPU is visible (the GPU image's CUDA stack), JAX on a CPU (about
    # twice TensorFlow's speed for this model); mixed float16 and XLA only with a GPU (XLA made
    # TensorFlow 3x slower on the CPU).
    backend: Literal["auto", "tensorflow", "jax"] = "auto"
    steps_per_execution: int = Field(default=16, ge=1, description="train steps per device call")
    mixed_precision: Literal["auto", "off", "float16", "bfloat16"] = "auto"
    jit_compile: Literal["auto", "on", "off"] = "auto"
    # Where JAX keeps compiled programs between runs: a retraining of the same architecture skips
    # XLA compilation (about 1 s of a 10 s run here). None: the training process's own
    # $SLIPWAY_COMPILATION_CACHE, else .slipway/xla-cache (a pod sets its scratch folder); '' off.
    # Not part of the model's fingerprint.
    compilation_cache: str | None = Field(default=None, description="JAX compilation cache folder; '' off")

    @model_validator(mode="after")
    def _strategy_needs_tensorflow(self) -> TrainingConfig:
        if self.backend == "jax" and self.strategy in ("mirrored", "multi_worker"):
            raise ValueError(
                f"strategy {self.strategy!r} is TensorFlow's (tf.distribute): use backend tensorflow or auto"
            )
        return self


# --------------------------------------------------------------------------- tuning


class IntRange(_Strict):
    """An integer search dimension: ``low``..``high`` inclusive, in steps (or log-uniform)."""

    low: int
    high: int
    step: int = Field(default=1, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("a log range needs low >= 1 and step 1")
        return self


class FloatRange(_Strict):
    """A real search dimension: uniform on ``[low, high]``, or log-uniform when ``log``."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) is below low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


# A dimension is a fixed value, a list of choices, or a range.
IntDimension = int | Annotated[list[int], Field(min_length=1)] | IntRange
FloatDimension = float | Annotated[list[float], Field(min_length=1)] | FloatRange
OptimizerName = Literal["adam", "sgd", "rmsprop", "adamw"]


class SearchSpaceConfig(_Strict):
    """What a sweep may change. Each trial's model is built as

    ``conv_blocks`` x [Conv2D(filters, 3x3, same, relu) + MaxPool(2)] (filters start at
    ``conv_filters`` and double per block; 0 blocks = an MLP) -> Flatten ->
    ``dense_layers`` x [Dense(units, relu) + Dropout(dropout)] -> softmax output.
    """

    conv_blocks: IntDimension = 0
    conv_filters: IntDimension = 32
    dense_layers: IntDimension = IntRange(low=1, high=2)
    dense_units: IntDimension = Field(default_factory=lambda: [128, 256, 512])
    dropout: FloatDimension = FloatRange(low=0.0, high=0.5)
    optimizer: OptimizerName | Annotated[list[OptimizerName], Field(min_length=1)] = "adam"
    learning_rate: FloatDimension = FloatRange(low=1e-4, high=1e-2, log=True)
    batch_size: IntDimension = Field(default_factory=lambda: [64, 128, 256])
    # Most epochs a trial trains; the pruner stops hopeless trials earlier.
    epochs: IntDimension = 5

    @model_validator(mode="after")
    def _positive(self) -> SearchSpaceConfig:
        for name, floor in (
            ("conv_blocks", 0),
            ("conv_filters", 1),
            ("dense_layers", 0),
            ("dense_units", 1),
            ("batch_size", 1),
            ("epochs", 1),
        ):
            values = _dimension_bounds(getattr(self, name))
            if min(values) < floor:
                raise ValueError(f"{name} must be >= {floor}, got {min(values)}")
        for name, lo, hi in (("dropout", 0.0, 0.999), ("learning_rate", 1e-12, 10.0)):
            values = _dimension_bounds(getattr(self, name))
            if min(values) < lo or max(values) > hi:
                raise ValueError(f"{name} must lie in [{lo}, {hi}], got {min(values)}..{max(values)}")
        return self


def _dimension_bounds(dimension: Any) -> list[float]:
    if isinstance(dimension, IntRange | FloatRange):
        return [dimension.low, dimension.high]
    if isinstance(dimension, list):
        return list(dimension)
    return [dimension]


class PrunerConfig(_Strict):
    """Stops hopeless trials from their per-epoch validation accuracy (Optuna pruners)."""

    kind: Literal["median", "percentile", "none"] = "median"
    # No trial is pruned before this many trials have completed, nor before this many epochs.
    startup_trials: int = Field(default=2, ge=0)
    warmup_epochs: int = Field(default=1, ge=0)
    # ``percentile``: prune below this percentile of the completed trials at the same epoch.
    percentile: float = Field(default=25.0, gt=0, lt=100)


class LeanerConfig(_Strict):
    """Post-training optimisation of the blessed model (``slipway/optimization``).

    ``int8``: dense kernels stored as int8 with per-channel scales, float activations;
    ``int8_dynamic``: activations quantised on the fly too (slower on CPUs without int8 GEMM).
    The variant replaces the float model in serving only if it passes the gate's checks, loses at
    most ``max_accuracy_drop`` on the same test examples, is at least ``min_size_ratio`` times
    smaller and at most ``max_latency_ratio`` times slower (median ms per example).
    """

    enabled: bool = False
    kind: Literal["int8", "int8_dynamic"] = "int8"
    max_accuracy_drop: float = Field(default=0.002, ge=0, le=1)
    min_size_ratio: float = Field(default=2.0, ge=1)
    max_latency_ratio: float = Field(default=1.25, gt=0)


class TuningConfig(_Strict):
    """A hyperparameter sweep (``tune_<pipeline>`` DAG): Optuna on the validation split only.

    Budget: ``trials`` mapped trial tasks, at most ``parallel`` at a time, and no trial starts
    after ``timeout_s`` seconds from the study's creation (None: no wall-time limit).
    """

    space: SearchSpaceConfig = SearchSpaceConfig()
    trials: int = Field(default=8, ge=1, le=500)
    parallel: int = Field(default=2, ge=1)
    timeout_s: float | None = Field(default=None, gt=0)
    seed: int = 0
    sampler: Literal["tpe", "random"] = "tpe"
    # Trials sampled at random before TPE models the results.
    startup_trials: int = Field(default=3, ge=0)
    pruner: PrunerConfig = PrunerConfig()
    # Keras backend of the trial processes (None: the environment's). The chosen model is
    # re-exported by the select step, so trials may train on JAX and serve from a SavedModel.
    keras_backend: Literal["tensorflow", "jax"] | None = None
    leaner: LeanerConfig = LeanerConfig()


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
    # "Data suspect": the champion's accuracy on the new split this far below its accuracy on the
    # golden set means the new data (its labels or inputs), not the models, changed.
    max_champion_golden_gap: float = Field(
        default=0.2, ge=0, le=1, description="champion accuracy on golden minus on the new split"
    )


class GoldenSetConfig(_Strict):
    """The pinned evaluation set the gate's non-regression decision uses
    (``slipway/evaluation/golden.py``). ``source`` None: the test split of the snapshot the first
    champion was promoted on, frozen in the store at that promotion."""

    source: DataSourceConfig | None = None


# --------------------------------------------------------------------------- infrastructure


class LocalLauncherConfig(_Strict):
    """Embedded default: each step is a subprocess of the Airflow worker."""

    kind: Literal["local"] = "local"
    python: str | None = Field(default=None, description="interpreter for local steps; default: current")


class TolerationConfig(_Strict):
    """A Kubernetes toleration (``kubectl explain pod.spec.tolerations``)."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class ResourcesConfig(_Strict):
    """CPU / memory of one step container, in Kubernetes quantities (``500m``, ``4Gi``)."""

    cpu_request: str = "1"
    memory_request: str = "2Gi"
    cpu_limit: str | None = "2"
    memory_limit: str | None = "4Gi"


class KubernetesLauncherBase(_Strict):
    """Settings shared by the Kubernetes launchers (see ``operators/launchers/kubernetes_*.py``)."""

    namespace: str = Field(default="slipway", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    image: str = "slipway-step:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    image_pull_secrets: list[str] = Field(default_factory=list)
    service_account: str = "slipway-step"
    # GPUs per training pod (nvidia.com/gpu limit); validate and evaluate never ask for one.
    gpus: int = Field(default=0, ge=0)
    resources: ResourcesConfig = ResourcesConfig()
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[TolerationConfig] = Field(default_factory=list)
    priority_class: str | None = None
    # Plain env for every step pod (e.g. AWS_ENDPOINT_URL) and Secrets loaded as env (S3 keys).
    env: dict[str, str] = Field(default_factory=dict)
    env_from_secrets: list[str] = Field(default_factory=list)
    kubernetes_conn_id: str | None = Field(default=None, description="Airflow connection; None: in-cluster")
    config_file: str | None = Field(default=None, description="kubeconfig path when not in-cluster")
    startup_timeout_seconds: int = Field(default=600, gt=0)
    schedule_timeout_seconds: int = Field(default=600, gt=0)
    poll_interval_seconds: float = Field(default=10, gt=0)


class KubernetesPodLauncherConfig(KubernetesLauncherBase):
    """Every step in its own pod (``KubernetesPodOperator``, deferrable)."""

    kind: Literal["kubernetes"]


class KubernetesJobLauncherConfig(KubernetesLauncherBase):
    """Train on an Indexed Job of ``workers`` pods (``KubernetesJobOperator``, deferrable) with
    ``MultiWorkerMirroredStrategy``; the other steps run as single pods like ``kubernetes``."""

    kind: Literal["kubernetes_job"]
    workers: int = Field(default=2, ge=1, le=64)
    port: int = Field(default=2222, gt=0, lt=65536, description="tf.distribute port on every worker")


def _launcher_kind(value: Any) -> str:
    kind = value.get("kind", "local") if isinstance(value, dict) else getattr(value, "kind", "local")
    return str(kind)


# One class per kind; an unknown kind fails when the config is parsed, not when a step starts.
LauncherConfig = Annotated[
    Annotated[LocalLauncherConfig, Tag("local")]
    | Annotated[KubernetesPodLauncherConfig, Tag("kubernetes")]
    | Annotated[KubernetesJobLauncherConfig, Tag("kubernetes_job")],
    Discriminator(_launcher_kind),
]


class MetricsConfig(_Strict):
    """Where pipeline health metrics go: a Pushgateway when set, else a node_exporter textfile."""

    pushgateway_url: str | None = None
    # validate_default: the default's ${VAR} is expanded even when no file (base folder) is involved.
    textfile_dir: str = Field(default="${SLIPWAY_METRICS_DIR:-.slipway/metrics}", validate_default=True)

    @field_validator("textfile_dir")
    @classmethod
    def _expand(cls, value: str) -> str:
        expanded: str = _expand_env(value)
        return expanded


class ServingConfig(_Strict):
    """The model server (``python -m slipway serve``, see ``slipway/serving``) and its limits.

    Requests are coalesced into micro-batches of at most ``max_batch_size`` instances, waiting at
    most ``max_batch_wait_ms`` for a batch to fill (TF Serving's ``batch_timeout_micros``). Past
    ``max_queue_instances`` waiting instances the server answers 503 at once instead of queueing.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8501, ge=0, le=65535, description="TF Serving's REST port")
    workers: int = Field(default=1, ge=1, le=64, description="server processes, each with the model")
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    max_batch_wait_ms: float = Field(default=1.0, ge=0, le=1000)
    max_queue_instances: int = Field(default=1024, ge=1)
    max_instances_per_request: int = Field(default=256, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    cache_dir: str = Field(
        default="${SLIPWAY_SERVING_CACHE:-.slipway/serving-cache}",
        description="local folder the verified model versions are downloaded to",
        validate_default=True,  # the default's ${VAR} is expanded even without a config file
    )

    @field_validator("cache_dir")
    @classmethod
    def _expand(cls, value: str) -> str:
        expanded: str = _expand_env(value)
        return expanded

    @model_validator(mode="after")
    def _batch_fits_queue(self) -> ServingConfig:
        if self.max_queue_instances < self.max_batch_size:
            raise ValueError(
                f"max_queue_instances ({self.max_queue_instances}) is below max_batch_size"
                f" ({self.max_batch_size}): a full batch could never be queued"
            )
        if self.max_queue_instances < self.max_instances_per_request:
            raise ValueError(
                f"max_queue_instances ({self.max_queue_instances}) is below max_instances_per_request"
                f" ({self.max_instances_per_request}): a largest request could never be queued"
            )
        return self


class RolloutConfig(_Strict):
    """The canary rollout after register (``slipway/rollout``): traffic steps, analysis, judges.

    Each step sets the canary's traffic weight (percent) and is analysed every ``interval_s``
    (or ``step_intervals_s[i]``) over the last interval's metrics. An analysis with fewer than
    ``min_requests`` canary requests is inconclusive: the step holds, and after
    ``insufficient_traffic_deadline_s`` at one step the canary is rolled back for insufficient
    traffic. ``failure_limit`` failed analyses roll back; ``success_limit`` passing analyses in a
    row advance a step; passing the last step promotes.
    """

    enabled: bool = Field(default=False, description="false: promote without a canary (recorded)")
    steps: list[int] = Field(default=[10, 25, 50, 100], min_length=1)
    interval_s: float = Field(default=60.0, gt=0)
    step_intervals_s: list[float] = Field(default=[], description="per-step intervals (same length as steps)")
    min_requests: int = Field(default=50, ge=1, description="canary requests an analysis needs")
    insufficient_traffic_deadline_s: float = Field(default=600.0, gt=0)
    failure_limit: int = Field(default=2, ge=1)
    success_limit: int = Field(default=1, ge=1)
    # judges
    error_alpha: float = Field(default=0.01, gt=0, lt=1, description="significance of the error test")
    max_error_rate_increase: float = Field(default=0.01, ge=0, le=1)
    max_latency_p99_s: float = Field(default=1.0, gt=0, description="absolute p99 ceiling")
    max_latency_p99_ratio: float = Field(default=1.5, ge=1, description="canary p99 / stable p99")
    latency_tolerance_s: float = Field(default=0.1, ge=0, description="ratio ignored below this gap")
    max_prediction_jsd: float = Field(default=0.05, gt=0, le=1, description="Jensen-Shannon, base 2")
    # backends
    metrics_provider: Literal["scrape", "prometheus"] = "scrape"
    prometheus_url: str | None = None
    router: Literal["local", "gateway"] = "local"
    router_url: str = "http://127.0.0.1:8500"
    target: Literal["local", "kubernetes"] = "local"
    namespace: str = "slipway"
    route_name: str = "slipway-serving"
    deployment_name: str = Field(default="slipway-serving", description="<name>-stable, <name>-canary")
    stable_url: str = "http://127.0.0.1:8501"
    canary_url: str = "http://127.0.0.1:8502"

    @model_validator(mode="after")
    def _steps_make_sense(self) -> RolloutConfig:
        if any(not 0 < w <= 100 for w in self.steps) or self.steps != sorted(set(self.steps)):
            raise ValueError(f"steps must be increasing weights in 1..100, got {self.steps}")
        if self.step_intervals_s and len(self.step_intervals_s) != len(self.steps):
            raise ValueError(
                f"step_intervals_s has {len(self.step_intervals_s)} entries for {len(self.steps)} steps"
            )
        if any(i <= 0 for i in self.step_intervals_s):
            raise ValueError("step_intervals_s must all be above 0")
        if self.metrics_provider == "prometheus" and not self.prometheus_url:
            raise ValueError("metrics_provider 'prometheus' needs prometheus_url")
        return self


StepName = Literal["ingest", "validate", "train", "evaluate", "gate", "register", "canary", "promote"]


def _default_step_timeouts() -> dict[StepName, float]:
    return {"train": 240.0}


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
        default_factory=_default_step_timeouts, description="per-task timeouts that differ from the default"
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
    launcher: LauncherConfig = LocalLauncherConfig()
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)  # built per config: reads the env then
    serving: ServingConfig = Field(default_factory=ServingConfig)  # built per config: reads the env
    # A hyperparameter sweep (``tune_<name>`` DAG); None: this pipeline has no tuning DAG.
    tuning: TuningConfig | None = None
    rollout: RolloutConfig = RolloutConfig()
    golden: GoldenSetConfig = GoldenSetConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()
    # Path of the YAML file this config was loaded from (set by load_config, not by the file).
    source_path: str | None = None

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://")):
            raise ValueError(f"store_url must start with file:// or s3://, got {value!r}")
        if not value.split("://", 1)[1].strip("/"):
            where = "a bucket (s3://bucket[/prefix])" if value.startswith("s3") else "a folder"
            raise ValueError(f"store_url {value!r} names no location: it needs {where}")
        return value

    @model_validator(mode="after")
    def _tuning_needs_validation_split(self) -> PipelineConfig:
        if self.tuning is not None and self.data.split.validation_fraction <= 0:
            raise ValueError(
                "tuning selects trials on the validation split: set data.split.validation_fraction > 0"
            )
        return self

    @model_validator(mode="after")
    def _multi_worker_needs_tensorflow(self) -> PipelineConfig:
        if isinstance(self.launcher, KubernetesJobLauncherConfig) and self.training.backend == "jax":
            raise ValueError(
                "launcher kind kubernetes_job trains with tf.distribute: training.backend must be"
                " tensorflow or auto, not jax"
            )
        return self

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

        relevant = self.model_dump(
            mode="json",
            include={"data", "training"},
            exclude={"training": {"compilation_cache"}},  # where programs are cached changes no model
        )
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
