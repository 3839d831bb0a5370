"""The RLS matrix, exercised the way Supabase's REST API does it: SET ROLE plus request.jwt.claims."""

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from reminder_pipeline.core import execution_log
from reminder_pipeline_tests import factories

pytestmark = pytest.mark.database


@contextmanager
def acting_as(db: sa.Connection, role: str, claims: dict | None = None) -> Iterator[sa.Connection]:
    """Run statements as `role` with the given JWT claims, then roll everything back."""
    db.execute(sa.text("BEGIN"))
    try:
        db.execute(sa.text(f"SET LOCAL ROLE {role}"))
        db.execute(
            sa.text("SELECT set_config('request.jwt.claims', :claims, true)"),
            {"claims": json.dumps(claims or {})},
        )
        yield db
    finally:
        db.execute(sa.text("ROLLBACK"))


def _claims(subject: uuid.UUID, role: str | None = None) -> dict:
    claims: dict = {"sub": str(subject), "role": "authenticated"}
    if role:
        claims["app_metadata"] = {"role": role}
    return claims


@pytest.fixture
def people(db: sa.Connection) -> dict:
    ids = {name: uuid.uuid4() for name in ("admin", "coordinator", "mentor", "other_mentor")}
    coordinator = factories.coordinator(db, auth_user_id=ids["coordinator"])
    other_coordinator = factories.coordinator(db)
    mentor = factories.mentor(db, coordinator, auth_user_id=ids["mentor"])
    other_mentor = factories.mentor(db, other_coordinator, auth_user_id=ids["other_mentor"])
    factories.assignment(db, mentor, assigned_on=dt.date(2026, 1, 1))
    factories.assignment(db, other_mentor, assigned_on=dt.date(2026, 1, 1))
    row = execution_log.record_skipped(db, "assignment_reminders")
    return {**ids, "mentor_row": mentor, "log_row": row}


def _count(db: sa.Connection, table: str) -> int:
    return db.execute(sa.text(f"SELECT count(*) FROM public.{table}")).scalar_one()


def test_admins_read_the_execution_log(db: sa.Connection, people: dict) -> None:
    with acting_as(db, "authenticated", _claims(people["admin"], role="admin")):
        assert _count(db, "cron_execution_logs") == 1


def test_only_admins_read_operations_alerts_and_only_the_service_role_writes_them(
    db: sa.Connection, people: dict
) -> None:
    db.execute(
        sa.text(
            "INSERT INTO public.ops_alerts (kind, job_name, payload, incident_key)"
            " VALUES ('missed_run', 'j', '{}', 'i')"
        )
    )
    with acting_as(db, "authenticated", _claims(people["admin"], role="admin")):
        assert _count(db, "ops_alerts") == 1
    for who in ("coordinator", "mentor"):
        with acting_as(db, "authenticated", _claims(people[who])):
            assert _count(db, "ops_alerts") == 0
    with acting_as(db, "authenticated", _claims(people["admin"], role="admin")), pytest.raises(sa.exc.ProgrammingError):
        db.execute(sa.text("DELETE FROM public.ops_alerts"))


@pytest.mark.parametrize("who", ["coordinator", "mentor", "other_mentor"])
def test_other_authenticated_users_read_no_execution_log_rows(db: sa.Connection, people: dict, who: str) -> None:
    with acting_as(db, "authenticated", _claims(people[who])):
        assert _count(db, "cron_execution_logs") == 0


def test_a_role_claim_outside_app_metadata_does_not_make_an_admin(db: sa.Connection, people: dict) -> None:
    with acting_as(db, "authenticated", {**_claims(people["mentor"]), "user_metadata": {"role": "admin"}}):
        assert _count(db, "cron_execution_logs") == 0


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO public.cron_execution_logs (job_name, status, completed_at) VALUES ('x', 'skipped', now())",
        "UPDATE public.cron_execution_logs SET error_message = 'tampered'",
        "DELETE FROM public.cron_execution_logs",
    ],
)
@pytest.mark.parametrize("who", ["admin", "mentor"])
def test_authenticated_users_cannot_write_the_execution_log(
    db: sa.Connection, people: dict, statement: str, who: str
) -> None:
    claims = _claims(people[who], role="admin" if who == "admin" else None)
    with acting_as(db, "authenticated", claims), pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        db.execute(sa.text(statement))


def test_anonymous_users_cannot_read_the_execution_log(db: sa.Connection, people: dict) -> None:
    with acting_as(db, "anon"), pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        _count(db, "cron_execution_logs")


