"""``python -m slipway <step>``: the one entry point the step images and local launcher run.

Every step takes the same arguments (``--config``, ``--run-id``, optional ``--partition`` and
``--overrides``), reads its inputs from the store under the run's prefix, writes its outputs and
``result.json`` there, and prints the result as the last line of output (``SLIPWAY_RESULT {...}``)
so a launcher can show it without a store round trip. Exit codes: see ``slipway/errors.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Any

from slipway.config import ConfigError, load_config
from slipway.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, BadInputError, StepInputMissing
from slipway.results import ResultModel

RESULT_MARKER = "SLIPWAY_RESULT "

# step name -> "module:function"; imported lazily so `slipway ingest` never loads TensorFlow.
STEPS: dict[str, str] = {
    "ingest": "slipway.steps.ingest:run",
    "validate": "slipway.steps.validate:run",
    "train": "slipway.steps.train:run",
    "evaluate": "slipway.steps.evaluate:run",
}

log = logging.getLogger("slipway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slipway", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    for name in STEPS:
        p = sub.add_parser(name, help=f"run the {name} step")
        p.add_argument("--config", required=True, help="pipeline YAML file")
        p.add_argument("--run-id", required=True, help="run identifier (Airflow run_id)")
        p.add_argument(
            "--partition", default=None, help="data partition, fills {partition} in the source uri"
        )
        p.add_argument(
            "--overrides", default=None, help='JSON of config overrides, e.g. {"training": {"epochs": 3}}'
        )
    p = sub.add_parser("summary", help="print what happened in a run, with its numbers and artifacts")
    p.add_argument("--config", required=True, help="pipeline YAML file")
    p.add_argument("--run-id", required=True, help="run identifier (Airflow run_id)")
    p = sub.add_parser("history", help="print a model's versions, alias moves and what serves now")
    p.add_argument("model", help="registered model name")
    p.add_argument("--config", default=None, help="pipeline YAML file (its store is read)")
    p.add_argument("--store", default=None, help="store URL (default: SLIPWAY_STORE_URL)")
    return parser


def run_step(
    step: str, config_path: str, run_id: str, partition: str | None, overrides: dict[str, Any] | None
) -> ResultModel:
    """Load config, build the run context, run the step, emit its health metrics."""
    from slipway import metrics
    from slipway.steps.context import RunContext

    config = load_config(config_path).with_overrides(overrides)
    ctx = RunContext.create(config, run_id, partition=partition)
    module_name, func_name = STEPS[step].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    with metrics.reporting_step(config.name, step, config.metrics) as batch:
        result: ResultModel = func(ctx, batch)
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    if args.step == "summary":
        return _summary(args.config, args.run_id)
    if args.step == "history":
        from slipway.pages.model import history_main

        return history_main(args.model, config_path=args.config, store_url=args.store)
    try:
        overrides = parse_overrides(args.overrides)
        result = run_step(args.step, args.config, args.run_id, args.partition, overrides)
    except BadInputError as exc:  # ConfigError, DataError, a failed data gate, ...
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StepInputMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(RESULT_MARKER + json.dumps(result.dump(), sort_keys=True), flush=True)
    return EXIT_OK


def parse_overrides(text: str | None) -> dict[str, Any] | None:
    """``--overrides``: a JSON object of nested config fields, or nothing; else ``ConfigError``."""
    if not text:
        return None
    try:
        overrides = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--overrides is not valid JSON: {exc}") from None
    if not isinstance(overrides, dict):
        raise ConfigError(
            f'--overrides must be a JSON object such as {{"training": {{"epochs": 3}}}},'
            f" got {type(overrides).__name__} {text!r}"
        )
    return overrides


def _summary(config_path: str, run_id: str) -> int:
    from slipway.steps.context import RunContext
    from slipway.summary import summarize_run

    try:
        ctx = RunContext.create(load_config(config_path), run_id)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(summarize_run(ctx))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
