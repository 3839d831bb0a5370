"""`reminder-pipeline bench`: the assignment job against the fastest and the naive way of doing its work.

For each size N, in a fresh database on the same server:
1. the real `assignment_reminders` job, through Dagster (`execute_in_process` in a child process,
   timed around the run only, so Dagster's imports are not counted; peak RSS of that process);
2. the lower bound: one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` doing the same decisions;
3. the naive loop: one query per assignment and one INSERT per notification, each its own
   transaction, on a sample, extrapolated to N (and labelled so).
Each starts from an empty notifications table; 1 and 2 must create exactly the same keys. Then the
execution log's own costs with many rows in `cron_execution_logs`, and the `notification_delivery`
job delivering 100,000 pending notifications to a push gateway on loopback (uvicorn in a process of
its own, counting requests and distinct Idempotency-Keys): one message per recipient, and digests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from reminder_pipeline.assignments.rules import ReminderRules
from reminder_pipeline.assignments.streaming import DEFAULT_CHUNK_SIZE
from reminder_pipeline.core import execution_log
from reminder_pipeline.core.database import connect, with_database
from reminder_pipeline.core.errors import ReminderPipelineError
from reminder_pipeline.core.migrations import apply_migrations
from reminder_pipeline.core.outbox import KEY_COLUMNS, KEY_TEXT_SQL
from reminder_pipeline.seed import seed
from reminder_pipeline_bench.yardsticks import LOWER_BOUND_SQL, lower_bound_parameters, naive_loop

AS_OF = dt.date(2026, 11, 22)
#: The job's own rules (its defaults): the lower bound and the naive loop take the same object.
RULES = ReminderRules()
TARGETS = {
    "job_vs_lower_bound_at_1m": 1.5,
    "job_vs_write_floor_at_1m": 1.2,
    "rerun_vs_job_at_1m": 0.2,
    "naive_vs_job_at_1m": 40.0,
    "peak_rss_mib_at_1m": 400.0,
    "peak_rss_growth_100k_to_1m": 1.2,
    "job_seconds_at_10k": 1.0,
    "log_write_p99_ms": 100.0,
    "recent_rows_ms": 10.0,
    "seed_seconds_at_1m": 60.0,
    "delivery_messages_per_second": 1000.0,
}
#: Notifications per recipient in the delivery scenarios: the worst case (one message each) and digests.
DELIVERY_SHAPES = (1, 4)

#: The keys of the assignments the naive loop samples (its `ORDER BY id LIMIT :n`), to compare it with the job.
SAMPLE_KEYS_SQL = (
    f"SELECT count(*), md5(coalesce(string_agg({KEY_TEXT_SQL}, ',' ORDER BY {KEY_TEXT_SQL}), ''))"
    " FROM public.notifications AS n WHERE n.assignment_id IN"
    " (SELECT id FROM public.assignments WHERE status = 'active' ORDER BY id LIMIT :n)"
)
#: The share of active assignments changed between the job and its rerun.
RERUN_TOUCHED_SHARE = 0.01
TOUCH_SQL = (
    "UPDATE public.assignments SET status = status WHERE id IN (SELECT id FROM public.assignments"
    " WHERE status = 'active' ORDER BY md5(id::text)"
    " LIMIT (SELECT ceil(count(*) * :share) FROM public.assignments WHERE status = 'active'))"
)
KEYS_SQL = (
    f"SELECT count(*), md5(coalesce(string_agg({KEY_TEXT_SQL}, ',' ORDER BY {KEY_TEXT_SQL}), ''))"
    " FROM public.notifications AS n"
)


@dataclass
class SizeResult:
    n: int
    active: int
    seed_s: float
    job_s: float
    job_peak_rss_mib: float
    created: int
    lower_bound_s: float
    same_reminders: bool
    naive_sample: int
    naive_sample_s: float
    naive_extrapolated_s: float
    rerun_s: float = float("nan")
    rerun_same: bool = False
    write_floor_s: float = float("nan")
    naive_same: bool = False
    #: Every (job s, write floor s) pair, in the order run; `job_s` and `write_floor_s` are their medians.
    pairs: list[tuple[float, float]] = field(default_factory=list)

    @property
    def ratio_job_lower(self) -> float:
        return self.job_s / self.lower_bound_s if self.lower_bound_s else float("nan")

    @property
    def ratio_job_floor(self) -> float:
        """The median of the pairs' ratios (each job beside the floor of the rows it created; the first
        pair's floor is measured after the rerun, which creates nothing)."""
        if self.pairs:
            return statistics.median(job / floor for job, floor in self.pairs)
        return self.job_s / self.write_floor_s if self.write_floor_s else float("nan")

    @property
    def ratio_rerun_job(self) -> float:
        return self.rerun_s / self.job_s if self.job_s else float("nan")

    @property
    def ratio_naive_job(self) -> float:
        return self.naive_extrapolated_s / self.job_s if self.job_s else float("nan")


