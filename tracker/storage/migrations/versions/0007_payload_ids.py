"""Integer payload keys: the fetch log names a body by `payloads.id`, not its sha256.

At crawl scale the fetch log is most of the database, and its 64-character hex key
with an index on it was most of each row. `payloads` gets an integer primary key
(`sha256` stays, unique: an identical body is still stored once), and
`fetches.payload_sha256` becomes `fetches.payload_id`. Deltas still name their base
by digest (`base_sha256`): there are far fewer payload rows than fetch rows.

SQLite cannot change a primary key in place, so both tables are rebuilt (new tables
filled from the old, the old dropped, the new renamed; SQLite rewrites the foreign key
of `fetches` on the rename). Dropping the old `fetches` first means dropping the old
`payloads` sets nothing to NULL. PostgreSQL alters the tables in place.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

FETCH_COLUMNS = (
    "id, attempt_id, seq, kind, method, url, final_url, status, error_kind, error_detail, "
    "elapsed_ms, bytes, attempts, content_type, fetched_at"
)
PAYLOAD_COLUMNS = "sha256, size, codec, body, first_seen, base_sha256, depth"


def _payloads(name: str, *, integer_key: bool) -> None:
    key = (
        [sa.Column("id", Id, autoincrement=True), sa.PrimaryKeyConstraint("id", name="pk_payloads")]
        if integer_key
        else [sa.PrimaryKeyConstraint("sha256", name="pk_payloads")]
    )
    op.create_table(
        name,
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(8), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("base_sha256", sa.String(64)),
        sa.Column("depth", sa.Integer(), nullable=False, server_default="0"),
        *key,
        *([sa.UniqueConstraint("sha256", name="uq_payloads_sha256")] if integer_key else []),
    )


def _fetches(name: str, payloads: str, *, integer_key: bool) -> None:
    link = (
        sa.Column("payload_id", Id) if integer_key else sa.Column("payload_sha256", sa.String(64))
    )
    op.create_table(
        name,
        sa.Column("id", Id, autoincrement=True),
        sa.Column("attempt_id", Id, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text()),
        sa.Column("status", sa.Integer()),
        sa.Column("error_kind", sa.String(32)),
        sa.Column("error_detail", sa.Text()),
        sa.Column("elapsed_ms", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(255)),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        link,
        sa.PrimaryKeyConstraint("id", name="pk_fetches"),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["attempts.id"],
            name="fk_fetches_attempt_id_attempts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            [link.name],
            [f"{payloads}.id" if integer_key else f"{payloads}.sha256"],
            name=f"fk_fetches_{link.name}_payloads",
            ondelete="SET NULL",
        ),
    )


def _indexes(*, integer_key: bool) -> None:
    op.create_index("ix_payloads_base_sha256", "payloads", ["base_sha256"])
    op.create_index("ix_fetches_attempt_id_seq", "fetches", ["attempt_id", "seq"])
    link = "payload_id" if integer_key else "payload_sha256"
    op.create_index(f"ix_fetches_{link}", "fetches", [link])


def _rebuild_sqlite(*, integer_key: bool) -> None:
    _payloads("payloads_new", integer_key=integer_key)
    # Oldest first: the new keys follow the order bodies arrived in.
    op.execute(
        f"INSERT INTO payloads_new ({PAYLOAD_COLUMNS}) SELECT {PAYLOAD_COLUMNS} "  # noqa: S608
        "FROM payloads ORDER BY first_seen, sha256"
    )
    _fetches("fetches_new", "payloads_new", integer_key=integer_key)
    if integer_key:
        link = "(SELECT p.id FROM payloads_new AS p WHERE p.sha256 = f.payload_sha256)"
        target = "payload_id"
    else:
        link = "(SELECT p.sha256 FROM payloads AS p WHERE p.id = f.payload_id)"
        target = "payload_sha256"
    op.execute(
        f"INSERT INTO fetches_new ({FETCH_COLUMNS}, {target}) "  # noqa: S608
        f"SELECT {', '.join('f.' + c.strip() for c in FETCH_COLUMNS.split(','))}, {link} "
        "FROM fetches AS f ORDER BY f.id"
    )
    op.execute("DROP TABLE fetches")
    op.execute("DROP TABLE payloads")
    op.execute("ALTER TABLE payloads_new RENAME TO payloads")
    op.execute("ALTER TABLE fetches_new RENAME TO fetches")
    _indexes(integer_key=integer_key)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(integer_key=True)
        return
    op.drop_constraint("fk_fetches_payload_sha256_payloads", "fetches", type_="foreignkey")
    op.drop_constraint("pk_payloads", "payloads", type_="primary")
    op.execute("ALTER TABLE payloads ADD COLUMN id BIGSERIAL")
    op.create_primary_key("pk_payloads", "payloads", ["id"])
    op.create_unique_constraint("uq_payloads_sha256", "payloads", ["sha256"])
    op.add_column("fetches", sa.Column("payload_id", sa.BigInteger()))
    op.execute(
        "UPDATE fetches SET payload_id = payloads.id FROM payloads "
        "WHERE payloads.sha256 = fetches.payload_sha256"
    )
    op.drop_index("ix_fetches_payload_sha256", table_name="fetches")
    op.drop_column("fetches", "payload_sha256")
    op.create_foreign_key(
        "fk_fetches_payload_id_payloads",
        "fetches",
        "payloads",
        ["payload_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index("ix_fetches_payload_id", "fetches", ["payload_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(integer_key=False)
        return
    op.drop_constraint("fk_fetches_payload_id_payloads", "fetches", type_="foreignkey")
    op.add_column("fetches", sa.Column("payload_sha256", sa.String(64)))
    op.execute(
        "UPDATE fetches SET payload_sha256 = payloads.sha256 FROM payloads "
        "WHERE payloads.id = fetches.payload_id"
    )
    op.drop_index("ix_fetches_payload_id", table_name="fetches")
    op.drop_column("fetches", "payload_id")
    op.drop_constraint("uq_payloads_sha256", "payloads", type_="unique")
    op.drop_constraint("pk_payloads", "payloads", type_="primary")
    op.drop_column("payloads", "id")
    op.create_primary_key("pk_payloads", "payloads", ["sha256"])
    op.create_foreign_key(
        "fk_fetches_payload_sha256_payloads",
        "fetches",
        "payloads",
        ["payload_sha256"],
        ["sha256"],
        ondelete="SET NULL",
    )
    op.create_index("ix_fetches_payload_sha256", "fetches", ["payload_sha256"])
