"""The Grafana dashboards, as code (grafana-foundation-sdk): pipeline health, model quality, serving.

Each panel is a ``PanelSpec`` (title, kind, PromQL, unit); ``build_dashboards`` turns them into
dashboard models with the SDK. Queries use the template variables ``$pipeline`` / ``$model``
(regex matchers, "All" = ``.*``) and Grafana's ``$__rate_interval`` / ``$__range``. Every query is
run against a real Prometheus fed by a real pipeline run in ``tests/monitoring/test_dashboards.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.models import dashboard as dm

Kind = Literal["stat", "timeseries", "table"]
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")


@dataclass(frozen=True)
class PanelSpec:
    title: str
    kind: Kind
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    description: str = ""
    width: int = 8


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    variables: tuple[tuple[str, str], ...]  # (name, label_values query)
    rows: tuple[tuple[str, tuple[PanelSpec, ...]], ...]
    tags: tuple[str, ...] = field(default=("slipway",))


P = '{pipeline=~"$pipeline"}'
M = '{model=~"$model"}'

PIPELINE_HEALTH = DashboardSpec(
    uid="slipway-pipeline-health",
    title="Slipway / Pipeline health",
    description="Retraining runs, steps, data validation, training and gate decisions, per pipeline.",
    variables=(("pipeline", "label_values(slipway_step_success, pipeline)"),),
    rows=(
        (
            "Runs",
            (
                PanelSpec("Last run succeeded", "stat", ((f"slipway_run_success{P}", "{{pipeline}}"),)),
                PanelSpec(
                    "Since last successful run",
                    "stat",
                    ((f"time() - slipway_run_last_success_timestamp_seconds{P}", "{{pipeline}}"),),
                    unit="s",
                    description="Alert SlipwayRetrainingStale fires past two scheduled intervals.",
                ),
                PanelSpec(
                    "Last run duration", "stat", ((f"slipway_run_duration_seconds{P}", "{{pipeline}}"),), "s"
                ),
                PanelSpec(
                    "Step duration",
                    "timeseries",
                    ((f"slipway_step_duration_seconds{P}", "{{pipeline}} {{step}}"),),
                    "s",
                    width=12,
                ),
                PanelSpec(
                    "Step outcome (1 = last try succeeded)",
                    "table",
                    ((f"slipway_step_success{P}", "{{pipeline}} {{step}}"),),
                    width=12,
                ),
                PanelSpec(
                    "Since last push to the Pushgateway",
                    "table",
                    (
                        (
                            'time() - push_time_seconds{job="slipway",pipeline=~"$pipeline"}',
                            "{{pipeline}} {{step}}",
                        ),
                    ),
                    "s",
                    description="Pushes that fail raise SlipwayPushgatewayStale.",
                    width=24,
                ),
            ),
        ),
        (
            "Data",
            (
                PanelSpec("Validation passed", "stat", ((f"slipway_validation_success{P}", "{{pipeline}}"),)),
                PanelSpec(
                    "Failed expectations",
                    "stat",
                    ((f"slipway_validation_failed_expectations{P}", "{{pipeline}}"),),
                ),
                PanelSpec(
                    "Rows per split", "table", ((f"slipway_ingest_rows{P}", "{{pipeline}} {{split}}"),)
                ),
                PanelSpec(
                    "Drift against the reference profile",
                    "timeseries",
                    (
                        (f"slipway_validation_drift{P}", "{{statistic}}"),
                        (f"slipway_validation_drift_threshold{P}", "{{statistic}} threshold"),
                    ),
                    width=24,
                ),
            ),
        ),
        (
            "Training and gate",
            (
                PanelSpec(
                    "Training duration",
                    "stat",
                    ((f"slipway_training_duration_seconds{P}", "{{model}}"),),
                    "s",
                ),
                PanelSpec(
                    "Training throughput",
                    "stat",
                    ((f"slipway_training_samples_per_second{P}", "{{model}}"),),
                    "ops",
                ),
                PanelSpec("Final training loss", "stat", ((f"slipway_training_final_loss{P}", "{{model}}"),)),
                PanelSpec("Epochs", "stat", ((f"slipway_training_epochs{P}", "{{model}}"),)),
                PanelSpec(
                    "Gate decisions (all time)",
                    "stat",
                    ((f"sum by (result) (slipway_gate_decisions_total{P})", "{{result}}"),),
                ),
                PanelSpec(
                    "Gate decisions in the range",
                    "timeseries",
                    (
                        (
                            f"sum by (result) (increase(slipway_gate_decisions_total{P}[$__range]))",
                            "{{result}}",
                        ),
                    ),
                ),
            ),
        ),
    ),
)

MODEL_QUALITY = DashboardSpec(
    uid="slipway-model-quality",
    title="Slipway / Model quality across versions",
    description="Candidate and champion on the same test set, the registry, model age and training mix.",
    variables=(("model", "label_values(slipway_model_accuracy, model)"),),
    rows=(
        (
            "Evaluation",
            (
                PanelSpec(
                    "Test accuracy by version",
                    "timeseries",
                    ((f"slipway_model_accuracy{M}", "{{variant}} v{{version}}"),),
                    "percentunit",
                    width=12,
                ),
                PanelSpec(
                    "Test log loss by version",
                    "timeseries",
                    ((f"slipway_model_loss{M}", "{{variant}} v{{version}}"),),
                    width=12,
                ),
                PanelSpec(
                    "Accuracy: candidate - champion",
                    "stat",
                    (
                        (
                            'max by (model) (slipway_model_accuracy{model=~"$model",variant="candidate"})'
                            ' - max by (model) (slipway_model_accuracy{model=~"$model",variant="champion"})',
                            "{{model}}",
                        ),
                    ),
                    "percentunit",
                ),
            ),
        ),
        (
            "Registry",
            (
                PanelSpec(
                    "Champion version", "stat", ((f"slipway_registry_champion_version{M}", "{{model}}"),)
                ),
                PanelSpec(
                    "Latest registered version",
                    "stat",
                    ((f"slipway_registry_latest_version{M}", "{{model}}"),),
                ),
                PanelSpec(
                    "Champion age",
                    "stat",
                    ((f"time() - slipway_registry_champion_promoted_timestamp_seconds{M}", "{{model}}"),),
                    "s",
                    description="Alert SlipwayModelTooOld fires past 30 days.",
                ),
                PanelSpec(
                    "Training label distribution",
                    "table",
                    ((f"slipway_training_class_fraction{M}", "{{model}} class {{class}}"),),
                    "percentunit",
                    width=24,
                ),
            ),
        ),
    ),
)

SERVING = DashboardSpec(
    uid="slipway-serving",
    title="Slipway / Serving and canary",
    description="Model servers, the router and canary rollouts.",
    variables=(("model", "label_values(slipway_serving_model_info, model)"),),
    rows=(
        (
            "Servers",
            (
                PanelSpec(
                    "Servers up",
                    "stat",
                    (('up{job=~"slipway-serving|slipway-router"}', "{{job}} {{instance}}"),),
                ),
                PanelSpec(
                    "Model served",
                    "table",
                    ((f"slipway_serving_model_info{M}", "{{model}} v{{version}} {{variant}}"),),
                ),
                PanelSpec(
                    "Queue depth",
                    "timeseries",
                    ((f"slipway_serving_queue_depth{M}", "{{variant}} v{{version}}"),),
                ),
                PanelSpec(
                    "Requests by status code",
                    "timeseries",
                    (
                        (
                            f"sum by (variant, code) (rate(slipway_serving_requests_total{M}[$__rate_interval]))",
                            "{{variant}} {{code}}",
                        ),
                    ),
                    "reqps",
                ),
                PanelSpec(
                    "Error ratio (5xx)",
                    "timeseries",
                    (
                        (
                            f'sum by (variant) (rate(slipway_serving_requests_total{{model=~"$model",code=~"5.."}}[$__rate_interval]))'
                            f" / sum by (variant) (rate(slipway_serving_requests_total{M}[$__rate_interval]))",
                            "{{variant}}",
                        ),
                    ),
                    "percentunit",
                ),
                PanelSpec(
                    "Latency p50 / p99",
                    "timeseries",
                    (
                        (
                            "histogram_quantile(0.5, sum by (variant, le) "
                            f"(rate(slipway_serving_request_duration_seconds_bucket{M}[$__rate_interval])))",
                            "{{variant}} p50",
                        ),
                        (
                            "histogram_quantile(0.99, sum by (variant, le) "
                            f"(rate(slipway_serving_request_duration_seconds_bucket{M}[$__rate_interval])))",
                            "{{variant}} p99",
                        ),
                    ),
                    "s",
                ),
                PanelSpec(
                    "Mean batch size",
                    "timeseries",
                    (
                        (
                            f"sum by (variant) (rate(slipway_serving_batch_size_sum{M}[$__rate_interval]))"
                            f" / sum by (variant) (rate(slipway_serving_batch_size_count{M}[$__rate_interval]))",
                            "{{variant}}",
                        ),
                    ),
                ),
                PanelSpec(
                    "Predictions by class",
                    "timeseries",
                    (
                        (
                            f"sum by (variant, class) (rate(slipway_serving_predictions_total{M}[$__rate_interval]))",
                            "{{variant}} class {{class}}",
                        ),
                    ),
                    "ops",
                ),
                PanelSpec(
                    "Served vs training class share",
                    "table",
                    (
                        (f"slipway:serving_prediction_fraction:rate1h{M}", "served {{class}}"),
                        (f"slipway:training_class_fraction{M}", "training {{class}}"),
                    ),
                    "percentunit",
                    description="Alert SlipwayPredictionDrift fires when their total variation distance passes 0.2.",
                ),
            ),
        ),
        (
            "Router and canary",
            (
                PanelSpec(
                    "Router requests by backend",
                    "timeseries",
                    (
                        (
                            "sum by (backend, code) (rate(slipway_router_requests_total[$__rate_interval]))",
                            "{{backend}} {{code}}",
                        ),
                    ),
                    "reqps",
                ),
                PanelSpec(
                    "Router latency p99",
                    "timeseries",
                    (
                        (
                            "histogram_quantile(0.99, sum by (backend, le) "
                            "(rate(slipway_router_request_duration_seconds_bucket[$__rate_interval])))",
                            "{{backend}}",
                        ),
                    ),
                    "s",
                ),
                PanelSpec(
                    "Router backend weights",
                    "timeseries",
                    (("slipway_router_backend_weight", "{{backend}}"),),
                ),
                PanelSpec(
                    "Canary weight", "timeseries", ((f"slipway_canary_weight{M}", "{{pipeline}} {{model}}"),)
                ),
                PanelSpec(
                    "Rollout decisions in the range",
                    "stat",
                    (
                        (
                            f"sum by (result) (increase(slipway_rollout_decisions_total{M}[$__range]))",
                            "{{result}}",
                        ),
                    ),
                ),
            ),
        ),
    ),
)

DASHBOARDS = (PIPELINE_HEALTH, MODEL_QUALITY, SERVING)


def _panel(spec: PanelSpec, panel_id: int) -> Any:
    builder: Any = {"stat": stat.Panel, "timeseries": timeseries.Panel, "table": table.Panel}[spec.kind]()
    builder = (
        builder.id(panel_id)
        .title(spec.title)
        .unit(spec.unit)
        .span(spec.width)
        .height(7)
        .datasource(DATASOURCE)
    )
    if spec.description:
        builder = builder.description(spec.description)
    for ref, (expr, legend) in zip("ABCDEFGH", spec.queries, strict=False):
        query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
        if spec.kind != "timeseries":
            query = query.instant()
        builder = builder.with_target(query)
    return builder


def build(spec: DashboardSpec) -> Any:
    """The dashboard model of one spec (encode it with ``grafana_foundation_sdk.cog.encoder.JSONEncoder``)."""
    board = (
        gd.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(list(spec.tags))
        .refresh("1m")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(gd.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    for name, query in spec.variables:
        board = board.with_variable(
            gd.QueryVariable(name)
            .label(name.capitalize())
            .query(query)
            .datasource(DATASOURCE)
            .include_all(True)
            .all_value(".*")
            .multi(True)
            .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        )
    ids = iter(range(1, 1000))
    for row_title, panels in spec.rows:
        board = board.with_row(gd.Row(row_title).id(next(ids)))
        for panel in panels:
            board = board.with_panel(_panel(panel, next(ids)))
    return board.build()


def to_json(spec: DashboardSpec) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (what the sidecar loads)."""
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    model = json.loads(json.dumps(build(spec), cls=JSONEncoder))
    for panel in model["panels"]:
        if panel.get("options") is None:
            panel["options"] = {}
    return model
