"""The fetch log records where an answer came from after redirects.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fetches") as batch:
        batch.add_column(sa.Column("final_url", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("fetches") as batch:
        batch.drop_column("final_url")
