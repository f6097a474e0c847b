"""Charts of data shaped like the collectors' (fediverse servers, a Bluesky relay, Wikipedia
page views with Japanese titles): the Japan and share charts, fonts, and no double counting."""

from __future__ import annotations

import csv
import importlib.metadata
import re
import warnings
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.text import Text

from tests.charts import synthetic
from tests.charts.conftest import Rendered
from tracker.charts.style import styled

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
MISSING = "missing from font"


def packaged_font() -> Path:
    """The font file shipped by the matplotlib-fontja distribution (from its metadata)."""
    files = importlib.metadata.files("matplotlib-fontja") or []
    [ttf] = [file for file in files if str(file).endswith(".ttf")]
    return Path(str(ttf.locate())).resolve()


def japanese_texts(figure: Figure) -> list[Text]:
    return [text for text in figure.findobj(Text) if JAPANESE.search(text.get_text())]


def test_japanese_labels_use_the_packaged_font(collected: Rendered) -> None:
    figure = collected.charts["japan.png"].figure
    found = japanese_texts(figure)
    shown = {text.get_text() for text in found}
    assert any("日本" in text for text in shown)
    assert "Mastodon: Mastodon (ソフトウェア)" in shown  # an article title, from the data
    font = packaged_font()
    for text in found:
        assert Path(findfont(text.get_fontproperties())).resolve() == font, text.get_text()
    assert not [message for message in collected.warnings if MISSING in message]


def test_the_glyph_check_would_catch_a_font_without_japanese(tmp_path: Path) -> None:
    """Control for the test above: without the packaged font, matplotlib warns."""
    with styled():
        figure = Figure()
        figure.text(0.5, 0.5, "日本語", fontproperties=FontProperties(family="DejaVu Sans"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure.savefig(tmp_path / "control.png")
    assert any(MISSING in str(warning.message) for warning in caught)


def test_japan_chart_draws_each_listed_server_and_article(collected: Rendered) -> None:
    figure = collected.charts["japan.png"].figure
    servers, views = figure.axes[:2]
    assert [line.get_label() for line in servers.get_lines()][:4] == [
        "mstdn.jp (Mastodon)",
        "pawoo.net (Mastodon)",
        "fedibird.com (Mastodon)",
        "misskey.io (Misskey)",
    ]
    labels = {str(line.get_label()) for line in views.get_lines()}
    assert {"mixi: Mixi", "Misskey: Misskey", "Bluesky: Bluesky", "Twitter/X: X (SNS)"} <= labels
    assert views.get_yscale() == "log"
    # pawoo.net's re-index is marked as a level shift on its line
    steps = [c for c in servers.collections if "level shift" in str(c.get_label())]
    assert len(steps) == 1
    assert len(steps[0].get_offsets()) == 1
    assert steps[0].get_offsets()[0][0] == np.float64((synthetic.STEP_DAY - date(1970, 1, 1)).days)


def test_share_leaves_out_twitter_and_matches_the_rows(
    collected: Rendered, synthetic_csv: Path
) -> None:
    chart = collected.charts["share.png"]
    labels = {text.get_text() for text in chart.figure.legends[0].get_texts()}
    assert "Twitter/X" not in labels
    assert {"Mastodon", "mixi", "Misskey", "Bluesky"} <= labels
    # The ja.wikipedia mixi share of the last complete week, recomputed from the CSV rows.
    views: dict[tuple[date, str], int] = defaultdict(int)
    with synthetic_csv.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["target"].startswith("ja.wikipedia/") and row["platform"] != "twitter":
                day = date.fromisoformat(row["observed_at"][:10])
                views[(day - timedelta(days=day.weekday()), row["platform"])] += int(row["value"])
    last_monday = synthetic.END - timedelta(days=synthetic.END.weekday() + 7)
    week = {platform: value for (monday, platform), value in views.items() if monday == last_monday}
    expected = f"mixi {week['mixi'] / sum(week.values()):.0%}"
    ja_panel = next(a for a in chart.figure.axes if "ja.wikipedia" in a.get_title(loc="left"))
    assert expected in [text.get_text() for text in ja_panel.texts]


def test_bluesky_relay_total_is_not_added_to_its_hosts(collected: Rendered) -> None:
    figure = collected.charts["overview.png"].figure
    axes = next(a for a in figure.axes if a.get_title(loc="left").startswith("bluesky"))
    [line] = [line for line in axes.get_lines() if "Bluesky" in str(line.get_label())]
    days = (synthetic.END - synthetic.BLUESKY_START).days
    relay_last = sum(synthetic.BLUESKY_HOSTS.values()) + 300 * len(synthetic.BLUESKY_HOSTS) * days
    y = np.asarray(line.get_ydata(), dtype=float)
    assert y[np.isfinite(y)][-1] == relay_last


def test_active_users_share_counts_only_servers_with_both(collected: Rendered) -> None:
    chart = collected.charts["active_users.png"]
    assert "over 4 servers with both" in chart.caption  # the four Mastodon servers
    assert "users_active counts accounts that are not deactivated" in chart.caption


def test_weekly_growth_uses_reported_signups(collected: Rendered) -> None:
    chart = collected.charts["weekly_growth.png"]
    titles = [axes.get_title(loc="left") for axes in chart.figure.axes]
    assert any(title.startswith("Mastodon: sign-ups") for title in titles)
    assert "sign-ups reported by up to 3 servers" in chart.caption
