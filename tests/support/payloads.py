"""Real-shaped payloads from `../shared/payloads/` with the numbers a test chooses.

The files there are real captures or reconstructions from each server's source
(see their README); tests load them, keep every field, and change only the
counts, so what is served is the real shape and the expected values are known.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("TRACKER_SHARED", Path(__file__).resolve().parents[3] / "shared"))
PAYLOADS = SHARED / "payloads"
DATASETS = SHARED / "datasets"


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the tests read the shared payloads and datasets from "
            f"{SHARED} (set TRACKER_SHARED to their folder)"
        )
    return path


@cache
def _load(relative: str) -> Any:
    return json.loads(_require(PAYLOADS / relative).read_text(encoding="utf-8"))


def payload(relative: str) -> Any:
    """A fresh copy of a shared payload file, safe to modify."""
    return copy.deepcopy(_load(relative))


def dataset(name: str) -> Path:
    return _require(DATASETS / name)


def wellknown(base: str, *versions: str) -> dict[str, Any]:
    return {
        "links": [
            {
                "rel": f"http://nodeinfo.diaspora.software/ns/schema/{version}",
                "href": f"{base}/nodeinfo/{version}",
            }
            for version in versions
        ]
    }


def mastodon_nodeinfo(users: Any, active_month: Any, active_halfyear: Any, posts: Any) -> Any:
    document = payload("nodeinfo/mastodon_2.0.json")
    document["usage"]["users"] = {
        "total": users,
        "activeMonth": active_month,
        "activeHalfyear": active_halfyear,
    }
    document["usage"]["localPosts"] = posts
    return document


def mastodon_instance_v2(active_month: Any, registrations_open: bool = True) -> Any:
    document = payload("mastodon/instance_v2.json")
    document["usage"]["users"]["active_month"] = active_month
    document["registrations"]["enabled"] = registrations_open
    return document


def mastodon_instance_v1(users: Any, posts: Any, domains: Any = 100) -> Any:
    document = payload("mastodon/instance_v1.json")
    document["stats"] = {"user_count": users, "status_count": posts, "domain_count": domains}
    return document


def aligned_activity(now: datetime, rows: list[tuple[int, int, int]]) -> list[dict[str, str]]:
    """Mastodon activity as servers before 4.x sent it: ISO weeks, newest first.

    `rows[i]` = (statuses, logins, registrations) of the week `i` weeks before now's.
    """
    monday = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC
    )
    return [
        {
            "week": str(int((monday - timedelta(weeks=index)).timestamp())),
            "statuses": str(statuses),
            "logins": str(logins),
            "registrations": str(registrations),
        }
        for index, (statuses, logins, registrations) in enumerate(rows)
    ]


def misskey_nodeinfo(users: Any, posts: Any) -> Any:
    document = payload("nodeinfo/misskey_2.1.json")
    document["usage"]["users"]["total"] = users
    document["usage"]["localPosts"] = posts
    return document


def misskey_stats(users: Any, notes: Any, instances: Any) -> Any:
    document = payload("misskey/stats.json")
    document["originalUsersCount"] = users
    document["originalNotesCount"] = notes
    document["instances"] = instances
    return document


def lemmy_site(counts: dict[str, int]) -> Any:
    document = payload("lemmy/site_v3.json")
    document["site_view"]["counts"].update(counts)
    return document


def lemmy_nodeinfo(
    users: int, active_month: int, active_halfyear: int, posts: int, comments: int
) -> Any:
    document = payload("nodeinfo/lemmy_2.1.json")
    document["usage"] = {
        "users": {"total": users, "activeHalfyear": active_halfyear, "activeMonth": active_month},
        "localPosts": posts,
        "localComments": comments,
    }
    return document
