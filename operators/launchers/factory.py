"""Where each launcher kind plugs in; the only place that switches on ``launcher.kind``.

Decision: the *DAG factory* chooses the operator per kind (``step_operator``). ``local`` runs the
step as a subprocess under ``SlipwayStepOperator`` (through a ``StepLauncher``); ``kubernetes``
and ``kubernetes_job`` are the cncf.kubernetes provider's own ``KubernetesPodOperator`` and
``KubernetesJobOperator``, subclassed only to build the pod from the config and to read the
step's result from the store. Reusing the provider's operators (rather than calling its hooks
from a launcher) keeps what their users expect: deferral to the provider's triggers (no worker
slot held while a pod trains), pod logs in the task log, re-attaching to the running pod on a
retry, ``on_kill`` deleting the pod, and finished pods removed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from operators.launchers.base import StepLauncher
from slipway.config import LocalLauncherConfig, PipelineConfig


def launcher_for(config: LocalLauncherConfig) -> StepLauncher:
    """The in-process launcher of a ``local`` config (Kubernetes kinds have operators instead)."""
    if not isinstance(config, LocalLauncherConfig):
        raise ValueError(f"launcher kind {config.kind!r} runs through step_operator, not a StepLauncher")
    from operators.launchers.local import LocalSubprocessLauncher

    return LocalSubprocessLauncher(config)


def _local(step: str, config: PipelineConfig, **kwargs: Any) -> Any:
    from operators.step import SlipwayStepOperator

    return SlipwayStepOperator(step=step, config_path=config.source_path or "", **kwargs)


def _pod(step: str, config: PipelineConfig, **kwargs: Any) -> Any:
    from operators.launchers.kubernetes_pod import SlipwayPodOperator

    return SlipwayPodOperator(step=step, config=config, **kwargs)


def _job(step: str, config: PipelineConfig, **kwargs: Any) -> Any:
    if step != "train":  # only training is distributed; the other steps need one pod each
        return _pod(step, config, **kwargs)
    from operators.launchers.kubernetes_job import SlipwayJobOperator

    return SlipwayJobOperator(step=step, config=config, **kwargs)


_OPERATORS: dict[str, Callable[..., Any]] = {"local": _local, "kubernetes": _pod, "kubernetes_job": _job}


def step_operator(*, step: str, config: PipelineConfig, **kwargs: Any) -> Any:
    """The Airflow task that runs ``python -m slipway <step>`` the way ``config.launcher`` says."""
    return _OPERATORS[config.launcher.kind](step, config, **kwargs)
