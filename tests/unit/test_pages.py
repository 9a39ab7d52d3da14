"""Run and model pages, the history command and the vendored assets, without Airflow or TensorFlow.

Records here are inputs to the renderers (what steps would have stored); the pages built from
real runs are checked in a browser by ``tests/integration/test_reports_offline.py``.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from slipway import cli
from slipway.pages import assets
from slipway.pages.chart import _ticks, line_chart
from slipway.pages.html import delta, num, when
from slipway.pages.model import load_model, model_text, render_model_page
from slipway.pages.run import RunRecord, TaskState, Trigger, render_run_page
from slipway.registry import ModelRegistry
from slipway.store import open_store

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>"
GX_TEMPLATES = Path(__import__("great_expectations").__file__).parent / "render" / "view" / "templates"


class Elements(HTMLParser):
    """Every start tag of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def run_record(**changes) -> RunRecord:
    history = {
        "loss": [1.2, 0.8, 0.5],
        "val_loss": [1.3, 0.9, 0.7],
        "accuracy": [0.6, 0.8, 0.9],
        "val_accuracy": [0.55, 0.75, 0.85],
    }
    base = dict(
        pipeline="digits",
        model="digits",
        run_id="manual__2026-12-01T10:00:00+00:00",
        prefix="runs/digits/manual__2026-12-01T10_00_00_00_00",
        ingest={
            "snapshot_key": "datasets/digits/abc/snapshot.npz",
            "snapshot_hash": "abcdef0123456789",
            "rows": {"train": 1200, "validation": 200, "test": 397},
            "source": {"kind": "digits"},
        },
        validate={
            "success": False,
            "rows": 1797,
            "evaluated_expectations": 17,
            "failed_expectations": 1,
            "failed": ["values.missing"],
            "failure_messages": [f"values.missing (no missing pixels): 3 rows {EVIL}"],
            "data_docs_key": "runs/digits/r/validate/data_docs/index.html",
            "drift": {"statistics": {}},
        },
        train={
            "epochs_completed": 3,
            "training_seconds": 4.2,
            "final_metrics": {k: v[-1] for k, v in history.items()},
            "history": history,
        },
        evaluate={
            "test_rows": 397,
            "snapshot_key": "datasets/digits/abc/snapshot.npz",
            "report_key": "runs/digits/r/evaluate/report.html",
            "candidate": {
                "accuracy": 0.9,
                "log_loss": 0.3,
                "ece": 0.02,
                "per_class": [
                    {"class": 0, "name": EVIL, "recall": 0.5, "support": 40},
                    {"class": 1, "name": "one", "recall": 0.95, "support": 40},
                ],
            },
            "champion": {"version": 1, "accuracy": 0.88, "log_loss": 0.35, "ece": 0.03},
            "comparison": {
                "accuracy_delta": 0.02,
                "mcnemar_p_value": 0.04,
                "bootstrap_ci": {"low": 0.001, "high": 0.04},
            },
        },
        blessing={
            "blessed": False,
            "result": "rejected",
            "reasons": ["accuracy_floor: 0.9000 < 0.9500"],
            "checks": [
                {
                    "name": "accuracy_floor",
                    "observed": 0.9,
                    "threshold": 0.95,
                    "verdict": "fail",
                    "detail": EVIL,
                }
            ],
            "decided_at": "2026-12-01T10:05:00Z",
        },
        final_report_key=None,
        version=None,
        moves=(),
        rollout=None,
        champion_now=1,
        description=f"Digits {EVIL}",
    )
    base.update(changes)
    return RunRecord(**base)


def test_run_page_tells_the_story_and_escapes_everything() -> None:
    trigger = Trigger(
        run_type="manual",
        triggered_by="ui",
        user=EVIL,
        state="failed",
        start="2026-12-01T10:00:00+00:00",
        conf={"epochs": 3, "force_reason": EVIL},
        params={"epochs": 3, "batch_size": 64, "force_reason": EVIL},
        tasks=(
            TaskState("ingest", "success", 1, "/dags/x/runs/r/tasks/ingest"),
            TaskState("validate", "failed", 1),
        ),
    )
    page = render_run_page(
        run_record(), trigger=trigger, artifact_url=lambda key: f"/a/{key}" if key else None
    )
    elements = parsed(page)
    # an injected class name, message, user, reason or description stays text
    assert "script" not in elements.tags and "img" not in elements.tags
    assert EVIL in "".join(elements.text)
    # the verdicts are words, not colours alone
    assert "FAILED" in page and "REJECTED" in page and "\u2718" in page
    # the failed check, the curves and the comparison are there, numbers formatted alike
    assert "values.missing (no missing pixels)" in page
    assert page.count("<svg") == 2 and page.count("<polyline") == 4
    assert "0.9000" in page and "+0.0200" in page and "1,200" in page
    assert "2026-12-01 10:00:00 UTC" in page and "2026-12-01 10:05:00 UTC" in page
    assert "/a/runs/digits/r/validate/data_docs/index.html" in page
    assert "/dags/x/runs/r/tasks/ingest" in page
    # no rollout record: no rollout section; no external request of any kind
    assert "id='rollout'" not in page
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", page)


