"""One hierarchy for every error this package raises on purpose.

Every message is one line that is safe to show an operator: no secret, no personal data (ids only).
The entry points map these classes, and nothing else, to what a user sees: the CLI prints the
message on one line and exits 1, the admin API answers with the status code of the category.
"""

from __future__ import annotations


class ReminderPipelineError(Exception):
    """Root of every error of ours."""


class ConfigurationError(ReminderPipelineError):
    """A setting is missing or malformed (named, never echoed: it may be a secret)."""


class NotConfigured(ConfigurationError):
    """An optional integration was asked for but its settings are absent."""


class DatabaseError(ReminderPipelineError):
    """Something about the application database."""


class DatabaseUnavailable(DatabaseError):
    """The server cannot be reached, refused the connection, or did not answer in time."""


class DatabaseNotMigrated(DatabaseError):
    """The schema this code needs is missing: `reminder-pipeline migrate` has not been run."""


class MigrationError(DatabaseError):
    """The migrations themselves are wrong: missing from the package, or edited after being applied."""


class InputRejected(ReminderPipelineError, ValueError):
    """Input broke a rule; the message names the rule, never the value."""


class DeliveryFailed(ReminderPipelineError):
    """A peer (Slack, SMTP, the Dynamics portal, a push gateway) did not accept what we sent."""


class SanitizedError(ReminderPipelineError):
    """Stands in for an error whose own text might hold personal data; its message is safe to log."""
