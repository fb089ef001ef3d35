"""The Retraining view in a real browser (issue 18): Debian's chromium driven by Playwright against
``airflow standalone`` on the demo's state (see ``conftest.py``).

A user logs in on Airflow's login page, opens Browse -> Retraining from the nav, opens the demo's
model, sees production (the version the registry says), clicks *Roll back*, reads which version
will serve, gives a reason, confirms, and watches the page (it reloads while the run is active)
until production is the restored version and the production timeline has the new audit entry
with that reason. The registry must agree: production moved, and the audit entry names the
Airflow user as its actor. Airflow's run of ``retrain_rollback`` says it was triggered from the
UI by that user.

Screenshots of each page go to ``$RETRAIN_SCREENSHOTS`` (``docs/retraining_view`` for the docs)
or the test's temporary directory: the model list, the model page, the confirmation, the page
while the run is active, the page after the rollback, the production timeline, a retraining run's
record, the drift section and Airflow's page of the rollback run.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, FrameLocator, Locator, Page, expect, sync_playwright

from retrain.registry import ModelRegistry
from tests.browser.conftest import ROLLBACK_DAG, DemoAirflow

MODEL = "churn-classifier"
ADMIN = "admin"
VIEWPORT = {"width": 1280, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: How long the rollback run may take, from the click to the page showing the new state.
ROLLBACK_TIMEOUT_MS = 150_000
#: How long after Airflow's run finished the page may take to reload and show it (two reloads
#: of 5 s and a slow render on a loaded machine).
RELOAD_GRACE_S = 30.0
#: Airflow's first page loads and the view's pages on a loaded 2-core machine.
PAGE_TIMEOUT_MS = 60_000


class Shots:
    """Numbered PNGs of the whole browser page (Airflow's nav and the view's frame), reduced to
    256 colours (a third of the size; text and badges look the same)."""

    def __init__(self, page: Page, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.saved: list[Path] = []

    def take(self, name: str) -> Path:
        self.page.wait_for_timeout(300)  # let fonts and the frame's layout settle
        path = self.directory / f"{len(self.saved) + 1:02d}-{name}.png"
        self.page.screenshot(path=path)
        with Image.open(path) as shot:
            small = shot.convert("RGB").quantize(256, dither=Image.Dither.NONE)
        small.save(path, optimize=True)
        self.saved.append(path)
        return path


def log_in(page: Page, url: str, password: str) -> None:
    """Airflow's own login page, as a user: the app redirects there, the form signs in."""
    page.goto(url)
    page.wait_for_url(re.compile(r"/auth/login"))
    page.locator("input[name=username]").fill(ADMIN)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda current: "/auth/login" not in current)
    expect(page.get_by_role("button", name="Browse")).to_be_visible()


def open_retraining(page: Page) -> FrameLocator:
    """Browse -> Retraining from Airflow's nav; the view's frame."""
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="Retraining").click()
    page.wait_for_url(re.compile(r"/plugin/retrain$"))
    return page.frame_locator("iframe[title='Retraining']")


def cards(view: FrameLocator) -> Locator:
    """The model page's *What serves now* cards: production, canary, what a rollback restores."""
    return view.locator("#serving + .cards > .card")


def timeline_row(view: FrameLocator, reason: str) -> Locator:
    """The row of the production timeline (the first table after its heading) with ``reason``."""
    return view.locator("#timeline ~ table").first.locator("tbody tr", has_text=reason)


def open_model(view: FrameLocator) -> None:
    view.get_by_role("link", name=MODEL, exact=True).click()
    expect(view.get_by_role("heading", name=MODEL, level=1)).to_be_visible()


def run_state(airflow: DemoAirflow, run_id: str) -> str:
    return str(airflow.rest.call(f"/api/v2/dags/{ROLLBACK_DAG}/dagRuns/{run_id}")["state"])


