"""The benchmark runs end to end at a small N (its targets are judged on the real sizes, not here)."""

from pathlib import Path

import pytest

from reminder_pipeline_bench.harness import JOB_FLOOR_PAIRS, run_benchmark

pytestmark = pytest.mark.database


def test_the_benchmark_measures_all_three_and_agrees_with_the_lower_bound_and_delivers(
    server_url: str, tmp_path: Path
) -> None:
    report_path, plot_path = tmp_path / "benchmarks.md", tmp_path / "benchmark.png"
    text, results, log = run_benchmark(
        server_url,
        [400],
        naive_sample=50,
        log_rows=500,
        output=report_path,
        plot_path=plot_path,
        echo=lambda line: None,
        delivery_notifications=200,
    )
    (result,) = results
    assert result.created > 0
    assert result.same_reminders and result.rerun_same and result.naive_same
    assert result.write_floor_s > 0 and result.rerun_s > 0
    assert len(result.pairs) == JOB_FLOOR_PAIRS and min(min(pair) for pair in result.pairs) > 0
    assert sorted(job for job, _ in result.pairs)[JOB_FLOOR_PAIRS // 2] == result.job_s  # the median
    assert "every pair: N=400: " in text
    assert result.job_s > 0 and result.lower_bound_s > 0 and result.naive_sample == 50
    assert result.naive_extrapolated_s == pytest.approx(result.naive_sample_s * result.active / 50)
    assert "| 400 |" in text and "cores" in text and "Index Scan" in log.recent_plan
    assert report_path.read_text() == text
    assert "| 200 | 1 | 200 |" in text and "| 200 | 4 | 50 |" in text  # the delivery job, both shapes
    assert "delivered at 1,000 messages/s or more" in text
    assert plot_path.stat().st_size > 5_000
