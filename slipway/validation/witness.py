"""The champion as a witness: the production model scores the new partition inside validation.

Why: a feed whose labels are systematically wrong, or whose inputs no longer look like what the
model learned, can keep every data statistic plausible. The champion knows what the data used to
mean. Scored on the partition (it carries labels), it should predict classes in about the same
shares, with about the same confidence, and be about as accurate as when it was registered. A
collapse means the inputs or the labels are broken, and the data is rejected before training,
with the figures named.

Three statistics, checked as Great Expectations expectations with the drift statistics
(``witness.*``), each with a noise floor at the partition's size like the drift checks:

* ``accuracy_drop`` - accuracy recorded at registration minus accuracy on the partition
  (noise: binomial, ``sqrt(p (1 - p) (1/n + 1/n_ref))``);
* ``prediction_tv`` - total variation between the predicted-class distributions on the partition
  and on the champion's reference data (its test split at evaluation);
* ``confidence_ks`` - one-sided KS distance of the top-class confidence distributions (the ECDF
  at the reference's 101 quantiles, as ``drift._ks``): only a *less* confident champion counts.

The reference figures (``output_profile``) are computed by the evaluate step for every candidate
and stored with the version at registration; a champion registered without them is profiled here
on the test split of the snapshot it was registered with. TensorFlow is imported only here, in
the validate step's process, never on the Airflow worker.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from slipway.config import PipelineConfig, ValidationConfig
from slipway.data.profile import distribution
from slipway.store.base import ArtifactNotFound, ArtifactStore
from slipway.validation.drift import _HALF_NORMAL_MEAN, _KS_MEAN, _KS_SD, DriftStatistic

log = logging.getLogger(__name__)

GROUP = "witness"


def output_profile(probabilities: np.ndarray, y: np.ndarray | None) -> dict[str, Any]:
    """A model's outputs on some data, summarised: predicted-class shares, top-class confidence
    and entropy distributions, accuracy when labels are given. Small and JSON-able."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    n, k = probabilities.shape
    predicted = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    clipped = np.clip(probabilities, 1e-12, 1.0)
    entropy = -(clipped * np.log(clipped)).sum(axis=1)
    shares = np.bincount(predicted, minlength=k) / max(n, 1)
    out: dict[str, Any] = {
        "rows": int(n),
        "predicted": {str(c): round(float(s), 8) for c, s in enumerate(shares)},
        "confidence": distribution(confidence),
        "entropy": distribution(entropy),
    }
    if y is not None:
        out["accuracy"] = float((predicted == np.asarray(y)).mean()) if n else None
    return out


def _tv(
    current: dict[str, float], reference: dict[str, float], se: float, sigmas: float
) -> tuple[float, float, str]:
    classes = sorted(set(current) | set(reference), key=int)
    diffs = {c: current.get(c, 0.0) - reference.get(c, 0.0) for c in classes}
    tv = 0.5 * sum(abs(d) for d in diffs.values())
    spread = [math.sqrt(p * (1 - p)) * se for p in reference.values()]
    noise = 0.5 * _HALF_NORMAL_MEAN * sum(spread) + sigmas * 0.5 * math.sqrt(
        (1 - 2 / math.pi) * sum(s * s for s in spread)
    )
    top = max(classes, key=lambda c: abs(diffs[c]))
    return tv, noise, f"class {top} predicted {reference.get(top, 0.0):.1%} -> {current.get(top, 0.0):.1%}"


def witness_statistics(
    current: dict[str, Any],
    reference: dict[str, Any],
    registered_accuracy: float | None,
    version: int,
    cfg: ValidationConfig,
) -> list[DriftStatistic]:
    """The witness's statistics: the champion's outputs on the partition vs on its reference."""
    n, n_ref = current["rows"], reference.get("rows") or 0
    if not n or not n_ref:
        return []
    se = math.sqrt(1 / n + 1 / n_ref)
    sigmas = cfg.drift_noise_sigmas
    who = f"champion v{version}"
    out = []
    accuracy = current.get("accuracy")
    if registered_accuracy is not None and accuracy is not None:
        p = min(max(registered_accuracy, 1e-6), 1 - 1e-6)
        drop = registered_accuracy - accuracy
        verdict = (
            "labels or inputs do not match what the model learned"
            if drop > cfg.max_witness_accuracy_drop
            else "as expected"
        )
        out.append(
            DriftStatistic(
                "accuracy_drop",
                drop,
                cfg.max_witness_accuracy_drop,
                sigmas * math.sqrt(p * (1 - p)) * se,
                f"{who} accuracy on this partition vs at registration (drop)",
                f"{who} accuracy on this partition {accuracy:.4f} vs {registered_accuracy:.4f} at"
                f" registration: {verdict}",
                group=GROUP,
            )
        )
    tv, noise, detail = _tv(current["predicted"], reference["predicted"], se, sigmas)
    out.append(
        DriftStatistic(
            "prediction_tv",
            tv,
            cfg.max_witness_prediction_tv,
            noise,
            f"{who} predicted-class distribution vs on its reference data (total variation)",
            f"{who}: {detail}",
            group=GROUP,
        )
    )
    if current["confidence"].get("count") and reference.get("confidence", {}).get("quantiles"):
        values = np.asarray(current["_confidence_values"], dtype=np.float64)
        out.append(_confidence_ks(values, reference["confidence"], se, cfg, who))
    return out


