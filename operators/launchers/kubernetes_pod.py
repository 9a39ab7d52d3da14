"""``launcher.kind: kubernetes``: every step in its own pod, through ``KubernetesPodOperator``.

The provider's operator does the Kubernetes work (create, defer to ``KubernetesPodTrigger`` so
no worker slot is held while the pod runs, stream the pod's logs into the task log, delete the
finished pod, re-attach to a still-running pod after a worker restart). This subclass only:

* builds the pod from the ``launcher`` config (``kubernetes_spec``), loaded from the config's
  *path*: every constructor argument is a plain value, so the operator can be mapped like the
  provider's own (``SlipwayPodOperator.partial(step="tune-trial", config_path=...)
  .expand(step_args=[["--trial", "0"], ...])``: one pod per trial);
* resolves the run's config when the task starts and passes it by value (``--config-json``),
  followed by the step's own options (``step_args``, e.g. ``--trial 3``);
* reads the step's ``result.json`` from the store when the pod has succeeded (a trial's from
  its own folder, ``layout.result_folder``) and makes it the task's XCom;
* says *why* a pod failed: image pull failure, unschedulable, OOMKilled, evicted, preempted, or
  the step's exit code - a step that rejected its input (``EXIT_BAD_INPUT``) fails without retry.
  A preempted or evicted training pod's retry starts a new pod that resumes from the last
  checkpoint in the store. A preempted pod is usually deleted before the task resumes, so its
  reason is read from the scheduler's ``Preempted`` event, which outlives the pod.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException

from operators.launchers import kubernetes_spec as spec
from operators.launchers.base import step_argv
from operators.links import links_for_step
from operators.step import push_partial_result, resolve_step_config, step_options, step_result_or_fail
from slipway.config import KubernetesLauncherBase, load_config
from slipway.errors import EXIT_BAD_INPUT

IMAGE_PULL_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})


# The reasons of a ``DisruptionTarget`` condition (Kubernetes >= 1.26): the pod was stopped from
# outside, so the step did not fail - a retry in a new pod resumes from the last checkpoint.
DISRUPTIONS = {
    "PreemptionByScheduler": "preempted by the scheduler to make room for a higher-priority pod",
    "PreemptionByKubeScheduler": "preempted by the scheduler to make room for a higher-priority pod",  # 1.26
    "TerminationByKubelet": "evicted by the node",
    "EvictionByEvictionAPI": "evicted through the Eviction API (node drain)",
    "DeletionByTaintManager": "deleted by the taint manager (node NoExecute taint)",
    "DeletionByPodGC": "deleted by the pod garbage collector (node gone)",
}


def pod_failure_reason(
    pod: k8s.V1Pod | None, events: Iterable[k8s.CoreV1Event] = ()
) -> tuple[str, int | None]:
    """(why the pod did not succeed, the step's exit code if it ran to an end), from its status.

    ``events`` are the pod's events, read when the pod itself is gone: a preempted pod is deleted
    by the scheduler, but its ``Preempted`` event stays.
    """
    status = pod.status if pod is not None else None
    if status is None:
        for event in events:
            if event.reason == "Preempted":
                return f"preempted by the scheduler ({event.message or 'no message'}); the pod is gone", None
        return "the pod is gone (deleted or never created)", None
    if (status.reason or "") == "Evicted":
        return f"evicted by the node: {status.message or 'no message'}", None
    for condition in status.conditions or []:
        if condition.type == "DisruptionTarget" and condition.status == "True":
            what = DISRUPTIONS.get(condition.reason or "", f"disrupted ({condition.reason})")
            return f"{what}: {condition.message or 'no message'}", None
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"unschedulable ({condition.reason}): {condition.message or 'no message'}", None
    for container in status.container_statuses or []:
        state = container.state
        waiting = state.waiting if state else None
        if waiting is not None and waiting.reason in IMAGE_PULL_FAILURES:
            return (
                f"image pull failed for {container.image} ({waiting.reason}): {waiting.message or ''}",
                None,
            )
        terminated = (state.terminated if state else None) or (
            container.last_state.terminated if container.last_state else None
        )
        if terminated is not None and terminated.reason == "OOMKilled":
            return "OOMKilled: the step used more memory than its limit (raise launcher.resources)", None
        if terminated is not None and terminated.exit_code:
            detail = f": {terminated.message.strip()}" if terminated.message else ""
            return f"the step exited with code {terminated.exit_code}{detail}", terminated.exit_code
    return f"pod phase {status.phase}: {status.message or status.reason or 'no reason given'}", None


class SlipwayPodOperator(KubernetesPodOperator):
    template_fields = (*KubernetesPodOperator.template_fields, "partition")
    ui_color = "#d5f5e3"

    def __init__(
        self,
        *,
        step: str,
        config_path: str,
        partition: str | None = None,
        step_args: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if not config_path:
            raise ValueError(f"step {step}: the pod operator needs the pipeline config's path")
        # The file's launcher settings shape the pod; the run's overrides apply when it runs.
        config = load_config(config_path)
        launcher = config.launcher
        if not isinstance(launcher, KubernetesLauncherBase):
            raise ValueError(f"launcher kind {launcher.kind!r} is not a Kubernetes launcher")
        step_args = [str(a) for a in step_args or []]
        kwargs.setdefault("retries", 2)
        super().__init__(
            **spec.step_pod_kwargs(config, launcher, step, step_options(step_args)),
            env_vars=spec.env(launcher),
            poll_interval=launcher.poll_interval_seconds,
            startup_timeout_seconds=launcher.startup_timeout_seconds,
            schedule_timeout_seconds=launcher.schedule_timeout_seconds,
            startup_check_interval_seconds=max(1, int(launcher.poll_interval_seconds)),
            durable=True,  # re-attach to the running pod after a worker restart (Airflow 3.3+)
            log_events_on_failure=True,
            **kwargs,
        )
        self.step = step
        self.config_path = config_path
        self.partition = partition
        # Step-specific options; mappable (a sweep expands one pod per ["--trial", "N"]).
        self.step_args = step_args
        self.operator_extra_links = links_for_step(step)  # the same buttons as a local step

    def execute(self, context: Any) -> Any:
        config = resolve_step_config(self.config_path, context, self.step, self.partition)
        self.arguments = step_argv(
            self.step, config, context["run_id"], self.partition or None, self.step_args
        )
        return super().execute(context)

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        config = resolve_step_config(self.config_path, context, self.step, self.partition)
        try:
            super().trigger_reentry(context, event)
        except AirflowException as exc:
            events = self._events_of_gone_pod(event) if self.pod is None else []
            reason, exit_code = pod_failure_reason(self.pod, events)
            push_partial_result(config, context, self.step)
            message = f"step {self.step} pod {event.get('name')} failed: {reason}\n{exc}"
            if exit_code == EXIT_BAD_INPUT:
                raise AirflowFailException(f"{message}\n(the step rejected its input: no retry)") from None
            raise AirflowException(message) from None
        result = step_result_or_fail(config, context["run_id"], self.step, step_options(self.step_args))
        # do_xcom_push stays False (it means the provider's sidecar): push the result as a local
        # step's would be, for the task's links and downstream tasks.
        context["ti"].xcom_push(key="return_value", value=result)
        return result

    def _events_of_gone_pod(self, event: dict[str, Any]) -> list[k8s.CoreV1Event]:
        """The events of a pod deleted before the task resumed (a preempted pod): best effort."""
        gone = k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=event.get("name"), namespace=event.get("namespace")))
        try:
            return list(self.pod_manager.read_pod_events(gone).items or [])
        except (ApiException, AirflowException) as exc:
            self.log.warning("could not read the events of pod %s: %s", event.get("name"), exc)
            return []
