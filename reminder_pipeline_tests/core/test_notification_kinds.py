"""A notification kind's declaration: what it refuses, and the payload the outbox builds from it."""

import pytest

import reminder_pipeline.definitions  # noqa: F401  (every domain declares its kinds)
from reminder_pipeline.core.errors import ConfigurationError
from reminder_pipeline.core.notification_kinds import NotificationKind, Variable, declare, declared, kind_named


def test_a_kind_lists_every_payload_key_it_writes_variables_and_references() -> None:
    kind = kind_named("certification_expiry_reminder")
    assert kind is not None
    assert kind.payload_keys() == {
        "cert_id": "uuid",
        "days_left": "int",
        "expires_on": "date",
        "threshold_days": "int",
    }


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        (lambda: NotificationKind("Bad-Name", ("mentor",)), "lower_snake_case"),
        (lambda: NotificationKind("x_kind", ("parent",)), "recipients"),
        (lambda: NotificationKind("x_kind", ("mentor",), ended_when="TRUE"), "go together"),
        (
            lambda: NotificationKind(
                "x_kind", ("mentor",), {"d": Variable("d", "int", "max")}, references={"d": "int"}
            ),
            "a variable and a reference",
        ),
        (lambda: NotificationKind("x_kind", ("mentor",), references={"x": "text"}), "reference types"),
    ],
    ids=["name", "role", "ended", "both", "type"],
)
def test_a_malformed_declaration_is_refused_naming_the_rule(kind: object, rule: str) -> None:
    with pytest.raises(ConfigurationError, match=rule):
        kind()  # type: ignore[operator]


def test_a_payload_key_cannot_mean_two_types_across_kinds() -> None:
    before = declared()
    with pytest.raises(ConfigurationError, match="cert_id is declared with two types"):
        declare(NotificationKind("x_other_kind", ("mentor",), references={"cert_id": "int"}))
    assert declared() == before  # nothing half-registered
