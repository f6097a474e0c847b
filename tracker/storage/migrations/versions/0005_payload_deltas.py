"""Payload deltas: a body may be stored against its stream's previous version.

Adds `payloads.base_sha256` (the row a delta is stored against, indexed so `db prune`
finds what a row is a base of) and `payloads.depth` (deltas down to a self-contained
row). Existing rows are `zlib`, self-contained: depth 0, no base, read as before.

Downgrade writes every row that is not `zlib` back as `zlib` of its decoded body
(deepest first, so each base is still in its own codec while its deltas are read),
then drops the columns. Bodies stored as sets come back in their canonical form.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import zlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500


def upgrade() -> None:
    op.add_column("payloads", sa.Column("base_sha256", sa.String(64)))
    op.add_column("payloads", sa.Column("depth", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_payloads_base_sha256", "payloads", ["base_sha256"])


def downgrade() -> None:
    # The codecs are a stored format: the reader that reads them is the one to use.
    from tracker.storage.payload_archive import PayloadReader

    bind = op.get_bind()
    payloads = sa.table(
        "payloads",
        sa.column("sha256", sa.String()),
        sa.column("codec", sa.String()),
        sa.column("body", sa.LargeBinary()),
        sa.column("depth", sa.Integer()),
        sa.column("base_sha256", sa.String()),
    )
    keys = [
        str(sha)
        for (sha,) in bind.execute(
            sa.select(payloads.c.sha256)
            .where(payloads.c.codec != "zlib")
            .order_by(payloads.c.depth.desc(), payloads.c.sha256)
        )
    ]
    reader = PayloadReader()
    for start in range(0, len(keys), BATCH):
        part = keys[start : start + BATCH]
        decoded = reader.read(bind, part)
        rows = [
            {"key": sha, "body": zlib.compress(decoded[sha].decoded.body, 6)}
            for sha in part
            if sha in decoded
        ]
        if rows:
            bind.execute(
                sa.update(payloads)
                .where(payloads.c.sha256 == sa.bindparam("key"))
                .values(codec="zlib", body=sa.bindparam("body")),
                rows,
            )
        unreadable = [sha for sha in part if sha not in decoded]
        if unreadable:  # a base was gone already: nothing to keep
            bind.execute(sa.delete(payloads).where(payloads.c.sha256.in_(unreadable)))
    op.drop_index("ix_payloads_base_sha256", table_name="payloads")
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35 and later): a batch rebuild
    # would drop the old table, and with foreign keys on, that clears every
    # fetches.payload_sha256 (ON DELETE SET NULL).
    op.execute("ALTER TABLE payloads DROP COLUMN depth")
    op.execute("ALTER TABLE payloads DROP COLUMN base_sha256")
