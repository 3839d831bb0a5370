"""POST /coordinator/dynamics-sync/{event_id}/retry: the mentor's coordinator or an admin makes an event due now."""

import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from reminder_pipeline_tests import factories
from reminder_pipeline_tests.admin_api.conftest import bearer, make_token

pytestmark = pytest.mark.database


@pytest.fixture
def event(db: sa.Connection) -> dict:
    coordinator_user = uuid.uuid4()
    coordinator = factories.coordinator(db, auth_user_id=coordinator_user)
    mentor = factories.mentor(db, coordinator)
    event_id = db.execute(
        sa.text(
            "INSERT INTO public.dynamics_sync_events (mentor_id, action, payload, dedupe_key, status, attempts,"
            " next_attempt_at) VALUES (:m, 'pause', '{}', 'k', 'dead', 8, now() + interval '1 day') RETURNING id"
        ),
        {"m": mentor},
    ).scalar_one()
    return {"id": event_id, "coordinator_user": coordinator_user}


def _retry(client: TestClient, event_id: uuid.UUID, token: str | None):
    return client.post(f"/coordinator/dynamics-sync/{event_id}/retry", headers=bearer(token) if token else {})


def _state(db: sa.Connection) -> tuple:
    return db.execute(sa.text("SELECT status, next_attempt_at <= now() FROM public.dynamics_sync_events")).one()


def test_the_mentors_coordinator_makes_the_event_due_now(client: TestClient, db: sa.Connection, event: dict) -> None:
    response = _retry(client, event["id"], make_token(subject=str(event["coordinator_user"])))
    assert response.status_code == 200
    assert response.json() == {"event_id": str(event["id"]), "status": "pending"}
    assert _state(db) == ("pending", True)


def test_an_admin_may_retry_too(client: TestClient, db: sa.Connection, event: dict) -> None:
    assert _retry(client, event["id"], make_token(role="admin")).status_code == 200


@pytest.mark.parametrize(("who", "code"), [("nobody", 401), ("another-coordinator", 403), ("mentor", 403)])
def test_others_may_not(client: TestClient, db: sa.Connection, event: dict, who: str, code: int) -> None:
    token = None if who == "nobody" else make_token(subject=str(uuid.uuid4()))
    assert _retry(client, event["id"], token).status_code == code
    assert _state(db) == ("dead", False)


def test_unknown_and_already_synced_events(client: TestClient, db: sa.Connection, event: dict) -> None:
    token = make_token(subject=str(event["coordinator_user"]))
    assert _retry(client, uuid.uuid4(), token).status_code == 404
    db.execute(sa.text("UPDATE public.dynamics_sync_events SET status = 'synced'"))
    assert _retry(client, event["id"], token).status_code == 409