#: The job and the write floor are run this many times each, alternately, at every N: one pair's
#: ratio varied from 1.10 to 1.37 within an hour on this machine, and from 0.94 to 1.42 on a slower
#: day (docs/scaling.md), so the report gives the medians, and every pair.
JOB_FLOOR_PAIRS = 5


def _in_child(mode: str, database_url: str, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run `mode` ("job", "delivery") in a fresh process: (seconds around the run, peak RSS MiB)."""
    done = subprocess.run(
        [sys.executable, "-m", "reminder_pipeline_bench", f"--child-{mode}", database_url],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise ReminderPipelineError(f"benchmark {mode} run failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["seconds"], result["peak_rss_mib"]


def child_run(mode: str, database_url: str) -> None:
    """The child's side: time only the run itself (not the imports), then report peak RSS."""
    if mode == "job":
        from dagster import DagsterInstance

        from reminder_pipeline.assignments.jobs import ASSIGNMENT_REMINDERS
        from reminder_pipeline.core.run_config import dated_run_config
        from reminder_pipeline.definitions import build_defs

        job = build_defs(database_url).get_job_def("assignment_reminders")
        rules = dataclasses.asdict(RULES)
        config = {
            **dated_run_config(
                ASSIGNMENT_REMINDERS.dated_op,
                AS_OF,
                allow_any_date=True,
                full_run=os.environ.get("BENCH_FULL_RUN") == "1",
                **rules,
            ),
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        }
        with DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            succeeded = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False).success
            seconds = time.perf_counter() - started
    elif mode == "delivery":
        from dagster import DagsterInstance

        from reminder_pipeline.definitions import build_defs
        from reminder_pipeline.delivery.jobs import NotificationDelivery

        os.environ["NOTIFICATION_QUIET_HOURS"] = "none"  # the benchmark measures sending, not waiting
        delivery = NotificationDelivery(push_webhook_url=os.environ["BENCH_GATEWAY_URL"])
        job = build_defs(database_url, notification_delivery=delivery).get_job_def("notification_delivery")
        config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        with DagsterInstance.ephemeral() as instance:
            started = time.perf_counter()
            succeeded = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False).success
            seconds = time.perf_counter() - started
    if not succeeded:
        sys.exit(1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak}))


