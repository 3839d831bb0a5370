"""Every status code of the admin API, through the framework's test client on a real database."""

import base64
import datetime as dt
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient

from reminder_pipeline.admin_api.app import create_app
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.run_config import today_local
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.admin_api.conftest import SECRET, bearer, make_token

pytestmark = pytest.mark.database
TODAY = today_local()


@pytest.fixture
def assignment(db: sa.Connection) -> uuid.UUID:
    mentor = factories.mentor(db, factories.coordinator(db))
    return factories.assignment(
        db, mentor, assigned_on=TODAY - dt.timedelta(days=90), last_contact_date=TODAY - dt.timedelta(days=3)
    )


def _url(assignment: uuid.UUID) -> str:
    return f"/admin/assignments/{assignment}/last-contact-date"


def _audit(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text("SELECT assignment_id, corrected_by, old_value, new_value, reason FROM public.last_contact_corrections")
    ).all()


def test_an_admin_moves_the_date_backwards_with_an_audit_row(
    client: TestClient, db: sa.Connection, assignment: uuid.UUID
) -> None:
    admin_id = uuid.uuid4()
    new_date = TODAY - dt.timedelta(days=20)
    response = client.put(
        _url(assignment),
        headers=bearer(make_token(role="admin", subject=str(admin_id))),
        json={"last_contact_date": new_date.isoformat(), "reason": "  registered on wrong assignment "},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["previous_last_contact_date"], body["last_contact_date"]) == (
        (TODAY - dt.timedelta(days=3)).isoformat(),
        new_date.isoformat(),
    )
    assert db.execute(sa.text("SELECT last_contact_date FROM public.assignments")).scalar() == new_date
    assert _audit(db) == [
        (assignment, admin_id, TODAY - dt.timedelta(days=3), new_date, "registered on wrong assignment")
    ]


def _unsigned_token() -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "sub": str(uuid.uuid4()),
        "aud": "authenticated",
        "exp": int(time.time()) + 600,
        "app_metadata": {"role": "admin"},
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        bearer("not-a-jwt"),
        bearer(make_token(role="admin", secret="some-other-secret-of-sufficient-length")),
        bearer(make_token(role="admin", expires_in=-10)),
        bearer(make_token(role="admin", audience="anon")),
        bearer(make_token(role="admin", algorithm="HS512")),
        "unsigned",
        bearer(make_token(role="admin", subject="not-a-uuid")),
    ],
    ids=[
        "missing",
        "empty",
        "basic",
        "malformed",
        "bad-signature",
        "expired",
        "audience",
        "other-algorithm",
        "alg-none",
        "subject",
    ],
)
def test_no_valid_token_is_401_and_writes_nothing(
    client: TestClient, db: sa.Connection, assignment: uuid.UUID, headers: dict | str
) -> None:
    headers = bearer(_unsigned_token()) if headers == "unsigned" else headers
    response = client.put(
        _url(assignment), headers=headers, json={"last_contact_date": TODAY.isoformat(), "reason": "x"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert _audit(db) == []


@pytest.mark.parametrize("role", [None, "coordinator", "Admin"])
def test_a_valid_non_admin_token_is_403(
    client: TestClient, db: sa.Connection, assignment: uuid.UUID, role: str | None
) -> None:
    response = client.put(
        _url(assignment),
        headers=bearer(make_token(role=role)),
        json={"last_contact_date": TODAY.isoformat(), "reason": "x"},
    )
    assert response.status_code == 403
    assert client.get("/admin/cron-runs", headers=bearer(make_token(role=role))).status_code == 403
    assert _audit(db) == []


def test_an_unknown_assignment_is_404(client: TestClient) -> None:
    response = client.put(
        _url(uuid.uuid4()),
        headers=bearer(make_token(role="admin")),
        json={"last_contact_date": TODAY.isoformat(), "reason": "x"},
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"last_contact_date": "22.11.2026", "reason": "x"},
        {"last_contact_date": "2026-02-30", "reason": "x"},
        {"last_contact_date": (TODAY + dt.timedelta(days=1)).isoformat(), "reason": "x"},
        {"last_contact_date": TODAY.isoformat()},
        {"last_contact_date": TODAY.isoformat(), "reason": "   "},
        {"last_contact_date": TODAY.isoformat(), "reason": "x", "extra": 1},
        {"last_contact_date": TODAY.isoformat(), "reason": "a\x00b"},
    ],
    ids=["format", "impossible-date", "future", "missing-reason", "blank-reason", "unknown-field", "nul"],
)
def test_a_bad_body_is_422(client: TestClient, db: sa.Connection, assignment: uuid.UUID, body: dict) -> None:
    response = client.put(_url(assignment), headers=bearer(make_token(role="admin")), json=body)
    assert response.status_code == 422
    assert _audit(db) == []


