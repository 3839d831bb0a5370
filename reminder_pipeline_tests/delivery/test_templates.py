"""The message templates: every kind the domains create reads well in both languages, and a
template that names a variable we do not provide fails here rather than in a mentor's inbox."""

import datetime as dt

import pytest

from reminder_pipeline.core import notification_kinds
from reminder_pipeline.core.errors import ConfigurationError
from reminder_pipeline.delivery.templates import LANGUAGES, KindSummary, load

#: A sample value of each variable type.
SAMPLES = {"int": (1, 7), "date": (dt.date(2026, 12, 24), dt.date(2026, 12, 24))}


def _summary(kind: str, count: int) -> KindSummary:
    """A summary with every variable the kind declares (one value for a single notification, another for several)."""
    declared = notification_kinds.kind_named(kind)
    assert declared is not None, f"{kind} is not declared"
    return KindSummary.of(
        kind,
        count,
        **{name: SAMPLES[variable.type][count > 1] for name, variable in declared.variables.items()},
    )


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("count", [1, 3])
def test_every_declared_kind_has_its_own_text_for_each_recipient_in_every_language(language: str, count: int) -> None:
    """The texts may use only the kind's declared variables (StrictUndefined fails on any other)."""
    templates = load(language)
    default_title = templates.default[0].render(count=count)
    for kind in notification_kinds.declared():
        for role in kind.recipient_roles:
            assert (role, kind.name) in templates.kinds, f"{language}: no template for {role} {kind.name}"
            rendered = templates.render(role, "Ola", [_summary(kind.name, count)])
            assert rendered.title != default_title and "{" not in rendered.title + rendered.body
            assert rendered.body.startswith(("Hei Ola!", "Hi Ola,"))


def test_every_template_belongs_to_a_declared_kind_and_recipient() -> None:
    declared = {(role, kind.name) for kind in notification_kinds.declared() for role in kind.recipient_roles}
    for language in LANGUAGES:
        assert set(load(language).kinds) <= declared, f"{language}: a template no kind uses"


def test_counts_days_and_dates_are_what_the_text_says() -> None:
    text = load("nb").render("mentor", "Ola", [_summary("certification_expiry_reminder", 1)]).body
    assert "om 1 dag (24.12.2026)" in text
    text = load("en").render("mentor", "Ola", [KindSummary.of("assignment_follow_up_reminder", 3, days=23)]).body
    assert "3 of your assignments" in text and "23 days" in text


def test_a_reactivated_mentor_is_told_until_when_the_renewal_is_valid() -> None:
    text = load("en").render("mentor", "Ola", [_summary("mentor_reactivated", 1)]).body
    assert "valid until 2026-12-24" in text and "active as a peer mentor again" in text
    text = load("nb").render("mentor", "Ola", [KindSummary.of("mentor_reactivated", 1, expires_on=None)]).body
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
