"""network.png and mastodon_compare.png: the crawl's families and its Mastodon total against
joinmastodon, drawn from a crawled database, and what they say without a crawl."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from PIL import Image

from tests.analysis import crawl_rows
from tests.charts.test_report_charts import HEIGHT, WIDTH, ink
from tracker.analysis.pipeline import Analysis, analyse
from tracker.charts import Chart, compare, network, overview
from tracker.charts.figure import DPI
from tracker.config import DEFAULT_EVENTS
from tracker.storage.engine import open_database


def analysed(path: Path, **options: bool) -> Analysis:
    engine = open_database(f"sqlite:///{path}")
    try:
        crawl_rows.write(engine, **options)
        return analyse(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    return analysed(tmp_path_factory.mktemp("crawled") / "tracker.db")


def saved(chart: Chart, folder: Path) -> Path:
    path = folder / chart.name
    chart.figure.savefig(path, dpi=DPI)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (WIDTH, HEIGHT)
    assert path.stat().st_size > 15_000
    return path


def texts(figure: Figure) -> str:
    """Every text of the figure, wrapped lines joined again."""
    return " ".join(" ".join(text.get_text().split()) for text in figure.findobj(Text))


def test_network_chart_draws_each_family_with_its_coverage(
    crawled: Analysis, tmp_path: Path
) -> None:
    chart = network.draw(crawled, DEFAULT_EVENTS)
    path = saved(chart, tmp_path)
    assert ink(path) > 0.05  # lines, not a notice
    accounts, active, coverage = chart.figure.axes[:3]
    assert [axes.get_title(loc="left") for axes in (accounts, active)] == [
        "Accounts",
        "Monthly active users",
    ]
    drawn = {line.get_label() for line in accounts.get_lines() if isinstance(line, Line2D)}
    assert {"Mastodon", "Misskey", "Lemmy", "GoToSocial"} <= drawn
    # Coverage only where the crawl counted the family's alive servers.
    covered = {line.get_label() for line in coverage.get_lines()}
    assert "GoToSocial: coverage" not in covered and "Mastodon: coverage" in covered
    for words in (
        "Mastodon 49 of 60 alive servers measured (82%) on 2024-11-18",
        "Lemmy 45 of 45 alive servers measured (100%)",
        "GoToSocial 2 servers measured (no count of alive servers)",
        "Left out as spam clusters: 6 servers (Lemmy 5, Mastodon 1)",
    ):
        assert words in chart.caption
    assert "Left out as spam clusters" in texts(chart.figure)  # the PNG says it too
    assert "US election" in texts(chart.figure)  # an event inside the crawl's days


def test_small_families_are_added_into_one_other_line(crawled: Analysis) -> None:
    shown = network.families(crawled.network, limit=2)
    assert shown == ["mastodon", "misskey"]  # the largest by accounts
    lines = network.lines_of(crawled.network, "users_total", shown)
    other = lines[lines["platform"] == network.OTHER].set_index("day")["value"]
    lemmy = crawl_rows.expected("lemmy", "users_total")
    small = crawl_rows.expected("gotosocial", "users_total")
    assert other.to_dict() == {day: lemmy[day] + small[day] for day in lemmy}


def test_mastodon_comparison_draws_both_counts_and_explains_the_gap(
    crawled: Analysis, tmp_path: Path
) -> None:
    chart = compare.draw(crawled, DEFAULT_EVENTS)
    path = saved(chart, tmp_path)
    assert ink(path) > 0.05
    accounts = chart.figure.axes[0]
    labels = {line.get_label() for line in accounts.get_lines()}
    assert {"tracker crawl: accounts", "joinmastodon.org: accounts"} <= labels
    assert "On 2024-11-18 the crawl counted 3.95M accounts, joinmastodon.org 4.51M" in (
        chart.caption
    )
    assert "the crawl is 88% of it" in chart.caption
    assert "60 alive in the crawl, 70 in joinmastodon's count" in chart.caption
    for reason in ("instances list", "peer lists", "NodeInfo", "robots.txt", "dormant", "UTC"):
        assert reason in chart.caption
    ratio = chart.figure.axes[2]
    shares = {line.get_label(): line.get_ydata() for line in ratio.get_lines()}
    accounts_share = shares["crawl ÷ joinmastodon: accounts"]
    assert min(accounts_share) > 0.87 and max(accounts_share) < 0.89


@pytest.mark.parametrize(
    ("options", "network_says", "compare_says"),
    [
        ({"crawl": False}, "No crawl yet", "No crawl yet"),
        ({"official": False}, None, "No official joinmastodon series"),
    ],
)
def test_without_a_crawl_or_joinmastodon_each_chart_says_why(
    tmp_path: Path, options: dict[str, bool], network_says: str | None, compare_says: str
) -> None:
    analysis = analysed(tmp_path / "tracker.db", **options)
    for module, says in ((network, network_says), (compare, compare_says)):
        chart = module.draw(analysis, DEFAULT_EVENTS)
        path = saved(chart, tmp_path)
        assert ink(path) > 0.005
        assert chart.title in texts(chart.figure)
        if says is None:
            assert ink(path) > 0.05  # drawn
        else:
            assert says in chart.caption and says in texts(chart.figure)


def test_an_empty_database_gets_both_notices() -> None:
    for module in (network, compare):
        chart = module.draw(Analysis.nothing(), DEFAULT_EVENTS)
        assert "No crawl yet" in chart.caption and "tracker crawl" in chart.caption


def test_overview_counts_no_spam_cluster_server_as_a_target(crawled: Analysis) -> None:
    chart = overview.draw(crawled, DEFAULT_EVENTS)
    assert "Lemmy 45 of 45 servers reported on 2024-11-18" in chart.caption
    assert "Mastodon 49 of 49 servers reported" in chart.caption
    [panel] = [axes for axes in chart.figure.axes if "fediverse" in axes.get_title(loc="left")]
    assert panel.get_title(loc="left").endswith("· 146 servers")  # 152 known, 6 flagged
