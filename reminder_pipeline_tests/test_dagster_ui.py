"""The runbook's UI operations on the production topology, end to end: `reminder-pipeline serve
code-server`, `serve webserver` and `serve daemon` as three processes of their own (no `dagster dev`)
on 127.0.0.1, run history in PostgreSQL. The test launches runs through the GraphQL API (they run
through the gRPC code location), lets the daemon fire a schedule tick, raises an alert through the
daemon's sensor, stops and restarts the schedule, reads run history, survives a kill -9 of the code
server, looks at the UI in headless Chromium, and finally kills the daemon with -9: the watchdog, which
needs no Dagster process, reports it down and the external monitor is pinged `/fail`.
(`reminder-pipeline ui`, the laptop's `dagster dev`, is started from the installed wheel in
test_installed_package.py.)"""

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from dagster_graphql import DagsterGraphQLClient

from reminder_pipeline_tests import REPOSITORY as PROJECT_ROOT
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.http_peers import HttpPeer
from reminder_pipeline_tests.ui_process import Topology, code_location_errors, running_topology, ui_environment

pytestmark = pytest.mark.database
SCHEDULE = {
    "repositoryLocationName": "reminder_pipeline",
    "repositoryName": "__repository__",
    "scheduleName": "assignment_reminders_daily",
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: The README's screenshots are refreshed by running this test with REMINDER_PIPELINE_UPDATE_SCREENSHOTS=1.
IMAGES = PROJECT_ROOT / "docs" / "img"


@dataclass
class Deployment:
    base: str
    client: DagsterGraphQLClient
    env: dict[str, str]
    topology: Topology
    #: The external dead-man's switch (Healthchecks.io and the like) and Slack, both on 127.0.0.1.
    monitor: HttpPeer
    slack: HttpPeer


@pytest.fixture
def deployment(database_url: str, server_url: str, tmp_path: Path) -> Iterator[Deployment]:
    cli = [sys.executable, "-m", "reminder_pipeline.cli"]
    with (
        HttpPeer() as monitor,
        HttpPeer() as slack,
        ui_environment(database_url, server_url, tmp_path) as env,
    ):
        env = {
            **env,
            "SLACK_WEBHOOK_URL": slack.url,
            "HEARTBEAT_URL_ASSIGNMENT_REMINDERS": f"{monitor.url}/reminders",
            "HEARTBEAT_URL_CERTIFICATION_REMINDERS": f"{monitor.url}/nightly",
            "HEARTBEAT_URL_DAGSTER_DAEMON": f"{monitor.url}/daemon",
            # the default is 180; a loaded CI machine was seen delaying a heartbeat by 71 s: 90 keeps a margin
            # and saves half a minute of waiting for the killed daemon to count as down
            "DAEMON_STALE_SECONDS": "90",
        }
        with running_topology(cli, env, tmp_path) as topology:
            assert code_location_errors(topology.base) == []
            client = DagsterGraphQLClient("127.0.0.1", port_number=topology.webserver_port, timeout=60)
            yield Deployment(topology.base, client, topology.env, topology, monitor, slack)


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


def test_the_production_topology_from_launch_to_a_dead_daemon(
    db: sa.Connection, deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, client, env = deployment.base, deployment.client, deployment.env
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
    # The dead-man's switch heard this run start and succeed; the dry run pinged nothing.
    assert [request.path for request in deployment.monitor.requests] == ["/reminders/start", "/reminders"]

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

    history = _graphql(base, "{ runsOrError(limit: 10) { ... on Runs { results { runId jobName status } } } }")
    assert {"runId": run_id, "jobName": "assignment_reminders", "status": "SUCCESS"} in history["runsOrError"][
        "results"
    ]

    _a_cli_run_shows_on_the_jobs_page(deployment)
    _a_tick_that_raised_an_alert_says_so(base, client, db)
    assert len(deployment.slack.requests) == 1  # the consecutive-failure alert, through the daemon's sensor

    watchdog = _watchdog(env)
    assert watchdog.returncode == 0 and watchdog.stdout.startswith("dagster-daemon: alive"), watchdog.stdout
    assert deployment.monitor.requests[-1].path == "/daemon"
    deployment.topology.kill9("daemon")
    killed_at = time.monotonic()

    # While the dead daemon's last heartbeat ages: what needs no daemon. The schedule toggle (the
    # runbook's maintenance switch), a kill -9 of the code server, the UI in a browser.
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

    _the_code_location_survives_a_kill_9_of_its_server(deployment)
    if CHROMIUM is not None:
        _look_in_chromium(base, run_id, tmp_path)

    _a_dead_daemon_is_reported_by_the_watchdog(deployment, db, killed_at)
    _the_restarted_daemon_catches_up_the_missed_tick(deployment, monkeypatch)
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine (Debian package 'chromium'): the browser check did not run")


def _rendered(page: str, *expected: str, attempts: int = 3) -> None:
    """The page, rendered by the UI's own JavaScript, shows every `expected` text. The UI loads its
    data after the first paint (right after a code-server restart it may still be reloading the
    location), so a page without them is dumped again, a few times, before the check fails."""
    for _ in range(attempts):
        dom = _chromium("--dump-dom", page)
        if all(text in dom for text in expected):
            return
    missing = [text for text in expected if text not in dom]
    raise AssertionError(f"{page} never showed {missing} in {attempts} renderings (last: {len(dom)} characters)")


def _look_in_chromium(base: str, run_id: str, tmp_path: Path) -> None:
    job_page = f"{base}/locations/reminder_pipeline/jobs/assignment_reminders"
    _rendered(job_page, "assignment_reminders", "begin_guarded_run")
    _rendered(f"{base}/runs/{run_id}", run_id[:8], "finish_guarded_run")
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


def _the_restarted_daemon_catches_up_the_missed_tick(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon was down over the nightly schedule's 02:00 tick (the schedule's state says it last
    looked 23.9 hours ago); restarted, it launches that tick's run through the gRPC code location
    (the code server restarted after its kill -9: runs continue), the run resolves the overdue
    record, and the watchdog is content again."""
    from dagster import DagsterInstance
    from dagster._core.scheduler.instigation import ScheduleInstigatorData

    nightly = {**SCHEDULE, "scheduleName": "certification_reminders_nightly"}
    started = _graphql(
        deployment.base,
        "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {"
        " ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }",
        {"s": nightly},
    )  # a stored state for the schedule (RUNNING by default until now), as a toggle in the UI leaves it
    assert started["startSchedule"]["scheduleState"]["status"] == "RUNNING", started
    monkeypatch.setenv("DAGSTER_PG_URL", deployment.env["DAGSTER_PG_URL"])
    with DagsterInstance.from_config(str(deployment.topology.cwd / "dagster_home")) as instance:
        (state,) = [
            state
            for state in instance.all_instigator_state()
            if state.instigator_name == nightly["scheduleName"] and state.is_running
        ]
        since = time.time() - 23.9 * 3600  # one 02:00 tick in the window, whatever the time of day
        cron = state.instigator_data.cron_schedule
        instance.update_instigator_state(state.with_data(ScheduleInstigatorData(cron, since, since)))
    deployment.topology.start("daemon")

    query = (
        "query($f: RunsFilter) { runsOrError(filter: $f) { ... on Runs { results { runId status"
        " tags { key value } } } } }"
    )
    tag = {"key": "dagster/schedule_name", "value": nightly["scheduleName"]}
    deadline = time.monotonic() + 180
    while True:
        runs = _graphql(deployment.base, query, {"f": {"tags": [tag]}})["runsOrError"]["results"]
        if runs and all(run["status"] in ("SUCCESS", "FAILURE", "CANCELED") for run in runs):
            break
        assert time.monotonic() < deadline, runs
        time.sleep(2)
    assert {run["status"] for run in runs} == {"SUCCESS"}
    tags = {item["key"]: item["value"] for item in runs[0]["tags"]}
    assert tags["dagster/run_key"] == f"certification_reminders:{tags['reminder_pipeline/as_of']}"
    nightly_pings = [request.path for request in deployment.monitor.requests if request.path.startswith("/nightly")]
    assert nightly_pings == ["/nightly/start", "/nightly"] * len(runs)

    deadline = time.monotonic() + 120
    while (report := _watchdog(deployment.env)).returncode != 0:  # until the new daemon's first heartbeats
        assert time.monotonic() < deadline, report.stdout + report.stderr
        time.sleep(3)
    assert "no scheduled run is overdue" in report.stdout and deployment.monitor.requests[-1].path == "/daemon"


def _a_cli_run_shows_on_the_jobs_page(deployment: Deployment) -> None:
    """`reminder-pipeline run` with the deployment's settings: queued for the daemon, run by the code
    server, and listed where the job's page looks (runs of the job with this repository's label)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reminder_pipeline.cli",
            "run",
            "assignment-reminders",
            "--as-of",
            "2026-11-22",
            "--allow-any-date",
        ],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    queued = re.search(r"^run (\S+) of assignment_reminders queued \(the daemon starts it\)$", done.stdout, re.M)
    assert queued, done.stdout[-2000:]
    assert f"run {queued.group(1)} of assignment_reminders succeeded" in done.stdout
    job_page = _graphql(
        deployment.base,
        'query { pipelineOrError(params: {repositoryLocationName: "reminder_pipeline",'
        ' repositoryName: "__repository__", pipelineName: "assignment_reminders"}) {'
        " ... on Pipeline { runs(limit: 20) { runId } } } }",
    )
    assert queued.group(1) in [run["runId"] for run in job_page["pipelineOrError"]["runs"]]