def wait_for_rollback(
    view: FrameLocator, airflow: DemoAirflow, shots: Shots, problems: list[str]
) -> tuple[str, float]:
    """After the confirmation: the model page with the triggered run's note, which reloads by
    itself every 5 s until the run finishes. The run id and the seconds from the redirect to
    the page saying the run finished (or, when the page did not reload by itself within
    :data:`RELOAD_GRACE_S` of Airflow's run finishing, a problem and the model opened again)."""
    note = view.locator("div.note", has_text="Rollback triggered")
    expect(note).to_contain_text(f"by {ADMIN}")
    began = time.monotonic()
    run_id = note.locator("a").first.inner_text().strip()
    assert run_id.startswith("retrain_ui__"), run_id
    if "State:" in note.inner_text():  # still queued or running: the page reloads
        shots.take("rollback-triggered")
    finished: float | None = None
    while time.monotonic() - began < ROLLBACK_TIMEOUT_MS / 1000:
        shown = note.inner_text()
        if "It succeeded" in shown or "It failed" in shown:
            assert "It succeeded" in shown, shown
            return run_id, time.monotonic() - began
        if finished is None and run_state(airflow, run_id) in ("success", "failed"):
            finished = time.monotonic()
        if finished is not None and time.monotonic() - finished > RELOAD_GRACE_S:
            problems.append(
                f"the model page did not reload by itself: Airflow's run {run_id} finished "
                f"{time.monotonic() - finished:.0f} s ago (state {run_state(airflow, run_id)}) "
                f"and the page still says: {shown!r}"
            )
            view.get_by_role("link", name="Retraining", exact=True).click()
            open_model(view)
            return run_id, time.monotonic() - began
        time.sleep(1.0)
    raise AssertionError(f"rollback run {run_id} not finished after {ROLLBACK_TIMEOUT_MS} ms")


def walk(
    browser: Browser, airflow: DemoAirflow, reason: str, problems: list[str]
) -> dict[str, object]:
    """The whole user story in one browser context; what it saw. What the view got wrong but
    the story could go on after (the page not reloading, a stale state) goes to ``problems``."""
    registry = ModelRegistry(airflow.config)
    before = registry.current("production")["production"].version
    target = registry.rollback_target()
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    page = context.new_page()
    shots = Shots(page, airflow.screenshots)
    try:
        log_in(page, airflow.url, airflow.password)
        view = open_retraining(page)

        # the model list: the demo's model with the production version the registry has
        row = view.locator("table.models tbody tr", has_text=MODEL)
        expect(row.locator("td").nth(1)).to_have_text(f"v{before}")
        shots.take("model-list")

        # the model page: what serves now, and what a rollback restores
        open_model(view)
        expect(cards(view).nth(0).locator(".big")).to_have_text(f"v{before}")
        expect(cards(view).nth(2).locator(".big")).to_have_text(f"v{target}")
        shots.take("model-page")

        # Rollback: the confirmation names the version that will serve
        view.get_by_role("link", name=re.compile(r"^Roll back: production")).click()
        expect(view.get_by_role("heading", level=1)).to_have_text(
            f"Roll back production of {MODEL}"
        )
        expect(view.locator("p.note")).to_contain_text(
            f"Production v{before} → v{target}: after the run, v{target} serves {MODEL} "
            f"and v{before} becomes rolled_back."
        )
        view.locator("textarea[name=reason]").fill(reason)
        confirm = view.get_by_role("button", name=f"Roll back to v{target}")
        expect(confirm).to_be_visible()
        shots.take("rollback-confirm")
        confirm.click()

        # the model page again: the run, then (reloaded) the new state
        run_id, waited = wait_for_rollback(view, airflow, shots, problems)
        production = cards(view).nth(0).locator(".big")
        if production.inner_text().strip() != f"v{target}":
            problems.append(
                "the page says the rollback run succeeded but still shows production "
                f"{production.inner_text().strip()} (not v{target}): it read the registry "
                "before it read the run's state"
            )
            view.get_by_role("link", name="Retraining", exact=True).click()
            open_model(view)
        expect(production).to_have_text(f"v{target}")
        shots.take("rollback-done")
        entry = timeline_row(view, reason)
        expect(entry).to_have_count(1)
        expect(entry.locator("td").nth(1)).to_have_text("rollback")
        expect(entry.locator("td").nth(2)).to_have_text(f"v{before} → v{target}")
        expect(entry.locator("td").nth(3)).to_have_text(ADMIN)
        expect(entry.locator("td").nth(4)).to_have_text(reason)
        view.locator("#timeline").scroll_into_view_if_needed()
        shots.take("production-timeline")

        # a retraining run's record (the drift-triggered run that made v2), from the log
        record = view.locator("table.log tbody tr", has_text="drift:high_data_drift")
        retraining_id = record.locator("td").nth(1).inner_text().strip()
        record.get_by_role("link", name="record").click()
        expect(view.get_by_role("heading", level=1)).to_contain_text(retraining_id)
        shots.take("run-record")

        # the drift section of the model page
        view.get_by_role("link", name="the retraining log").click()
        drift = view.locator("h2#drift")
        drift.scroll_into_view_if_needed()
        expect(drift).to_be_visible()
        shots.take("drift")

        # Airflow's page of the rollback run (the link leaves the frame)
        view.get_by_role("link", name=run_id).first.click()
        page.wait_for_url(re.compile(rf"/dags/{ROLLBACK_DAG}/runs/{re.escape(run_id)}"))
        expect(page.get_by_text(run_id).first).to_be_visible()
        # not "networkidle": Airflow's run page keeps polling while the UI is open
        page.wait_for_timeout(2000)  # let its grid and details draw before the screenshot
        shots.take("airflow-run")
    finally:
        context.close()
    return {
        "before": before,
        "target": target,
        "run_id": run_id,
        "waited": waited,
        "shots": shots.saved,
    }


