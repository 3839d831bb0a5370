"""Things that must hold, as Dagster asset checks: each is a plain read-only query (a `Finding`:
how many rows break the rule, and a few of their IDs, never names), shown in the UI on the job's
asset. A check runs on demand (Execute checks in the UI) and after every successful run of the job
that materialises its asset; a check that reads nothing its job writes may be evaluated while the
run still works (`during_run`), and is logged only if the run succeeds."""

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import sqlalchemy as sa
from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    asset_check,
)

from reminder_pipeline.core.execution_log import safe_error_message
from reminder_pipeline.core.resources import PipelineDatabase

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class Finding:
    count: int
    sample_ids: list[str]

    @classmethod
    def from_rows(cls, rows: Iterable[sa.Row]) -> "Finding":
        """Rows of (id, total): the total is the same on every row (a window count)."""
        rows = list(rows)
        return cls(int(rows[0].total) if rows else 0, [str(row.id) for row in rows])


@dataclass(frozen=True)
class Check:
    asset: str
    name: str
    description: str
    evaluate: Callable[[sa.Connection], Finding]
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
    #: It reads nothing its job writes (the job's inputs only), so a run may evaluate it while it
    #: still writes (`evaluate_during_run`), on a core its writes leave idle, instead of after.
    during_run: bool = False

    def metadata(self, finding: Finding) -> dict[str, object]:
        return {"count": finding.count, "sample_ids": ", ".join(finding.sample_ids) or "none"}

    def evaluation(self, finding: Finding) -> AssetCheckEvaluation:
        return AssetCheckEvaluation(
            asset_key=AssetKey(self.asset),
            check_name=self.name,
            passed=finding.count == 0,
            metadata=self.metadata(finding),
            severity=self.severity,
            description=self.description,
        )

    def definition(self) -> AssetChecksDefinition:
        @asset_check(asset=self.asset, name=self.name, description=self.description)
        def run_check(context: AssetCheckExecutionContext, database: PipelineDatabase) -> AssetCheckResult:
            with database.transaction() as connection:
                finding = self.evaluate(connection)
            return AssetCheckResult(passed=finding.count == 0, metadata=self.metadata(finding), severity=self.severity)

        return run_check


#: Every check by asset, filled as the domains' definitions are built (the finishing op of a run
#: evaluates its asset's checks).
_REGISTRY: dict[str, list[Check]] = {}


def register(checks: Iterable[Check]) -> list[AssetChecksDefinition]:
    definitions = []
    for check in checks:
        known = _REGISTRY.setdefault(check.asset, [])
        if all(existing.name != check.name for existing in known):
            known.append(check)
        definitions.append(check.definition())
    return definitions


def checks_of(asset: str) -> list[Check]:
    return list(_REGISTRY.get(asset, []))


#: What a check found, or why it could not run (a one-line message without personal data).
CheckResult = Finding | str


def evaluate_during_run(
    asset: str, transaction: Callable[[], AbstractContextManager[sa.Connection]]
) -> dict[str, CheckResult]:
    """The asset's `during_run` checks, evaluated now by check name, each in a `transaction()`: the
    run passes them on for its finishing op to log. A check that cannot run is its reason, never an
    error: like a check after the run, it must not fail the run."""
    results: dict[str, CheckResult] = {}
    for check in checks_of(asset):
        if check.during_run:
            try:
                with transaction() as connection:
                    results[check.name] = check.evaluate(connection)
            except Exception as error:
                results[check.name] = safe_error_message(error)
    return results
