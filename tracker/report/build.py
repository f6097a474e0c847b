"""`tracker report`: analyse, draw, and write a dated folder plus `latest/`.

The report is written into a temporary folder beside the target and renamed into
place, so a reader (or a web server) never sees half a report, and `latest/` is
replaced the same way. Replacing a folder deletes what it held, so only an earlier
report is ever replaced (`check_replaceable`): a folder holding anything else is
refused before any work is done. An empty or sparse database still gives a
complete report that says so on the page and in each image.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from tracker.analysis.pipeline import Analysis, analyse
from tracker.catalogue import platform_name
from tracker.config import Config
from tracker.errors import TrackerError
from tracker.report import html
from tracker.report.headline import table as headline_table
from tracker.report.summary import MAX_TARGETS_FOR_EFFECTS, build_summary, total_waves
from tracker.storage.filters import Filters

DPI = 120  # the charts' layout is measured for it
PAGE_FILES = ("summary.json", "index.html")


class ReportFolderError(TrackerError):
    """The report would replace a folder holding files it did not write (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class ReportResult:
    folder: Path
    latest: Path
    files: list[str]
    empty: bool


def keep_for_report(config: Config) -> Any:
    """Series a big database keeps in memory: what the charts draw (`charts.keep_for`),
    and every series of the small sources whose event effects the summary lists."""
    from tracker.charts import keep_for

    charts = keep_for(config.report)

    def keep(listing: pd.DataFrame) -> pd.Series:
        targets = listing.groupby("source")["target"].transform("nunique")
        return charts(listing) | (targets <= MAX_TARGETS_FOR_EFFECTS)

    return keep


def run_report(
    engine: Engine,
    config: Config,
    *,
    now: datetime,
    output: Path | None = None,
    since: date | None = None,
    until: date | None = None,
) -> ReportResult:
    from tracker.charts import draw_all

    root = output if output is not None else config.report_output
    folder = root / now.strftime("%Y-%m-%d") if output is None else root
    latest = root / "latest" if output is None else folder
    for replaced in dict.fromkeys([folder, latest]):
        check_replaceable(replaced)  # before minutes of work, and again before each rename
    filters = Filters(since=since, until=until)
    analysis = analyse(
        engine,
        filters,
        carry_days=config.analysis.carry_forward_days,
        keep=keep_for_report(config),
    )
    summary = build_summary(analysis, config.events, config.analysis, now, since, until)
    charts = draw_all(
        analysis, config.events, config.report, total_waves(analysis, config.analysis)
    )
    try:
        files = _write(folder, summary, charts, analysis, now, since, until)
        if latest != folder:
            _replace_dir(folder, latest)
    except OSError as exc:
        raise TrackerError(f"cannot write the report into {folder}: {exc.strerror}") from None
    finally:
        for chart in charts:
            chart.figure.clear()
    return ReportResult(folder, latest, files, analysis.empty)


def check_replaceable(folder: Path) -> None:
    """Refuse to replace `folder` unless it is absent, empty or an earlier report.

    An earlier report is recognised by what the report writes and nothing else: a
    real folder (not a symbolic link) holding `summary.json` (a JSON object with
    `generated_at`), and otherwise only regular files named as the report names
    them (`index.html` and the charts' PNG files). A file of anyone else's, or a
    subfolder, makes the report refuse with one line naming them, the folder left
    as it was: the tool never deletes a file it did not write.
    """
    reason = _not_a_report(folder)
    if reason is not None:
        raise ReportFolderError(
            f"will not replace {folder}: {reason}; move it away or choose another folder"
        )


def _not_a_report(folder: Path) -> str | None:
    """Why replacing `folder` could delete someone's files, or None when it cannot."""
    if folder.is_symlink():
        return "it is a symbolic link, not a folder the report wrote"
    if not folder.exists():
        return None
    if not folder.is_dir():
        return "it is not a folder"
    entries = sorted(folder.iterdir())
    if not entries:
        return None
    from tracker.charts import CHART_NAMES

    known = {*PAGE_FILES, *CHART_NAMES}
    foreign = [
        entry.name
        for entry in entries
        if entry.name not in known or entry.is_symlink() or not entry.is_file()
    ]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if foreign[3:] else "")
        return f"it holds {shown}, which no report of tracker writes"
    if not _is_summary(folder / "summary.json"):
        return "it holds no summary.json of an earlier report"
    return None


