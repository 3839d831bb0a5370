"""The runbook's UI operations, end to end: `reminder-pipeline ui` starts `dagster dev` (webserver
and daemon) on 127.0.0.1 with run history in PostgreSQL; the test launches a run through the
GraphQL API, finds its log row, stops and restarts the schedule, reads run history, and looks at the
UI in headless Chromium."""

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from dagster_graphql import DagsterGraphQLClient

from reminder_pipeline_tests import REPOSITORY as PROJECT_ROOT
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.ui_process import code_location_errors, running_ui, ui_environment

pytestmark = pytest.mark.database
SCHEDULE = {
    "repositoryLocationName": "reminder_pipeline",
    "repositoryName": "__repository__",
    "scheduleName": "assignment_reminders_daily",
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: The README's screenshots are refreshed by running this test with REMINDER_PIPELINE_UPDATE_SCREENSHOTS=1.
IMAGES = PROJECT_ROOT / "docs" / "img"


@pytest.fixture
def dagster_ui(
    database_url: str, server_url: str, tmp_path: Path
) -> Iterator[tuple[str, DagsterGraphQLClient, dict[str, str]]]:
    cli = [sys.executable, "-m", "reminder_pipeline.cli"]
    with (
        ui_environment(database_url, server_url, tmp_path) as env,
        running_ui(cli, env, tmp_path, tmp_path / "ui.log") as (base, port),
    ):
        assert code_location_errors(base) == []
        yield base, DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60), env


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(f"{base}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def _wait(client: DagsterGraphQLClient, run_id: str) -> str:
    deadline = time.monotonic() + 180
    while (status := client.get_run_status(run_id).value) not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() < deadline, f"run still {status}"
        time.sleep(1)
    return status


def _output_metadata(base: str, run_id: str, step: str) -> dict[str, str]:
    """The metadata a step's output shows on the run page, as text."""
    events = _graphql(
        base,
        "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename"
        " ... on ExecutionStepOutputEvent { stepKey metadataEntries { label ... on IntMetadataEntry { intValue }"
        " ... on TextMetadataEntry { text } ... on BoolMetadataEntry { boolValue } } } } } } }",
        {"id": run_id},
    )["logsForRun"]["events"]
    (output,) = [event for event in events if event.get("stepKey") == step and "metadataEntries" in event]
    return {
        entry["label"]: str(entry.get("intValue", entry.get("text", entry.get("boolValue")))).lower()
        for entry in output["metadataEntries"]
    }


def _schedule_status(base: str) -> tuple[str, str]:
    data = _graphql(
        base,
        "query($s: ScheduleSelector!) { scheduleOrError(scheduleSelector: $s) {"
        " ... on Schedule { scheduleState { id selectorId status } } } }",
        {"s": SCHEDULE},
    )
    state = data["scheduleOrError"]["scheduleState"]
    return state["status"], state["id"]


def _a_tick_that_raised_an_alert_says_so(base: str, client: DagsterGraphQLClient, db: sa.Connection) -> None:
    """Two failed runs; the daemon's next `ops_run_failures` tick requests a delivery run, and the
    tick itself names the alert (its run key) and logs it."""
    db.execute(sa.text("ALTER TABLE public.notifications RENAME TO notifications_moved"))
    config = {"ops": {"decide_reminders_op": {"config": {"as_of": "2026-11-22", "allow_any_date": True}}}}
    for _ in range(2):
        assert _wait(client, client.submit_job_execution("assignment_reminders", run_config=config)) == "FAILURE"
    selector = {
        "repositoryLocationName": "reminder_pipeline",
        "repositoryName": "__repository__",
        "sensorName": "ops_run_failures",
    }
    query = (
        "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { sensorState {"
        " ticks(limit: 10) { status runKeys runIds } } } } }"
    )
    deadline = time.monotonic() + 150
    while True:
        ticks = _graphql(base, query, {"s": selector})["sensorOrError"]["sensorState"]["ticks"]
        alerted = [tick for tick in ticks if tick["status"] == "SUCCESS" and tick["runKeys"]]
        if alerted:
            break
        assert time.monotonic() < deadline, ticks
        time.sleep(3)
    assert alerted[0]["runKeys"][0].startswith("consecutive_failures:assignment_reminders:run:")
    assert _wait(client, alerted[0]["runIds"][0]) == "SUCCESS"
    db.execute(sa.text("ALTER TABLE public.notifications_moved RENAME TO notifications"))


def _schedule_list_from_the_runbook(env: dict[str, str]) -> dict[str, str]:
    """`reminder-pipeline schedules`, as the runbook tells on-call to run it: it must print the
    state the UI shows."""
    done = subprocess.run(
        [sys.executable, "-m", "reminder_pipeline.cli", "schedules"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    states = dict(re.findall(r"^(\S+)  (RUNNING|STOPPED)\b", done.stdout, re.M))
    assert states, done.stdout[-2000:]
    return states


def _chromium(*args: str) -> str:
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            f"--user-data-dir={Path(os.environ.get('TMPDIR', '/tmp')) / ('chromium-' + uuid.uuid4().hex)}",
            "--window-size=1440,900",
            "--virtual-time-budget=20000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_launch_a_run_toggle_the_schedule_and_read_history_in_the_ui(
    db: sa.Connection, dagster_ui: tuple[str, DagsterGraphQLClient, dict[str, str]], tmp_path: Path
) -> None:
    base, client, env = dagster_ui
    mentor = factories.mentor(db, factories.coordinator(db))
    factories.assignment(db, mentor, assigned_on=dt.date(2026, 10, 1))
    stale = factories.assignment(db, mentor, assigned_on=dt.date(2026, 11, 1))  # behind its activity:
    db.execute(
        sa.text(
            "INSERT INTO public.activities (assignment_id, mentor_id, activity_date) VALUES (:a, :m, '2026-11-20')"
        ),
        {"a": stale, "m": mentor},
    )
    db.execute(sa.text("UPDATE public.assignments SET last_contact_date = '2026-11-01' WHERE id = :a"), {"a": stale})

    dry_run = client.submit_job_execution(
        "assignment_reminders",
        run_config={
            "ops": {"decide_reminders_op": {"config": {"as_of": "2026-11-22", "allow_any_date": True, "dry_run": True}}}
        },
    )
    assert _wait(client, dry_run) == "SUCCESS"
    assert db.execute(sa.text("SELECT count(*) FROM public.notifications")).scalar() == 0
    assert factories.log_rows(db) == []
    dry_metadata = _output_metadata(base, dry_run, "finish_guarded_run")
    assert dry_metadata["dry_run"] == "true" and dry_metadata["created"] == "4"

    run_id = client.submit_job_execution(
        "assignment_reminders",
        run_config={"ops": {"decide_reminders_op": {"config": {"as_of": "2026-11-22", "allow_any_date": True}}}},
    )
    deadline = time.monotonic() + 180
    while (status := client.get_run_status(run_id).value) not in ("SUCCESS", "FAILURE", "CANCELED"):
        assert time.monotonic() < deadline, f"run still {status}"
        time.sleep(1)
    assert status == "SUCCESS"
    (row,) = factories.log_rows(db)
    assert (row.status, row.dagster_run_id, row.reminders_dispatched) == ("success", run_id, 4)

    materializations = _graphql(
        base,
        '{ assetOrError(assetKey: {path: ["reminder_outbox"]}) { ... on Asset { assetMaterializations(limit: 5)'
        " { runId metadataEntries { label ... on IntMetadataEntry { intValue }"
        " ... on TextMetadataEntry { text } } } } } }",
    )["assetOrError"]["assetMaterializations"]
    assert [m["runId"] for m in materializations] == [run_id]  # the dry run materialised nothing
    values = {e["label"]: e.get("intValue", e.get("text")) for e in materializations[0]["metadataEntries"]}
    assert (values["created"], values["as_of"], values["execution_log_id"]) == (4, "2026-11-22", str(row.id))
    checks = _graphql(
        base,
        '{ assetNodeOrError(assetKey: {path: ["reminder_outbox"]}) { ... on AssetNode { assetChecksOrError {'
        " ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } } } } }",
    )["assetNodeOrError"]["assetChecksOrError"]["checks"]
    statuses = {check["name"]: (check["executionForLatestMaterialization"] or {}).get("status") for check in checks}
    assert statuses["last_contact_date_current"] == "FAILED" and statuses["no_run_running_too_long"] == "SUCCEEDED"

    for bad_date, rule in [("15.12.2026", "must be a date"), ("9999-12-31", "allow_any_date")]:
        refused = client.submit_job_execution(
            "assignment_reminders", run_config={"ops": {"decide_reminders_op": {"config": {"as_of": bad_date}}}}
        )
        assert client.get_run_status(refused).value == "CANCELED"  # refused before it was queued
        events = _graphql(
            base,
            "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { ... on MessageEvent"
            " { message } } } } }",
            {"id": refused},
        )["logsForRun"]["events"]
        assert any("refused at launch" in event.get("message", "") and rule in event["message"] for event in events)
        assert all(bad_date not in event.get("message", "") for event in events)
    assert len(factories.log_rows(db)) == 1  # nothing ran

    status, state_id = _schedule_status(base)
    assert status == "RUNNING"
    stopped = _graphql(
        base,
        "mutation($id: String) { stopRunningSchedule(id: $id) {"
        " ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }",
        {"id": state_id},
    )
    assert stopped["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED", stopped
    assert _schedule_status(base)[0] == "STOPPED"
    assert _schedule_list_from_the_runbook(env)["assignment_reminders_daily"] == "STOPPED"
    started = _graphql(
        base,
        "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {"
        " ... on ScheduleStateResult { scheduleState { status } } } }",
        {"s": SCHEDULE},
    )
    assert started["startSchedule"]["scheduleState"]["status"] == "RUNNING"
    assert _schedule_status(base)[0] == "RUNNING"
    assert _schedule_list_from_the_runbook(env)["assignment_reminders_daily"] == "RUNNING"

    history = _graphql(base, "{ runsOrError(limit: 10) { ... on Runs { results { runId jobName status } } } }")
    assert {"runId": run_id, "jobName": "assignment_reminders", "status": "SUCCESS"} in history["runsOrError"][
        "results"
    ]

    _a_tick_that_raised_an_alert_says_so(base, client, db)

    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian package 'chromium'): the browser check did not run")
    job_page = f"{base}/locations/reminder_pipeline/jobs/assignment_reminders"
    job_dom = _chromium("--dump-dom", job_page)
    assert "assignment_reminders" in job_dom and "begin_guarded_run" in job_dom
    run_dom = _chromium("--dump-dom", f"{base}/runs/{run_id}")
    assert run_id[:8] in run_dom and "finish_guarded_run" in run_dom
    shots = {
        "dagster-job.png": job_page,
        "dagster-run.png": f"{base}/runs/{run_id}",
        "dagster-asset.png": f"{base}/assets/reminder_outbox",
    }
    for name, page in shots.items():
        _chromium(f"--screenshot={tmp_path / name}", page)
        assert (tmp_path / name).stat().st_size > 10_000  # a rendered page, not a blank one
        if os.environ.get("REMINDER_PIPELINE_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(tmp_path / name, IMAGES / name)
