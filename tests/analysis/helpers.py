"""Small builders of point frames for analysis tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

T0 = datetime(2022, 10, 3, tzinfo=UTC)  # a Monday


def points(
    values: Sequence[float],
    *,
    series_id: int = 1,
    every: timedelta = timedelta(days=1),
    start: datetime = T0,
) -> pd.DataFrame:
    seconds = [int((start + every * index).timestamp()) for index in range(len(values))]
    return pd.DataFrame(
        {"series_id": series_id, "t": seconds, "value": np.asarray(values, np.int64)}
    )


def day(moment: datetime) -> int:
    return int(moment.timestamp()) // 86400
