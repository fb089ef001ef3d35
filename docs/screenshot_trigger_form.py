"""Screenshots of the Airflow UI for docs/airflow-ui.md: the DAG list, the pipeline's graph, a
task log and the pipeline's trigger form.

Needs a running ``make airflow`` (best on the demo's state: ``make demo`` first) and Playwright
for Python in a throwaway venv (not the project's venv; it drives the system Chromium, so no
browser download)::

    python3 -m venv /tmp/pwvenv && /tmp/pwvenv/bin/pip install playwright
    command -v chromium || sudo apt-get install -y chromium      # Debian/Ubuntu
    /tmp/pwvenv/bin/python docs/screenshot_trigger_form.py       # from the repository root

It logs in with a token for ``admin`` (the password ``make airflow`` printed, read from
``<state>/airflow/passwords.json``) and saves, in ``docs/`` (1400x900 viewport):

* ``dags-list.png``: the DAG list (``/dags``);
* ``graph.png``: the graph of a pipeline run (top to bottom), by default the demo's data-driven
  run (the first asset-triggered run), else the newest run whose ``deploy`` succeeded;
* ``task-log.png``: the ``deploy`` task's log of that run, lines wrapped;
* ``trigger-form.png``: ``retrain_pipeline``'s *Trigger* dialog with every run parameter, a
  reason typed and *As of* picked (default 2026-02-23 01:00 UTC, inside the demo's data).

With ``--submit`` it then presses the form's *Trigger* button, i.e. starts a real manual run,
and prints the HTTP status and the run id.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "retrain_pipeline"
VIEWPORT = {"width": 1400, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def default_state() -> Path:
    demo = REPO / ".state" / "demo"
    return demo if demo.is_dir() else REPO / ".state" / "airflow"


def api(url: str, path: str, jwt: str | None = None, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if jwt:
        headers["Authorization"] = f"Bearer {jwt}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def token(url: str, password: str) -> str:
    """A JWT from Airflow's simple auth manager (what the login page stores in ``_token``)."""
    answer = api(url, "/auth/token", body={"username": "admin", "password": password})
    return str(answer["access_token"])


def pipeline_run(url: str, jwt: str) -> str | None:
    """The demo's data-driven run (first asset-triggered one), else the newest with a deploy."""
    runs = api(
        url,
        f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=asset_triggered&order_by=run_after&limit=1",
        jwt,
    )["dag_runs"]
    if runs:
        return str(runs[0]["dag_run_id"])
    deploys = api(
        url,
        f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances"
        "?task_id=deploy&state=success&order_by=-start_date&limit=1",
        jwt,
    )["task_instances"]
    return str(deploys[0]["dag_run_id"]) if deploys else None


def run_url(url: str, run_id: str) -> str:
    return f"{url}/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe='')}"


def dag_list(page: Page, url: str, out: Path) -> None:
    page.goto(f"{url}/dags", wait_until="networkidle")
    page.get_by_role("link", name=DAG_ID, exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1_500)  # run bars and toggles render after the names
    page.screenshot(path=out)


def graph(page: Page, url: str, run_id: str, out: Path) -> None:
    page.goto(run_url(url, run_id), wait_until="networkidle")
    page.get_by_role("button", name="Show Graph (Press g)").click()
    page.get_by_role("button", name="Options").click()  # the graph's settings (gear)
    page.get_by_role("combobox", name="Graph Direction").click()
    page.get_by_role("option", name="Top to Bottom").click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(800)
    page.get_by_role("button", name="Fit View").click()
    page.wait_for_timeout(1_200)
    page.screenshot(path=out)