def _confidence_ks(
    values: np.ndarray, reference: dict[str, Any], se: float, cfg: ValidationConfig, who: str
) -> DriftStatistic:
    """One-sided KS distance: how much more of the partition sits below each reference quantile
    of top-class confidence. Only *less* confidence counts: a champion shown data it was trained
    on is more confident, which says nothing against the data."""
    quantiles = np.asarray(reference["quantiles"], dtype=np.float64)
    levels = np.linspace(0, 1, len(quantiles))
    ecdf = np.searchsorted(np.sort(values), quantiles, side="right") / len(values)
    gaps = ecdf - levels
    worst = int(np.argmax(gaps))
    noise = (_KS_MEAN + cfg.drift_noise_sigmas * _KS_SD) * se + 1 / (len(quantiles) - 1)
    detail = (
        f"{who}: {ecdf[worst]:.1%} of examples predicted with confidence <= {quantiles[worst]:.3f}"
        f" vs {levels[worst]:.1%} on its reference data"
    )
    return DriftStatistic(
        "confidence_ks",
        max(float(gaps[worst]), 0.0),
        cfg.max_witness_confidence_ks,
        noise,
        f"{who} top-class confidence lower than on its reference data (one-sided KS)",
        detail,
        group=GROUP,
    )


def _load_champion(store: ArtifactStore, model_name: str) -> tuple[int, Any, dict[str, Any]] | None:
    from slipway.registry import ModelRegistry

    registry = ModelRegistry(store, model_name)
    version = registry.get_alias("champion")
    if version is None:
        return None
    return version, registry.model_prefix(version), registry.get_version(version).metadata


def champion_witness(
    store: ArtifactStore, config: PipelineConfig, x: np.ndarray, y: np.ndarray
) -> tuple[list[DriftStatistic], dict[str, Any]]:
    """Score ``(x, y)`` with the pipeline's champion; its statistics and a summary for result.json.

    No champion, a champion that expects another input shape (the schema checks report that) or
    no reference figures: no statistics, and the summary's ``status`` says why.
    """
    cfg = config.validation
    if not cfg.champion_witness:
        return [], {"status": "disabled (validation.champion_witness: false)"}
    found = _load_champion(store, config.model_name)
    if found is None:
        return [], {"status": "no champion yet"}
    version, prefix, metadata = found
    from slipway.evaluation.scoring import MODEL_FILE, load_keras_model, predict_probabilities

    with tempfile.TemporaryDirectory(prefix="slipway-witness-") as tmp:
        store.download_file(f"{prefix}/{MODEL_FILE}", Path(tmp) / MODEL_FILE)
        model = load_keras_model(tmp)
    expected = tuple(model.input_shape)[1:]
    if len(expected) != len(x.shape[1:]) or any(
        e is not None and e != d for e, d in zip(expected, x.shape[1:], strict=False)
    ):
        return [], {
            "status": f"not scored: champion v{version} expects inputs {expected}",
            "version": version,
        }
    reference = metadata.get("output_profile")
    source = "registration"
    if reference is None:
        reference, source = (
            _profile_on_registered_test(store, metadata, model),
            "registered snapshot's test split",
        )
    if reference is None:
        return [], {
            "status": f"not compared: champion v{version} has no reference outputs",
            "version": version,
        }
    registered = metadata.get("test_accuracy", reference.get("accuracy"))
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    probabilities = predict_probabilities(model, np.asarray(x[finite], dtype=np.float32))
    current = output_profile(probabilities, np.asarray(y)[finite])
    current["_confidence_values"] = probabilities.max(axis=1)
    stats = witness_statistics(current, reference, registered, version, cfg)
    current.pop("_confidence_values")
    summary = {
        "status": "compared",
        "version": version,
        "reference_source": source,
        "registered_accuracy": registered,
        "accuracy": current.get("accuracy"),
        "rows": current["rows"],
        "predicted": current["predicted"],
        "reference_predicted": reference.get("predicted"),
        "confidence_mean": current["confidence"].get("mean"),
        "reference_confidence_mean": reference.get("confidence", {}).get("mean"),
    }
    log.info(
        "champion v%s witness: accuracy %.4f on this partition vs %s at registration",
        version,
        current.get("accuracy") or float("nan"),
        registered,
    )
    return stats, summary


def _profile_on_registered_test(
    store: ArtifactStore, metadata: dict[str, Any], model: Any
) -> dict[str, Any] | None:
    from slipway.data.snapshot import load_snapshot
    from slipway.evaluation.scoring import predict_probabilities

    key = metadata.get("snapshot_key")
    if not key:
        return None
    try:
        test = load_snapshot(store, key).test
    except ArtifactNotFound:
        return None
    if not len(test):
        return None
    return output_profile(predict_probabilities(model, test.x), test.y)
