"""`reminder-pipeline admin-api`: the operations team's authenticated HTTP API."""

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reminder_pipeline.admin_api import settings as api_settings
from reminder_pipeline.admin_api.auth import Principal, admin, authenticated
from reminder_pipeline.alerting.schedule_watch import open_overdue
from reminder_pipeline.assignments.corrections import Correction, correct_last_contact_date
from reminder_pipeline.certifications.dynamics_sync import event_for_retry, make_due_now
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.database import create_engine, resolve_database_url
from reminder_pipeline.core.errors import (
    ConfigurationError,
    DatabaseError,
    InputRejected,
    NotConfigured,
    ReminderPipelineError,
)
from reminder_pipeline.core.run_config import today_local


class LastContactCorrection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last_contact_date: dt.date = Field(description="The corrected date (YYYY-MM-DD); not in the future.")
    reason: str = Field(min_length=1, max_length=1000, description="Why the date is corrected (audited).")

    @field_validator("last_contact_date")
    @classmethod
    def _not_in_the_future(cls, value: dt.date) -> dt.date:
        if value > today_local():
            raise ValueError("last_contact_date cannot be in the future (Europe/Oslo)")
        if value < EARLIEST_CONTACT_DATE:
            raise ValueError(f"last_contact_date cannot be before {EARLIEST_CONTACT_DATE.isoformat()}")
        return value

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("reason must not be blank")
        return clean_text(value, "reason").strip()


def clean_text(value: str, field: str) -> str:
    """Text the database can store and a person can read: no NUL, no lone UTF-16 surrogates (which
    JSON allows as escapes and UTF-8 cannot encode)."""
    if "\x00" in value:
        raise ValueError(f"{field} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{field} must be valid Unicode text (no lone surrogates)") from None
    return value


#: No date before this is a plausible contact date (and the job's arithmetic stays sane).
EARLIEST_CONTACT_DATE = dt.date(2000, 1, 1)

#: Seconds a client should wait before retrying when a dependency is down.
RETRY_AFTER_SECONDS = 30


def error_response(error: Exception) -> JSONResponse:
    """One status code per kind of error of ours, with a message that names the rule, never a value
    or a host. The database being down (ours, or SQLAlchemy's) is a 503 with Retry-After."""
    if isinstance(error, InputRejected):
        return JSONResponse({"detail": str(error)}, status.HTTP_422_UNPROCESSABLE_CONTENT)
    if isinstance(error, DatabaseError | sa.exc.OperationalError | sa.exc.InterfaceError):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return JSONResponse(
            {"detail": "database unavailable, retry later"}, status.HTTP_503_SERVICE_UNAVAILABLE, headers
        )
    if isinstance(error, ConfigurationError | NotConfigured):
        return JSONResponse({"detail": "service not configured"}, status.HTTP_503_SERVICE_UNAVAILABLE)
    return JSONResponse({"detail": "internal error"}, status.HTTP_500_INTERNAL_SERVER_ERROR)


class BodySizeLimit:
    """Refuse a request body over `max_bytes` before anything parses it: 413 at once when the
    declared length is too big, or as soon as the streamed body passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now, and tell the app the client went away: it stops reading and
                    # whatever it tries to answer afterwards is dropped.
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.max_bytes} bytes"}, status.HTTP_413_CONTENT_TOO_LARGE
        )
        await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": "max-age=31536000",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
#: The interactive docs (switched on with ADMIN_API_DOCS=1) load their own scripts and styles.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net;"
    " style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com"
)


class SecurityHeaders:
    """The same security headers on every response, errors and 413s included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_docs = scope.get("path") in ("/docs", "/redoc")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if is_docs:
                    headers["Content-Security-Policy"] = DOCS_CSP
            await send(message)

        await self.app(scope, receive, with_headers)


class CronRun(BaseModel):
    id: uuid.UUID
    job_name: str
    status: str
    started_at: dt.datetime
    completed_at: dt.datetime | None
    duration_ms: int | None
    assignments_evaluated: int | None
    reminders_dispatched: int | None
    consecutive_failure_count: int | None
    error_message: str | None


class OverdueRun(BaseModel):
    job_name: str
    expected_at: dt.datetime
    last_success_at: dt.datetime | None


class SyncRetryResult(BaseModel):
    event_id: uuid.UUID
    status: str


