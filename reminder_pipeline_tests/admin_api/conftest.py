import datetime as dt
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
from fastapi.testclient import TestClient

from reminder_pipeline.admin_api.app import create_app

SECRET = "test-jwt-secret-" + "0123456789abcdef" * 4


def make_token(
    *,
    role: str | None = None,
    subject: str | None = None,
    expires_in: int = 3600,
    audience: str = "authenticated",
    secret: str = SECRET,
    algorithm: str = "HS256",
) -> str:
    claims: dict = {
        "sub": subject or str(uuid.uuid4()),
        "aud": audience,
        "exp": int(time.time()) + expires_in,
        "role": "authenticated",
    }
    if role:
        claims["app_metadata"] = {"role": role}
    return jwt.encode(claims, secret, algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def jwt_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SUPABASE_JWT_SECRET", SECRET)
    return SECRET


@pytest.fixture
def client(database_url: str, jwt_secret: str) -> Iterator[TestClient]:
    with TestClient(create_app(database_url)) as test_client:
        yield test_client


YESTERDAY = (dt.date.today() - dt.timedelta(days=1)).isoformat()
