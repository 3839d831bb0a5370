import pytest

from reminder_pipeline.core.backoff import Backoff


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(base_seconds=60, cap_seconds=600, max_attempts=8)
    assert [backoff.delay_after(n, rng=lambda: 0.999999) for n in (1, 2, 3, 4, 5, 9)] == pytest.approx(
        [60, 120, 240, 480, 600, 600], rel=1e-5
    )
    assert backoff.delay_after(1, rng=lambda: 0.0) == 30  # jitter: between half and all of the delay
