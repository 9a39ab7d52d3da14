"""``python -m slipway <command>``: the one entry point the step, serving and router images run.

Commands live in one registry, ``COMMANDS`` (name -> ``Command``: how to add its arguments and how
to run it), so adding one is one entry and ``--help`` lists them all. The pipeline steps are
commands built from ``STEPS``; ``summary``, ``history``, ``serve`` and ``route`` are the others. Heavy modules
are imported inside each command's run function, so ``slipway ingest`` never loads TensorFlow and
``slipway route`` never loads it either.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slipway.config import ConfigError, PipelineConfig, load_config, parse_config
from slipway.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, BadInputError, StepInputMissing
from slipway.results import ResultModel

RESULT_MARKER = "SLIPWAY_RESULT "

# step name -> "module:function"; imported lazily so `slipway ingest` never loads TensorFlow.
STEPS: dict[str, str] = {
    "ingest": "slipway.steps.ingest:run",
    "validate": "slipway.steps.validate:run",
    "train": "slipway.steps.train:run",
    "evaluate": "slipway.steps.evaluate:run",
    "tune-trial": "slipway.steps.tune_trial:run",
    "tune-select": "slipway.steps.tune_select:run",
    "optimize": "slipway.steps.optimize:run",
}

# Options only some steps take, passed to the step's run() as keyword arguments.
STEP_OPTIONS: dict[str, dict[str, dict[str, Any]]] = {
    "tune-trial": {"trial": {"type": int, "required": True, "help": "trial slot number of the sweep"}},
}

log = logging.getLogger("slipway")


@dataclass(frozen=True)
class Command:
    """One ``slipway <name>`` sub-command: its help line, its arguments and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _step_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="pipeline YAML file")
    source.add_argument("--config-json", help="the resolved pipeline config as JSON (what launchers pass)")
    p.add_argument("--run-id", required=True, help="run identifier (Airflow run_id)")
    p.add_argument("--partition", default=None, help="data partition, fills {partition} in the source uri")
    p.add_argument(
        "--overrides", default=None, help='JSON of config overrides, e.g. {"training": {"epochs": 3}}'
    )


def _summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="pipeline YAML file")
    p.add_argument("--run-id", required=True, help="run identifier (Airflow run_id)")


def _history_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="registered model name")
    p.add_argument("--config", default=None, help="pipeline YAML file (its store is read)")
    p.add_argument("--store", default=None, help="store URL (default: SLIPWAY_STORE_URL)")


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="pipeline YAML file (store, model name, serving settings)")
    p.add_argument("--store-url", default=None, help="artifact store (default: the config's store_url)")
    p.add_argument("--model", default=None, help="registered model name (default: the config's model_name)")
    p.add_argument(
        "--version", default="champion", help="version number, 'latest' or an alias (default: champion)"
    )
    p.add_argument("--variant", default="stable", help="metrics label: stable or canary (default: stable)")
    p.add_argument("--host", default=None, help="bind address (default: serving.host)")
    p.add_argument("--port", type=int, default=None, help="port (default: serving.port, 8501)")
    p.add_argument("--workers", type=int, default=None, help="server processes (default: serving.workers)")
    p.add_argument("--max-batch-size", type=int, default=None)
    p.add_argument("--max-batch-wait-ms", type=float, default=None)
    p.add_argument("--max-queue-instances", type=int, default=None)
    p.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="answer this share of predict requests with 500 on purpose (testing canaries; default 0)",
    )


def _route_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        action="append",
        required=True,
        metavar="NAME=URL",
        help="a backend server, e.g. stable=http://127.0.0.1:8501 (repeat for each)",
    )
    p.add_argument(
        "--weights", default=None, metavar="NAME=W,...", help="initial weights (default: all on the first)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8500)
    p.add_argument(
        "--admin-token-env",
        default="SLIPWAY_ROUTER_ADMIN_TOKEN",
        help="environment variable holding the admin token; without a token the admin endpoint"
        " answers only clients on localhost",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a backend's answer")


def _step_command(name: str) -> Command:
    def add_arguments(p: argparse.ArgumentParser) -> None:
        _step_arguments(p)
        for option, spec in STEP_OPTIONS.get(name, {}).items():
            p.add_argument(f"--{option}", **spec)

    return Command(
        help=f"run the {name} step", add_arguments=add_arguments, run=lambda args: _run_step(name, args)
    )


COMMANDS: dict[str, Command] = {
    **{name: _step_command(name) for name in STEPS},
    "summary": Command(
        help="print what happened in a run, with its numbers and artifacts",
        add_arguments=_summary_arguments,
        run=lambda args: _summary(args.config, args.run_id),
    ),
    "history": Command(
        help="print a model's versions, alias moves and what serves now",
        add_arguments=_history_arguments,
        run=lambda args: _history(args),
    ),
    "serve": Command(
        help="serve a registered model version over TF Serving's REST API",
        add_arguments=_serve_arguments,
        run=lambda args: _serve(args),
    ),
    "route": Command(
        help="weighted HTTP router in front of model servers (stable / canary)",
        add_arguments=_route_arguments,
        run=lambda args: _route(args),
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slipway", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help))
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
    options: dict[str, Any] | None = None,
    config_json: str | None = None,
) -> ResultModel:
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
        result: ResultModel = func(ctx, batch, **(options or {}))
    return result


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    return COMMANDS[args.step].run(args)


def _run_step(step: str, args: argparse.Namespace) -> int:
    try:
        overrides = parse_overrides(args.overrides)
        options = {name: getattr(args, name) for name in STEP_OPTIONS.get(step, {})}
        result = run_step(
            step, args.config, args.run_id, args.partition, overrides, options, config_json=args.config_json
        )
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


def _history(args: argparse.Namespace) -> int:
    from slipway.pages.model import history_main

    return history_main(args.model, config_path=args.config, store_url=args.store)


def _serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # see slipway.serving.app._one_blas_thread
    from slipway.config import ServingConfig
    from slipway.serving.server import prepare, run

    try:
        config = load_config(args.config) if args.config else None
        store_url = args.store_url or (config.store_url if config else None)
        model = args.model or (config.model_name if config else None)
        if not store_url or not model:
            raise ConfigError("serve needs --config, or both --store-url and --model")
        if not 0.0 <= args.fault_rate <= 1.0:
            raise ConfigError(f"--fault-rate must be between 0 and 1, got {args.fault_rate}")
        serving = config.serving if config else ServingConfig()
        flags = {
            "host": args.host,
            "port": args.port,
            "workers": args.workers,
            "max_batch_size": args.max_batch_size,
            "max_batch_wait_ms": args.max_batch_wait_ms,
            "max_queue_instances": args.max_queue_instances,
        }
        changed = {k: v for k, v in flags.items() if v is not None}
        if changed:
            from pydantic import ValidationError

            try:
                serving = ServingConfig.model_validate({**serving.model_dump(), **changed})
            except ValidationError as exc:
                raise ConfigError(
                    f"invalid serving option: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
                ) from None
        spec = prepare(
            store_url, model, args.version, serving, variant=args.variant, fault_rate=args.fault_rate
        )
    except (ConfigError, BadInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    run(spec, serving.host, serving.port, serving.workers)
    return EXIT_OK


def _route(args: argparse.Namespace) -> int:
    from slipway.serving.router import RouterError, parse_backends, parse_weights, run_router

    try:
        backends = parse_backends(args.backend)
        weights = parse_weights(args.weights, backends)
    except RouterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    token = os.environ.get(args.admin_token_env) or None
    run_router(backends, weights, host=args.host, port=args.port, admin_token=token, timeout=args.timeout)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
