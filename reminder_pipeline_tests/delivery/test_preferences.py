"""Recipient preferences under row-level security, as Supabase's REST API runs statements: a mentor
(or coordinator) reads and changes their own row and nobody else's."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from reminder_pipeline_tests import factories
from reminder_pipeline_tests.core.test_row_level_security import _claims, acting_as

pytestmark = pytest.mark.database


@pytest.fixture
def people(db: sa.Connection) -> dict:
    users = {name: uuid.uuid4() for name in ("mentor", "other_mentor", "coordinator", "admin")}
    coordinator = factories.coordinator(db, auth_user_id=users["coordinator"])
    mentor = factories.mentor(db, coordinator, auth_user_id=users["mentor"])
    other = factories.mentor(db, coordinator, auth_user_id=users["other_mentor"])
    db.execute(
        sa.text("INSERT INTO public.notification_preferences (recipient_role, recipient_id) VALUES ('mentor', :m)"),
        {"m": other},
    )
    return {**users, "mentor_row": mentor, "other_row": other, "coordinator_row": coordinator}


def _own(db: sa.Connection) -> list[sa.Row]:
    return db.execute(
        sa.text("SELECT recipient_role, recipient_id, push_enabled, language FROM public.notification_preferences")
    ).all()


def test_a_mentor_creates_reads_and_changes_their_own_preferences(db: sa.Connection, people: dict) -> None:
    with acting_as(db, "authenticated", _claims(people["mentor"])):
        assert _own(db) == []  # the other mentor's row is invisible
        db.execute(
            sa.text(
                "INSERT INTO public.notification_preferences (recipient_role, recipient_id, push_enabled,"
                " quiet_hours_start, quiet_hours_end, language) VALUES ('mentor', :m, false, '22:00', '07:00', 'en')"
            ),
            {"m": people["mentor_row"]},
        )
        db.execute(sa.text("UPDATE public.notification_preferences SET push_enabled = true"))
        assert _own(db) == [("mentor", people["mentor_row"], True, "en")]


def test_nobody_reads_or_changes_someone_elses_preferences(db: sa.Connection, people: dict) -> None:
    for who in ("mentor", "coordinator"):
        with acting_as(db, "authenticated", _claims(people[who])):
            assert db.execute(sa.text("UPDATE public.notification_preferences SET push_enabled = false")).rowcount == 0
            assert db.execute(sa.text("DELETE FROM public.notification_preferences")).rowcount == 0
    with (
        acting_as(db, "authenticated", _claims(people["mentor"])),
        pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
    ):
        db.execute(
            sa.text("INSERT INTO public.notification_preferences (recipient_role, recipient_id) VALUES ('mentor', :m)"),
            {"m": people["other_row"]},
        )
    with (
        acting_as(db, "authenticated", _claims(people["mentor"])),
        pytest.raises(sa.exc.ProgrammingError, match="row-level security"),
    ):  # a mentor cannot pose as a coordinator with the same id either
        db.execute(
            sa.text(
                "INSERT INTO public.notification_preferences (recipient_role, recipient_id) VALUES ('coordinator', :m)"
            ),
            {"m": people["mentor_row"]},
        )
    with acting_as(db, "anon"), pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        _own(db)


def test_a_mentor_cannot_move_their_row_onto_someone_else(db: sa.Connection, people: dict) -> None:
    db.execute(
        sa.text("INSERT INTO public.notification_preferences (recipient_role, recipient_id) VALUES ('mentor', :m)"),
        {"m": people["mentor_row"]},
    )
    with (
        acting_as(db, "authenticated", _claims(people["mentor"])),
        pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
    ):
        db.execute(sa.text("UPDATE public.notification_preferences SET recipient_id = :o"), {"o": people["other_row"]})


def test_coordinators_have_their_own_and_admins_read_all(db: sa.Connection, people: dict) -> None:
    with acting_as(db, "authenticated", _claims(people["coordinator"])):
        db.execute(
            sa.text(
                "INSERT INTO public.notification_preferences (recipient_role, recipient_id, email_enabled)"
                " VALUES ('coordinator', :c, false)"
            ),
            {"c": people["coordinator_row"]},
        )
        assert [row.recipient_role for row in _own(db)] == ["coordinator"]  # not their mentors' rows
    with acting_as(db, "authenticated", _claims(people["admin"], role="admin")):
        assert [row.recipient_id for row in _own(db)] == [people["other_row"]]  # admins read everyone's
        assert db.execute(sa.text("DELETE FROM public.notification_preferences")).rowcount == 0  # and change none


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("language", "de", "notification_preferences_language_check"),
        ("quiet_hours_start", "22:00", "notification_preferences_quiet_hours_check"),
    ],
)
def test_the_table_refuses_what_delivery_could_not_honour(
    db: sa.Connection, people: dict, column: str, value: str, rule: str
) -> None:
    with pytest.raises(sa.exc.IntegrityError, match=rule):
        db.execute(
            sa.text(
                f"INSERT INTO public.notification_preferences (recipient_role, recipient_id, {column})"
                " VALUES ('mentor', :m, :v)"
            ),
            {"m": people["mentor_row"], "v": value},
        )
