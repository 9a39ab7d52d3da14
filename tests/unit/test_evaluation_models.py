"""Real (tiny) Keras models on scikit-learn digits through scoring, statistics and the gate.

Issue 4's acceptance cases: a clearly worse candidate is rejected against a good champion with a
significant p-value; the same model scored twice is never rejected; a retrain with another seed
is not rejected for noise; the first model is blessed on absolute checks; a forced deployment
needs a reason and is recorded. Run with ``-s`` to see the p-values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from slipway.config import GateConfig, parse_config
from slipway.evaluation.comparison import Comparison, compare, score_variant
from slipway.evaluation.explain import integrated_gradients, pick_examples
from slipway.evaluation.gate import GateOverrideError, decide
from slipway.registry import ModelRegistry
from tests.results_fixtures import ingest_result

pytestmark = pytest.mark.slow

POLICY = GateConfig(min_accuracy=0.5, max_accuracy_drop=0.005, significance_level=0.05)


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32).reshape(-1, 8, 8)
    y = data.target.astype(np.int64)
    return tuple(train_test_split(x, y, test_size=0.25, random_state=0, stratify=y))  # type: ignore[return-value]


def _train(folder: Path, x: np.ndarray, y: np.ndarray, *, epochs: int, seed: int) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    folder.mkdir(parents=True)
    model.save(folder / "model.keras")
    return folder


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return _digits()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, digits: Any) -> dict[str, Path]:
    x_train, _, y_train, _ = digits
    root = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    shuffled = y_train.copy()
    picked = rng.random(len(shuffled)) < 0.6
    shuffled[picked] = rng.integers(0, 10, picked.sum())  # 60% of labels replaced by noise
    return {
        "good": _train(root / "good", x_train, y_train, epochs=10, seed=1),
        "good_reseeded": _train(root / "good_reseeded", x_train, y_train, epochs=10, seed=2),
        "short": _train(root / "short", x_train, y_train, epochs=1, seed=1),
        "shuffled": _train(root / "shuffled", x_train, shuffled, epochs=10, seed=1),
    }


def _evaluate(digits: Any, candidate: Path, champion: Path | None) -> tuple[Comparison, dict[str, Any]]:
    """Score like the evaluate step and build the fields of result.json the gate reads."""
    _, x_test, _, y_test = digits
    cand = score_variant("candidate", candidate, x_test, y_test, num_classes=10)
    champ = (
        score_variant("champion", champion, x_test, y_test, num_classes=10, version=1) if champion else None
    )
    comparison = compare(cand, champ, bootstrap_samples=1000, seed=0)
    result = {
        "candidate": cand.summary(None),
        "champion": champ.summary(None) if champ else None,
        "comparison": comparison.summary(),
    }
    return comparison, result


def _report(case: str, comparison: Comparison, blessed: bool) -> None:
    cand = comparison.candidate.metrics.accuracy
    if comparison.champion is None:
        print(f"\n[gate] {case}: candidate {cand:.4f}, no champion -> blessed={blessed}")
        return
    m, ci = comparison.mcnemar, comparison.bootstrap
    assert m is not None and ci is not None
    print(
        f"\n[gate] {case}: candidate {cand:.4f} vs champion {comparison.champion.metrics.accuracy:.4f},"
        f" discordant {m.candidate_only}/{m.champion_only}, McNemar p={m.p_value:.3g},"
        f" 95% CI [{ci.low:+.4f}, {ci.high:+.4f}] -> blessed={blessed}"
    )


@pytest.mark.parametrize("worse", ["short", "shuffled"])
def test_clearly_worse_candidate_is_rejected(digits: Any, models: dict[str, Path], worse: str) -> None:
    comparison, result = _evaluate(digits, models[worse], models["good"])
    blessing = decide(POLICY, result)
    _report(f"{worse} vs good", comparison, blessing.blessed)
    assert not blessing.blessed
    check = blessing.check("non_regression")
    assert check.verdict == "fail", check.detail
    assert result["comparison"]["mcnemar_p_value"] < 0.001
    assert result["comparison"]["bootstrap_ci"]["high"] < 0


def test_same_model_scored_twice_is_blessed(digits: Any, models: dict[str, Path]) -> None:
    comparison, result = _evaluate(digits, models["good"], models["good"])
    blessing = decide(POLICY, result)
    _report("good vs itself", comparison, blessing.blessed)
    assert blessing.blessed and blessing.check("non_regression").verdict == "pass"
    assert result["comparison"]["mcnemar_p_value"] == 1.0
    assert result["comparison"]["accuracy_delta"] == 0.0 and result["comparison"]["discordant"] == 0
    ci = result["comparison"]["bootstrap_ci"]
    assert ci["low"] <= 0.0 <= ci["high"]


def test_retrain_with_another_seed_is_not_rejected_for_noise(digits: Any, models: dict[str, Path]) -> None:
    comparison, result = _evaluate(digits, models["good_reseeded"], models["good"])
    blessing = decide(POLICY, result)
    _report("good (seed 2) vs good (seed 1)", comparison, blessing.blessed)
    assert blessing.blessed, blessing.reasons
    assert result["comparison"]["mcnemar_p_value"] >= POLICY.significance_level


def test_first_model_is_judged_on_absolute_checks(digits: Any, models: dict[str, Path]) -> None:
    comparison, result = _evaluate(digits, models["good"], None)
    blessing = decide(GateConfig(min_accuracy=0.9, min_class_recall=0.8), result)
    _report("first model", comparison, blessing.blessed)
    assert blessing.blessed, blessing.reasons
    assert blessing.check("non_regression").verdict == "skipped"
    assert blessing.check("accuracy_floor").verdict == "pass"
    assert blessing.check("class_recall_floor").verdict == "pass"
    short, short_result = _evaluate(digits, models["short"], None)
    strict = decide(GateConfig(min_accuracy=0.95), short_result)
    _report("first model, short training, floor 0.95", short, strict.blessed)
    assert not strict.blessed and strict.check("accuracy_floor").verdict == "fail"


def test_forced_deployment_requires_reason_and_is_recorded(digits: Any, models: dict[str, Path]) -> None:
    _, result = _evaluate(digits, models["short"], models["good"])
    with pytest.raises(GateOverrideError, match="requires a written reason"):
        decide(POLICY, result, force_reason=" ", forced_by="ann")
    blessing = decide(POLICY, result, force_reason="rollback of a broken feature", forced_by="ann")
    assert blessing.blessed and blessing.forced and not blessing.policy_passed
    assert blessing.to_dict()["forced_by"] == "ann" and blessing.result == "forced"
    assert blessing.check("non_regression").verdict == "fail"


def test_latency_and_size_are_measured(digits: Any, models: dict[str, Path]) -> None:
    _, result = _evaluate(digits, models["good"], None)
    latency, size = result["candidate"]["latency"], result["candidate"]["size"]
    assert latency["batch_size"] == 32 and latency["ms_per_example"] > 0
    assert latency["ms_per_example"] == pytest.approx(latency["ms_per_batch"] / 32)
    assert size["model_file_bytes"] == (models["good"] / "model.keras").stat().st_size
    assert size["artifact_bytes"] >= size["model_file_bytes"]
    tight = decide(GateConfig(min_accuracy=0.5, max_model_size_mb=0.001), result)
    assert tight.check("size_ceiling").verdict == "fail"


def test_integrated_gradients_complete_and_point_at_ink(digits: Any, models: dict[str, Path]) -> None:
    from slipway.evaluation.scoring import load_keras_model

    _, x_test, _, y_test = digits
    model = load_keras_model(models["good"])
    idx = pick_examples(y_test, np.argmax(model.predict_on_batch(x_test), axis=1), 4)
    attributions = integrated_gradients(model, x_test[idx], steps=48)
    assert attributions.maps.shape == (4, 8, 8)
    assert np.all(attributions.convergence_delta < 0.05)  # attributions sum to F(x) - F(black)
    # black baseline: a pixel with no ink gets no attribution at all
    assert np.all(attributions.maps[x_test[idx] == 0] == 0)


# --------------------------------------------------------------------------- the step


@pytest.mark.parametrize("with_champion", [True, False])
def test_evaluate_step_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits: Any, models: dict[str, Path], with_champion: bool
) -> None:
    from slipway.data.dataset import Split
    from slipway.evaluation.report import add_blessing_to_report
    from slipway.metrics import MetricsBatch
    from slipway.steps import evaluate
    from slipway.steps.context import RunContext

    _, x_test, _, y_test = digits
    config = parse_config(
        {
            "name": "digits",
            "model_name": "digits",
            "store_url": f"file://{tmp_path / 'store'}",
            "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
            "gate": {"min_accuracy": 0.5},
        }
    )
    ctx = RunContext.create(config, "manual__2026-01-01T00:00:00+00:00")
    ctx.write_result("ingest", ingest_result("snapshots/digits-test"))
    ctx.store.upload_dir(models["short"], ctx.key("train", "model"))
    champion_version = None
    if with_champion:  # the real registry, with an earlier run's model as champion
        registry = ModelRegistry(ctx.store, "digits")
        ctx.store.upload_dir(models["good"], "staging/earlier-run/model")
        champion_version = registry.register("staging/earlier-run/model", {}, run_id="earlier-run").number
        registry.set_alias("champion", champion_version, actor="test", run_id="earlier-run", reason="first")
    monkeypatch.setattr(evaluate, "_test_split", lambda _ctx, key: Split(x_test, y_test))

    batch = MetricsBatch(pipeline="digits", step="evaluate")
    result = evaluate.run(ctx, batch).dump()

    assert ctx.evaluate_result().dump() == result
    assert result["test_rows"] == len(y_test) and result["snapshot_key"] == "snapshots/digits-test"
    assert len(result["candidate"]["per_class"]) == 10 and result["candidate"]["model_key"].endswith(
        "train/model"
    )
    html = ctx.store.get_bytes(result["report_key"]).decode()
    assert "Integrated gradients" in html or "integrated gradients" in html
    assert result["report_uri"].startswith("file://")
    with np.load(ctx.store.download_file(result["predictions_key"], tmp_path / "p.npz")) as npz:
        assert npz["candidate_correct"].shape == (len(y_test),)
        assert ("champion_correct" in npz.files) is with_champion
    variants = {s.labels["variant"] for s in batch.samples if s.name == "slipway_model_accuracy"}
    assert variants == ({"candidate", "champion"} if with_champion else {"candidate"})
    assert len(ctx.store.get_bytes(ctx.result_key("evaluate"))) < 20_000  # small: no per-example vectors

    blessing = decide(config.gate, result)
    if with_champion:
        assert result["champion"]["version"] == champion_version and "McNemar" in html
        assert not blessing.blessed and blessing.champion_version == champion_version
        print(f"\n[step] short vs good champion: p={result['comparison']['mcnemar_p_value']:.3g}")
    else:
        assert result["champion"] is None and result["comparison"] is None and "No champion" in html
        assert blessing.blessed
    final = add_blessing_to_report(html, blessing)
    assert ("REJECTED" if with_champion else "BLESSED") in final
    print(f"[step] evaluate wall time {result['wall_seconds']:.2f}s (champion: {with_champion})")


def test_evaluate_step_with_the_real_registry_and_snapshot(
    tmp_path: Path, digits: Any, models: dict[str, Path]
) -> None:
    """The same flow on the real store, snapshot and registry modules (no fakes)."""
    from slipway.data import Snapshot, Split, save_snapshot
    from slipway.metrics import MetricsBatch
    from slipway.steps import evaluate
    from slipway.steps.context import RunContext

    x_train, x_test, y_train, y_test = digits
    config = parse_config(
        {
            "name": "digits",
            "model_name": "digits",
            "store_url": f"file://{tmp_path / 'store'}",
            "data": {"source": {"kind": "digits"}, "input_shape": [8, 8], "num_classes": 10},
        }
    )
    ctx = RunContext.create(config, "scheduled__2026-01-02")
    snapshot = Snapshot(
        Split(x_train[100:], y_train[100:]), Split(x_train[:100], y_train[:100]), Split(x_test, y_test)
    )
    ctx.write_result("ingest", ingest_result(save_snapshot(ctx.store, snapshot, "digits")))
    ctx.store.upload_dir(models["good"], "staging/first-run/model")
    registry = ModelRegistry(ctx.store, "digits")
    version = registry.register("staging/first-run/model", {}, run_id="first-run").number
    registry.set_alias("champion", version, actor="test", run_id="first-run", reason="first model")
    ctx.store.upload_dir(models["good_reseeded"], ctx.key("train", "model"))

    result = evaluate.run(ctx, MetricsBatch(pipeline="digits", step="evaluate")).dump()

    assert result["champion"]["version"] == version
    assert result["champion"]["model_key"] == registry.model_prefix(version)
    assert result["test_rows"] == len(y_test)
    blessing = decide(config.gate, result)
    print(f"\n[step, real registry] reseeded vs champion: p={result['comparison']['mcnemar_p_value']:.3g}")
    assert blessing.blessed, blessing.reasons
