"""The query behind `tracker export`: observations streamed in a stable order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, select

from tracker.storage.filters import Filters
from tracker.storage.schema import OBSERVATION_COLUMNS, OBSERVATIONS_FROM, SERIES_KEY


def observation_rows(
    engine: Engine, filters: Filters, columns: Sequence[str]
) -> Iterator[dict[str, Any]]:
    """These columns of every matching observation, series by series, oldest first.

    Streamed in batches: a 10M-row database never sits in memory.
    """
    column = OBSERVATION_COLUMNS
    query = filters.apply(
        select(*(column[name] for name in columns)).select_from(OBSERVATIONS_FROM)
    ).order_by(*(column[name] for name in (*SERIES_KEY, "observed_at")))
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=5000).execute(query)
        for row in result:
            yield row._asdict()
