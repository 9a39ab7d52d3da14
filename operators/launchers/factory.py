"""Where each launcher kind plugs in; the only place that switches on ``launcher.kind``.

Decision: the *DAG factory* chooses the operator per kind (``step_operator``, and
``mapped_step_operator`` for a step that runs once per mapped value, like a sweep's trials).
``local`` runs the step as a subprocess under ``SlipwayStepOperator`` (through a
``StepLauncher``); ``kubernetes`` and ``kubernetes_job`` are the cncf.kubernetes provider's own
``KubernetesPodOperator`` and ``KubernetesJobOperator``, subclassed only to build the pod from the
config and to read the step's result from the store. Reusing the provider's operators (rather
than calling its hooks from a launcher) keeps what their users expect: deferral to the provider's
triggers (no worker slot held while a pod trains), pod logs in the task log, re-attaching to the
running pod on a retry, ``on_kill`` deleting the pod, finished pods removed, and dynamic task
mapping with ``.partial(...).expand(...)``.

Every operator takes the config's *path* (plain, serializable constructor arguments) and loads
it itself, so a mapped task's partial arguments survive Airflow's DAG serialization.
"""

from __future__ import annotations

from typing import Any

from operators.launchers.base import StepLauncher
from slipway.config import LocalLauncherConfig, PipelineConfig


def launcher_for(config: LocalLauncherConfig) -> StepLauncher:
    """The in-process launcher of a ``local`` config (Kubernetes kinds have operators instead)."""
    if not isinstance(config, LocalLauncherConfig):
        raise ValueError(f"launcher kind {config.kind!r} runs through step_operator, not a StepLauncher")
    from operators.launchers.local import LocalSubprocessLauncher

    return LocalSubprocessLauncher(config)


def operator_class(step: str, config: PipelineConfig, *, mapped: bool = False) -> Any:
    """The operator class that runs ``step`` the way ``config.launcher`` says.

    ``kubernetes_job`` distributes only an unmapped ``train`` over an Indexed Job; every other
    step, and every instance of a mapped one (a sweep's trial), is a single pod.
    """
    kind = config.launcher.kind
    if kind == "local":
        from operators.step import SlipwayStepOperator

        return SlipwayStepOperator
    if kind == "kubernetes_job" and step == "train" and not mapped:
        from operators.launchers.kubernetes_job import SlipwayJobOperator

        return SlipwayJobOperator
    if kind in ("kubernetes", "kubernetes_job"):
        from operators.launchers.kubernetes_pod import SlipwayPodOperator

        return SlipwayPodOperator
    raise ValueError(f"launcher kind {kind!r} has no operator")


def _config_path(step: str, config: PipelineConfig) -> str:
    if not config.source_path:
        raise ValueError(f"step {step}: the pipeline config was not loaded from a file (load_config)")
    return config.source_path


def step_operator(*, step: str, config: PipelineConfig, **kwargs: Any) -> Any:
    """The Airflow task that runs ``python -m slipway <step>`` the way ``config.launcher`` says."""
    return operator_class(step, config)(step=step, config_path=_config_path(step, config), **kwargs)


def mapped_step_operator(*, step: str, config: PipelineConfig, step_args: Any, **kwargs: Any) -> Any:
    """One task instance per value of ``step_args`` (a list, or an upstream task's output listing
    each instance's options, e.g. ``[["--trial", "0"], ["--trial", "1"]]``): a local process or a
    pod each, as ``config.launcher`` says. ``kwargs`` are the partial arguments every instance
    shares (``task_id``, ``max_active_tis_per_dagrun``, ``map_index_template``...).
    """
    operator = operator_class(step, config, mapped=True)
    return operator.partial(step=step, config_path=_config_path(step, config), **kwargs).expand(
        step_args=step_args
    )
