"""The message templates: every kind the domains create reads well in both languages, and a
template that names a variable we do not provide fails here rather than in a mentor's inbox."""

import datetime as dt

import pytest

from reminder_pipeline.core.errors import ConfigurationError
from reminder_pipeline.core.outbox import KINDS
from reminder_pipeline.delivery.templates import LANGUAGES, KindSummary, load

#: Which role receives each kind (what the domains write to the outbox).
RECIPIENTS = {
    "assignment_follow_up_reminder": ["mentor"],
    "assignment_follow_up_escalation": ["coordinator"],
    "certification_expiry_reminder": ["mentor"],
    "mentor_auto_paused": ["mentor", "coordinator"],
    "mentor_reactivated": ["mentor", "coordinator"],
}


def _summary(kind: str, count: int) -> KindSummary:
    return KindSummary(kind, count, days=23, days_left=1 if count == 1 else 7, expires_on=dt.date(2026, 12, 24))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("count", [1, 3])
def test_every_kind_has_its_own_text_in_every_language(language: str, count: int) -> None:
    assert set(RECIPIENTS) == set(KINDS)
    templates = load(language)
    default_title = templates.default[0].render(count=count)
    for kind, roles in RECIPIENTS.items():
        for role in roles:
            assert (role, kind) in templates.kinds, f"{language}: no template for {role} {kind}"
            rendered = templates.render(role, "Ola", [_summary(kind, count)])
            assert rendered.title != default_title and "{" not in rendered.title + rendered.body
            assert rendered.body.startswith(("Hei Ola!", "Hi Ola,"))


def test_counts_days_and_dates_are_what_the_text_says() -> None:
    text = load("nb").render("mentor", "Ola", [_summary("certification_expiry_reminder", 1)]).body
    assert "om 1 dag (24.12.2026)" in text
    text = load("en").render("mentor", "Ola", [_summary("assignment_follow_up_reminder", 3)]).body
    assert "3 of your assignments" in text and "23 days" in text


def test_a_reactivated_mentor_is_told_until_when_the_renewal_is_valid() -> None:
    text = load("en").render("mentor", "Ola", [_summary("mentor_reactivated", 1)]).body
    assert "valid until 2026-12-24" in text and "active as a peer mentor again" in text
    text = load("nb").render("mentor", "Ola", [KindSummary("mentor_reactivated", 1)]).body
    assert "gyldig til" not in text and "aktiv som likeperson igjen" in text


def test_a_digest_of_several_kinds_has_a_title_that_counts_them_and_one_line_each() -> None:
    rendered = load("nb").render(
        "mentor",
        "",
        [_summary("assignment_follow_up_reminder", 2), _summary("certification_expiry_reminder", 1)],
    )
    assert rendered.title == "Du har 3 nye påminnelser"
    assert rendered.greeting == "Hei!" and len(rendered.lines) == 2


def test_an_unknown_kind_gets_the_general_text() -> None:
    rendered = load("en").render("coordinator", "Kari", [KindSummary("something_new", 2)])
    assert (rendered.title, rendered.lines) == ("New notification", ("You have 2 new notifications in the app.",))


def test_an_unknown_language_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="no message templates for language 'de'"):
        load("de")
