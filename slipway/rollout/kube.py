"""The Kubernetes API client the rollout's Gateway router and Deployment target share.

Inside the cluster (the rollout task's pod) the service account's in-cluster config; elsewhere
(a laptop, CI against kind) the current kubeconfig context - as ``kubectl`` does.
"""

from __future__ import annotations

from typing import Any


def kube_api(api_class: str) -> Any:
    """An instance of ``kubernetes.client.<api_class>`` (e.g. ``AppsV1Api``), configured."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return getattr(client, api_class)()