def create_app(database_url: str | None = None) -> FastAPI:
    """`database_url=None`: `DATABASE_URL` (or the embedded server), resolved when the app starts."""

    engine_lock = threading.Lock()
    engines: list[sa.Engine] = []

    def engine() -> sa.Engine:
        """Created on first use (not at import, not before the server runs), disposed at shutdown."""
        with engine_lock:
            if not engines:
                engines.append(create_engine(database_url or resolve_database_url(), pooled=True))
            return engines[0]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for created in engines:
            created.dispose()

    current = api_settings.load()
    docs = current.admin_api_docs
    app = FastAPI(
        title="reminder-pipeline admin API",
        version="1",
        description="Operations endpoints. Every /admin route needs a Supabase JWT with app_metadata.role = admin.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    if current.cors_origins():
        app.add_middleware(
            CORSMiddleware,
            allow_origins=current.cors_origins(),
            allow_methods=["GET", "PUT", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=current.admin_api_max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        """Which field broke which rule, never the value that was sent."""
        problems = [
            {"loc": list(problem.get("loc", ())), "msg": problem.get("msg", "invalid"), "type": problem.get("type")}
            for problem in error.errors()
        ]
        return JSONResponse({"detail": problems}, status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(ReminderPipelineError)
    @app.exception_handler(sa.exc.OperationalError)
    @app.exception_handler(sa.exc.InterfaceError)
    async def known_error(request: Request, error: Exception) -> JSONResponse:
        return error_response(error)

    def transaction() -> Iterator[sa.Connection]:
        with engine().begin() as connection:
            yield connection

    Db = Annotated[sa.Connection, Depends(transaction)]
    Admin = Annotated[Principal, Depends(admin)]
    Authenticated = Annotated[Principal, Depends(authenticated)]

    @app.get("/healthz", tags=["health"], responses={503: {"description": "A dependency is down"}})
    def healthz() -> JSONResponse:
        """Up, and which dependency is not."""
        try:
            with engine().connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except (sa.exc.OperationalError, sa.exc.InterfaceError, ReminderPipelineError):
            return JSONResponse(
                {"status": "unavailable", "database": "unavailable"},
                status.HTTP_503_SERVICE_UNAVAILABLE,
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return JSONResponse({"status": "ok", "database": "ok"})

    @app.put(
        "/admin/assignments/{assignment_id}/last-contact-date",
        response_model=Correction,
        tags=["admin"],
        responses={
            401: {"description": "No valid token"},
            403: {"description": "Not an admin"},
            404: {"description": "Unknown assignment"},
        },
    )
    def correct_last_contact(
        assignment_id: uuid.UUID, body: LastContactCorrection, principal: Admin, connection: Db
    ) -> Any:
        """Correct an assignment's last contact date (it may move backwards); audited in the same transaction."""
        correction = correct_last_contact_date(
            connection, assignment_id, body.last_contact_date, reason=body.reason, corrected_by=principal.subject
        )
        if correction is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "assignment not found")
        return correction

    @app.get(
        "/admin/cron-runs",
        response_model=list[CronRun],
        tags=["admin"],
        responses={401: {"description": "No valid token"}, 403: {"description": "Not an admin"}},
    )
    def cron_runs(
        principal: Admin,
        connection: Db,
        job: Annotated[
            str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_]+$", description="Only this job's rows.")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> Any:
        """The newest execution-log rows."""
        return execution_log.recent_runs(connection, job, limit)

    @app.get(
        "/admin/schedule-overdue",
        response_model=list[OverdueRun],
        tags=["admin"],
        responses={401: {"description": "No valid token"}, 403: {"description": "Not an admin"}},
    )
    def schedule_overdue(
        principal: Admin,
        connection: Db,
        job: Annotated[
            str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_]+$", description="Only this job's runs.")
        ] = None,
    ) -> Any:
        """Scheduled runs recorded overdue (by the watchdog or pg_cron) and not resolved by a success:
        what the daemon did not run, readable with every Dagster process down."""
        return [dataclasses.asdict(item) for item in open_overdue(connection, job)]

    @app.post(
        "/coordinator/dynamics-sync/{event_id}/retry",
        response_model=SyncRetryResult,
        tags=["coordinator"],
        responses={
            401: {"description": "No valid token"},
            403: {"description": "Not this mentor's coordinator"},
            404: {"description": "Unknown event"},
            409: {"description": "Already synced"},
        },
    )
    def retry_dynamics_sync(event_id: uuid.UUID, principal: Authenticated, connection: Db) -> Any:
        """Make a pending or dead Dynamics sync event due now (the mentor's coordinator, or an admin)."""
        event = event_for_retry(connection, event_id)
        if event is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "sync event not found")
        if not (principal.is_admin or event.coordinator_user == principal.subject):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "only the mentor's coordinator or an admin may retry")
        if event.status == "synced":
            raise HTTPException(status.HTTP_409_CONFLICT, "sync event is already synced")
        make_due_now(connection, event_id=event_id)
        return SyncRetryResult(event_id=event_id, status="pending")

    return app
