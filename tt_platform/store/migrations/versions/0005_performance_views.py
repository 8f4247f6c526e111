"""Performance views over the episode logs: ``tt_episode_summary`` and ``tt_daily_performance``.

``tt_episode_summary``: one row per ``tt_episode``, whatever it has recorded. From its equity
curve (points ordered by ts, then step): the number of points, the first and last timestamps,
initial equity (the first point), final equity (the last), total_return = final / initial - 1,
max_drawdown = 1 - min(equity / running max) (a positive fraction) and mean_gross_exposure (the
mean over the points after the first, the periods the curve's returns cover, as
``tt_platform.evaluation.metrics`` aligns them). From its rewards: steps (one reward per step)
and total_reward. total_cost is the commission plus slippage of the fills of its orders
(currency), else the ``total_cost`` its metrics hold; mean_turnover the ``turnover`` its metrics
hold (no step table stores turnover); both NULL when there is neither. An episode without
equity points has NULL equity columns and equity_points = 0; one without rewards steps = 0 and
a NULL total_reward.

``tt_daily_performance``: one row per episode and UTC calendar day of its equity timestamps,
holding the day's last equity point (the close of the day). daily_return is the change against
the previous day's close of the same episode (NULL on its first day); drawdown = 1 - close /
the highest equity of the episode up to that close (every point counts, intraday ones too);
cumulative_return = close / the episode's initial equity (its first point) - 1, so the last
day's value is the summary's total_return.

Both join each episode to its own rows (LATERAL), so a filter on episode_id, policy_id or kind
reads only the logs of the episodes it selects, through the (episode_id, ...) indexes. A ratio
whose denominator is not positive (a wiped-out book) is NULL rather than a division error.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _metric(name: str) -> str:
    """The numeric value of ``tt_episode.metrics -> name``; NULL when absent or not a number."""
    return (
        f"CASE WHEN jsonb_typeof(e.metrics -> '{name}') = 'number' "
        f"THEN (e.metrics ->> '{name}')::double precision END"
    )


SUMMARY_SQL = f"""
CREATE VIEW tt_episode_summary AS
SELECT e.episode_id,
       e.policy_id,
       e.kind,
       e.seed,
       e.started_at,
       e.ended_at,
       r.steps,
       c.equity_points,
       c.first_ts,
       c.last_ts,
       c.initial_equity,
       c.final_equity,
       CASE WHEN c.initial_equity > 0 THEN c.final_equity / c.initial_equity - 1 END AS total_return,
       c.max_drawdown,
       r.total_reward,
       COALESCE(f.total_cost, {_metric("total_cost")}) AS total_cost,
       {_metric("turnover")} AS mean_turnover,
       c.mean_gross_exposure,
       e.metrics
FROM tt_episode AS e
CROSS JOIN LATERAL (
    SELECT count(*) AS equity_points,
           min(p.ts) AS first_ts,
           max(p.ts) AS last_ts,
           max(p.equity) FILTER (WHERE p.n = 1) AS initial_equity,
           max(p.equity) FILTER (WHERE p.n = p.points) AS final_equity,
           max(CASE WHEN p.peak > 0 THEN 1 - p.equity / p.peak END) AS max_drawdown,
           avg(p.gross_exposure) FILTER (WHERE p.n > 1) AS mean_gross_exposure
    FROM (
        SELECT q.ts,
               q.equity,
               q.gross_exposure,
               row_number() OVER w AS n,
               count(*) OVER () AS points,
               max(q.equity) OVER w AS peak
        FROM tt_equity_curve AS q
        WHERE q.episode_id = e.episode_id
        WINDOW w AS (ORDER BY q.ts, q.step ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ) AS p
) AS c
CROSS JOIN LATERAL (
    SELECT count(*) AS steps, sum(w.reward) AS total_reward
    FROM tt_reward AS w
    WHERE w.episode_id = e.episode_id
) AS r
CROSS JOIN LATERAL (
    SELECT sum(x.commission + COALESCE(x.slippage, 0)) AS total_cost
    FROM tt_order AS o
    JOIN tt_fill AS x ON x.order_id = o.order_id
    WHERE o.episode_id = e.episode_id
) AS f
"""

DAILY_SQL = """
CREATE VIEW tt_daily_performance AS
SELECT e.episode_id,
       e.policy_id,
       e.kind,
       d.day,
       d.equity,
       d.daily_return,
       d.drawdown,
       d.cumulative_return
FROM tt_episode AS e
CROSS JOIN LATERAL (
    SELECT c.day,
           c.equity,
           CASE WHEN lag(c.equity) OVER w > 0 THEN c.equity / lag(c.equity) OVER w - 1 END AS daily_return,
           CASE WHEN c.peak > 0 THEN 1 - c.equity / c.peak END AS drawdown,
           CASE WHEN c.initial > 0 THEN c.equity / c.initial - 1 END AS cumulative_return
    FROM (
        SELECT DISTINCT ON (p.day) p.day, p.equity, p.peak, p.initial
        FROM (
            SELECT (q.ts AT TIME ZONE 'UTC')::date AS day,
                   q.ts,
                   q.step,
                   q.equity,
                   max(q.equity) OVER w AS peak,
                   first_value(q.equity) OVER w AS initial
            FROM tt_equity_curve AS q
            WHERE q.episode_id = e.episode_id
            WINDOW w AS (ORDER BY q.ts, q.step ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
        ) AS p
        ORDER BY p.day, p.ts DESC, p.step DESC
    ) AS c
    WINDOW w AS (ORDER BY c.day)
) AS d
"""

# (no apostrophes: the comments are quoted SQL literals)
SUMMARY_COMMENT = (
    "One row per tt_episode: equity-curve statistics (first point = initial equity; max_drawdown = "
    "1 - min(equity / running max)), steps and total reward from tt_reward, total cost from the fills "
    "of its orders else metrics.total_cost, mean turnover from metrics.turnover."
)
DAILY_COMMENT = (
    "One row per episode and UTC day of its equity curve: the last equity of the day, its return on the "
    "close of the previous day, the drawdown from the running peak and the return since the first equity point."
)


def upgrade() -> None:
    op.execute(SUMMARY_SQL)
    op.execute(f"COMMENT ON VIEW tt_episode_summary IS '{SUMMARY_COMMENT}'")
    op.execute(DAILY_SQL)
    op.execute(f"COMMENT ON VIEW tt_daily_performance IS '{DAILY_COMMENT}'")


def downgrade() -> None:
    op.execute("DROP VIEW tt_daily_performance")
    op.execute("DROP VIEW tt_episode_summary")
