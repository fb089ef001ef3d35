"""Screenshots of the Airflow UI for docs/airflow-ui.md: the DAG list and the trigger form.

Needs a running ``make airflow`` and Playwright for Python in a throwaway venv (not the project's
venv; it drives the system Chromium, so no browser download)::

    python3 -m venv /tmp/pwvenv && /tmp/pwvenv/bin/pip install playwright
    command -v chromium || sudo apt-get install -y chromium      # Debian/Ubuntu
    /tmp/pwvenv/bin/python docs/screenshot_trigger_form.py       # from the repository root

It logs in with a token for ``admin`` (the password ``make airflow`` printed, read from
``<state>/airflow/passwords.json``), saves ``docs/dags-list.png``, opens
``/dags/retrain_pipeline``, clicks *Trigger*, expands the *Run Parameters* section so every
field shows its description, types a reason and saves ``docs/trigger-form.png``. With
``--submit`` it then presses the form's *Trigger* button, i.e. starts a real manual run.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from pathlib import Path

from playwright.sync_api import Locator, Page, sync_playwright

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "retrain_pipeline"
DAG_IDS = ("retrain_monitor", "retrain_pipeline", "retrain_promote", "retrain_rollback")
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


def token(url: str, password: str) -> str:
    """A JWT from Airflow's simple auth manager (what the login page stores in ``_token``)."""
    request = urllib.request.Request(
        f"{url}/auth/token",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.load(response)["access_token"])


def dag_list(page: Page, url: str, out: Path) -> None:
    page.goto(f"{url}/dags", wait_until="networkidle")
    for dag_id in DAG_IDS:
        page.get_by_role("link", name=dag_id, exact=True).first.wait_for(timeout=30_000)
    page.wait_for_timeout(1_000)  # run bars and toggles render after the names
    page.screenshot(path=out, clip={"x": 0, "y": 0, "width": 1280, "height": 880})


def trigger_form(page: Page, url: str, out: Path, reason: str) -> Locator:
    page.goto(f"{url}/dags/{DAG_ID}", wait_until="networkidle")
    page.get_by_role("button", name="Trigger").first.click()  # the DAG header's button
    dialog = page.get_by_role("dialog")
    dialog.wait_for(state="visible", timeout=15_000)
    section = dialog.get_by_role("button", name="Run Parameters")
    if section.get_attribute("aria-expanded") != "true":  # one accordion section is open at a time
        section.click()
    field = dialog.get_by_text("Why this run is started by hand")
    field.wait_for(timeout=10_000)
    if reason:
        dialog.locator("input[name='element_reason']").fill(reason)  # Param "reason"
    page.wait_for_timeout(800)
    dialog.screenshot(path=out)
    return dialog


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="Airflow UI")
    parser.add_argument("--state", type=Path, default=None, help="make airflow's state directory")
    parser.add_argument("--password", default=None, help="admin password (default: from --state)")
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where the PNGs go")
    parser.add_argument("--reason", default="manual run from the UI", help="typed into Reason")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument("--submit", action="store_true", help="press Trigger (starts a run)")
    args = parser.parse_args()

    password = args.password
    if password is None:
        passwords = (args.state or default_state()) / "airflow" / "passwords.json"
        password = json.loads(passwords.read_text(encoding="utf-8"))["admin"]
    jwt = token(args.url, password)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 1800})
        context.add_cookies([{"name": "_token", "value": jwt, "url": args.url}])
        page = context.new_page()
        dag_list(page, args.url, args.out / "dags-list.png")
        dialog = trigger_form(page, args.url, args.out / "trigger-form.png", args.reason)
        print(f"saved {args.out / 'dags-list.png'} and {args.out / 'trigger-form.png'}")
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
