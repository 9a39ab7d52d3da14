"""Make a leaner copy of a model folder: int8 dense kernels with per-channel scales.

Keras' own post-training quantisation (``model.quantize("int8", config)``) replaces each Dense
kernel by int8 values plus one float scale per output channel. Two kinds:

* ``int8`` - weight-only: the int8 kernel is scaled back inside the matmul, activations stay
  float. A quarter of the dense weights' bytes at the float model's speed on a CPU.
* ``int8_dynamic`` - activations are quantised on the fly too (abs-max per row), an int8 x int8
  matmul. On this project's CPUs (TensorFlow without int8 GEMM kernels for it) it measured
  slower than float, so it is offered, not the default.

The result is written in the same serving layout as the float model - a
TF-Serving-loadable SavedModel, ``model.keras`` and ``metadata.json`` - so the registry, the
server and TF Serving load it unchanged.

Sizes are compared without optimizer state: the float ``model.keras`` written by training also
holds Adam's moments, which serving never loads; counting them would flatter the variant.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slipway.evaluation.scoring import MODEL_FILE


@dataclass(frozen=True)
class ServingSize:
    """Bytes a server loads: the SavedModel (graph + variables) and the weights-only Keras file."""

    savedmodel_bytes: int
    model_file_bytes: int
    weight_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_leaner(float_dir: str | Path, out_dir: str | Path, kind: str = "int8") -> Path:
    """Write the ``kind`` variant of ``float_dir``'s model into ``out_dir`` (serving layout)."""
    import keras
    from keras.quantizers import AbsMaxQuantizer, Int8QuantizationConfig

    configs = {
        "int8": Int8QuantizationConfig(weight_quantizer=AbsMaxQuantizer(axis=0), activation_quantizer=None),
        "int8_dynamic": Int8QuantizationConfig(weight_quantizer=AbsMaxQuantizer(axis=0)),
    }
    if kind not in configs:
        raise ValueError(f"unknown leaner variant kind {kind!r} (known: {', '.join(configs)})")
    src, out = Path(float_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = keras.saving.load_model(src / MODEL_FILE, compile=False)
    with warnings.catch_warnings():  # layers without weights (Flatten, pooling) stay as they are
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method")
        model.quantize("int8", config=configs[kind])
    model.export(str(out), format="tf_saved_model", verbose=False)
    model.save(out / MODEL_FILE)
    metadata_path = src / "metadata.json"
    metadata = json.loads(metadata_path.read_text()) if metadata_path.is_file() else {}
    metadata["optimization"] = {
        "kind": kind,
        "method": "keras post-training quantize: int8 dense kernels + per-output-channel float scales",
        "activations": "quantised per call" if kind == "int8_dynamic" else "float",
    }
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")
    return out


def serving_size(model_dir: str | Path, *, strip_optimizer: bool = False) -> ServingSize:
    """Size of what serving loads; ``strip_optimizer`` re-saves model.keras without it to measure."""
    import tempfile

    import keras

    root = Path(model_dir)
    savedmodel = (root / "saved_model.pb").stat().st_size + sum(
        p.stat().st_size for p in (root / "variables").rglob("*") if p.is_file()
    )
    model = keras.saving.load_model(root / MODEL_FILE, compile=False)
    weight_bytes = sum(int(w.numpy().nbytes) for w in model.weights)
    if strip_optimizer:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / MODEL_FILE)
            model_file = (Path(tmp) / MODEL_FILE).stat().st_size
    else:
        model_file = (root / MODEL_FILE).stat().st_size
    return ServingSize(savedmodel_bytes=savedmodel, model_file_bytes=model_file, weight_bytes=weight_bytes)


def paired_latency(
    models: dict[str, Any], x: Any, *, batch_size: int = 32, warmup: int = 3, repeats: int = 30
) -> dict[str, Any]:
    """Median forward-pass time of each model on the same batch, the calls interleaved.

    Timing one model after the other on a shared machine compares two moments of load, not two
    models (a float-then-int8 run measured a 4x "slowdown" that interleaving showed to be noise).
    Alternating the calls gives both the same conditions, as a paired test does for accuracy.
    """
    import time

    import numpy as np

    from slipway.evaluation.scoring import LatencyStats

    batch = x[:batch_size]
    if len(batch) < batch_size:
        batch = np.resize(x, (batch_size, *x.shape[1:])).astype(x.dtype)
    for model in models.values():
        for _ in range(warmup):
            model.predict_on_batch(batch)
    timings: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            started = time.perf_counter()
            model.predict_on_batch(batch)
            timings[name].append(time.perf_counter() - started)
    out = {}
    for name, values in timings.items():
        ms = float(np.median(values) * 1000.0)
        out[name] = LatencyStats(batch_size, ms, ms / batch_size, repeats, warmup)
    return out
