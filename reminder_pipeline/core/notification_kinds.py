"""A notification kind is declared once, by the domain that creates it; core and delivery only
iterate the declarations.

A declaration says who receives the kind, which template variables its message text uses (each
read from a payload key and summarised over the notifications a message carries), which other
payload keys identify what it is about (reference ids, never shown), and when an unsent
notification of the kind is no longer worth sending. The outbox builds every payload from these
declarations, and is the only writer of notifications. Its texts are the
`[<role>.<kind>]` sections of the templates (`reminder_pipeline/data/templates/*.toml`).

Domains declare their kinds when their package is imported; the code location imports every
domain (`reminder_pipeline/definitions.py`), so every process that delivers knows every kind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from reminder_pipeline.core.errors import ConfigurationError

RECIPIENT_ROLES = ("mentor", "coordinator")
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: How each variable type is stored in the outbox's temporary table and read back from the payload.
SQL_TYPES = {"int": "integer", "date": "date", "uuid": "uuid"}
PayloadType = Literal["int", "date", "uuid"]


@dataclass(frozen=True)
class Variable:
    """A template variable: the payload key it is read from, its type, and how the notifications
    of one kind in one message are summarised into it (the largest gap, the soonest expiry)."""

    payload_key: str
    type: Literal["int", "date"]
    summary: Literal["min", "max"]


@dataclass(frozen=True)
class NotificationKind:
    name: str
    recipient_roles: tuple[str, ...]
    #: Template variable name -> where it comes from. A template may use only these (and `count`).
    variables: Mapping[str, Variable] = field(default_factory=dict)
    #: Other payload keys, with their types: the ids the notice is about (for `ended_when`, for
    #: looking a notice up), never shown in a message.
    references: Mapping[str, PayloadType] = field(default_factory=dict)
    #: A SQL condition on the notification row `n`: true when the reason to send it has passed
    #: (contact logged, the mentor active again). An unsent notification then expires, and
    #: `ended_reason` is what its row says. None: it stays due until sent or too old.
    ended_when: str | None = None
    ended_reason: str = ""

    def __post_init__(self) -> None:
        names = [self.name, *self.variables, *self.payload_keys()]
        if not all(_NAME.fullmatch(name) for name in names):
            raise ConfigurationError(f"notification kind {self.name!r}: names must be lower_snake_case")
        if not self.recipient_roles or set(self.recipient_roles) - set(RECIPIENT_ROLES):
            raise ConfigurationError(f"notification kind {self.name}: recipients must be among {RECIPIENT_ROLES}")
        if (self.ended_when is None) != (not self.ended_reason):
            raise ConfigurationError(f"notification kind {self.name}: ended_when and ended_reason go together")
        if set(self.references) & {variable.payload_key for variable in self.variables.values()}:
            raise ConfigurationError(f"notification kind {self.name}: a payload key is a variable and a reference")
        if set(self.references.values()) - set(SQL_TYPES):
            raise ConfigurationError(f"notification kind {self.name}: reference types must be among {list(SQL_TYPES)}")

    def payload_keys(self) -> dict[str, str]:
        """Every key of this kind's payload, with its type: what the outbox writes, sorted."""
        keys = {variable.payload_key: variable.type for variable in self.variables.values()}
        return dict(sorted({**keys, **self.references}.items()))


_DECLARED: dict[str, NotificationKind] = {}


def declare(kind: NotificationKind) -> NotificationKind:
    """Register `kind` (at import of the domain that owns it). Declaring the same kind again is
    harmless; another kind of the same name, or a payload key typed two ways, is refused."""
    existing = _DECLARED.get(kind.name)
    if existing is not None and existing != kind:
        raise ConfigurationError(f"notification kind {kind.name} is declared twice, differently")
    types = {key: kind_type for other in _DECLARED.values() for key, kind_type in other.payload_keys().items()}
    for key, key_type in kind.payload_keys().items():
        if types.get(key, key_type) != key_type:
            raise ConfigurationError(f"payload key {key} is declared with two types")
    _DECLARED[kind.name] = kind
    return kind


def declared() -> tuple[NotificationKind, ...]:
    """Every declared kind, by name; refuses to answer before any domain has declared one."""
    if not _DECLARED:
        raise ConfigurationError("no notification kind is declared: import reminder_pipeline.definitions first")
    return tuple(_DECLARED[name] for name in sorted(_DECLARED))


def kind_named(name: str) -> NotificationKind | None:
    return _DECLARED.get(name)


def payload_types() -> dict[str, str]:
    """Every payload key any kind reads, with its type."""
    return {variable.payload_key: variable.type for kind in _DECLARED.values() for variable in kind.variables.values()}
