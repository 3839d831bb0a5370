"""Composing messages from claimed notifications: pure functions over DataFrames."""

import datetime as dt

import pandas as pd

from reminder_pipeline.delivery.messages import NO_ADDRESS, NO_CHANNEL, compose_messages
from reminder_pipeline.delivery.repository import claimed_columns


def _claimed(*rows: dict) -> pd.DataFrame:
    defaults = {
        "recipient_role": "mentor",
        "kind": "assignment_follow_up_reminder",
        "attempts": 1,
        "days_without_contact": 12,
        "days_left": None,
        "expires_on": None,
        "first_name": "Ola",
        "email": "ola@example.invalid",
        "push_enabled": True,
        "email_enabled": True,
        "language": "nb",
    }
    frame = pd.DataFrame([{**defaults, **row} for row in rows])
    return frame[claimed_columns()]


def test_one_message_per_key_with_every_notification_and_the_longest_gap() -> None:
    claimed = _claimed(
        {"id": 1, "message_key": "k1", "recipient_id": "m1", "days_without_contact": 12},
        {"id": 2, "message_key": "k1", "recipient_id": "m1", "days_without_contact": 40},
        {
            "id": 3,
            "message_key": "k1",
            "recipient_id": "m1",
            "kind": "certification_expiry_reminder",
            "days_without_contact": None,
            "days_left": 7,
            "expires_on": dt.date(2026, 12, 9),
        },
        {"id": 4, "message_key": "k2", "recipient_id": "m2"},
    )
    messages = compose_messages(claimed, ("push", "email")).set_index("message_key")
    first = messages.loc["k1", "message"]
    assert first.notification_ids == (1, 2, 3)
    assert first.kinds == ("assignment_follow_up_reminder", "certification_expiry_reminder")
    assert "det lengste på 40 dager" in first.body and "om 7 dager (09.12.2026)" in first.body
    assert messages.loc["k2", "message"].notification_ids == (4,)
    assert messages.loc["k1", "route"] == ("push", "email")


def test_routes_follow_the_deployment_order_and_the_recipients_switches() -> None:
    claimed = _claimed(
        {"id": 1, "message_key": "push-off", "recipient_id": "a", "push_enabled": False},
        {"id": 2, "message_key": "no-address", "recipient_id": "b", "push_enabled": False, "email": None},
        {"id": 3, "message_key": "all-off", "recipient_id": "c", "push_enabled": False, "email_enabled": False},
        {"id": 4, "message_key": "both", "recipient_id": "d"},
    )
    messages = compose_messages(claimed, ("email", "push")).set_index("message_key")
    assert messages["route"].to_dict() == {
        "push-off": ("email",),
        "no-address": (),
        "all-off": (),
        "both": ("email", "push"),
    }
    assert messages.loc["no-address", "reason"] == NO_ADDRESS and messages.loc["all-off", "reason"] == NO_CHANNEL
    assert pd.isna(messages.loc["both", "reason"])


def test_a_first_name_cannot_break_out_of_its_place() -> None:
    claimed = _claimed({"id": 1, "message_key": "k", "recipient_id": "m", "first_name": "Ola\r\nBcc: x" + "y" * 80})
    (message,) = compose_messages(claimed, ("email",))["message"]
    greeting = message.body.split("\n\n")[0]
    assert greeting == "Hei " + ("OlaBcc: x" + "y" * 80)[:40] + "!"


def test_only_a_plain_address_is_an_address() -> None:
    addresses = ["ola@example.invalid", "ola@example.invalid\nBcc: x@y.z", "a b@c.d", "<a@b.c>", "a@b", "a@b.c,d@e.f"]
    claimed = _claimed(
        *(
            {"id": n, "message_key": f"k{n}", "recipient_id": f"m{n}", "email": address, "push_enabled": False}
            for n, address in enumerate(addresses)
        )
    )
    messages = compose_messages(claimed, ("email",)).set_index("message_key")
    assert messages["route"].to_dict() == {"k0": ("email",), **{f"k{n}": () for n in range(1, len(addresses))}}
    assert messages.loc["k0", "message"].email == "ola@example.invalid"


def test_a_language_we_have_no_templates_for_falls_back_to_bokmal() -> None:
    claimed = _claimed({"id": 1, "message_key": "k", "recipient_id": "m", "language": "xx"})
    (message,) = compose_messages(claimed, ("push",))["message"]
    assert message.language == "nb" and message.body.startswith("Hei Ola!")
