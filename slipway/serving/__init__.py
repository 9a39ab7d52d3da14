"""Model serving: a TF-Serving-compatible REST server with micro-batching, and the local router.

``artifact`` (fetch + checksum verification), ``model`` (safe-mode load, compiled forward pass),
``protocol`` (TF Serving's predict request/answer, input checks), ``batcher`` (micro-batching,
bounded queue), ``app`` (the ASGI server), ``server`` (``python -m slipway serve``), ``router``
(``python -m slipway route``). Nothing here imports Airflow.
"""