def test_rollback_from_the_retraining_view(demo_airflow: DemoAirflow, chromium: Path) -> None:
    reason = f"browser test {uuid.uuid4().hex[:8]}: rollback from the Retraining view"
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS
        )
        try:
            seen = walk(browser, demo_airflow, reason, problems)
        finally:
            browser.close()
    before, target, run_id = seen["before"], seen["target"], seen["run_id"]
    print(
        f"rollback v{before} -> v{target}: run {run_id} finished {seen['waited']:.0f} s after "
        f"the confirmation; screenshots: {[str(p) for p in seen['shots']]}"
    )

    # the registry agrees: production moved, the audit entry names the Airflow user
    registry = ModelRegistry(demo_airflow.config)
    assert registry.current("production")["production"].version == target
    [entry] = [e for e in registry.history(limit=20) if e.reason == reason]
    assert (entry.op, entry.from_version, entry.to_version) == ("rollback", before, target)
    assert (entry.actor, entry.state) == (ADMIN, "done")

    # and Airflow ran it as that user, triggered from the UI, with the reason as its note
    run = demo_airflow.rest.call(f"/api/v2/dags/{ROLLBACK_DAG}/dagRuns/{run_id}")
    assert run["state"] == "success"
    assert (run["triggered_by"], run["triggering_user_name"]) == ("ui", ADMIN)
    assert run["conf"]["reason"] == reason
    assert run["conf"]["expected_version"] == before
    print(
        f"Airflow run: queued {run['queued_at']}, started {run['start_date']}, ended "
        f"{run['end_date']} ({run['duration']:.1f} s)"
    )
    assert not problems, "\n".join(problems)


def test_the_plugin_loads_once(demo_airflow: DemoAirflow) -> None:
    """No plugin import error: Airflow's home page would show one ("Plugin Import Error")."""
    errors = demo_airflow.rest.call("/api/v2/plugins/importErrors")["import_errors"]
    assert errors == []
    plugins = demo_airflow.rest.call("/api/v2/plugins")["plugins"]
    assert [p["name"] for p in plugins].count("retrain") == 1
