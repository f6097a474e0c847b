"""A series' platform changes only on evidence (issue 10, item 3), at the storage level.

The parsers say whether a platform is evidence (NodeInfo, the config) or a guess
(the Mastodon API fallback); `SeriesIds` decides what each may change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from tracker.model import Observation
from tracker.storage.engine import open_database, write_transaction
from tracker.storage.points import SeriesIds, observation_rows, upsert_rows
from tracker.storage.schema import series

T0 = datetime(2022, 11, 7, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_database(f"sqlite:///{tmp_path / 'tracker.db'}")


def reading(platform: str, metric: str, hours: int = 0, *, known: bool = True) -> Observation:
    return Observation(
        platform, "pl.example", metric, 1, T0 + timedelta(hours=hours), platform_known=known
    )


def write(engine: Engine, items: Iterable[Observation], ids: SeriesIds | None = None) -> None:
    with write_transaction(engine) as connection:
        upsert_rows(connection, observation_rows("fediverse", None, items), ids)


def labels(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(series.c.metric, series.c.platform)).all())


def test_a_guess_never_relabels_and_names_new_series_after_the_target(engine: Engine) -> None:
    ids = SeriesIds()
    write(engine, [reading("pleroma", "users_total")], ids)
    ids.commit()
    guessed = [
        reading("mastodon", "users_total", 1, known=False),
        reading("mastodon", "peers_total", 1, known=False),
    ]
    write(engine, guessed, ids)  # with the cache...
    write(engine, guessed, SeriesIds())  # ...and without it
    assert labels(engine) == {"users_total": "pleroma", "peers_total": "pleroma"}


def test_a_guess_names_the_series_of_a_new_target(engine: Engine) -> None:
    write(engine, [reading("mastodon", "users_total", known=False)])
    assert labels(engine) == {"users_total": "mastodon"}


def test_evidence_relabels_every_series_of_the_target(engine: Engine) -> None:
    write(
        engine,
        [reading("mastodon", "users_total", known=False), reading("mastodon", "peers_total")],
    )
    ids = SeriesIds()
    write(engine, [reading("pleroma", "users_total", 1)], ids)
    assert labels(engine) == {"users_total": "pleroma", "peers_total": "pleroma"}
    ids.commit()
    write(engine, [reading("mastodon", "peers_total", 2, known=False)], ids)
    assert labels(engine) == {"users_total": "pleroma", "peers_total": "pleroma"}


def test_a_relabel_rolled_back_is_not_remembered(engine: Engine) -> None:
    ids = SeriesIds()
    write(engine, [reading("mastodon", "users_total"), reading("mastodon", "posts_total")], ids)
    ids.commit()
    with pytest.raises(RuntimeError), write_transaction(engine) as connection:
        upsert_rows(
            connection,
            observation_rows("fediverse", None, [reading("pleroma", "users_total", 1)]),
            ids,
        )
        raise RuntimeError("the transaction fails after the relabel")
    ids.rollback()
    assert labels(engine) == {"users_total": "mastodon", "posts_total": "mastodon"}
    write(engine, [reading("pleroma", "posts_total", 2)], ids)
    assert labels(engine) == {"users_total": "pleroma", "posts_total": "pleroma"}


def test_reparse_never_relabels(engine: Engine) -> None:
    write(engine, [reading("pleroma", "users_total")])
    write(engine, [reading("mastodon", "users_total", 1)], SeriesIds(update_platform=False))
    write(
        engine,
        [reading("mastodon", "peers_total", 1, known=False)],
        SeriesIds(update_platform=False),
    )
    assert labels(engine) == {"users_total": "pleroma", "peers_total": "pleroma"}


def test_an_imported_row_relabels_its_own_series_only(engine: Engine) -> None:
    write(engine, [reading("a", "users_total"), reading("a", "posts_total")])
    row = {
        "source": "fediverse",
        "platform": "b",
        "target": "pl.example",
        "metric": "users_total",
        "period": "",
        "observed_at": T0 + timedelta(days=1),
        "value": 2,
        "run_id": None,
    }
    with write_transaction(engine) as connection:
        upsert_rows(connection, [(True, row)])
    assert labels(engine) == {"users_total": "b", "posts_total": "a"}
