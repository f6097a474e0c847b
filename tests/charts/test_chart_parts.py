"""The pieces the charts are made of: number and label formats, event labels, shares,
which series a big report keeps, waves handed in, and a chart that fails."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text

from tracker.analysis.events import Wave
from tracker.analysis.pipeline import Analysis
from tracker.charts import (
    Chart,
    _safely,
    active,
    draw_all,
    growth,
    japan,
    keep_for,
    overview,
    quality,
    share,
    signups,
)
from tracker.charts.figure import finish, new_figure
from tracker.charts.markers import event_lines, label_events, short
from tracker.charts.share import spread
from tracker.charts.style import compact, dates, platform_colour, styled
from tracker.config import DEFAULT_EVENTS, Event, ReportSettings


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (999, "999"),
        (12_345, "12,345"),
        (123_456, "123k"),
        (1_500_000, "1.5M"),
        (9_876_543, "9.88M"),
        (-45_799, "\N{MINUS SIGN}45,799"),
        (2_100_000_000, "2.1B"),
    ],
)
def test_numbers_have_separators_and_units(value: float, text: str) -> None:
    assert compact(value) == text


def test_event_labels_are_short() -> None:
    assert short("Paid verification (Twitter Blue) launches") == "Paid checkmarks"
    assert short("Fediverse day (see notes)") == "Fediverse day"
    cut = short("A very long event label that goes on and on")
    assert cut.endswith("…")
    assert len(cut) <= 20
    assert "A very long event" in cut


def test_clustered_events_get_rows_that_do_not_overlap() -> None:
    start = date(2023, 7, 1)
    events = [Event(date=start + timedelta(days=n), label=f"Event number {n}") for n in range(5)]
    with styled():
        figure = new_figure("test")
        axes = figure.add_subplot()
        days = np.arange(60) + (start - date(1970, 1, 1)).days - 20
        axes.plot(dates(days), days)
        event_lines(axes, events)
        rows = label_events(figure, [axes], events)
        finish(figure)
    assert rows == 5
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    labels = sorted(
        (child for child in axes.get_children() if isinstance(child, Annotation)),
        key=lambda label: label.xy[0],
    )
    boxes = [Text.get_window_extent(label, renderer) for label in labels]
    for index, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[index + 1 :])
    heights = [box.y0 for box in boxes]
    assert heights == sorted(heights, reverse=True)  # earliest highest: stems pass left


def test_share_labels_are_spread_apart_inside_the_axes() -> None:
    places = spread(np.array([0.50, 0.90, 0.93, 0.97]), 0.06)
    assert np.all(np.diff(places) >= 0.06 - 1e-9)
    assert places.max() <= 1.0
    assert places[0] == 0.50  # only the crowded labels move
    assert places[-1] == 1.0


def test_platforms_keep_their_colour() -> None:
    assert platform_colour("mastodon") == platform_colour("Mastodon") == "#563acc"
    assert platform_colour("somethingnew") == platform_colour("somethingnew")
    assert platform_colour("bluesky") != platform_colour("twitter")


def test_big_databases_keep_what_the_charts_draw() -> None:
    rows = [
        ("fediverse", "mastodon", "mastodon.social", "users_total", "", 2_000_000),
        ("fediverse", "mastodon", "tiny.example", "users_total", "", 10),
        ("fediverse", "mastodon", "mstdn.jp", "users_total", "", 300_000),
        ("fediverse", "mastodon", "mid.example", "users_total", "", 50_000),
        ("bluesky", "bluesky", "relay:bsky.network", "servers_total", "", 3),
        ("bluesky", "bluesky", "relay:bsky.network", "users_total", "", 30_000_000),
        ("bluesky", "bluesky", "relay:bsky.network/host.example", "users_total", "", 5),
        ("bluesky", "bluesky", "relay:bsky.network/other.example", "users_total", "", 6),
        ("wikipedia", "mixi", "ja.wikipedia/Mixi", "pageviews", "day", 1_000),
        ("joinmastodon", "mastodon", "joinmastodon", "users_total", "", 9_000_000),
    ]
    listing = pd.DataFrame(
        rows, columns=["source", "platform", "target", "metric", "period", "last_value"]
    )
    kept = keep_for(ReportSettings(japan=["mstdn.jp"], top_targets=1))(listing)
    assert set(listing.loc[kept, "target"]) == {
        "mastodon.social",  # the largest of its source and platform
        "mstdn.jp",  # named in report.japan
        "relay:bsky.network",  # a relay: its total is the Bluesky line
        "ja.wikipedia/Mixi",  # per-day values
        "joinmastodon",  # the only target of its source
    }


def test_waves_handed_in_are_the_ones_marked() -> None:
    monday = (date(2023, 1, 2) - date(1970, 1, 1)).days
    weeks = pd.DataFrame(
        {
            "week": monday + 7 * np.arange(-6, 4),
            "value": [10.0, 12, 9, 11, 10, 12, 123_456, 50_000, 20, 15],
            "stale": False,
        }
    )
    panel = growth.Panel("fediverse", "mastodon", "users_total", weeks, "note")
    computed = growth._waves(panel, None)
    assert [(w.start, w.peak_change) for w in computed] == [(monday, 123_456.0)]
    handed = Wave(start=monday + 7, end=monday + 7, peak_week=monday + 7, peak_change=50_000.0)
    assert growth._waves(panel, {panel.key: [handed]}) == [handed]
    assert growth._waves(panel, {}) == []  # the caller's finding wins, even "none"
    with styled():
        figure = new_figure("test")
        axes = figure.add_subplot()
        growth.plot_weekly(axes, weeks, "#563acc", [handed])
    texts = {text.get_text(): text.get_color() for text in axes.texts}
    assert texts["+50,000"] != texts["+123k"]  # the wave's peak in ink, the largest week in grey


def test_draw_all_hands_the_waves_to_the_growth_chart(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def stub(name: str) -> object:
        def draw(*args: object) -> Chart:
            seen.append((name, args[-1]))
            return Chart(f"{name}.png", name, "", Figure())

        return draw

    for module in (overview, growth, signups, active, share, japan, quality):
        monkeypatch.setattr(module, "draw", stub(module.__name__.rsplit(".", 1)[1]))
    found = {("fediverse", "mastodon", "users_total"): [Wave(0, 7, 0, 1.0)]}
    analysis = Analysis.nothing()
    charts = draw_all(analysis, DEFAULT_EVENTS, ReportSettings(), found)
    assert [chart.name for chart in charts] == [
        "overview.png",
        "growth.png",
        "signups.png",
        "active.png",
        "share.png",
        "japan.png",
        "network.png",
        "mastodon_compare.png",
        "quality.png",
    ]
    assert ("growth", found) in seen


def test_a_failing_chart_becomes_a_notice(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Chart:
        raise ValueError("no such column")

    with caplog.at_level(logging.ERROR, logger="tracker.charts"):
        chart = _safely("overview.png", "Overview", broken)
    assert chart.name == "overview.png"
    assert "could not be drawn (ValueError: no such column)" in chart.caption
    assert any("overview.png" in record.getMessage() for record in caplog.records)
