"""Two deliverers at once in two processes, and a delivery run killed with kill -9 mid-batch: no
notification is sent in two messages, and a message re-sent after the crash carries the same
Idempotency-Key, so a gateway that honours the key delivers it once."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from reminder_pipeline.delivery import repository
from reminder_pipeline_tests.dagster_helpers import run_job
from reminder_pipeline_tests.delivery.conftest import Recipients, deliver, policy, rows
from reminder_pipeline_tests.http_peers import HttpPeer, RecordedRequest
from reminder_pipeline_tests.ui_process import ui_environment

pytestmark = pytest.mark.database


def _messages(requests: list[RecordedRequest]) -> dict[str, set[tuple[int, ...]]]:
    """Every Idempotency-Key the gateway saw, with the notification lists sent under it."""
    sent: dict[str, set[tuple[int, ...]]] = defaultdict(set)
    for request in requests:
        sent[request.headers["Idempotency-Key"]].add(tuple(sorted(request.json()["notification_ids"])))
    return sent


def _one_key_per_notification(sent: dict[str, set[tuple[int, ...]]]) -> dict[int, str]:
    owner: dict[int, str] = {}
    for key, lists in sent.items():
        assert len(lists) == 1, f"message {key} was sent with different contents"
        for notification_id in next(iter(lists)):
            assert notification_id not in owner, f"notification {notification_id} went out in two messages"
            owner[notification_id] = key
    return owner


def concurrent_deliverer(database_url: str, push_url: str, name: str, start: object, done: object) -> None:
    """One of two deliverers in processes of their own (module level, for `spawn`)."""
    start.wait(60)  # type: ignore[attr-defined]
    result = deliver(database_url, policy(first_batch=3, max_batch=6), push_url=push_url, name=name, push_concurrency=2)
    done.put((name, result.messages))  # type: ignore[attr-defined]


def test_two_concurrent_deliverers_never_send_the_same_notification(
    db: sa.Connection, database_url: str, recipients: Recipients, gateway: HttpPeer
) -> None:
    everyone = [notification for _ in range(60) for notification in recipients.reminders(recipients.mentor(), 2)]
    gateway.delay_seconds = 0.02
    context = multiprocessing.get_context("spawn")
    start, done = context.Event(), context.Queue()
    workers = [
        context.Process(target=concurrent_deliverer, args=(database_url, gateway.url, f"deliverer-{n}", start, done))
        for n in (1, 2)
    ]
    for worker in workers:
        worker.start()
    time.sleep(3)  # both processes have imported everything and wait at the start line
    start.set()
    counts = [done.get(timeout=120)[1] for _ in workers]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0

    assert sum(counts) == 60 and min(counts) > 0, f"both deliverers should have worked: {counts}"
    sent = _messages(gateway.requests)
    assert len(gateway.requests) == len(sent) == 60  # no message was sent twice
    assert sorted(_one_key_per_notification(sent)) == sorted(everyone)
    stored = rows(db)
    assert {row.status for row in stored.values()} == {"delivered"}
    assert {row.claimed_by for row in stored.values()} == {"deliverer-1", "deliverer-2"}


@pytest.fixture
def environment(database_url: str, server_url: str, tmp_path: Path, gateway: HttpPeer) -> Iterator[dict[str, str]]:
    with ui_environment(database_url, server_url, tmp_path) as env:
        yield {**env, "PUSH_WEBHOOK_URL": gateway.url, "NOTIFICATION_QUIET_HOURS": "none"}


def test_a_delivery_run_killed_mid_batch_is_finished_by_the_next_under_the_same_keys(
    db: sa.Connection,
    database_url: str,
    recipients: Recipients,
    gateway: HttpPeer,
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    everyone = [notification for _ in range(60) for notification in recipients.reminders(recipients.mentor(), 1)]
    gateway.delay_after_requests, gateway.delay_seconds = 50, 60  # the first batch (50) goes through; then it hangs
    output = tmp_path / "run.log"
    with output.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "reminder_pipeline.cli", "run", "--in-process", "notification-delivery"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while len(gateway.requests) < 60:
        assert process.poll() is None, f"the delivery run ended by itself:\n{output.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the delivery run never reached its second batch"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)  # mid-batch: ten messages sent, none of them recorded
    process.wait(30)

    counts = repository.status_counts(db)
    assert counts == {"delivered": 50, "sending": 10}, counts
    (claimer,) = db.execute(
        sa.text("SELECT DISTINCT claimed_by FROM public.notifications WHERE status = 'sending'")
    ).scalars()
    while db.execute(
        sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :n"), {"n": claimer}
    ).scalar():
        assert time.monotonic() < deadline, "the killed run's session outlived it"
        time.sleep(0.1)

    gateway.delay_seconds = 0
    monkeypatch.setenv("PUSH_WEBHOOK_URL", gateway.url)
    monkeypatch.setenv("NOTIFICATION_QUIET_HOURS", "none")
    assert run_job(database_url, "notification_delivery").success  # the next run: the lock is free again

    assert repository.status_counts(db) == {"delivered": 60}
    sent = _messages(gateway.requests)
    assert len(sent) == 60 and len(gateway.requests) == 70  # ten re-sent after the crash ...
    assert sorted(_one_key_per_notification(sent)) == sorted(everyone)  # ... each under its own key again
    resent = [key for key, count in _request_counts(gateway.requests).items() if count == 2]
    assert len(resent) == 10


def _request_counts(requests: list[RecordedRequest]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for request in requests:
        counts[request.headers["Idempotency-Key"]] += 1
    return counts
