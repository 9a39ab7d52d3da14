"""``python -m slipway <step>``: the one entry point the step images and local launcher run.

Every step takes the same arguments (the config as ``--config FILE`` or by value as
``--config-json JSON``, ``--run-id``, optional ``--partition`` and ``--overrides``), reads its
inputs from the store under the run's prefix, writes its outputs and ``result.json`` there, and
prints the result as the last line of output (``SLIPWAY_RESULT {...}``) for a human reading the
log. Launchers pass the config by value - a pod has no access to the worker's files - and read
the result back from the store, never from the output. Exit codes: see ``slipway/errors.py``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from typing import Any

from slipway.config import ConfigError, PipelineConfig, load_config, parse_config
from slipway.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, BadInputError, StepInputMissing

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
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("--config", help="pipeline YAML file")
        source.add_argument(
            "--config-json", help="the resolved pipeline config as JSON (what launchers pass)"
        )
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
    return parser


def config_from_json(text: str) -> PipelineConfig:
    """The config a launcher passed by value (already resolved: env expanded, overrides applied)."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config-json is not valid JSON: {exc}") from None
    origin = raw.get("source_path") if isinstance(raw, dict) else None
    return parse_config(raw, origin or "<--config-json>")


def run_step(
    step: str,
    config_path: str | None,
    run_id: str,
    partition: str | None,
    overrides: dict[str, Any] | None,
    config_json: str | None = None,
):
    """Load config, build the run context, run the step, emit its health metrics."""
    from slipway import metrics
    from slipway.steps.context import RunContext

    if config_json is not None:
        config = config_from_json(config_json).with_overrides(overrides)
    elif config_path is not None:
        config = load_config(config_path).with_overrides(overrides)
    else:
        raise ConfigError("give the pipeline config as --config FILE or --config-json JSON")
    ctx = RunContext.create(config, run_id, partition=partition)
    module_name, func_name = STEPS[step].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    with metrics.reporting_step(config.name, step, config.metrics) as batch:
        return func(ctx, batch)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    if args.step == "summary":
        return _summary(args.config, args.run_id)
    try:
        overrides = json.loads(args.overrides) if args.overrides else None
        if overrides is not None and not isinstance(overrides, dict):
            raise ConfigError("--overrides must be a JSON object")
    except json.JSONDecodeError as exc:
        print(f"error: --overrides is not valid JSON: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        result = run_step(
            args.step, args.config, args.run_id, args.partition, overrides, config_json=args.config_json
        )
    except (ConfigError, BadInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StepInputMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(RESULT_MARKER + json.dumps(result, sort_keys=True, default=str), flush=True)
    return EXIT_OK


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