@contextmanager
def _scratch_database(server_url: str, prefix: str) -> Iterator[str]:
    """A freshly migrated database of its own, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with connect(server_url, autocommit=True) as admin:
        admin.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = with_database(server_url, name)
        apply_migrations(url)
        yield url
    finally:
        with connect(server_url, autocommit=True) as admin:
            admin.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


#: The outbox columns a run writes, in COPY order: what the write floor loads.
_WRITTEN = "source_id, kind, recipient_role, recipient_id, assignment_id, reference_date, step, payload"


def _checkpoint(db: sa.Connection) -> None:
    """Write out dirty pages before a timed run, where the role may (PostgreSQL's pg_checkpoint)."""
    with contextlib.suppress(sa.exc.ProgrammingError):  # not allowed: both start from whatever state there is
        db.execute(sa.text("CHECKPOINT"))


def _write_floor(db: sa.Connection) -> float:
    """The fastest way to write the job's notifications: one COPY of exactly the rows the job created,
    in key order, into an empty copy of `notifications` with the same constraints, indexes and
    defaults (nothing to read, nothing to decide). Seconds of the COPY alone. The table is the
    redesigned one (migration 0014; the designs compared are in docs/scaling.md)."""
    raw = db.connection.dbapi_connection
    with tempfile.TemporaryFile() as rows:
        with raw.cursor() as cursor:
            cursor.copy_expert(
                f"COPY (SELECT {_WRITTEN} FROM public.notifications ORDER BY {', '.join(KEY_COLUMNS)}) TO STDOUT", rows
            )
        rows.seek(0)
        db.execute(sa.text("DROP TABLE IF EXISTS public.bench_write_floor"))
        db.execute(sa.text("CREATE TABLE public.bench_write_floor (LIKE public.notifications INCLUDING ALL)"))
        _checkpoint(db)  # the floor does not pay for the job's dirty pages
        try:
            started = time.perf_counter()
            with raw.cursor() as cursor:
                cursor.copy_expert(f"COPY public.bench_write_floor ({_WRITTEN}) FROM STDIN", rows)
            return time.perf_counter() - started
        finally:
            db.execute(sa.text("DROP TABLE public.bench_write_floor"))


def bench_size(server_url: str, n: int, naive_sample: int, echo=print) -> SizeResult:
    with _scratch_database(server_url, f"rp_bench_{n}") as url:
        with connect(url) as connection, connection.begin():
            started = time.perf_counter()
            seed(connection, n, today=AS_OF)
            seed_s = time.perf_counter() - started
        with connect(url, autocommit=True) as db:
            # As autovacuum leaves long-lived tables: statistics, and the seed's rows marked committed
            # (else the job's first read of each page would write it again, which no later run does).
            db.execute(sa.text("VACUUM ANALYZE"))
            active = db.execute(sa.text("SELECT count(*) FROM public.assignments WHERE status = 'active'")).scalar()
            _checkpoint(db)  # the job does not pay for the seed's dirty pages
        echo(f"N={n:,}: seeded in {seed_s:.1f} s; running the job")
        job_s, peak = _in_child("job", url)
        echo(f"N={n:,}: job {job_s:.2f} s; the same run again (nothing new to create)")
        with connect(url, autocommit=True) as db:
            job_keys = db.execute(sa.text(KEYS_SQL)).one()
            # Between the runs, a share of the assignments is written to (a no-op update that stamps
            # changed_at, as the morning's activity would), so the rerun has something to read again.
            db.execute(sa.text(TOUCH_SQL), {"share": RERUN_TOUCHED_SHARE})
        rerun_s, _ = _in_child("job", url)
        with connect(url, autocommit=True) as db:
            rerun_keys = db.execute(sa.text(KEYS_SQL)).one()
            sample = min(naive_sample, active)
            job_sample_keys = db.execute(sa.text(SAMPLE_KEYS_SQL), {"n": sample}).one()
            echo(f"N={n:,}: rerun {rerun_s:.2f} s; write floor")
            pairs = [(job_s, _write_floor(db))]
            while len(pairs) < JOB_FLOOR_PAIRS:
                echo(f"N={n:,}: write floor {pairs[-1][1]:.2f} s; the job again on an empty outbox, then the floor")
                db.execute(sa.text("TRUNCATE public.notifications"))
                _checkpoint(db)
                # full_run: every assignment read again, as the first run read them (not a same-day rerun)
                again_s, again_peak = _in_child("job", url, {"BENCH_FULL_RUN": "1"})
                if tuple(db.execute(sa.text(KEYS_SQL)).one()) != tuple(job_keys):
                    raise ReminderPipelineError(f"N={n:,}: the job run again created other notifications")
                peak = max(peak, again_peak)
                pairs.append((again_s, _write_floor(db)))
            db.execute(sa.text("TRUNCATE public.notifications"))
            job_s = statistics.median(job for job, _ in pairs)
            floor_s = statistics.median(floor for _, floor in pairs)
            echo(f"N={n:,}: write floor {pairs[-1][1]:.2f} s; lower bound")
            started = time.perf_counter()
            db.execute(sa.text(LOWER_BOUND_SQL), lower_bound_parameters(RULES, AS_OF))
            lower_s = time.perf_counter() - started
            lower_keys = db.execute(sa.text(KEYS_SQL)).one()
            db.execute(sa.text("TRUNCATE public.notifications"))
            echo(f"N={n:,}: lower bound {lower_s:.2f} s; naive loop on {sample:,} assignments")
            sampled, naive_s = naive_loop(db, sample, RULES, AS_OF)
            naive_sample_keys = db.execute(sa.text(SAMPLE_KEYS_SQL), {"n": sample}).one()
            db.execute(sa.text("TRUNCATE public.notifications"))
        return SizeResult(
            n=n,
            active=active,
            seed_s=seed_s,
            job_s=job_s,
            job_peak_rss_mib=peak,
            created=job_keys[0],
            lower_bound_s=lower_s,
            same_reminders=tuple(job_keys) == tuple(lower_keys),
            naive_sample=sampled,
            naive_sample_s=naive_s,
            naive_extrapolated_s=naive_s * active / max(sampled, 1),
            rerun_s=rerun_s,
            rerun_same=tuple(rerun_keys) == tuple(job_keys),
            write_floor_s=floor_s,
            naive_same=tuple(naive_sample_keys) == tuple(job_sample_keys),
            pairs=pairs,
        )


@dataclass
class LogCosts:
    rows: int
    insert_p50_ms: float
    insert_p99_ms: float
    update_p50_ms: float
    update_p99_ms: float
    recent_p50_ms: float
    recent_p99_ms: float
    recent_plan: str
    job_recent_plan: str


def bench_execution_log(server_url: str, rows: int, samples: int = 200) -> LogCosts:
    with _scratch_database(server_url, "rp_bench_log") as url:
        with connect(url, autocommit=True) as db:
            db.execute(
                sa.text(
                    "INSERT INTO public.cron_execution_logs (job_name, status, started_at, completed_at, duration_ms)"
                    " SELECT (ARRAY['assignment_reminders', 'certification_reminders', 'dynamics_sync'])[1 + i % 3],"
                    " 'success', now() - make_interval(mins => i),"
                    " now() - make_interval(mins => i) + interval '1 s', 1000"
                    " FROM generate_series(1, :rows) AS i"
                ),
                {"rows": rows},
            )
            db.execute(sa.text("ANALYZE public.cron_execution_logs"))
            inserts, updates, recents = [], [], []
            recent_sql = sa.text("SELECT * FROM public.cron_execution_logs ORDER BY started_at DESC LIMIT 10")
            for _ in range(samples):
                started = time.perf_counter()
                row_id = execution_log.start_run(db, "assignment_reminders")
                inserts.append(time.perf_counter() - started)
                started = time.perf_counter()
                execution_log.finish_success(db, row_id, assignments_evaluated=1, reminders_dispatched=1)
                updates.append(time.perf_counter() - started)
                started = time.perf_counter()
                db.execute(recent_sql).all()
                recents.append(time.perf_counter() - started)
            plan = "\n".join(db.execute(sa.text(f"EXPLAIN {recent_sql.text}")).scalars())
            job_plan = "\n".join(
                db.execute(
                    sa.text(
                        "EXPLAIN SELECT * FROM public.cron_execution_logs WHERE job_name = 'assignment_reminders'"
                        " ORDER BY started_at DESC LIMIT 10"
                    )
                ).scalars()
            )

        def p(values: list[float], q: int) -> float:
            return statistics.quantiles([v * 1000 for v in values], n=100)[q - 1]

        return LogCosts(
            rows,
            p(inserts, 50),
            p(inserts, 99),
            p(updates, 50),
            p(updates, 99),
            p(recents, 50),
            p(recents, 99),
            plan,
            job_plan,
        )


# -- delivery ---------------------------------------------------------------------------------------


class _Gateway:
    """A push gateway for the benchmark (an ASGI app under uvicorn): answers 200 to every POST and
    counts requests and distinct Idempotency-Keys; GET /stats tells both."""

    def __init__(self) -> None:
        self.requests = 0
        self.keys: set[str] = set()

    async def __call__(self, scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["method"] == "GET":
            body = json.dumps({"requests": self.requests, "keys": len(self.keys)}).encode()
        else:
            self.requests += 1
            self.keys.add(dict(scope["headers"]).get(b"idempotency-key", b"").decode())
            body = b"ok"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


def serve_gateway(port: int) -> None:
    import uvicorn

    uvicorn.run(_Gateway(), host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


@contextmanager
def _gateway() -> Iterator[str]:
    import socket

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "reminder_pipeline_bench", "--gateway", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/stats", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise ReminderPipelineError("the benchmark's push gateway did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


@dataclass
class DeliveryCosts:
    notifications: int
    per_recipient: int
    messages: int
    seconds: float
    peak_rss_mib: float
    delivered: int
    gateway_requests: int
    gateway_keys: int

    @property
    def messages_per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else float("nan")

    @property
    def notifications_per_second(self) -> float:
        return self.notifications / self.seconds if self.seconds else float("nan")


_DELIVERY_SEED = """
WITH coordinator AS (
    INSERT INTO public.coordinators (full_name, email) VALUES ('Coordinator Bench', 'coordinator@example.invalid')
    RETURNING id
), mentors AS (
    INSERT INTO public.peer_mentors (coordinator_id, full_name, email)
    SELECT coordinator.id, 'Mentor ' || i, 'mentor' || i || '@example.invalid'
    FROM coordinator, generate_series(1, :recipients) AS i
    RETURNING id
), assignments AS (  -- one open contact gap per mentor, which each reminder is about
    INSERT INTO public.assignments (mentor_id, last_contact_date)
    SELECT mentors.id, DATE '2026-01-01' FROM mentors
    RETURNING id, mentor_id
)
INSERT INTO public.notifications (source_id, kind, recipient_role, recipient_id, assignment_id, reference_date,
                                  step, payload)
SELECT a.id, 'assignment_follow_up_reminder', 'mentor', a.mentor_id, a.id, DATE '2026-01-01', k,
       jsonb_build_object('days_without_contact', 10 + k)
FROM assignments AS a, generate_series(1, :per_recipient) AS k
"""


def bench_delivery(server_url: str, notifications: int, per_recipient: int, echo=print) -> DeliveryCosts:
    """`notifications` pending, `per_recipient` each, delivered by the real job to a loopback gateway."""
    recipients = max(1, notifications // per_recipient)
    with _scratch_database(server_url, "rp_bench_delivery") as url, _gateway() as gateway:
        with connect(url) as connection, connection.begin():
            connection.execute(sa.text(_DELIVERY_SEED), {"recipients": recipients, "per_recipient": per_recipient})
        with connect(url, autocommit=True) as db:
            db.execute(sa.text("ANALYZE"))
        echo(f"delivery: {recipients * per_recipient:,} notifications for {recipients:,} recipients; running the job")
        seconds, peak = _in_child("delivery", url, {"BENCH_GATEWAY_URL": gateway})
        import httpx

        stats = httpx.get(f"{gateway}/stats", timeout=10).json()
        with connect(url, autocommit=True) as db:
            delivered = db.execute(
                sa.text("SELECT count(*) FROM public.notifications WHERE status = 'delivered'")
            ).scalar()
    return DeliveryCosts(
        notifications=recipients * per_recipient,
        per_recipient=per_recipient,
        messages=recipients,
        seconds=seconds,
        peak_rss_mib=peak,
        delivered=delivered,
        gateway_requests=stats["requests"],
        gateway_keys=stats["keys"],
    )


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    processor = platform.processor() or platform.machine()
    return f"{processor}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, Python {platform.python_version()}"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(results: list[SizeResult], log: LogCosts, server: str, deliveries: list[DeliveryCosts] = ()) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `reminder-pipeline bench` on {machine()};"
        f" PostgreSQL: {server}. As-of date {AS_OF}.",
        "",
        "| N | active | created | seed s | job s | job rows/s | write floor s | job / floor | rerun s "
        "| rerun / job | lower bound s | job / lower bound | naive s (extrapolated) | naive / job | same reminders |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for r in results:
        same = r.same_reminders and r.naive_same and r.rerun_same
        lines.append(
            f"| {r.n:,} | {r.active:,} | {r.created:,} | {r.seed_s:.1f} | {r.job_s:.2f} | {r.active / r.job_s:,.0f} "
            f"| {r.write_floor_s:.2f} | {r.ratio_job_floor:.2f} | {r.rerun_s:.2f} | {r.ratio_rerun_job:.2f} "
            f"| {r.lower_bound_s:.2f} | {r.ratio_job_lower:.2f} "
            f"| {r.naive_extrapolated_s:,.1f} (from {r.naive_sample:,} in {r.naive_sample_s:.1f} s) "
            f"| {r.ratio_naive_job:.1f} | {'yes' if same else 'NO'} |"
        )
    lines += [
        "",
        "- *job*: the real `assignment_reminders` job run through Dagster (lock, log, one sorted read, two queries"
        " from 200,000 assignments, streamed in"
        f" chunks of {DEFAULT_CHUNK_SIZE:,} assignments, each decided while the one before is dispatched, in a"
        " transaction of its own; the contact-date check once the read is over, beside the last writes; finalise,"
        " with the other asset checks), timed around `execute_in_process` in a fresh"
        " process; peak RSS is the highest of its runs'. The seeded tables are vacuumed and analysed (as autovacuum"
        " keeps long-lived tables) and the server is checkpointed before it, as before the floor.",
        "- *write floor*: one COPY of exactly the rows the job created, in key order, into an empty copy of"
        " `notifications` (the redesigned table of migration 0014: the same constraints, indexes and defaults):"
        " the cost of writing the same information with nothing read or decided. The designs compared to choose"
        " that table are in `docs/scaling.md`.",
        f"- *job s*, *write floor s*: medians of {JOB_FLOOR_PAIRS} runs each, alternately (the job, then the floor of"
        " the rows it created; the job again with `full_run: true` on an emptied outbox, creating the same keys"
        " again, then the floor again), and *job / floor* the median of the pairs' ratios; every pair:"
        + "".join(
            f" N={r.n:,}: " + ", ".join(f"{job:.2f}/{floor:.2f} s ({job / floor:.2f})" for job, floor in r.pairs) + ";"
            for r in results
        ).rstrip(";")
        + ". The rerun and the yardsticks are run once.",
        f"- *rerun*: the same job again the same day with {RERUN_TOUCHED_SHARE:.0%} of the active assignments"
        " written to in between (changed_at stamped, nothing new due): it reads only what changed since the"
        " first run (less its margin) and creates nothing; every key exists.",
        "- *lower bound*: one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` implementing the same rule.",
        "- *naive*: one SELECT per assignment and one INSERT per notification, each in its own transaction,"
        " on a sample; **extrapolated** linearly to all active assignments.",
        "- *same reminders*: the lower bound created the job's idempotency keys (count and digest), and the naive"
        " loop created the job's keys for the assignments it sampled: both yardsticks re-state the rule"
        " (`reminder_pipeline_bench/yardsticks.py`), and this is what keeps them honest.",
        "",
        "## Memory as N grows",
        "",
        "| N | job peak RSS MiB | against the smallest N |",
        "| ---: | ---: | ---: |",
        *[
            f"| {r.n:,} | {r.job_peak_rss_mib:,.0f} | {r.job_peak_rss_mib / results[0].job_peak_rss_mib:.2f}x |"
            for r in results
        ],
        "",
        "The job streams (`reminder_pipeline/assignments/streaming.py`): three chunks (read, queued, written),"
        " a parser block and running totals are in memory, whatever N is; most of the peak is the Python process"
        " with Dagster, pandas and Arrow.",
        "",
        "## Execution log",
        "",
        f"With {log.rows:,} rows in `cron_execution_logs`, 200 samples each:",
        "",
        "| operation | p50 ms | p99 ms |",
        "| --- | ---: | ---: |",
        f"| insert the `running` row | {log.insert_p50_ms:.2f} | {log.insert_p99_ms:.2f} |",
        f"| update by primary key (success) | {log.update_p50_ms:.2f} | {log.update_p99_ms:.2f} |",
        f"| 10 most recent rows | {log.recent_p50_ms:.2f} | {log.recent_p99_ms:.2f} |",
        "",
        "```text",
        log.recent_plan,
        "",
        log.job_recent_plan,
        "```",
        "",
    ]
    if deliveries:
        lines += [
            "## Delivery to a push gateway on loopback",
            "",
            "The real `notification_delivery` job (claim, compose, send, record, the next batch claimed while one is"
            " sent; 32 requests in flight over kept-alive connections) in a fresh process, against a uvicorn gateway"
            " in another that answers 200 and counts requests and distinct Idempotency-Keys. Both share the"
            " machine's cores with PostgreSQL.",
            "",
            "| notifications | per recipient | messages | job s | messages/s | notifications/s | peak RSS MiB "
            "| delivered | gateway requests | distinct keys |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            *[
                f"| {d.notifications:,} | {d.per_recipient} | {d.messages:,} | {d.seconds:.1f} "
                f"| {d.messages_per_second:,.0f} | {d.notifications_per_second:,.0f} | {d.peak_rss_mib:,.0f} "
                f"| {d.delivered:,} | {d.gateway_requests:,} | {d.gateway_keys:,} |"
                for d in deliveries
            ],
            "",
        ]
    lines += [
        "## Targets",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
    ]
    by_n = {r.n: r for r in results}
    if 1_000_000 in by_n:
        big = by_n[1_000_000]
        lines += [
            f"| 1,000,000: job within 1.5x of the lower bound | {big.ratio_job_lower:.2f}x "
            f"| {_verdict(big.ratio_job_lower <= TARGETS['job_vs_lower_bound_at_1m'])} |",
            f"| 1,000,000: job within 1.2x of the write floor (the redesigned table) | {big.ratio_job_floor:.2f}x "
            f"| {_verdict(big.ratio_job_floor <= TARGETS['job_vs_write_floor_at_1m'])} |",
            f"| 1,000,000: a rerun the same day within 20% of the first run | {big.ratio_rerun_job:.2f}x "
            f"| {_verdict(big.ratio_rerun_job <= TARGETS['rerun_vs_job_at_1m'])} |",
            f"| 1,000,000: job at least 40x faster than naive | {big.ratio_naive_job:.1f}x "
            f"| {_verdict(big.ratio_naive_job >= TARGETS['naive_vs_job_at_1m'])} |",
            f"| 1,000,000: peak memory at most 400 MiB | {big.job_peak_rss_mib:,.0f} MiB "
            f"| {_verdict(big.job_peak_rss_mib <= TARGETS['peak_rss_mib_at_1m'])} |",
            f"| seeding 1,000,000 under 60 s | {big.seed_s:.1f} s "
            f"| {_verdict(big.seed_s < TARGETS['seed_seconds_at_1m'])} |",
        ]
    if 1_000_000 in by_n and 100_000 in by_n:
        growth = by_n[1_000_000].job_peak_rss_mib / by_n[100_000].job_peak_rss_mib
        lines.append(
            f"| memory flat: peak at 1,000,000 at most 1.2x the peak at 100,000 | {growth:.2f}x "
            f"| {_verdict(growth <= TARGETS['peak_rss_growth_100k_to_1m'])} |"
        )
    if 10_000 in by_n:
        small = by_n[10_000]
        lines.append(
            f"| 10,000: the job's work under 1 s | {small.job_s:.2f} s "
            f"| {_verdict(small.job_s < TARGETS['job_seconds_at_10k'])} |"
        )
    for d in deliveries:
        ok = d.messages_per_second >= TARGETS["delivery_messages_per_second"] and d.delivered == d.notifications
        lines.append(
            f"| {d.notifications:,} pending notifications ({d.per_recipient} per recipient) delivered at 1,000"
            f" messages/s or more, every one | {d.messages_per_second:,.0f} messages/s, {d.delivered:,} delivered"
            f" | {_verdict(ok)} |"
        )
    worst = max(log.insert_p99_ms, log.update_p99_ms)
    lines += [
        f"| log insert/update p99 under 100 ms | {worst:.2f} ms | {_verdict(worst < TARGETS['log_write_p99_ms'])} |",
        f"| 10 most recent rows under 10 ms, index scan | {log.recent_p99_ms:.2f} ms p99 "
        f"| {_verdict(log.recent_p99_ms < TARGETS['recent_rows_ms'] and 'Index Scan' in log.recent_plan)} |",
        "",
        "![time against N](img/benchmark.png)",
        "",
    ]
    return "\n".join(lines)


def plot(results: list[SizeResult], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ns = [r.n for r in results]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    axes.plot(ns, [r.naive_extrapolated_s for r in results], "o--", label="naive loop (extrapolated)")
    axes.plot(ns, [r.job_s for r in results], "o-", label="assignment_reminders job (Dagster)")
    axes.plot(ns, [r.lower_bound_s for r in results], "o-", label="lower bound (one INSERT ... SELECT)")
    axes.plot(ns, [r.write_floor_s for r in results], "o:", label="write floor (COPY of the same rows)")
    axes.plot(ns, [r.rerun_s for r in results], "o-.", label="rerun the same day")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("assignments (N)")
    axes.set_ylabel("seconds")
    axes.set_title("Reminder run time against N")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def run_benchmark(
    server_url: str,
    sizes: list[int],
    naive_sample: int,
    log_rows: int,
    output: Path | None,
    plot_path: Path | None,
    echo=print,
    delivery_notifications: int = 100_000,
) -> tuple[str, list[SizeResult], LogCosts]:
    from reminder_pipeline.core.database import describe

    results = [bench_size(server_url, n, naive_sample, echo) for n in sizes]
    echo(f"execution log with {log_rows:,} rows")
    log = bench_execution_log(server_url, log_rows)
    deliveries = (
        [bench_delivery(server_url, delivery_notifications, shape, echo) for shape in DELIVERY_SHAPES]
        if delivery_notifications
        else []
    )
    with connect(server_url) as connection:
        version = connection.execute(sa.text("SHOW server_version")).scalar()
        shared_buffers = connection.execute(sa.text("SHOW shared_buffers")).scalar()
    text = report(results, log, f"{version} at {describe(server_url)}, shared_buffers {shared_buffers}", deliveries)
    if output is not None:
        output.write_text(text)
    if plot_path is not None and not plot(results, plot_path):
        echo("matplotlib is not installed: no plot written")
    echo(json.dumps([asdict(r) for r in results] + [asdict(d) for d in deliveries]))
    return text, results, log
