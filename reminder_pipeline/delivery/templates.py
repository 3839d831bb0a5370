"""Message templates, one TOML file per language in the package (`reminder_pipeline/data/templates`).

Each file holds Jinja2 snippets: a greeting, a title per (recipient role, notification kind), a text
per kind, and a digest title for a message that carries several kinds. `StrictUndefined` makes a
template that names a variable we do not provide fail in the tests, not in a mentor's inbox.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import jinja2

from reminder_pipeline.core import packaged
from reminder_pipeline.core.errors import ConfigurationError

LANGUAGES = ("nb", "en")
DEFAULT_LANGUAGE = "nb"

_ENVIRONMENT = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


@dataclass(frozen=True)
class KindSummary:
    """What a message says about one kind of notification: counts and days, never names."""

    kind: str
    count: int
    #: The kind's template variables (its declaration's), as sorted (name, value) pairs: hashable,
    #: so that a text rendered once is reused for every recipient with the same counts.
    variables: tuple[tuple[str, int | dt.date | None], ...] = ()

    @classmethod
    def of(cls, kind: str, count: int, **variables: int | dt.date | None) -> KindSummary:
        return cls(kind, count, tuple(sorted(variables.items())))


@dataclass(frozen=True)
class Rendered:
    title: str
    greeting: str
    lines: tuple[str, ...]
    signature: str

    @property
    def body(self) -> str:
        return "\n\n".join([self.greeting, *self.lines])


@dataclass(frozen=True)
class Templates:
    language: str
    date_format: str
    greeting: jinja2.Template
    digest_title: jinja2.Template
    signature: str
    #: (recipient role, kind) -> (title, text)
    kinds: Mapping[tuple[str, str], tuple[jinja2.Template, jinja2.Template]]
    default: tuple[jinja2.Template, jinja2.Template]

    def render(self, recipient_role: str, first_name: str, summaries: Sequence[KindSummary]) -> Rendered:
        """The kind texts never use the name, so they are rendered once per distinct (role, counts,
        days) and reused: most recipients of a day share them."""
        parts = [_render_kind(self, recipient_role, summary) for summary in summaries]
        total = sum(summary.count for summary in summaries)
        title = parts[0][0] if len(parts) == 1 else _render(self.digest_title, count=total)
        greeting = _render(self.greeting, first_name=first_name)
        return Rendered(title, greeting, tuple(text for _, text in parts), self.signature)

    def __hash__(self) -> int:  # one object per language (load() caches it): identity is enough
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


def _render(template: jinja2.Template, **values: object) -> str:
    return template.render(values)


@functools.lru_cache(maxsize=8192)
def _render_kind(templates: Templates, recipient_role: str, summary: KindSummary) -> tuple[str, str]:
    title, text = templates.kinds.get((recipient_role, summary.kind), templates.default)
    values: dict[str, object] = {
        name: value.strftime(templates.date_format) if isinstance(value, dt.date) else value
        for name, value in summary.variables
    }
    values["count"] = summary.count
    return title.render(values), text.render(values)


@functools.cache
def load(language: str) -> Templates:
    """The templates of `language` (`nb` or `en`), parsed and compiled once per process."""
    if language not in LANGUAGES:
        raise ConfigurationError(f"no message templates for language {language!r}: use one of {', '.join(LANGUAGES)}")
    spec = tomllib.loads(packaged.read_text(f"templates/{language}.toml"))
    compile_ = _ENVIRONMENT.from_string
    kinds = {
        (role, kind): (compile_(entry["title"]), compile_(entry["text"]))
        for role in ("mentor", "coordinator")
        for kind, entry in spec.get(role, {}).items()
    }
    return Templates(
        language=language,
        date_format=spec["date_format"],
        greeting=compile_(spec["greeting"]),
        digest_title=compile_(spec["digest_title"]),
        signature=spec["signature"],
        kinds=kinds,
        default=(compile_(spec["default"]["title"]), compile_(spec["default"]["text"])),
    )
