"""The notification kinds this domain creates, declared once (see core/notification_kinds.py)."""

from reminder_pipeline.core.notification_kinds import NotificationKind, Variable, declare

#: The soonest expiry (or end of validity) among the certifications a message is about.
EXPIRES_ON = Variable("expires_on", "date", "min")


_UUID = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _mentor_status_is(status: str) -> str:
    """The notice's mentor (payload `mentor_id`) has `status` now: one primary-key lookup; a payload
    that holds no uuid matches nothing."""
    return (
        "EXISTS (SELECT 1 FROM public.peer_mentors AS m WHERE m.status = '" + status + "' AND m.id ="
        f" CASE WHEN n.payload ->> 'mentor_id' ~ '{_UUID}' THEN (n.payload ->> 'mentor_id')::uuid END)"
    )


EXPIRY_REMINDER = declare(
    NotificationKind(
        "certification_expiry_reminder",
        ("mentor",),
        {"days_left": Variable("days_left", "int", "min"), "expires_on": EXPIRES_ON},
        references={"cert_id": "uuid", "threshold_days": "int"},
    )
)
MENTOR_AUTO_PAUSED = declare(
    NotificationKind(
        "mentor_auto_paused",
        ("mentor", "coordinator"),
        references={"mentor_id": "uuid", "cert_id": "uuid", "expired_on": "date"},
        ended_when=_mentor_status_is("active"),
        ended_reason="the mentor is active again",
    )
)
MENTOR_REACTIVATED = declare(
    NotificationKind(
        "mentor_reactivated",
        ("mentor", "coordinator"),
        {"expires_on": EXPIRES_ON},
        references={"mentor_id": "uuid", "cert_id": "uuid"},
        ended_when=_mentor_status_is("paused"),
        ended_reason="the mentor is paused again",
    )
)
