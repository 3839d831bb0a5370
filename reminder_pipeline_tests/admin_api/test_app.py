"""Every status code of the admin API, through the framework's test client on a real database."""

import base64
import datetime as dt
import json
import socket
import threading
import time
import uuid

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


def test_health_and_openapi_are_served(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert "/admin/assignments/{assignment_id}/last-contact-date" in spec["paths"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


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


def test_the_database_down_is_a_503_with_retry_after_naming_no_host(jwt_secret: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"postgresql://reminder:hunter2@127.0.0.1:{closed_port}/reminders"
    with TestClient(create_app(url)) as down:
        health = down.get("/healthz")
        admin_read = down.get("/admin/cron-runs", headers=bearer(make_token(role="admin")))
    for response in (health, admin_read):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        assert response.json() == {"detail": "database unavailable, retry later"}
        assert str(closed_port) not in response.text and "hunter2" not in response.text