def test_rollout_section_only_with_a_rollout_record() -> None:
    rollout = {
        "status": "promoted",
        "steps": [{"weight": 10, "decision": "advance"}, {"weight": 100, "decision": "promote"}],
    }
    page = render_run_page(run_record(rollout=rollout))
    assert "id='rollout'" in page and "promote" in page and "advance" in page


def test_run_page_of_a_run_that_only_ingested() -> None:
    page = render_run_page(run_record(validate=None, train=None, evaluate=None, blessing=None))
    assert page.count("NOT RUN") == 4 and "<svg" not in page


def test_chart_axis_covers_every_value_and_marks_each_epoch() -> None:
    assert _ticks(0.41, 0.955)[0] <= 0.41 and _ticks(0.41, 0.955)[-1] >= 0.955
    svg = line_chart(
        "Accuracy", {"train": [0.4 + i / 20 for i in range(10)], "validation": [0.5] * 10}, y_label="accuracy"
    )
    assert svg.count("<circle") == 10 + 1 and svg.count("<rect") == 1 + 10 + 1  # + legend markers, frame
    assert "<title" in svg and "train" in svg and "validation" in svg


def test_number_and_time_formats() -> None:
    assert num(0.1) == "0.1000" and num(None) == "-" and num(float("nan")) == "-"
    assert delta(0.01) == "+0.0100" and delta(-0.002) == "-0.0020"
    assert when("2026-12-01T22:21:16.123Z") == "2026-12-01 22:21:16 UTC"
    assert when("2026-12-01T23:00:00+01:00") == "2026-12-01 22:00:00 UTC"


def _registered(tmp_path: Path) -> tuple[str, ModelRegistry]:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    registry = ModelRegistry(store, "digits")
    for n, (run, accuracy) in enumerate((("run-1", 0.91), ("run-2", 0.93)), start=1):
        store.put_bytes(f"runs/digits/{run}/train/model/saved_model.pb", b"graph")
        store.put_json(
            f"runs/digits/{run}/evaluate/result.json",
            {
                "candidate": {"accuracy": accuracy},
                **({"golden": {"candidate": {"accuracy": 0.9}}} if n == 2 else {}),
            },
        )
        registry.register(
            f"runs/digits/{run}/train/model",
            {"pipeline": "digits", "blessing": {"result": "blessed"}},
            run_id=run,
            actor="airflow:ada",
        )
        registry.set_alias("champion", n, actor="airflow:ada", run_id=run, reason=f"gate blessed {EVIL}")
    return url, registry


def test_model_page_versions_history_and_serving(tmp_path: Path) -> None:
    _, registry = _registered(tmp_path)
    record = load_model(registry.store, "digits", "digits")
    assert record.serving == 2
    assert [(v.number, v.test_accuracy, v.golden_accuracy) for v in record.versions] == [
        (1, 0.91, None),
        (2, 0.93, 0.9),
    ]
    page = render_model_page(record, run_url=lambda p, r: f"/runs/{p}/{r}")
    elements = parsed(page)
    assert "script" not in elements.tags and "img" not in elements.tags
    assert (
        "SERVING v2" in page and "not measured" in page and "0.9300" in page and "/runs/digits/run-2" in page
    )
    text = model_text(record)
    assert "serving    v2 (champion)" in text and "champion: v1 -> v2" in text and "why: gate blessed" in text


def test_history_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, _ = _registered(tmp_path)
    assert cli.main(["history", "digits", "--store", url]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Model digits") and "v2" in out and "airflow:ada" in out
    assert cli.main(["history", "Not A Model!", "--store", url]) == 65
    assert "invalid model name" in capsys.readouterr().err


def test_vendored_assets_cover_every_cdn_file_gx_references() -> None:
    referenced = set()
    for template in GX_TEMPLATES.glob("*.j2"):
        for url in re.findall(r"""(?:src|href)=["'](https://[^"']+)["']""", template.read_text()):
            if re.search(r"\.(css|js)$|/npm/vega", url):
                referenced.add(url)
    assert referenced and referenced <= set(assets.cdn_map())
    for path in assets.vendored_paths():
        data, content_type, etag = assets.read_asset(path)
        assert data and etag.strip('"') == hashlib.sha256(data).hexdigest()[:32]
        if path.endswith(".woff2"):
            assert content_type == "font/woff2"
    with pytest.raises(assets.AssetNotFound):
        assets.read_asset("../assets.py")


def test_offline_html_leaves_no_cdn_asset() -> None:
    page = "".join(
        f"<script src='{url}'></script>" if url.endswith(("js", "@5", "@6")) else f"<link href='{url}'>"
        for url in assets.cdn_map()
    )
    page += "<img src='https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1'>"
    out = assets.offline_html(page, "/slipway/static/vendor", "../../")
    assert "https://" not in out
    assert "/slipway/static/vendor/vega@5.33.1/build/vega.min.js" in out
    assert "'../../static/images/logo-long.png'" in out
    assert (
        assets.site_root_from(
            "r/validate/data_docs/validations/a/b/c.html", "r/validate/data_docs/index.html"
        )
        == "../../../"
    )
