"""The notification kinds this domain creates, declared once (see core/notification_kinds.py)."""

from reminder_pipeline.core.notification_kinds import NotificationKind, Variable, declare

#: The reminder was about a contact gap that has ended since: contact logged, the assignment
#: closed or gone, or its mentor paused.
CONTACT_GAP_ENDED = """NOT EXISTS (
    SELECT 1 FROM public.assignments AS a JOIN public.peer_mentors AS m ON m.id = a.mentor_id
    WHERE a.id = n.source_id AND a.status = 'active' AND m.status = 'active'
      AND (a.last_contact_date > n.reference_date) IS NOT TRUE)"""
#: The longest gap among the assignments a message is about.
DAYS_WITHOUT_CONTACT = {"days": Variable("days_without_contact", "int", "max")}

MENTOR_REMINDER = declare(
    NotificationKind(
        "assignment_follow_up_reminder",
        ("mentor",),
        DAYS_WITHOUT_CONTACT,
        ended_when=CONTACT_GAP_ENDED,
        ended_reason="contact logged, assignment closed or gone, or mentor paused",
    )
)
COORDINATOR_ESCALATION = declare(
    NotificationKind(
        "assignment_follow_up_escalation",
        ("coordinator",),
        DAYS_WITHOUT_CONTACT,
        ended_when=CONTACT_GAP_ENDED,
        ended_reason="contact logged, assignment closed or gone, or mentor paused",
    )
)
