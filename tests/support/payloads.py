"""Real-shaped payloads from `tests/fixtures/<collector>/` with the numbers a test chooses.

The fixture files were written for this project in the shape of each server's
public API (see tests/fixtures/README.md); tests load them, keep every field,
and change only the counts, so what is served is the real shape and the
expected values are known. They are part of the repository: no test of a
parser or collector needs anything outside it.

The real historical datasets are not: `dataset(name)` reads
`$TRACKER_SHARED/datasets` (default `../shared/datasets`) and, when it is
absent, skips the test with one line; under CI (env `CI` set) it fails instead,
so the skip cannot hide there.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PAYLOADS = FIXTURES
SHARED = Path(os.environ.get("TRACKER_SHARED", Path(__file__).resolve().parents[3] / "shared"))
DATASETS = SHARED / "datasets"


@cache
def _load(relative: str) -> Any:
    return json.loads((PAYLOADS / relative).read_text(encoding="utf-8"))


def payload(relative: str) -> Any:
    """A fresh copy of a fixture payload file, safe to modify."""
    return copy.deepcopy(_load(relative))


NOT_RUN = "not run: $TRACKER_SHARED/datasets absent"
"""How every skipped dataset test's reason starts (tests/conftest.py folds them into one line)."""


def require_datasets() -> None:
    """Skip (one line) the calling test when the shared datasets are absent; fail under CI."""
    if DATASETS.is_dir():
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"$TRACKER_SHARED/datasets absent ({DATASETS}) but CI is set: "
            "CI must run the real-data tests (set TRACKER_SHARED)",
            pytrace=False,
        )
    reason = f"{NOT_RUN} ({DATASETS}); CI has it"
    pytest.skip(reason)


def dataset(name: str) -> Path:
    """The path of a real historical dataset, or the test is skipped (see `require_datasets`)."""
    require_datasets()
    path = DATASETS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the shared datasets folder {DATASETS}")
    return path


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
    document = payload("fediverse/nodeinfo/mastodon_2.0.json")
    document["usage"]["users"] = {
        "total": users,
        "activeMonth": active_month,
        "activeHalfyear": active_halfyear,
    }
    document["usage"]["localPosts"] = posts
    return document


def mastodon_instance_v2(active_month: Any, registrations_open: bool = True) -> Any:
    document = payload("fediverse/mastodon/instance_v2.json")
    document["usage"]["users"]["active_month"] = active_month
    document["registrations"]["enabled"] = registrations_open
    return document


def mastodon_instance_v1(users: Any, posts: Any, domains: Any = 100) -> Any:
    document = payload("fediverse/mastodon/instance_v1.json")
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
    document = payload("fediverse/nodeinfo/misskey_2.1.json")
    document["usage"]["users"]["total"] = users
    document["usage"]["localPosts"] = posts
    return document


def misskey_stats(users: Any, notes: Any, instances: Any) -> Any:
    document = payload("fediverse/misskey/stats.json")
    document["originalUsersCount"] = users
    document["originalNotesCount"] = notes
    document["instances"] = instances
    return document


def lemmy_site(counts: dict[str, int]) -> Any:
    document = payload("fediverse/lemmy/site_v3.json")
    document["site_view"]["counts"].update(counts)
    return document


def lemmy_nodeinfo(
    users: int, active_month: int, active_halfyear: int, posts: int, comments: int
) -> Any:
    document = payload("fediverse/nodeinfo/lemmy_2.1.json")
    document["usage"] = {
        "users": {"total": users, "activeHalfyear": active_halfyear, "activeMonth": active_month},
        "localPosts": posts,
        "localComments": comments,
    }
    return document
