"""Supabase-style JWT bearer authentication, verified with PyJWT.

The algorithm is pinned to HS256 (a token signed otherwise, or unsigned, is refused), expiry and
audience are required and checked. The secret is read per request from `SUPABASE_JWT_SECRET`,
never at import time, and neither it nor any token is ever logged.
"""

import uuid
from dataclasses import dataclass
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reminder_pipeline.admin_api import settings as api_settings
from reminder_pipeline.core import settings

ALGORITHM = "HS256"
AUDIENCE = "authenticated"

_bearer = HTTPBearer(auto_error=False, description="Supabase access token (HS256 JWT)")


@dataclass(frozen=True)
class Principal:
    subject: uuid.UUID
    app_role: str | None

    @property
    def is_admin(self) -> bool:
        return self.app_role == "admin"


def jwt_secret() -> str:
    secret = settings.secret(api_settings.load().supabase_jwt_secret)
    if not secret:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "authentication is not configured")
    return secret


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, reason, headers={"WWW-Authenticate": "Bearer"})


def verify_token(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=AUDIENCE, options={"require": ["exp", "sub", "aud"]}
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("invalid token") from None
    try:
        subject = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise _unauthorized("invalid token subject") from None
    app_metadata = claims.get("app_metadata")
    role = app_metadata.get("role") if isinstance(app_metadata, dict) else None
    return Principal(subject=subject, app_role=role if isinstance(role, str) else None)


def authenticated(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    secret: Annotated[str, Depends(jwt_secret)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    return verify_token(credentials.credentials, secret)


def admin(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return principal
