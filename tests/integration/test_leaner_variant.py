"""The int8 leaner variant against its float model on the same digits test examples.

A real model is trained, exported in the serving layout, made leaner, and both are scored the
way the optimize step scores them: accuracy, McNemar's test, size of the serving artifact; and
the variant's SavedModel is loaded the way TF Serving loads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from slipway.config import TrainingConfig

pytestmark = pytest.mark.slow


def test_int8_variant_is_smaller_and_as_accurate(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf

    from slipway.evaluation.comparison import compare, score_variant
    from slipway.optimization.leaner import make_leaner, serving_size
    from slipway.training.models import build_model
    from slipway.training.trainer import export_model

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    train, test = order[:1300], order[1300:]
    keras.utils.set_random_seed(0)
    training = TrainingConfig.model_validate(
        {"layers": [{"type": "flatten"}, {"type": "dense", "units": 1024, "activation": "relu"}]}
    )
    model = build_model(training, (8, 8), 10)
    model.fit(x[train], y[train], epochs=4, batch_size=64, verbose=0)
    float_dir = export_model(model, tmp_path / "float", {"model_name": "digits"})

    leaner_dir = make_leaner(float_dir, tmp_path / "leaner", "int8")

    reference = score_variant("float", float_dir, x[test], y[test], num_classes=10)
    variant = score_variant("leaner", leaner_dir, x[test], y[test], num_classes=10)
    comparison = compare(variant, reference).summary()
    assert reference.metrics.accuracy > 0.9
    assert abs(comparison["accuracy_delta"]) <= 0.01  # a handful of the 497 examples at most
    assert comparison["mcnemar_p_value"] > 0.05
    float_size = serving_size(float_dir, strip_optimizer=True)
    leaner_size = serving_size(leaner_dir)
    assert float_size.savedmodel_bytes / leaner_size.savedmodel_bytes >= 2.0
    assert float_size.weight_bytes / leaner_size.weight_bytes >= 3.0
    assert json.loads((leaner_dir / "metadata.json").read_text())["optimization"]["kind"] == "int8"

    # The serving path: TF Serving loads the SavedModel's serving_default signature.
    served = tf.saved_model.load(str(leaner_dir)).signatures["serving_default"]
    (outputs,) = served(tf.constant(x[test][:16])).values()
    np.testing.assert_allclose(outputs.numpy(), variant.scored.probabilities[:16], atol=1e-5)