def test_cron_runs_lists_recent_log_rows_for_admins(client: TestClient, db: sa.Connection) -> None:
    execution_log.record_skipped(db, "assignment_reminders")
    response = client.get(
        "/admin/cron-runs", params={"job": "assignment_reminders", "limit": 5}, headers=bearer(make_token(role="admin"))
    )
    assert response.status_code == 200
    (row,) = response.json()
    assert (row["job_name"], row["status"], row["duration_ms"]) == ("assignment_reminders", "skipped", None)
    assert client.get("/admin/cron-runs").status_code == 401
    assert (
        client.get("/admin/cron-runs", params={"limit": 0}, headers=bearer(make_token(role="admin"))).status_code == 422
    )


def test_schedule_overdue_lists_what_the_watchdog_recorded_for_admins_only(
    client: TestClient, db: sa.Connection
) -> None:
    from reminder_pipeline.alerting.schedule_watch import record_overdue, sync_job_schedules
    from reminder_pipeline.definitions import JOB_SPECS

    sync_job_schedules(db, JOB_SPECS)
    db.execute(
        sa.text(
            "UPDATE public.job_schedules SET daily_at = CAST((now() - interval '2 hours') AT TIME ZONE timezone"
            " AS time), watched_since = now() - interval '2 days' WHERE job_name = 'certification_reminders'"
        )
    )
    (overdue,) = record_overdue(db)
    response = client.get("/admin/schedule-overdue", headers=bearer(make_token(role="admin")))
    assert response.status_code == 200
    (item,) = response.json()
    assert item["job_name"] == "certification_reminders" and item["last_success_at"] is None
    assert dt.datetime.fromisoformat(item["expected_at"]) == overdue.expected_at
    assert client.get("/admin/schedule-overdue", headers=bearer(make_token(role="coordinator"))).status_code == 403
    assert client.get("/admin/schedule-overdue").status_code == 401
    bad = client.get("/admin/schedule-overdue", params={"job": "x;drop"}, headers=bearer(make_token(role="admin")))
    assert bad.status_code == 422 and "drop" not in bad.text


def test_health_is_served_and_the_docs_only_when_switched_on(
    client: TestClient, database_url: str, jwt_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    monkeypatch.setenv("ADMIN_API_DOCS", "1")
    with TestClient(create_app(database_url)) as documented:
        spec = documented.get("/openapi.json").json()
        assert documented.get("/docs").status_code == 200
    assert "/admin/assignments/{assignment_id}/last-contact-date" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/admin/cron-runs"), client.get("/nowhere")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert response.headers["Cache-Control"] == "no-store"


def test_cors_is_off_unless_origins_are_listed(
    client: TestClient, database_url: str, jwt_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "PUT"}
    assert "access-control-allow-origin" not in client.options("/healthz", headers=preflight).headers
    monkeypatch.setenv("ADMIN_API_CORS_ORIGINS", "https://ops.example")
    with TestClient(create_app(database_url)) as allowed:
        good = allowed.options("/healthz", headers={**preflight, "Origin": "https://ops.example"})
        bad = allowed.options("/healthz", headers=preflight)
    assert good.headers["access-control-allow-origin"] == "https://ops.example"
    assert "access-control-allow-origin" not in bad.headers


def _put_raw(client: TestClient, assignment: uuid.UUID, body: bytes) -> httpx.Response:
    return client.put(
        f"/admin/assignments/{assignment}/last-contact-date",
        content=body,
        headers={**bearer(make_token(role="admin")), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b'{"last_contact_date": "2026-11-01", "reason": "x \\ud83d"}', "unicode"),
        (b'{"last_contact_date": "2026-11-01", "reason": "x \\u0000 y"}', "NUL"),
        (b'{"last_contact_date": "0001-01-01", "reason": "typo"}', "before 2000-01-01"),
        (b'{"last_contact_date": "9999-12-31", "reason": "typo"}', "future"),
        (b'{"last_contact_date": "2026-02-30", "reason": "typo"}', "date"),
        (b'{"last_contact_date": "2026-11-01", "reason": "' + b"y" * 1001 + b'"}', "at most 1000"),
        (b'{"last_contact_date": "2026-11-01", "reason": "ok", "extra": "secret-value"}', "Extra inputs"),
        (b"not json at all secret-value", "JSON"),
    ],
)
def test_hostile_bodies_are_a_422_that_names_the_rule_and_echoes_nothing(
    client: TestClient, assignment: uuid.UUID, body: bytes, rule: str
) -> None:
    response = _put_raw(client, assignment, body)
    assert response.status_code == 422, response.text
    assert rule in response.text
    for echoed in ("ud83d", "secret-value", "0001-01-01", "9999-12-31", "2026-02-30", "yyyyyyyy"):
        assert echoed not in response.text


