"""Pure builders of what a step pod looks like, from the ``launcher`` config (no API calls).

Shared by the pod and the Job backends so both produce the same container: the step image,
``python -m slipway <step> --config-json ...``, the configured resources (``nvidia.com/gpu`` only
for the steps that train: ``train`` and a sweep's ``tune-trial``), tolerations and node selector, and a security context that passes Pod Security
"restricted": non-root, no privilege escalation, every capability dropped, seccomp
RuntimeDefault, read-only root filesystem (an ``emptyDir`` at ``/tmp`` is the only writable
place; ``HOME`` and Keras' cache point there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kubernetes.client import models as k8s

from slipway.config import KubernetesLauncherBase as KubernetesLauncherConfig
from slipway.config import PipelineConfig

STEP_UID = 10001  # the step images' user (docker/step.Dockerfile)
SCRATCH = "/tmp"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_STEPS = frozenset({"train", "tune-trial"})  # the steps that train; validate and evaluate never hold one

# Only the chief writes to the store; every container gets the same writable scratch.
_SCRATCH_ENV = {
    "HOME": SCRATCH,
    "KERAS_HOME": f"{SCRATCH}/.keras",
    "MPLCONFIGDIR": f"{SCRATCH}/matplotlib",
    # JAX's compilation cache (the pod's own; mount a volume there to share it between pods).
    "SLIPWAY_COMPILATION_CACHE": f"{SCRATCH}/xla-cache",
}


def pod_base_name(config: PipelineConfig, step: str, options: Mapping[str, str] | None = None) -> str:
    """DNS-1123 name stem: ``slipway-<pipeline>-<step>``, plus the option values of a step that
    runs many times in a run (``slipway-digits-tune-trial-3``); the provider adds a random suffix."""
    stem = "-".join([f"slipway-{config.name}-{step}", *(options or {}).values()])
    return re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")[:50]


def labels(config: PipelineConfig, step: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "slipway",
        "app.kubernetes.io/component": f"step-{step}",
        "app.kubernetes.io/part-of": "slipway",
        "slipway.dev/pipeline": config.name,
    }


def resources(launcher: KubernetesLauncherConfig, step: str) -> k8s.V1ResourceRequirements:
    requests = {"cpu": launcher.resources.cpu_request, "memory": launcher.resources.memory_request}
    limits: dict[str, str] = {}
    if launcher.resources.cpu_limit:
        limits["cpu"] = launcher.resources.cpu_limit
    if launcher.resources.memory_limit:
        limits["memory"] = launcher.resources.memory_limit
    if launcher.gpus and step in GPU_STEPS:
        limits[GPU_RESOURCE] = str(launcher.gpus)  # extended resources: the limit is the request
    return k8s.V1ResourceRequirements(requests=requests, limits=limits or None)


def tolerations(launcher: KubernetesLauncherConfig) -> list[k8s.V1Toleration]:
    return [
        k8s.V1Toleration(key=t.key, operator=t.operator, value=t.value, effect=t.effect)
        for t in launcher.tolerations
    ]


def env(launcher: KubernetesLauncherConfig, extra: dict[str, str] | None = None) -> list[k8s.V1EnvVar]:
    values = {
        **_SCRATCH_ENV,
        "PYTHONUNBUFFERED": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **launcher.env,
        **(extra or {}),
    }
    return [k8s.V1EnvVar(name=name, value=value) for name, value in sorted(values.items())]


def env_from(launcher: KubernetesLauncherConfig) -> list[k8s.V1EnvFromSource]:
    return [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=s)) for s in launcher.env_from_secrets]


def pod_security_context() -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=STEP_UID,
        run_as_group=STEP_UID,
        fs_group=STEP_UID,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def scratch_volume() -> tuple[k8s.V1Volume, k8s.V1VolumeMount]:
    return (
        k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="8Gi")),
        k8s.V1VolumeMount(name="scratch", mount_path=SCRATCH),
    )


def image_pull_secrets(launcher: KubernetesLauncherConfig) -> list[k8s.V1LocalObjectReference]:
    return [k8s.V1LocalObjectReference(name=name) for name in launcher.image_pull_secrets]


def step_pod_kwargs(
    config: PipelineConfig,
    launcher: KubernetesLauncherConfig,
    step: str,
    options: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The pod settings shared by the one-pod and the Indexed Job operators (provider kwargs).

    Everything a step's pod needs from the ``launcher`` config: image, command, labels, resources,
    scheduling, the restricted security context, the scratch volume and the cluster connection.
    ``arguments`` stay empty here: the resolved config is only known when the task runs.
    """
    volume, mount = scratch_volume()
    return {
        "namespace": launcher.namespace,
        "image": launcher.image,
        "image_pull_policy": launcher.image_pull_policy,
        "image_pull_secrets": image_pull_secrets(launcher),
        "name": pod_base_name(config, step, options),
        "cmds": ["python", "-m", "slipway"],
        "arguments": [],
        "labels": labels(config, step),
        "env_from": env_from(launcher),
        "container_resources": resources(launcher, step),
        "node_selector": dict(launcher.node_selector),
        "tolerations": tolerations(launcher),
        "service_account_name": launcher.service_account,
        "automount_service_account_token": False,  # steps talk to the store, never to the API
        "priority_class_name": launcher.priority_class,
        "security_context": pod_security_context(),
        "container_security_context": container_security_context(),
        "volumes": [volume],
        "volume_mounts": [mount],
        "kubernetes_conn_id": launcher.kubernetes_conn_id,
        "config_file": launcher.config_file,
        "in_cluster": launcher.kubernetes_conn_id is None and launcher.config_file is None,
        "deferrable": True,  # no worker slot is held while the pod runs
        "get_logs": True,
        "on_finish_action": "delete_pod",
        "do_xcom_push": False,  # the result comes from the store, not a sidecar
        "log_pod_spec_on_failure": False,  # the spec carries the whole config: noise in the message
    }