def task_log(page: Page, url: str, run_id: str, task_id: str, out: Path) -> None:
    page.goto(f"{run_url(url, run_id)}/tasks/{task_id}", wait_until="networkidle")
    page.get_by_role("button", name="Show Grid (Press g)").click()  # the log gets the width
    page.get_by_text(f"{task_id}:").first.wait_for(timeout=15_000)  # our lines ("deploy: ...")
    page.get_by_role("button", name="Log Settings").click()
    page.get_by_role("menuitem", name="Wrap").click()
    page.wait_for_timeout(800)
    page.screenshot(path=out, clip={"x": 0, "y": 0, "width": 1400, "height": 620})


def trigger_form(page: Page, url: str, out: Path, reason: str, as_of: str) -> Locator:
    page.set_viewport_size({"width": 1400, "height": 1700})  # the whole dialog in one shot
    page.goto(f"{url}/dags/{DAG_ID}", wait_until="networkidle")
    page.get_by_role("button", name="Trigger Dag").click()  # the DAG header's button
    dialog = page.get_by_role("dialog").first
    dialog.wait_for(state="visible", timeout=15_000)
    section = dialog.get_by_role("button", name="Run Parameters")
    if section.get_attribute("aria-expanded") != "true":  # one accordion section is open at a time
        section.click()
    dialog.get_by_text("Why this run is started by hand").wait_for(timeout=10_000)
    if reason:
        dialog.locator("input[name='element_reason']").fill(reason)  # Param "reason"
    if as_of:  # "YYYY/MM/DD HH:mm", UTC: the date-time picker of Param "as_of"
        day, time = as_of.split()
        page.get_by_test_id("datetime-input").last.click()
        picker = page.locator("[data-scope=popover][data-part=content]").last
        picker.get_by_placeholder("YYYY/MM/DD").fill(day)
        picker.get_by_placeholder("HH:mm").fill(time)
        dialog.get_by_text("As of", exact=True).click()  # closes the picker
    page.wait_for_timeout(800)
    dialog.screenshot(path=out)
    return dialog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Airflow UI")
    parser.add_argument("--state", type=Path, default=None, help="make airflow's state directory")
    parser.add_argument("--password", default=None, help="admin password (default: from --state)")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where the PNGs go")
    parser.add_argument("--reason", default="replay the drift week", help="typed into Reason")
    parser.add_argument(
        "--as-of", default="2026/02/23 01:00", help="picked in As of (UTC); '' leaves it empty"
    )
    parser.add_argument("--run", default=None, help="pipeline run for graph.png and task-log.png")
    parser.add_argument("--task", default="deploy", help="task whose log goes into task-log.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument("--submit", action="store_true", help="press Trigger (starts a run)")
    args = parser.parse_args()

    password = args.password
    if password is None:
        passwords = (args.state or default_state()) / "airflow" / "passwords.json"
        password = json.loads(passwords.read_text(encoding="utf-8"))["admin"]
    jwt = token(args.url, password)
    run_id = args.run or pipeline_run(args.url, jwt)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        context.add_cookies([{"name": "_token", "value": jwt, "url": args.url}])
        page = context.new_page()
        saved = [args.out / "dags-list.png"]
        dag_list(page, args.url, saved[-1])
        if run_id:
            saved.append(args.out / "task-log.png")
            task_log(page, args.url, run_id, args.task, saved[-1])
            saved.append(args.out / "graph.png")
            graph(page, args.url, run_id, saved[-1])
        else:
            print(f"no {DAG_ID} run with a deploy yet: graph.png and task-log.png not made")
        saved.append(args.out / "trigger-form.png")
        dialog = trigger_form(page, args.url, saved[-1], args.reason, args.as_of)
        print("saved " + ", ".join(map(str, saved)) + (f" (run {run_id})" if run_id else ""))
        if args.submit:
            with page.expect_response(
                lambda r: r.url.endswith("/dagRuns") and r.request.method == "POST"
            ) as answer:
                dialog.get_by_role("button", name="Trigger", exact=True).click()
            body = answer.value.json()
            print(f"submitted: HTTP {answer.value.status}, run {body.get('dag_run_id', body)}")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
