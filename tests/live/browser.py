"""A person in the Airflow web UI, played by headless Chromium (Debian's, never a download).

``trigger_from_ui`` logs in, opens the DAG's trigger form, sets the epochs (a value under
the schema's minimum is put back to it), tries a partition the schema refuses (the form shows
the API's 400 naming the field, and no run starts), sets a valid partition, triggers, waits for the run to
succeed, and opens the evaluation report from the evaluate task's extra-link button. Returns
the steps it took, one line each; screenshots go to ``screenshots/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from tests.live.airflow_server import AirflowServer

CHROMIUM = "/usr/bin/chromium"


def _number_input(page, name: str):
    """The form's number field for Param ``name`` (its +/- buttons name the input they control)."""
    increment = page.locator(f'[id="number-input:element_{name}:inc"]')
    return page.locator(f'[id="{increment.get_attribute("aria-controls")}"]')


def _open_section(dialog, section: str) -> None:
    trigger = dialog.locator(f'button[data-part="item-trigger"][id$=":trigger:{section}"]')
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()


def trigger_from_ui(
    server: AirflowServer,
    dag_id: str,
    username: str,
    password: str,
    *,
    epochs: int,
    partition: str = "good",
    screenshots: Path,
    run_timeout_s: float,
) -> list[str]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a loaded CI machine renders slowly
    screenshots.mkdir(parents=True, exist_ok=True)
    steps: list[str] = []

    def step(text: str) -> None:
        steps.append(f"{len(steps) + 1}. {text}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
            page.set_default_timeout(60_000)

            page.goto(server.url + "/")
            page.get_by_label("Username").fill(username)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda url: "/auth/login" not in url)
            step(f"logged in as {username} at {server.url}/auth/login")

            page.goto(f"{server.url}/dags/{dag_id}")
            page.get_by_role("button", name="Trigger Dag").click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text(f"Trigger Dag - {dag_id}")).to_be_visible()
            for section in ("Data", "Training", "Deployment"):
                expect(dialog.get_by_role("button", name=section)).to_be_visible()
            step("opened the trigger form: sections Data, Training, Deployment")

            submit = dialog.get_by_test_id("trigger-dag-submit")
            _open_section(dialog, "Training")  # one section is open at a time
            epochs_field = _number_input(page, "epochs")
            epochs_field.fill("0")
            epochs_field.blur()
            expect(epochs_field).to_have_value("1")
            step("typed epochs = 0: the form puts back the schema's minimum, 1")
            epochs_field.fill(str(epochs))
            epochs_field.blur()
            expect(epochs_field).to_have_value(str(epochs))
            page.screenshot(path=str(screenshots / "trigger-form.png"))
            step(f"set epochs = {epochs} in the Training section")

            runs_before = server.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["total_entries"]
            _open_section(dialog, "Data")
            partition_field = page.locator("#element_partition")
            partition_field.fill("../etc")
            submit.click()
            expect(dialog.get_by_text("Invalid input for param partition")).to_be_visible()
            page.screenshot(path=str(screenshots / "trigger-form-refused.png"))
            assert server.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["total_entries"] == runs_before
            step(
                "partition = ../etc, Trigger: refused in the form ('400 Bad Request - Invalid input for param partition'), no run"
            )

            partition_field.fill(partition)
            page.screenshot(path=str(screenshots / "trigger-form-data.png"))
            step(f"set partition = {partition} in the Data section")

            before = {
                r["dag_run_id"] for r in server.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
            }
            submit.click()
            clicked = time.monotonic()

            def new_run():
                runs = server.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
                return next((r for r in runs if r["dag_run_id"] not in before), None)

            run = server.wait_for("the run triggered from the form", new_run, timeout_s=60, every_s=1)
            assert run["conf"]["epochs"] == epochs and run["conf"]["partition"] == partition, run["conf"]
            step(f"clicked Trigger: run {run['dag_run_id']} with conf {run['conf']}")

            run_url = f"{server.url}/dags/{dag_id}/runs/{quote(run['dag_run_id'])}"
            page.goto(run_url)
            expect(page.get_by_text(run["dag_run_id"]).first).to_be_visible()
            page.goto("about:blank")  # the run page polls the API server; wait without it
            done = server.wait_run_finished(dag_id, run["dag_run_id"], run_timeout_s)
            assert done["state"] == "success", server.task_states(dag_id, run["dag_run_id"])
            page.goto(run_url)
            expect(page.get_by_text("Success", exact=True).first).to_be_visible()
            page.screenshot(path=str(screenshots / "run-success.png"))
            step(f"run page shows Success ({time.monotonic() - clicked:.0f}s after the click)")

            page.goto(f"{run_url}/tasks/evaluate/details")
            button = page.get_by_role("link", name="Evaluation report")
            button.click()
            page.wait_for_load_state("load")
            expect(page).to_have_title(f"Evaluation of digits - run {run['dag_run_id']}")
            expect(page.get_by_text("accuracy").first).to_be_visible()
            page.screenshot(path=str(screenshots / "evaluation-report.png"), full_page=True)
            step(f"evaluate task > Details > 'Evaluation report' opened {page.url}")
        finally:
            browser.close()
    return steps
