"""Property-based fuzzing of every OpenAPI operation (schemathesis + hypothesis): no 5xx, ever, and
no write without an admin token. (schemathesis' own pytest loader does not work with pytest 9, so
the operations' hypothesis strategies are driven directly.)"""

import datetime as dt
import json
from collections.abc import Callable

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reminder_pipeline.admin_api.app import create_app
from reminder_pipeline.core.run_config import today_local
from reminder_pipeline_tests import factories
from reminder_pipeline_tests.admin_api.conftest import bearer, make_token

pytestmark = pytest.mark.database

FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture
def assignment_id(db: sa.Connection) -> str:
    mentor = factories.mentor(db, factories.coordinator(db))
    return str(factories.assignment(db, mentor, assigned_on=today_local() - dt.timedelta(days=30)))


@pytest.fixture
def operations(database_url: str, jwt_secret: str, assignment_id: str, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.setenv("ADMIN_API_DOCS", "1")  # the schema is served only when switched on
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(database_url))
    found = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in found} >= {
        "GET /healthz",
        "PUT /admin/assignments/{assignment_id}/last-contact-date",
        "GET /admin/cron-runs",
    }
    return found


def _fuzz(operations: list, check: Callable[[schemathesis.Case], None]) -> None:
    for operation in operations:

        def run(case: schemathesis.Case) -> None:
            check(case)

        FUZZ(given(case=operation.as_strategy())(run))()


def _writes(db: sa.Connection) -> tuple:
    return db.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM public.last_contact_corrections),"
            " (SELECT array_agg(last_contact_date ORDER BY id) FROM public.assignments)"
        )
    ).one()


def test_no_operation_answers_with_a_server_error(operations: list, assignment_id: str) -> None:
    token = make_token(role="admin")

    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=bearer(token))
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"
        if case.path_parameters and "assignment_id" in case.path_parameters:
            # random ids stop at 404; aim the same body at a real assignment too
            case.path_parameters["assignment_id"] = assignment_id
            response = case.call(headers=bearer(token))
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"

    _fuzz(operations, check)


def test_no_write_without_an_admin_token(operations: list, db: sa.Connection) -> None:
    before = _writes(db)
    tokens = [None, make_token(role=None), make_token(role="coordinator"), make_token(role="admin", expires_in=-5)]

    def check(case: schemathesis.Case) -> None:
        for token in tokens:
            response = case.call(headers=bearer(token) if token else {})
            assert response.status_code < 500
            if case.path.startswith("/admin"):
                assert response.status_code in (401, 403), f"{case.method} {case.formatted_path} {response.status_code}"

    _fuzz(operations, check)
    assert _writes(db) == before


#: Text that breaks naive code: lone surrogates, NUL and other controls, right-to-left marks,
#: combining characters, emoji, and very long runs.
HOSTILE_TEXT = st.one_of(
    st.text(alphabet=st.characters(codec=None, categories=None), max_size=50),
    st.sampled_from(["\ud83d", "x\ud800y", "\x00", "a\x00b", "\u202e", "e\u0301" * 200, "😀" * 300, " ", ""]),
    st.integers(min_value=900, max_value=70_000).map(lambda size: "x" * size),
)
HOSTILE_DATES = st.one_of(
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(dt.date.isoformat),
    st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30", "15.12.2026", "", "2026-13-01", "+002026-01-01"]),
)


def test_hostile_bodies_get_a_4xx_that_echoes_nothing_and_never_a_5xx(
    database_url: str, jwt_secret: str, assignment_id: str, db: sa.Connection
) -> None:
    client = TestClient(create_app(database_url))
    headers = {**bearer(make_token(role="admin")), "Content-Type": "application/json"}
    before = db.execute(sa.text("SELECT count(*) FROM public.last_contact_corrections")).scalar()
    accepted = 0

    @FUZZ
    @given(reason=HOSTILE_TEXT, date=HOSTILE_DATES)
    def check(reason: str, date: str) -> None:
        nonlocal accepted
        body = json.dumps({"last_contact_date": date, "reason": reason}).encode()
        response = client.put(f"/admin/assignments/{assignment_id}/last-contact-date", content=body, headers=headers)
        assert response.status_code < 500, (response.status_code, response.text[:200])
        if response.status_code == 200:
            accepted += 1
            stored = dt.date.fromisoformat(response.json()["last_contact_date"])
            assert dt.date(2000, 1, 1) <= stored <= today_local()
        else:
            assert response.status_code in (413, 422), response.status_code
            assert len(response.content) < 5_000  # no echo of a huge input
            if len(reason) > 20:
                assert reason[:20] not in response.text

    with client:
        check()
    after = db.execute(sa.text("SELECT count(*) FROM public.last_contact_corrections")).scalar()
    assert after - before == accepted
