"""The sweep's setup task: create (or resume) the run's study in the store, list its trial slots.

Light on purpose (no Optuna, no TensorFlow): it only writes the study index with put-if-absent.
Its return value - one ``["--trial", "N"]`` per slot - is what the trial task is mapped over, so
the Airflow UI shows one task instance per trial, each run by the launcher as a process or pod.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from slipway.config import load_config
from slipway.errors import BadInputError


class SlipwayTuneSetupOperator(BaseOperator):
    ui_color = "#fdebd0"

    def __init__(self, *, config_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path

    def execute(self, context: Any) -> list[list[str]]:
        from slipway.steps.context import RunContext
        from slipway.steps.tune_trial import study_for, study_id_for

        config = load_config(self.config_path)
        ctx = RunContext.create(config, context["run_id"])
        study = study_for(ctx)
        try:
            index = study.create(config, study_id_for(ctx))
        except BadInputError as exc:
            raise AirflowFailException(str(exc)) from None
        states: dict[str, int] = {}
        for entry in index["trials"].values():
            states[entry["state"]] = states.get(entry["state"], 0) + 1
        self.log.info("study %s at %s: %s", index["study_id"], ctx.store.uri(study.index_key), states)
        return [["--trial", str(n)] for n in sorted(int(k) for k in index["trials"])]
