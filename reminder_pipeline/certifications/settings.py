"""The certifications domain's environment variables: the Dynamics portal, read at run time."""

from __future__ import annotations

from pydantic import SecretStr

from reminder_pipeline.core import doctor, settings


@settings.register()
class DynamicsSettings(settings.SettingsGroup):
    dynamics_webhook_url: SecretStr | None = None
    dynamics_webhook_token: SecretStr | None = None


def load() -> DynamicsSettings:
    return settings.load_group(DynamicsSettings)


doctor.register_readiness(
    "dynamics_sync",
    lambda: None if settings.is_set("DYNAMICS_WEBHOOK_URL") else "no portal: set DYNAMICS_WEBHOOK_URL",
)
