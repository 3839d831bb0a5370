import datetime as dt

import pytest
import sqlalchemy as sa

from reminder_pipeline.core.database import connect
from reminder_pipeline.seed import _DANGLING_REFERENCES_SQL, seed

pytestmark = pytest.mark.database
TODAY = dt.date(2026, 11, 22)


def _shape(db: sa.Connection) -> sa.Row:
    return db.execute(
        sa.text(
            "SELECT count(*) AS assignments,"
            " count(*) FILTER (WHERE status = 'closed') AS closed,"
            " count(*) FILTER (WHERE last_contact_date IS NULL) AS never_contacted,"
            " (SELECT count(*) FROM public.peer_mentors WHERE status = 'paused') AS paused,"
            " (SELECT count(*) FROM public.assignments a WHERE a.status = 'active'"
            " AND a.last_contact_date IS DISTINCT FROM"
            "   (SELECT max(activity_date) FROM public.activities WHERE assignment_id = a.id)) AS stale"
            " FROM public.assignments"
        )
    ).one()


@pytest.mark.parametrize("role", [None, "service_role"], ids=["superuser-bulk-load", "ordinary-role"])
def test_seed_makes_consistent_data_with_the_documented_spread(
    db: sa.Connection, database_url: str, role: str | None
) -> None:
    with connect(database_url) as connection, connection.begin():
        if role:
            connection.execute(sa.text(f"SET LOCAL ROLE {role}"))
        summary = seed(connection, 6000, today=TODAY, batch_size=2500)
    assert summary.row_checks_skipped is (role is None)  # only a superuser may skip per-row checks
    shape = _shape(db)
    assert shape.assignments == 6000 and shape.stale == 0
    assert 400 < shape.closed < 800 and 1000 < shape.never_contacted < 1400 and shape.paused > 0
    assert db.execute(sa.text(_DANGLING_REFERENCES_SQL)).scalar() == 0
    # the triggers are back on after the load: a future-dated activity is still refused
    assignment, mentor = db.execute(
        sa.text("SELECT id, mentor_id FROM public.assignments WHERE status = 'active' LIMIT 1")
    ).one()
    with pytest.raises(sa.exc.DataError, match="in the future"):
        db.execute(
            sa.text(
                "INSERT INTO public.activities (assignment_id, mentor_id, activity_date)"
                " VALUES (:a, :m, current_date + 400)"
            ),
            {"a": assignment, "m": mentor},
        )
