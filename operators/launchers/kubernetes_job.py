"""``launcher.kind: kubernetes_job``: multi-worker training on an Indexed Job.

``KubernetesJobOperator`` (deferrable, ``wait_until_job_complete``) runs ``workers`` pods of the
same step container as ``SlipwayPodOperator`` builds, with ``completionMode: Indexed``. Before
the Job, the operator creates a headless Service named like the Job; the pod template's
``subdomain`` is that Service, so worker *i* resolves as ``<job>-<i>.<service>``. Each pod builds
``TF_CONFIG`` from ``JOB_COMPLETION_INDEX`` and the ``SLIPWAY_*`` env set here
(``slipway.training.distributed.tf_config_from_job``) and trains with
``MultiWorkerMirroredStrategy``; only the chief (index 0) writes checkpoints, the model and
``result.json``, which this operator reads from the store when the Job has completed. The
Service is deleted when the Job is done, whatever its outcome.
"""

from __future__ import annotations

import uuid
from typing import Any

from airflow.providers.cncf.kubernetes.operators.job import KubernetesJobOperator
from airflow.sdk.exceptions import AirflowException
from kubernetes.client import models as k8s
from kubernetes.client.exceptions import ApiException

from operators.launchers import kubernetes_spec as spec
from operators.launchers.base import step_argv
from operators.links import links_for_step
from operators.step import push_partial_result, resolve_step_config, step_result_or_fail
from slipway.config import KubernetesJobLauncherConfig, KubernetesLauncherBase, PipelineConfig, load_config

try:  # the provider prefixes every Job name
    from airflow.providers.cncf.kubernetes.operators.job import JOB_NAME_PREFIX
except ImportError:  # pragma: no cover
    JOB_NAME_PREFIX = "job-"


def headless_service(name: str, namespace: str, port: int, labels: dict[str, str]) -> k8s.V1Service:
    """One DNS record per Job pod (``<job>-<i>.<name>``), reachable before the pods are ready."""
    return k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=k8s.V1ServiceSpec(
            cluster_ip="None",
            publish_not_ready_addresses=True,
            selector={"job-name": name},
            ports=[k8s.V1ServicePort(name="tf-distribute", port=port, target_port=port)],
        ),
    )


class SlipwayJobOperator(KubernetesJobOperator):
    template_fields = (*KubernetesJobOperator.template_fields, "partition")
    ui_color = "#d5f5e3"

    def __init__(self, *, step: str, config_path: str, partition: str | None = None, **kwargs: Any) -> None:
        if not config_path:
            raise ValueError(f"step {step}: the Job operator needs the pipeline config's path")
        config = load_config(config_path)  # plain constructor arguments, like the pod operator's
        launcher = config.launcher
        if not isinstance(launcher, KubernetesJobLauncherConfig):
            raise ValueError(f"launcher kind {launcher.kind!r} is not kubernetes_job")
        kwargs.setdefault("retries", 2)
        pod = spec.step_pod_kwargs(config, launcher, step)
        super().__init__(
            **pod,
            random_name_suffix=False,  # a unique name is made in execute (the env must know it)
            env_vars=[],
            ports=[k8s.V1ContainerPort(name="tf-distribute", container_port=launcher.port)],
            completion_mode="Indexed",
            completions=launcher.workers,
            parallelism=launcher.workers,
            backoff_limit=2 * launcher.workers,  # a preempted worker's pod is replaced, resumes
            ttl_seconds_after_finished=3600,
            wait_until_job_complete=True,
            job_poll_interval=launcher.poll_interval_seconds,
            **kwargs,
        )
        self.step = step
        self.config_path = config_path
        self.partition = partition
        self.base_name = spec.pod_base_name(config, step)[:40]
        self.operator_extra_links = links_for_step(step)  # the same buttons as a local step

    def execute(self, context: Any) -> Any:
        config = resolve_step_config(self.config_path, context, self.step, self.partition)
        launcher = config.launcher
        assert isinstance(launcher, KubernetesJobLauncherConfig)
        self.name = f"{self.base_name}-{uuid.uuid4().hex[:6]}"
        job_name = f"{JOB_NAME_PREFIX}{self.name}"
        self.subdomain = job_name
        self.arguments = step_argv(self.step, config, context["run_id"], self.partition or None)
        self.env_vars = spec.env(
            launcher,
            extra={
                "SLIPWAY_JOB_NAME": job_name,
                "SLIPWAY_JOB_SERVICE": job_name,
                "SLIPWAY_WORKERS": str(launcher.workers),
                "SLIPWAY_WORKER_PORT": str(launcher.port),
            },
        )
        service = headless_service(job_name, launcher.namespace, launcher.port, dict(self.labels))
        self.hook.core_v1_client.create_namespaced_service(namespace=launcher.namespace, body=service)
        context["ti"].xcom_push(key="service_name", value=job_name)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any], **kwargs: Any) -> Any:
        config = resolve_step_config(self.config_path, context, self.step, self.partition)
        try:
            super().execute_complete(context, event, **kwargs)
        except AirflowException as exc:
            push_partial_result(config, context, self.step)
            raise AirflowException(f"step {self.step} Job failed: {exc}") from None
        finally:
            self._delete_service(config, event)
        result = step_result_or_fail(config, context["run_id"], self.step)
        context["ti"].xcom_push(key="return_value", value=result)  # do_xcom_push means a sidecar
        return result

    def _delete_service(self, config: PipelineConfig, event: dict[str, Any]) -> None:
        job = event.get("job") or {}
        name = (job.get("metadata") or {}).get("name") if isinstance(job, dict) else None
        if not name:
            return
        launcher = config.launcher
        if not isinstance(launcher, KubernetesLauncherBase):
            return
        try:
            self.hook.core_v1_client.delete_namespaced_service(name=name, namespace=launcher.namespace)
        except ApiException as exc:
            if exc.status != 404:
                self.log.warning("could not delete headless Service %s: %s", name, exc.reason)
