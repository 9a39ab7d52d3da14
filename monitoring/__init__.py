"""Monitoring as code: dashboards (``dashboards``) and the generator of the shipped files (``generate``).

The rules (``rules/``), the statsd_exporter mapping (``statsd/``), the Prometheus configs
(``prometheus/``) and the Kubernetes wiring (``k8s/`` + ``kustomization.yaml``) are plain files
beside this package; ``python -m monitoring.generate`` rewrites the generated ones.
"""
