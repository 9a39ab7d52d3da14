"""Evaluation: metrics, champion-vs-candidate comparison, the gate, explanations and the report.

Modules, one job each: ``metrics`` (numpy scores), ``statistics`` (paired tests), ``scoring``
(running a Keras model), ``comparison`` (candidate vs champion), ``gate`` (the pure decision),
``explain`` (integrated gradients), ``figures`` and ``report`` (the HTML report).
Nothing is imported here, so ``slipway.evaluation.gate`` stays importable without TensorFlow or
matplotlib (the Airflow worker runs the gate).
"""