def test_only_the_service_role_writes_the_execution_log(db: sa.Connection, people: dict) -> None:
    with acting_as(db, "service_role"):
        execution_log.record_skipped(db, "assignment_reminders")
        db.execute(sa.text("UPDATE public.cron_execution_logs SET error_message = NULL"))
        assert _count(db, "cron_execution_logs") == 2


def test_mentors_see_only_their_own_assignments_and_coordinators_their_mentors(db: sa.Connection, people: dict) -> None:
    with acting_as(db, "authenticated", _claims(people["mentor"])):
        assert _count(db, "assignments") == 1
        assert _count(db, "peer_mentors") == 1
    with acting_as(db, "authenticated", _claims(people["coordinator"])):
        assert _count(db, "assignments") == 1
        assert _count(db, "peer_mentors") == 1
    with acting_as(db, "authenticated", _claims(people["admin"], role="admin")):
        assert _count(db, "assignments") == 2
    with acting_as(db, "anon"), pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        _count(db, "assignments")


def test_nobody_but_the_service_role_writes_notifications(db: sa.Connection, people: dict) -> None:
    insert = (
        "INSERT INTO public.notifications (source_id, kind, recipient_role, recipient_id)"
        " VALUES (gen_random_uuid(), 'x', 'mentor', :m)"
    )
    with acting_as(db, "authenticated", _claims(people["mentor"])), pytest.raises(sa.exc.ProgrammingError):
        db.execute(sa.text(insert), {"m": people["mentor_row"]})
    with acting_as(db, "service_role"):
        db.execute(sa.text(insert), {"m": people["mentor_row"]})


@pytest.fixture
def provenance(db: sa.Connection, people: dict) -> dict:
    assignment = db.execute(
        sa.text("SELECT id FROM public.assignments WHERE mentor_id = :m"), {"m": people["mentor_row"]}
    ).scalar_one()
    other = db.execute(
        sa.text("SELECT a.id, a.mentor_id FROM public.assignments a WHERE a.mentor_id <> :m"),
        {"m": people["mentor_row"]},
    ).one()
    return {"assignment": assignment, "other_assignment": other.id, "other_mentor_row": other.mentor_id}


def _register(db: sa.Connection, assignment: uuid.UUID, mentor: uuid.UUID, path: str, by: uuid.UUID | None) -> None:
    columns = "assignment_id, mentor_id, activity_date, registration_path" + (", registered_by" if by else "")
    values = ":a, :m, :d, :path" + (", :by" if by else "")
    db.execute(
        sa.text(f"INSERT INTO public.activities ({columns}) VALUES ({values})"),
        {"a": assignment, "m": mentor, "d": dt.date(2026, 11, 20), "path": path, "by": by},
    )


def test_a_mentor_registers_direct_contacts_as_themselves_only(
    db: sa.Connection, people: dict, provenance: dict
) -> None:
    with acting_as(db, "authenticated", _claims(people["mentor"])):
        _register(db, provenance["assignment"], people["mentor_row"], "direct", None)
        stored = db.execute(sa.text("SELECT registered_by FROM public.activities")).scalar_one()
        assert stored == people["mentor"]  # the database filled in auth.uid()
    forged = [
        ("coordinator_proxy", people["coordinator"]),  # the forgery: a proxy in the coordinator's name
        ("proxy", people["mentor"]),
        ("direct", people["coordinator"]),  # direct, but claiming someone else registered it
        ("bulk", people["mentor"]),
    ]
    for path, by in forged:
        with (
            acting_as(db, "authenticated", _claims(people["mentor"])),
            pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
        ):
            _register(db, provenance["assignment"], people["mentor_row"], path, by)


def test_only_the_mentors_own_coordinator_registers_by_proxy(db: sa.Connection, people: dict, provenance: dict) -> None:
    with acting_as(db, "authenticated", _claims(people["coordinator"])):
        _register(db, provenance["assignment"], people["mentor_row"], "coordinator_proxy", people["coordinator"])
        _register(db, provenance["assignment"], people["mentor_row"], "proxy", None)
        assert db.execute(sa.text("SELECT count(*) FROM public.activities")).scalar_one() == 2
    refused = [
        (provenance["other_assignment"], provenance["other_mentor_row"], "coordinator_proxy"),  # not their mentor
        (provenance["assignment"], people["mentor_row"], "direct"),  # a coordinator is not the mentor
        (provenance["other_assignment"], people["mentor_row"], "proxy"),  # assignment of another mentor
    ]
    for assignment, mentor, path in refused:
        with (
            acting_as(db, "authenticated", _claims(people["coordinator"])),
            pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
        ):
            _register(db, assignment, mentor, path, people["coordinator"])