def _the_code_location_survives_a_kill_9_of_its_server(deployment: Deployment) -> None:
    deployment.topology.kill9("code-server")
    assert code_location_errors(_reload(deployment.base)) != []  # the webserver says the location is down
    deployment.topology.start("code-server")  # what compose's restart policy and systemd's Restart= do
    deployment.topology.wait_until_serving("code-server")
    assert code_location_errors(_reload(deployment.base)) == []


def _reload(base: str) -> str:
    _graphql(
        base,
        'mutation { reloadRepositoryLocation(repositoryLocationName: "reminder_pipeline") { __typename } }',
    )
    return base


def _watchdog(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reminder_pipeline.cli", "watchdog"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _a_dead_daemon_is_reported_by_the_watchdog(deployment: Deployment, db: sa.Connection, killed_at: float) -> None:
    """kill -9 of the daemon: no schedule fires, no sensor runs. The watchdog (cron / systemd timer)
    reads the daemon's silence from storage, the database records the nightly job overdue once its
    expected time and grace pass, the monitor gets `/fail`, and operations one alert per incident."""
    # The nightly job's expected time came and went 40 minutes ago, with nothing to launch it.
    db.execute(
        sa.text(
            "UPDATE public.job_schedules SET daily_at = CAST((now() - interval '40 minutes') AT TIME ZONE timezone"
            " AS time), watched_since = now() - interval '2 days' WHERE job_name = 'certification_reminders'"
        )
    )
    deadline = killed_at + 240
    while (report := _watchdog(deployment.env)).returncode == 0 or "dagster-daemon: DOWN" not in report.stdout:
        assert time.monotonic() < deadline, report.stdout + report.stderr
        time.sleep(5)
    assert report.returncode == 1
    assert "certification_reminders: SCHEDULE OVERDUE" in report.stdout
    # The external monitor's view: the nightly job's expected ping never came (its check would alarm).
    assert not [request.path for request in deployment.monitor.requests if request.path.startswith("/nightly")]
    assert deployment.monitor.requests[-1].path == "/daemon/fail"
    texts = [request.json()["text"] for request in deployment.slack.requests[1:]]
    assert len(texts) == 2, texts
    assert any("dagster-daemon has not reported" in text for text in texts)
    assert any("certification_reminders was expected at" in text for text in texts)

    again = _watchdog(deployment.env)
    assert again.returncode == 1 and len(deployment.slack.requests) == 3  # the same incidents: no new alert
    logs = subprocess.run(
        [sys.executable, "-m", "reminder_pipeline.cli", "logs"],
        env=deployment.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert logs.stdout.startswith("SCHEDULE OVERDUE: 1\n  certification_reminders: SCHEDULE OVERDUE"), logs.stdout
