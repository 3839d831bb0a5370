"""Small, explicit builders for test rows (synthetic data only)."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa


def coordinator(db: sa.Connection, *, auth_user_id: uuid.UUID | None = None) -> uuid.UUID:
    return db.execute(
        sa.text(
            "INSERT INTO public.coordinators (full_name, email, auth_user_id)"
            " VALUES ('Coordinator Test', 'coordinator@example.invalid', :auth) RETURNING id"
        ),
        {"auth": auth_user_id},
    ).scalar_one()


def mentor(
    db: sa.Connection,
    coordinator_id: uuid.UUID,
    *,
    status: str = "active",
    auth_user_id: uuid.UUID | None = None,
    full_name: str = "Mentor Test",
    email: str = "mentor@example.invalid",
    phone: str = "+47 000 00 000",
) -> uuid.UUID:
    return db.execute(
        sa.text(
            "INSERT INTO public.peer_mentors (coordinator_id, full_name, email, phone, status, auth_user_id)"
            " VALUES (:c, :name, :email, :phone, :status, :auth) RETURNING id"
        ),
        {
            "c": coordinator_id,
            "name": full_name,
            "email": email,
            "phone": phone,
            "status": status,
            "auth": auth_user_id,
        },
    ).scalar_one()


def assignment(
    db: sa.Connection,
    mentor_id: uuid.UUID,
    *,
    assigned_on: dt.date,
    last_contact_date: dt.date | None = None,
    status: str = "active",
) -> uuid.UUID:
    return db.execute(
        sa.text(
            "INSERT INTO public.assignments (mentor_id, status, assigned_at, last_contact_date)"
            " VALUES (:m, :status, (CAST(:on AS date) + time '09:00') AT TIME ZONE 'Europe/Oslo', :last)"
            " RETURNING id"
        ),
        {"m": mentor_id, "status": status, "on": assigned_on, "last": last_contact_date},
    ).scalar_one()


def log_rows(db: sa.Connection, job_name: str = "assignment_reminders") -> list[sa.Row]:
    return db.execute(
        sa.text(
            "SELECT id, status, started_at, completed_at, duration_ms, assignments_evaluated,"
            " reminders_dispatched, error_message, consecutive_failure_count, details, dagster_run_id"
            " FROM public.cron_execution_logs WHERE job_name = :job ORDER BY started_at"
        ),
        {"job": job_name},
    ).all()


def notification_count(db: sa.Connection) -> int:
    return db.execute(sa.text("SELECT count(*) FROM public.notifications")).scalar_one()


def certification(
    db: sa.Connection,
    mentor_id: uuid.UUID,
    *,
    expires_on: dt.date,
    certification_type: str = "peer_mentor_basic",
) -> uuid.UUID:
    return db.execute(
        sa.text(
            "INSERT INTO public.certifications (mentor_id, certification_type, issued_on, expires_on)"
            " VALUES (:m, :t, CAST(:e AS date) - 730, :e) RETURNING id"
        ),
        {"m": mentor_id, "t": certification_type, "e": expires_on},
    ).scalar_one()


def count(db: sa.Connection, table: str, where: str = "true", **params: object) -> int:
    qualified = table if "." in table or table.startswith("pg_") else f"public.{table}"
    return db.execute(sa.text(f"SELECT count(*) FROM {qualified} WHERE {where}"), params).scalar_one()
