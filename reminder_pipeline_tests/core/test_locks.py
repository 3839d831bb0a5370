"""The advisory-lock registry: every key has one owner, and the documented keys are the real ones."""

import pytest

from reminder_pipeline import definitions
from reminder_pipeline.core import locks
from reminder_pipeline.core.errors import ConfigurationError
from reminder_pipeline.core.jobs import JobSpec, specs_of


def test_every_job_of_the_code_location_owns_its_key_and_no_key_has_two_owners() -> None:
    specs = specs_of(definitions.defs.resolve_all_job_defs())
    owners = locks.owners()
    assert {spec.lock_key: spec.name for spec in specs}.items() <= owners.items()
    assert owners[locks.MIGRATIONS] == "migrations" and owners[locks.RECIPIENT_CLASS] == "delivery recipient claims"


def test_a_second_job_with_a_taken_key_or_a_key_outside_the_range_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lock key 7204001 is already taken by assignment_reminders"):
        JobSpec(name="copycat", description="", lock_key=7_204_001)
    with pytest.raises(ConfigurationError, match="outside the jobs' range"):
        JobSpec(name="stray", description="", lock_key=7_204_100)
    # Declaring the same job again (as JobSpec.of does from a job's metadata) is harmless.
    assert JobSpec(name="assignment_reminders", description="", lock_key=7_204_001).lock_key == 7_204_001
