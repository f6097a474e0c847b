"""Alembic environment: always run on a connection handed over by `upgrade_schema`."""

from alembic import context

from tracker.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `tracker db upgrade`, which passes a connection")

SCHEDULER_TABLE = "apscheduler_jobs"
"""Created and owned by APScheduler's job store (`tracker schedule`), not by our metadata."""


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Autogenerate must not propose dropping the scheduler's table."""
    return not (type_ == "table" and name == SCHEDULER_TABLE)


context.configure(
    connection=connection,
    include_name=include_name,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
