"""One ``retrain_<pipeline>`` DAG per pipeline config in ``dags/pipelines/`` (wiring only).

Set ``SLIPWAY_PIPELINES_DIR`` to read the configs from another folder. A bad config, or a
missing or empty configs folder, stops this file with one clear import error naming the file and
the field (see ``slipway.config`` and ``operators.pipelines``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from operators.callbacks import PipelineMetricsCallbacks
from operators.canary import SlipwayCanaryOperator
from operators.launchers import step_operator
from operators.params import param_defaults
from operators.pipelines import load_pipeline_folder, pipelines_dir
from operators.release import SlipwayGateOperator, SlipwayPromoteOperator, SlipwayRegisterOperator
from slipway.config import ConfigError, PipelineConfig

DOC = """
### Retrain `{model}` ({name})

{description}

**Run:** ingest -> validate -> train -> evaluate -> gate -> register -> canary -> promote.
Invalid data fails *validate* (no retry) and nothing else runs. A candidate the gate rejects
skips register and promote: the champion is untouched and the reasons are in the gate log.
The canary (when `rollout.enabled`) shifts traffic step by step and is promoted or rolled back
with its reasons; a rollback skips promote. `skip_canary` needs a written `skip_canary_reason`.

**Config:** `{path}` - store: `{store}` - launcher: `{launcher}`.
Trigger with the form to override epochs, batch size, learning rate or the data partition;
`force_deploy` needs a written `force_reason`, recorded with the model version.
"""


def build_retraining_dag(config: PipelineConfig) -> DAG:
    path = config.source_path or ""
    defaults = param_defaults(config)
    callbacks = PipelineMetricsCallbacks(path)
    with DAG(
        dag_id=f"retrain_{config.name}",
        description=config.description or f"Retrain {config.model_name}",
        schedule=config.schedule,
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
        ),
        default_args={
            "owner": config.owner,
            "retries": 2,
            "retry_delay": timedelta(seconds=30),
            "retry_exponential_backoff": True,
            **callbacks.task_callbacks(),
        },
        **callbacks.dag_callbacks(),
        params={
            "epochs": Param(defaults["epochs"], type="integer", minimum=1, title="Epochs"),
            "batch_size": Param(defaults["batch_size"], type="integer", minimum=1, title="Batch size"),
            "learning_rate": Param(
                defaults["learning_rate"], type="number", exclusiveMinimum=0, title="Learning rate"
            ),
            "partition": Param(
                None,
                type=["null", "string"],
                title="Data partition",
                description="fills {partition} in the source uri",
            ),
            "force_deploy": Param(
                False, type="boolean", title="Force deployment", description="deploy even if the gate rejects"
            ),
            "force_reason": Param(
                "", type="string", title="Reason for forcing", description="required with force"
            ),
            "skip_canary": Param(
                False, type="boolean", title="Skip the canary", description="promote without a rollout"
            ),
            "skip_canary_reason": Param(
                "", type="string", title="Reason for skipping the canary", description="required with skip"
            ),
        },
        render_template_as_native_obj=False,
    ) as dag:
        partition = "{{ params.partition or '' }}"
        # launcher.kind picks the operator: local subprocess, KubernetesPodOperator or, for
        # multi-worker training, KubernetesJobOperator (operators/launchers/factory.py).
        ingest = step_operator(task_id="ingest", step="ingest", config=config, partition=partition)
        validate = step_operator(task_id="validate", step="validate", config=config)
        train = step_operator(task_id="train", step="train", config=config)
        evaluate = step_operator(task_id="evaluate", step="evaluate", config=config)
        gate = SlipwayGateOperator(task_id="gate", config_path=path)
        register = SlipwayRegisterOperator(task_id="register", config_path=path)
        canary = SlipwayCanaryOperator(task_id="canary", config_path=path, register_task_id="register")
        promote = SlipwayPromoteOperator(task_id="promote", config_path=path, register_task_id="register")
        ingest >> validate >> train >> evaluate >> gate >> register >> canary >> promote
    return dag


try:
    _PIPELINES = load_pipeline_folder(pipelines_dir(__file__))
except ConfigError as exc:
    raise ConfigError(str(exc)) from None  # one clear message, no traceback soup

for _config in _PIPELINES:
    globals()[f"retrain_{_config.name}"] = build_retraining_dag(_config)
