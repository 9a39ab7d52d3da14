"""One ``tune_<pipeline>`` DAG per pipeline config with a ``tuning`` section (wiring only).

ingest -> validate -> study (create or resume) -> trial x N (mapped, at most ``parallel`` at a
time) -> select (best trial by validation accuracy becomes the candidate; runs when every trial
is done and at least one succeeded) -> evaluate -> gate -> [optimize: leaner variant, when
``tuning.leaner.enabled``] -> register -> promote.

Every step task, and every trial, is the operator ``launcher.kind`` picks
(``operators.launchers``): a local process here, a pod on Kubernetes (``kubernetes_job`` too:
a trial is a single pod).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from operators.launchers import mapped_step_operator, step_operator
from operators.pipelines import pipelines_dir
from operators.release import SlipwayGateOperator, SlipwayPromoteOperator, SlipwayRegisterOperator
from operators.tuning import SlipwayTuneSetupOperator
from slipway.config import ConfigError, PipelineConfig, load_pipelines

DOC = """
### Tune `{model}` ({name})

A sweep of {trials} trials ({parallel} at a time, sampler `{sampler}`, pruner `{pruner}`) over the
search space in `{path}`, selected on the validation split; launcher `{launcher}` (each trial a
local process or a pod). The best trial is evaluated and gated like any candidate; its Blessing
and registry version name the study.
Clearing the DAG run resumes the same study: recorded trials are not trained again.
"""


def build_tuning_dag(config: PipelineConfig) -> DAG:
    tuning = config.tuning
    assert tuning is not None
    path = config.source_path or ""
    with DAG(
        dag_id=f"tune_{config.name}",
        description=f"Hyperparameter sweep for {config.model_name}",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["slipway", "tuning", config.model_name],
        doc_md=DOC.format(
            model=config.model_name,
            name=config.name,
            trials=tuning.trials,
            parallel=tuning.parallel,
            sampler=tuning.sampler,
            pruner=tuning.pruner.kind,
            path=path,
            launcher=config.launcher.kind,
        ),
        default_args={
            "owner": config.owner,
            "retries": 2,
            "retry_delay": timedelta(seconds=10),
        },
        params={
            "partition": Param(
                None,
                type=["null", "string"],
                title="Data partition",
                description="fills {partition} in the source uri",
            ),
            "force_deploy": Param(False, type="boolean", title="Force deployment"),
            "force_reason": Param("", type="string", title="Reason for forcing"),
        },
    ) as dag:
        partition = "{{ params.partition or '' }}"
        ingest = step_operator(task_id="ingest", step="ingest", config=config, partition=partition)
        validate = step_operator(task_id="validate", step="validate", config=config)
        study = SlipwayTuneSetupOperator(task_id="study", config_path=path)
        trials = mapped_step_operator(
            task_id="trial",
            step="tune-trial",
            config=config,
            step_args=study.output,  # ["--trial", "N"] per slot of the study
            max_active_tis_per_dagrun=tuning.parallel,
            map_index_template="trial {{ task.step_args[1] }}",
        )
        select = step_operator(
            task_id="select", step="tune-select", config=config, trigger_rule="all_done_min_one_success"
        )
        evaluate = step_operator(task_id="evaluate", step="evaluate", config=config)
        gate = SlipwayGateOperator(task_id="gate", config_path=path)
        register = SlipwayRegisterOperator(task_id="register", config_path=path)
        promote = SlipwayPromoteOperator(task_id="promote", config_path=path, register_task_id="register")
        ingest >> validate >> study >> trials >> select >> evaluate >> gate
        if tuning.leaner.enabled:
            optimize = step_operator(task_id="optimize", step="optimize", config=config)
            gate >> optimize >> register
        else:
            gate >> register
        register >> promote
    return dag


try:
    _PIPELINES = load_pipelines(pipelines_dir())
except ConfigError:
    # retrain.py reports the bad config as its import error: one clear message, not two.
    _PIPELINES = []

for _config in _PIPELINES:
    if _config.tuning is not None:
        globals()[f"tune_{_config.name}"] = build_tuning_dag(_config)
