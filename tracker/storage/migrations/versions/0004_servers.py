"""The servers the fediverse crawl knows: state, backoff and where each was found.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("software", sa.String(64)),
        sa.Column("first_seen", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger()),
        sa.Column("last_checked", sa.BigInteger()),
        sa.Column("discovered_from", sa.String(255)),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", sa.BigInteger()),
        sa.Column("last_error", sa.String(32)),
        sa.Column("next_check", sa.BigInteger(), nullable=False),
        sa.Column("moved_to", sa.String(255)),
        sa.Column("cluster", sa.String(255)),
        sa.PrimaryKeyConstraint("host", name="pk_servers"),
    )
    op.create_index("ix_servers_state_next_check", "servers", ["state", "next_check"])


def downgrade() -> None:
    op.drop_index("ix_servers_state_next_check", table_name="servers")
    op.drop_table("servers")
