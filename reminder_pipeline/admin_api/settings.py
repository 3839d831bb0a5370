"""The admin API's environment variables (docs/activities-and-admin-api.md), read at start-up."""

from __future__ import annotations

from pydantic import Field, SecretStr

from reminder_pipeline.core import settings


@settings.register(read_by="admin API")
class AdminApiSettings(settings.SettingsGroup):
    supabase_jwt_secret: SecretStr | None = None
    admin_api_docs: bool = Field(default=False, description="Serve /docs, /redoc and /openapi.json (1 to enable).")
    admin_api_cors_origins: str | None = Field(
        default=None, description="Comma-separated origins allowed by CORS; unset: no CORS at all."
    )
    admin_api_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=10 * 1024 * 1024)

    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in (self.admin_api_cors_origins or "").split(",") if origin.strip()]


def load() -> AdminApiSettings:
    return settings.load_group(AdminApiSettings)
