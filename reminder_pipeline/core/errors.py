"""One hierarchy for every error this package raises on purpose, all defined here.

Every message is one line that is safe to show an operator: no secret, no personal data (ids only).
The entry points map these classes, and nothing else, to what a user sees: the CLI prints the
message on one line and exits 1, the admin API answers with the status code of the category.

    ReminderPipelineError
    ├── ConfigurationError               a setting is missing or malformed
    │   ├── NotConfigured                an optional integration was asked for, its settings are absent
    │   │   ├── DeliveryNotConfigured    notifications are due and no delivery channel is configured
    │   │   └── DynamicsNotConfigured    DYNAMICS_WEBHOOK_URL is unset
    │   ├── NoDatabaseHere               no DATABASE_URL and no embedded database in this home
    │   └── CodeLocationUnavailable      the Dagster code location could not be loaded
    ├── DatabaseError
    │   ├── DatabaseUnavailable          unreachable, refused, or no answer in time
    │   ├── DatabaseNotMigrated          `reminder-pipeline migrate` has not been run
    │   ├── MigrationError
    │   │   ├── MigrationChanged         an applied migration file was edited
    │   │   └── MigrationsMissing        no migration file shipped: a broken installation
    │   └── SeedInconsistent             the demo data failed its post-load check
    ├── InputRejected (also ValueError)  input broke a rule (named, the value never echoed)
    │   └── RegistrationRejected         a batch of activities, with every offending row
    ├── DeliveryFailed                   a peer did not accept what we sent
    │   ├── DynamicsSyncFailed           the Dynamics portal
    │   └── SmtpSetupFailed              the SMTP relay could not be used (no STARTTLS, login refused)
    ├── PartialReexecutionRefused        a re-execution that would skip the lock-and-log step
    └── SanitizedError                   stands in for an error whose own text might hold personal data
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pydantic


class ReminderPipelineError(Exception):
    """Root of every error of ours."""


class ConfigurationError(ReminderPipelineError):
    """A setting is missing or malformed (named, never echoed: it may be a secret)."""


class NotConfigured(ConfigurationError):
    """An optional integration was asked for but its settings are absent."""


class DeliveryNotConfigured(NotConfigured):
    """Notifications are due and no delivery channel is configured: they wait, and the run fails."""


class DynamicsNotConfigured(NotConfigured):
    """No webhook URL: DYNAMICS_WEBHOOK_URL is unset."""


class NoDatabaseHere(ConfigurationError):
    """No DATABASE_URL, and no embedded database in the home this command looked in."""


class CodeLocationUnavailable(ConfigurationError):
    """The code location could not be loaded (a code server down, an import error)."""


class DatabaseError(ReminderPipelineError):
    """Something about the application database."""


class DatabaseUnavailable(DatabaseError):
    """The server cannot be reached, refused the connection, or did not answer in time."""


class DatabaseNotMigrated(DatabaseError):
    """The schema this code needs is missing: `reminder-pipeline migrate` has not been run."""


class MigrationError(DatabaseError):
    """The migrations themselves are wrong: missing from the package, or edited after being applied."""


class MigrationChanged(MigrationError):
    """An already-applied migration file no longer has the content that was applied."""


class MigrationsMissing(MigrationError):
    """No migration file was found: a broken installation, never "nothing to do"."""


class SeedInconsistent(DatabaseError):
    """The post-load check found a dangling reference or a stale last_contact_date (nothing is kept)."""


class InputRejected(ReminderPipelineError, ValueError):
    """Input broke a rule; the message names the rule, never the value."""


class RegistrationRejected(InputRejected):
    """Nothing was written; `problems` names every offending row (0-based) and why (each has `row`,
    `assignment_id` and `reason`)."""

    def __init__(self, problems: Sequence[Any]) -> None:
        self.problems = list(problems)
        shown = "; ".join(f"row {p.row} ({p.assignment_id}): {p.reason}" for p in self.problems[:10])
        more = f"; and {len(self.problems) - 10} more" if len(self.problems) > 10 else ""
        super().__init__(f"registration rejected, nothing written: {shown}{more}")


class DeliveryFailed(ReminderPipelineError):
    """A peer (Slack, SMTP, the Dynamics portal, a push gateway) did not accept what we sent."""


class DynamicsSyncFailed(DeliveryFailed):
    """The portal did not accept the event; the message holds no URL and no secret."""


class SmtpSetupFailed(DeliveryFailed):
    """The relay could not be used (no STARTTLS, login refused); the text is safe to store."""


class PartialReexecutionRefused(ReminderPipelineError):
    """A re-execution that would skip the lock-and-log step cannot run safely."""


class SanitizedError(ReminderPipelineError):
    """Stands in for an error whose own text might hold personal data; its message is safe to log."""


def validation_problems(error: pydantic.ValidationError, name: Callable[[str], str] = str) -> str:
    """Each field a pydantic model refused, with its rule, on one line ("field: rule; ..."): never
    the value given, which may be a secret or personal data. `name` spells a field (e.g. as its
    environment variable)."""
    return "; ".join(
        f"{name('.'.join(str(part) for part in problem['loc']) or error.title)}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    )