def _is_summary(path: Path) -> bool:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "generated_at" in document


def _write(
    folder: Path,
    summary: dict[str, Any],
    charts: list[Any],
    analysis: Analysis,
    now: datetime,
    since: date | None,
    until: date | None,
) -> list[str]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755 & ~_umask())  # mkdtemp makes it private; a report is meant to be read
    try:
        files = []
        for chart in charts:
            chart.figure.savefig(staging / chart.name, dpi=DPI, format="png")
            files.append(chart.name)
        (staging / "summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        page = html.render(
            generated_at=now.strftime("%Y-%m-%d %H:%M"),
            period=_period_text(analysis, since, until),
            notices=_notices(analysis),
            figures=[html.Figure(c.name, c.title, c.caption) for c in charts],
            headline=_network_headline(summary),
            flags=_recent_flags(summary),
            answer=summary["headline"]["text"],
            answer_table=headline_table(summary["headline"]),
        )
        (staging / "index.html").write_text(page, encoding="utf-8")
        files += ["summary.json", "index.html"]
        _replace_dir(staging, folder, move=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return files


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _replace_dir(source: Path, target: Path, *, move: bool = False) -> None:
    """Put `source` at `target` in one rename (copying first unless `move`).

    `target` is checked again right before: a file put there while the report was
    being drawn must not be deleted with the earlier report.
    """
    check_replaceable(target)
    if not move:
        copy = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        shutil.rmtree(copy)
        shutil.copytree(source, copy)  # copies the folder's mode too
        source = copy
    old = target.with_name(f".{target.name}.old.{os.getpid()}")
    if target.exists():
        target.rename(old)
    source.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _period_text(analysis: Analysis, since: date | None, until: date | None) -> str:
    if analysis.empty:
        return "The database holds no observations in this period yet."
    from tracker.analysis.conventions import day_date

    first = day_date(analysis.first_day or 0)
    last = day_date(analysis.last_day or 0)
    limits = ""
    if since or until:
        limits = f" (limited to {since or 'the start'} .. {until or 'the end'})"
    return f"Data from {first} to {last}{limits}."


def _notices(analysis: Analysis) -> list[str]:
    if analysis.empty:
        return [
            "No data yet: the database has no observations for this period. Run "
            "`tracker collect` (or `tracker import FILE`), then `tracker report` again."
        ]
    days = (analysis.last_day or 0) - (analysis.first_day or 0) + 1
    if days < 14:
        return [
            f"Sparse data: only {days} day{'s' if days > 1 else ''} of observations. Trends, "
            "weekly growth and event effects need several weeks; figures that cannot be "
            "computed yet are left out."
        ]
    return []


def _network_headline(summary: dict[str, Any], limit: int = 4) -> list[tuple[str, str, str]]:
    """The crawl's largest families: accounts on their last day, and how much it covers."""
    rows = []
    for family, figures in list(summary["network"]["families"].items())[:limit]:
        if figures["accounts"] is None:
            continue
        note = f"accounts summed over {figures['servers_measured']:,} servers measured"
        if figures["servers_alive"] is not None and figures["coverage"] is not None:
            note += f" of {figures['servers_alive']:,} alive ({figures['coverage']:.0%})"
        what = f"crawl {platform_name(family)} accounts"
        rows.append((what, f"{figures['accounts']:,} on {figures['last_day']}", note))
    return rows


def _recent_flags(summary: dict[str, Any], limit: int = 30) -> list[dict[str, Any]]:
    flags = [
        {**flag, "series": f"{e['source']} {e['target']} {e['metric']}"}
        for e in summary["series"]
        for flag in e["flags"]
    ]
    flags.sort(key=lambda flag: flag["date"] or "", reverse=True)
    return flags[:limit]
