"""The initial schema: runs, attempts, fetch log, payload archive, rejections, series, points.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Frozen here on purpose: a migration must not change when schema.py does.
# `points.observed_at` is Unix seconds; the view shows it as UTC text (SQLite) or
# a UTC timestamp (PostgreSQL), so people never need to convert it.
OBSERVATIONS_VIEW_SQL = """
CREATE VIEW observations AS
SELECT s.source, s.platform, s.target, s.metric, s.period, {observed_at} AS observed_at,
       p.value, p.run_id
FROM points AS p JOIN series AS s ON s.id = p.series_id
"""
VIEW_TIME = {
    "sqlite": "datetime(p.observed_at, 'unixepoch')",
    "postgresql": "to_timestamp(p.observed_at) AT TIME ZONE 'UTC'",
}

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("collector", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("targets_ok", sa.Integer(), nullable=False),
        sa.Column("targets_failed", sa.Integer(), nullable=False),
        sa.Column("targets_skipped", sa.Integer(), nullable=False),
        sa.Column("observations_written", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer()),
        sa.Column("host", sa.String(255)),
        sa.Column("message", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index("ix_runs_collector_started_at", "runs", ["collector", "started_at"])

    op.create_table(
        "attempts",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_kind", sa.String(32)),
        sa.Column("error_detail", sa.Text()),
        sa.Column("platform", sa.String(64)),
        sa.Column("software", sa.String(64)),
        sa.Column("software_version", sa.String(128)),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_attempts_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_attempts_source_target_started_at", "attempts", ["source", "target", "started_at"]
    )
    op.create_index("ix_attempts_run_id", "attempts", ["run_id"])

    op.create_table(
        "payloads",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(8), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_payloads"),
    )

    op.create_table(
        "fetches",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("attempt_id", Id, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("error_kind", sa.String(32)),
        sa.Column("error_detail", sa.Text()),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(255)),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.Column("payload_sha256", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_fetches"),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name="fk_fetches_attempt_id_attempts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payload_sha256"],
            ["payloads.sha256"],
            name="fk_fetches_payload_sha256_payloads",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_fetches_attempt_id_seq", "fetches", ["attempt_id", "seq"])
    op.create_index("ix_fetches_payload_sha256", "fetches", ["payload_sha256"])

    op.create_table(
        "rejections",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("attempt_id", Id, nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("raw_value", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejections"),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name="fk_rejections_attempt_id_attempts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_rejections_attempt_id", "rejections", ["attempt_id"])

    op.create_table(
        "series",
        sa.Column("id", Id, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("period", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_series"),
        sa.UniqueConstraint(
            "source", "target", "metric", "period", name="uq_series_source_target_metric_period"
        ),
    )
    op.create_table(
        "points",
        sa.Column("series_id", Id, nullable=False),
        sa.Column("observed_at", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("run_id", Id),
        sa.PrimaryKeyConstraint("series_id", "observed_at", name="pk_points"),
        sa.ForeignKeyConstraint(
            ["series_id"], ["series.id"], name="fk_points_series_id_series", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_points_run_id_runs", ondelete="SET NULL"
        ),
        sqlite_with_rowid=False,
    )
    dialect = op.get_bind().dialect.name
    op.execute(OBSERVATIONS_VIEW_SQL.format(observed_at=VIEW_TIME.get(dialect, "p.observed_at")))


def downgrade() -> None:
    op.execute("DROP VIEW observations")
    for table in ("points", "series", "rejections", "fetches", "payloads", "attempts", "runs"):
        op.drop_table(table)
