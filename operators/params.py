"""The DAG's Params form (UI / REST trigger) and how its values reach the pipeline config.

Every knob is a typed ``Param`` with a JSON schema, so the trigger form and the REST API
(``POST /api/v2/dags/{dag_id}/dagRuns``) refuse an invalid value before a run exists, with a
message naming the field (``Invalid input for param epochs: 0 is less than the minimum of 1``).
The defaults are the pipeline's own settings, so an untouched form changes nothing.

What a per-field schema cannot say is checked when the run starts (``run_request_problems``):
a forced deployment needs a written reason, and a ``conf`` key that is not a Param is a typo
(``epoch``), not something to ignore silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Param

from slipway.config import PipelineConfig

SECTION_DATA = "Data"
SECTION_TRAINING = "Training"
SECTION_DEPLOYMENT = "Deployment"
SECTION_CANARY = "Canary rollout"

# Param name -> path in the pipeline config.
PARAM_PATHS: dict[str, tuple[str, ...]] = {
    "epochs": ("training", "epochs"),
    "batch_size": ("training", "batch_size"),
    "learning_rate": ("training", "optimizer", "learning_rate"),
}

# A partition names a file or folder inside the source: letters, digits, ``_.=-`` and ``/``
# between parts, never ``..`` (it must not climb out of the source).
PARTITION_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.=-]*(/[A-Za-z0-9_.=-]+)*$"


def params_form(config: PipelineConfig) -> dict[str, Param]:
    """The trigger form: one typed, described Param per knob, grouped in sections."""
    defaults = param_defaults(config)
    return {
        "partition": Param(
            None,
            type=["null", "string"],
            pattern=PARTITION_PATTERN,
            maxLength=200,
            title="Data partition",
            description=(
                "Fills {partition} in the data source's uri (e.g. 2026-05-01). Empty: the partition "
                "named by the asset event that triggered the run, else the whole source."
            ),
            section=SECTION_DATA,
        ),
        "epochs": Param(
            defaults["epochs"],
            type="integer",
            minimum=1,
            maximum=1000,
            title="Epochs",
            description="Passes over the training data.",
            section=SECTION_TRAINING,
        ),
        "batch_size": Param(
            defaults["batch_size"],
            type="integer",
            minimum=1,
            maximum=65536,
            title="Batch size",
            description="Examples per gradient step.",
            section=SECTION_TRAINING,
        ),
        "learning_rate": Param(
            defaults["learning_rate"],
            type="number",
            exclusiveMinimum=0,
            maximum=1,
            title="Learning rate",
            description="Optimizer step size, in (0, 1].",
            section=SECTION_TRAINING,
        ),
        "force_deploy": Param(
            False,
            type="boolean",
            title="Force deployment",
            description="Register and promote the candidate even if the evaluation gate rejects it.",
            section=SECTION_DEPLOYMENT,
        ),
        "force_reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason for forcing",
            description="Required with Force deployment; recorded with the model version and the champion's history.",
            section=SECTION_DEPLOYMENT,
        ),
        "skip_canary": Param(
            False,
            type="boolean",
            title="Skip the canary",
            description=(
                "Promote without a canary rollout (rollout.enabled in the pipeline config turns "
                "rollouts on); the skip is recorded with its reason."
            ),
            section=SECTION_CANARY,
        ),
        "skip_canary_reason": Param(
            None,
            type=["null", "string"],
            maxLength=500,
            title="Reason for skipping the canary",
            description="Required with Skip the canary; recorded in the rollout record.",
            section=SECTION_CANARY,
        ),
    }


def param_defaults(config: PipelineConfig) -> dict[str, Any]:
    """The form's defaults: the pipeline's own settings, so an untouched form changes nothing."""
    return {
        "epochs": config.training.epochs,
        "batch_size": config.training.batch_size,
        "learning_rate": config.training.optimizer.learning_rate,
    }


def overrides_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Nested config overrides (``{"training": {"epochs": 3}}``) from the run's Params."""
    overrides: dict[str, Any] = {}
    for name, path in PARAM_PATHS.items():
        value = params.get(name)
        if value is None or value == "":
            continue
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return overrides


def run_request_problems(
    params: Mapping[str, Any],
    conf: Mapping[str, Any] | None,
    known: Iterable[str],
    partition: str | None = None,
) -> list[str]:
    """What is wrong with a run's request beyond each field's schema; empty when it is fine.

    ``partition`` is the one the run will ingest: from the form, or from an asset event, whose
    ``extra`` no form has checked.
    """
    problems = []
    known = list(known)
    unknown = sorted(set(conf or {}) - set(known))
    if unknown:
        problems.append(
            f"unknown conf field(s) {', '.join(unknown)}: the form's fields are {', '.join(sorted(known))}"
        )
    if params.get("force_deploy") and not str(params.get("force_reason") or "").strip():
        problems.append(
            "force_deploy is set but force_reason is empty: a forced deployment requires a written reason"
        )
    if params.get("skip_canary") and not str(params.get("skip_canary_reason") or "").strip():
        problems.append("skip_canary is set but skip_canary_reason is empty: write why the canary is skipped")
    if partition and not re.match(PARTITION_PATTERN, partition):
        problems.append(
            f"partition {partition!r} is not a partition name (letters, digits, _.=- and /, no '..')"
        )
    return problems


def event_partition(triggering_asset_events: Any) -> str:
    """The partition named by the newest asset event that triggered the run (Jinja filter).

    An event names it in ``extra.partition`` (``POST /api/v2/assets/events`` with
    ``{"extra": {"partition": "2026-05-01"}}``) or as its ``partition_key``. No event, or none
    naming a partition: ``""`` (the form's value or the whole source then).
    """
    if not triggering_asset_events:
        return ""
    events = [event for per_asset in triggering_asset_events.values() for event in per_asset]
    for event in sorted(events, key=lambda e: e.timestamp, reverse=True):
        partition = (event.extra or {}).get("partition") or getattr(event, "partition_key", None)
        if partition:
            return str(partition)
    return ""


# Jinja filters the DAG registers (``user_defined_filters``) for its templated fields.
TEMPLATE_FILTERS = {"event_partition": event_partition}
