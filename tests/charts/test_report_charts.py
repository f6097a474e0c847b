"""Every chart drawn from the real datasets, an empty database and a single observation."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Annotation, Text
from PIL import Image

from tests.charts.conftest import Rendered
from tests.support.payloads import dataset
from tracker.charts import markers
from tracker.charts.figure import SIZE
from tracker.config import DEFAULT_EVENTS

NAMES = [
    "overview.png",
    "weekly_growth.png",
    "signups.png",
    "active_users.png",
    "share.png",
    "japan.png",
    "network.png",
    "mastodon_compare.png",
    "quality.png",
]
WIDTH, HEIGHT = round(SIZE[0] * 120), round(SIZE[1] * 120)


def texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.findobj(Text) if text.get_text()]


def panel(figure: Figure, title_part: str) -> Axes:
    [found] = [axes for axes in figure.axes if title_part in axes.get_title(loc="left")]
    return found


def ink(path: Path) -> float:
    """Share of pixels that are not (nearly) white."""
    grey = np.asarray(Image.open(path).convert("L"))
    return float((grey < 250).mean())


@pytest.mark.parametrize("fixture", ["real", "empty", "sparse"])
def test_every_chart_is_a_valid_readable_png(fixture: str, request: pytest.FixtureRequest) -> None:
    rendered: Rendered = request.getfixturevalue(fixture)
    assert list(rendered.charts) == NAMES
    for name, path in rendered.files.items():
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.size == (WIDTH, HEIGHT)
        assert path.stat().st_size > 15_000, name
        assert ink(path) > 0.005, f"{name} is blank"
        chart = rendered.charts[name]
        assert chart.title in texts(chart.figure)  # the headline is in the image
        assert chart.caption.strip()
        assert "could not be drawn" not in chart.caption


def test_charts_with_data_are_not_just_a_message(real: Rendered) -> None:
    for name in ("overview.png", "weekly_growth.png", "active_users.png", "quality.png"):
        assert ink(real.files[name]) > 0.05, name


def test_overview_draws_each_source_in_its_own_panel(real: Rendered) -> None:
    figure = real.charts["overview.png"].figure
    for source in ("joinmastodon", "mastodonusercount", "instances_social", "bsky_users"):
        axes = panel(figure, source)
        labels = [line.get_label() for line in axes.get_lines()]
        expected = "Bluesky" if source == "bsky_users" else "Mastodon"
        assert expected in labels, (source, labels)
    # The joinmastodon line ends on the dataset's last user_count (read here, not via tracker).
    with dataset("joinmastodon_statistics_daily_2022-09-30_to_2025-10-14.csv").open() as handle:
        last = list(csv.DictReader(handle))[-1]
    [line] = [
        line for line in panel(figure, "joinmastodon").get_lines() if line.get_label() == "Mastodon"
    ]
    y = np.asarray(line.get_ydata(), dtype=float)
    assert y[np.isfinite(y)][-1] == int(last["user_count"])
    assert "accounts" in panel(figure, "joinmastodon").get_ylabel()


def test_overview_marks_excluded_readings(real: Rendered) -> None:
    axes = panel(real.charts["overview.png"].figure, "instances_social")
    series = real.analysis.series
    [users] = series.index[
        (series["source"] == "instances_social") & (series["metric"] == "users_total")
    ]
    expected = int((real.analysis.outliers["series_id"] == users).sum())
    [marks] = [
        collection
        for collection in axes.collections
        if isinstance(collection, PathCollection) and "excluded" in str(collection.get_label())
    ]
    assert expected > 0
    assert len(marks.get_offsets()) == expected


def test_event_labels_are_present_and_do_not_overlap(real: Rendered) -> None:
    figure = real.charts["overview.png"].figure
    axes = panel(figure, "joinmastodon")
    labels = [child for child in axes.get_children() if isinstance(child, Annotation)]
    assert {label.get_text() for label in labels} == {
        markers.short(event.label) for event in DEFAULT_EVENTS
    }
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    for axes in figure.axes:
        labels = [child for child in axes.get_children() if isinstance(child, Annotation)]
        # the text alone (an Annotation's own extent includes its stem)
        boxes = [Text.get_window_extent(label, renderer) for label in labels]
        stems = [axes.transData.transform((label.xy[0], 0))[0] for label in labels]
        top = axes.get_window_extent(renderer).y1
        for index, box in enumerate(boxes):
            for other, stem, other_box in zip(labels, stems, boxes, strict=True):
                if other is labels[index]:
                    continue
                assert not box.overlaps(other_box), (axes.get_title(), box, other_box)
                stem_crosses = box.x0 < stem < box.x1 and top <= box.y0 < other_box.y0
                assert not stem_crosses, (other.get_text(), labels[index].get_text())


def test_weekly_growth_marks_the_november_2022_wave(real: Rendered) -> None:
    chart = real.charts["weekly_growth.png"]
    axes = panel(chart.figure, "joinmastodon")
    annotations = [child.get_text() for child in axes.texts]
    assert "+712k" in annotations  # the largest week of the official series
    assert "wave 2022-10-31 to 2022-11-20" in chart.caption


def test_active_users_shows_the_share_that_stayed(real: Rendered) -> None:
    figure = real.charts["active_users.png"].figure
    top, bottom = figure.axes[:2]
    labels = {line.get_label() for line in top.get_lines()}
    assert {"Mastodon: accounts", "Mastodon: monthly active users"} <= labels
    [share] = [line for line in bottom.get_lines() if "active share" in str(line.get_label())]
    values = np.asarray(share.get_ydata(), dtype=float)
    values = values[np.isfinite(values)]
    assert values.min() > 0 and values.max() < 1
    assert bottom.get_ylabel() == "MAU ÷ accounts"


def test_share_and_japan_say_what_is_missing(real: Rendered) -> None:
    share = real.charts["share.png"]
    assert "two or more platforms measured by the same source" in share.caption
    assert any("No share to show yet" in text for text in texts(share.figure))
    japan = real.charts["japan.png"]
    assert any("No Japanese server counts yet" in text for text in texts(japan.figure))


def test_quality_has_a_strip_per_source_and_counts_flags(real: Rendered) -> None:
    chart = real.charts["quality.png"]
    strips = chart.figure.axes[0]
    rows = [label.get_text() for label in strips.get_yticklabels()]
    assert "joinmastodon · Mastodon · accounts" in rows
    assert "bsky_users · Bluesky · accounts" in rows
    flags = real.analysis.stats.flags
    assert f"step {int((flags['kind'] == 'step').sum()):,}" in chart.caption


def test_empty_database_says_so_in_every_image(empty: Rendered) -> None:
    for name, chart in empty.charts.items():
        shown = " ".join(texts(chart.figure))
        commands = ("tracker collect", "tracker import", "tracker crawl")  # how to get data
        assert any(command in shown for command in commands), name
        assert "no observations yet" in chart.caption or "No " in chart.caption, name


def test_single_observation_is_drawn_as_a_point(sparse: Rendered) -> None:
    overview = sparse.charts["overview.png"].figure
    [line] = overview.axes[0].get_lines()
    assert line.get_marker() == "o"
    assert list(line.get_ydata()) == [301234]
    growth = sparse.charts["weekly_growth.png"]
    assert "No weekly growth yet" in growth.caption
    assert "a single day so far" in sparse.charts["overview.png"].caption
    japan = sparse.charts["japan.png"].figure
    assert any(line.get_label() == "mstdn.jp (Mastodon)" for line in japan.axes[0].get_lines())


def test_no_pyplot_and_no_global_style_left_behind(real: Rendered) -> None:
    if "matplotlib.pyplot" in sys.modules:
        from matplotlib import pyplot

        assert pyplot.get_fignums() == []
    assert "IPAexGothic" not in mpl.rcParams["font.family"]
    charts = Path(__file__).resolve().parents[2] / "tracker" / "charts"
    for module in charts.glob("*.py"):
        source = module.read_text(encoding="utf-8")
        assert "matplotlib.pyplot" not in source, module
        assert "import pyplot" not in source, module
    for chart in real.charts.values():
        assert type(chart.figure.canvas).__name__ == "FigureCanvasAgg"
