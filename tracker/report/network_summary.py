"""`summary.json`'s `network` object: the crawl's totals per software family, last day.

```json
"network": {"source": "fediverse", "first_day": "2026-01-01", "last_day": "2026-01-30",
            "flagged_servers": 12,
            "families": {"mastodon": {"last_day": "2026-01-30", "accounts": 9100000,
                                      "monthly_active": 880000, "posts": null,
                                      "servers_measured": 9812, "servers_carried": 120,
                                      "servers_alive": 10230, "coverage": 0.959,
                                      "stale": false, "flagged_servers": 0,
                                      "metrics": {"users_total": {"value": 9100000,
                                                  "servers_measured": 9812, "servers_carried": 120,
                                                  "coverage": 0.959, "stale": false}}}}}
```

Always present (an added key of the contract): without a crawl, `families` is `{}`
and the days are `null`. Families are listed largest first (accounts on their last
day). The flat figures of a family are read on its last day with accounts;
`servers_measured`, `servers_carried` and `coverage` there are those of its accounts,
`metrics` has them for every metric the family's servers report.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from tracker.analysis.conventions import day_date
from tracker.analysis.network import (
    ACCOUNTS,
    ACTIVE,
    POSTS,
    SERVER_SOURCE,
    flagged_per_family,
    latest,
)
from tracker.analysis.pipeline import Analysis

HEADLINE = {"accounts": ACCOUNTS, "monthly_active": ACTIVE, "posts": POSTS}


def network_entry(analysis: Analysis) -> dict[str, Any]:
    view = analysis.network
    flagged = flagged_per_family(analysis.series, analysis.clustered) if analysis.clustered else {}
    entry: dict[str, Any] = {
        "source": SERVER_SOURCE,
        "first_day": None,
        "last_day": None,
        "flagged_servers": sum(flagged.values()),
        "families": {},
    }
    if view.empty:
        return entry
    entry["first_day"] = _date(view["day"].min())
    entry["last_day"] = _date(view["day"].max())
    rows = latest(view)
    families = []
    for platform, frame in rows.groupby("platform", sort=True):
        by_metric = frame.set_index("metric")
        family = _family(by_metric, flagged.get(str(platform), 0))
        families.append((str(platform), family))
    families.sort(key=lambda item: (-(item[1]["accounts"] or 0), item[0]))
    entry["families"] = dict(families)
    return entry


def _family(rows: pd.DataFrame, flagged: int) -> dict[str, Any]:
    records: dict[str, dict[str, Any]] = {
        str(metric): {str(key): value for key, value in row.items()}
        for metric, row in rows.to_dict("index").items()
    }
    metrics = {metric: _figures(row) for metric, row in records.items()}
    main = records.get(ACCOUNTS) or next(iter(records.values()))
    family: dict[str, Any] = {"last_day": _date(main["day"])}
    for key, metric in HEADLINE.items():
        family[key] = metrics[metric]["value"] if metric in metrics else None
    family.update(
        servers_measured=int(main["servers_measured"]),
        servers_carried=int(main["servers_carried"]),
        servers_alive=_count(main["servers_alive"]),
        coverage=_share(main["coverage"]),
        stale=bool(main["stale"]),
        flagged_servers=flagged,
        metrics=metrics,
    )
    return family


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": int(row["value"]),
        "servers_measured": int(row["servers_measured"]),
        "servers_carried": int(row["servers_carried"]),
        "coverage": _share(row["coverage"]),
        "stale": bool(row["stale"]),
    }


def _date(day: Any) -> str | None:
    return None if day is None or pd.isna(day) else day_date(int(day)).isoformat()


def _count(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else round(float(value))


def _share(value: Any) -> float | None:
    number = float(value) if value is not None and not pd.isna(value) else math.nan
    return None if not np.isfinite(number) else round(number, 3)
