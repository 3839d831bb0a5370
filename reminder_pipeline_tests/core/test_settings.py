"""A malformed setting is refused by its variable's name and rule, never by its value."""

import pytest

from reminder_pipeline.core import settings
from reminder_pipeline.core.errors import ConfigurationError


def test_a_malformed_setting_is_named_with_its_rule_and_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOB_STATEMENT_TIMEOUT_SECONDS", "-31337")
    with pytest.raises(ConfigurationError) as caught:
        settings.load()
    message = str(caught.value)

    assert message == "invalid setting(s): JOB_STATEMENT_TIMEOUT_SECONDS: Input should be greater than or equal to 0"
    assert "31337" not in message