def test_a_date_before_the_assignment_was_made_is_refused(
    client: TestClient, assignment: uuid.UUID, db: sa.Connection
) -> None:
    assigned = db.execute(
        sa.text("SELECT (assigned_at AT TIME ZONE 'Europe/Oslo')::date FROM public.assignments WHERE id = :a"),
        {"a": assignment},
    ).scalar()
    body = {"last_contact_date": (assigned - dt.timedelta(days=1)).isoformat(), "reason": "typo"}
    response = client.put(
        f"/admin/assignments/{assignment}/last-contact-date", json=body, headers=bearer(make_token(role="admin"))
    )
    assert response.status_code == 422 and "before the assignment was made" in response.text


@pytest.mark.parametrize("with_token", [True, False])
def test_a_huge_body_is_a_413_before_it_is_parsed(client: TestClient, assignment: uuid.UUID, with_token: bool) -> None:
    body = b'{"last_contact_date": "2026-11-01", "reason": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    headers = {"Content-Type": "application/json", **(bearer(make_token(role="admin")) if with_token else {})}
    started = time.monotonic()
    response = client.put(f"/admin/assignments/{assignment}/last-contact-date", content=body, headers=headers)
    assert response.status_code == 413 and time.monotonic() - started < 5
    assert len(response.content) < 200


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(client: TestClient, assignment: uuid.UUID) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"last_contact_date": "2026-11-01", "reason": "'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"}'

    response = client.put(
        f"/admin/assignments/{assignment}/last-contact-date",
        content=chunks(),
        headers={**bearer(make_token(role="admin")), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_tokens_and_the_secret_never_reach_the_logs(
    database_url: str, jwt_secret: str, assignment: uuid.UUID, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_token(role="admin")
    with caplog.at_level("DEBUG"), TestClient(create_app(database_url)) as client:
        client.put(
            _url(assignment), headers=bearer(token), json={"last_contact_date": TODAY.isoformat(), "reason": "x"}
        )
        client.put(_url(assignment), headers=bearer(token + "x"), json={"last_contact_date": "bad", "reason": "x"})
    assert token not in caplog.text and SECRET not in caplog.text


def test_against_a_real_uvicorn_server_on_loopback(
    database_url: str, jwt_secret: str, db: sa.Connection, assignment: uuid.UUID
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(database_url), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        unauthenticated = httpx.put(
            f"{base}{_url(assignment)}", json={"last_contact_date": TODAY.isoformat(), "reason": "x"}
        )
        assert unauthenticated.status_code == 401
        ok = httpx.put(
            f"{base}{_url(assignment)}",
            headers=bearer(make_token(role="admin")),
            json={"last_contact_date": TODAY.isoformat(), "reason": "phone call logged late"},
        )
        assert ok.status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
    assert len(_audit(db)) == 1


def test_the_database_down_is_a_503_with_retry_after_naming_no_host(jwt_secret: str, unused_port: int) -> None:
    url = f"postgresql://reminder:hunter2@127.0.0.1:{unused_port}/reminders"
    with TestClient(create_app(url)) as down:
        health = down.get("/healthz")
        admin_read = down.get("/admin/cron-runs", headers=bearer(make_token(role="admin")))
    assert health.json() == {"status": "unavailable", "database": "unavailable"}
    assert admin_read.json() == {"detail": "database unavailable, retry later"}
    for response in (health, admin_read):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert str(unused_port) not in response.text and "hunter2" not in response.text


def test_health_answers_fast_while_huge_bodies_arrive(database_url: str, jwt_secret: str) -> None:
    """Six 10 MB bodies without a token, at once, against a real server: each is a quick 413, and
    /healthz keeps answering in well under a second meanwhile."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(database_url), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        huge = b"x" * (10 * 1024 * 1024)
        url = f"{base}/admin/assignments/{uuid.uuid4()}/last-contact-date"
        with ThreadPoolExecutor(7) as pool:
            flood = [pool.submit(httpx.put, url, content=huge, timeout=30) for _ in range(6)]
            health_seconds = []
            for _ in range(5):
                started = time.monotonic()
                assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
                health_seconds.append(time.monotonic() - started)
            answers = [future.result().status_code for future in flood]
        assert answers == [413] * 6
        assert max(health_seconds) < 1.0, health_seconds
    finally:
        server.should_exit = True
        thread.join(10)
