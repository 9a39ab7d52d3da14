"""One ``retrain_<pipeline>`` DAG per pipeline config in ``dags/pipelines/`` (wiring only).

Set ``SLIPWAY_PIPELINES_DIR`` to read the configs from another folder. A bad config, or a
missing or empty configs folder, stops this file with one clear import error naming the file and
the field (see ``slipway.config`` and ``operators.pipelines``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG

from operators.callbacks import PipelineMetricsCallbacks
from operators.canary import SlipwayCanaryOperator
from operators.launchers import step_operator
from operators.params import TEMPLATE_FILTERS, params_form
from operators.pipelines import load_pipeline_folder, pipelines_dir
from operators.release import SlipwayGateOperator, SlipwayPromoteOperator, SlipwayRegisterOperator
from operators.scheduling import deadline_for, default_args_for, schedule_for, task_timeout
from slipway.config import ConfigError, PipelineConfig

DOC = """
### Retrain `{model}` ({name})

{description}

**Run:** ingest -> validate -> train -> evaluate -> gate -> register -> canary -> promote.
Invalid data fails *validate* (no retry) and nothing else runs. A candidate the gate rejects
skips register and promote: the champion is untouched and the reasons are in the gate log.
The canary (when `rollout.enabled`) shifts traffic step by step and is promoted or rolled back
with its reasons; a rollback skips promote. `skip_canary` needs a written `skip_canary_reason`.

**Starts:** on schedule `{schedule}`, on new data (asset `{asset}`, partition from the event's
`extra.partition`), or from the trigger form / REST API.

**Config:** `{path}` - store: `{store}` - launcher: `{launcher}`.
Trigger with the form to override epochs, batch size, learning rate or the data partition;
`force_deploy` needs a written `force_reason`, recorded with the model version.
"""


def build_retraining_dag(config: PipelineConfig) -> DAG:
    path = config.source_path or ""
    callbacks = PipelineMetricsCallbacks(path)

    def step(task_id: str, **kwargs: Any) -> Any:
        # launcher.kind picks the operator: local subprocess, KubernetesPodOperator or, for
        # multi-worker training, KubernetesJobOperator (operators/launchers/factory.py).
        return step_operator(
            task_id=task_id,
            step=task_id,
            config=config,
            execution_timeout=task_timeout(config, task_id),
            **kwargs,
        )

    def release(operator: type, task_id: str, **kwargs: Any) -> Any:
        return operator(
            task_id=task_id, config_path=path, execution_timeout=task_timeout(config, task_id), **kwargs
        )

    with DAG(
        dag_id=f"retrain_{config.name}",
        description=config.description or f"Retrain {config.model_name}",
        schedule=schedule_for(config),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["slipway", "retraining", config.model_name],
        doc_md=DOC.format(
            model=config.model_name,
            name=config.name,
            description=config.description,
            path=path,
            store=config.store_url,
            launcher=config.launcher.kind,
            schedule=config.schedule or "none",
            asset=config.orchestration.data_asset or "none",
        ),
        default_args={**default_args_for(config), **callbacks.task_callbacks()},
        **callbacks.dag_callbacks(),
        deadline=deadline_for(config),
        params=params_form(config),
        user_defined_filters=TEMPLATE_FILTERS,
        render_template_as_native_obj=False,
    ) as dag:
        # The form's partition, else the one the triggering asset event names, else none.
        partition = "{{ params.partition or (triggering_asset_events | event_partition) }}"
        ingest = step("ingest", partition=partition)
        validate = step("validate")
        train = step("train")
        evaluate = step("evaluate")
        gate = release(SlipwayGateOperator, "gate")
        register = release(SlipwayRegisterOperator, "register")
        canary = release(SlipwayCanaryOperator, "canary", register_task_id="register")
        promote = release(SlipwayPromoteOperator, "promote", register_task_id="register")
        ingest >> validate >> train >> evaluate >> gate >> register >> canary >> promote
    return dag


try:
    _PIPELINES = load_pipeline_folder(pipelines_dir(__file__))
except ConfigError as exc:
    raise ConfigError(str(exc)) from None  # one clear message, no traceback soup

for _config in _PIPELINES:
    globals()[f"retrain_{_config.name}"] = build_retraining_dag(_config)
