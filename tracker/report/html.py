"""`index.html`: the charts with their captions, readable offline (no external assets).

Everything is escaped: target names and labels come from servers and config files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from tracker.report.headline import Table

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Hiragino Sans", "Noto Sans CJK JP",
       sans-serif; max-width: 1240px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.meta { color: #555; margin-top: 0; }
.notice { background: #fff4d6; border-left: 4px solid #e0a100; padding: 0.8em 1em; }
figure { margin: 2.5em 0; }
figure img { width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { margin-top: 0.6em; line-height: 1.45; }
figcaption h2 { font-size: 1.15em; margin: 0 0 0.3em 0; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.95em; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.answer p { font-size: 1.08em; line-height: 1.5; margin: 0.5em 0; }
footer { color: #666; font-size: 0.9em; margin-top: 3em; }
"""


@dataclass(frozen=True)
class Figure:
    file: str
    title: str
    caption: str


def render(
    *,
    generated_at: str,
    period: str,
    notices: Sequence[str],
    figures: Sequence[Figure],
    headline: Sequence[tuple[str, str, str]],
    flags: Sequence[dict[str, Any]],
    answer: Sequence[str] = (),
    answer_table: Table | None = None,
) -> str:
    """The whole page. `answer`: the headline's sentences, right under the title, then
    `answer_table`; `headline`: (what, value, note) rows of the crawled network;
    `flags`: recent flags to list."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Where people went after Twitter: tracker report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Where people went after Twitter</h1>",
    ]
    if answer or answer_table is not None:
        parts.append('<section class="answer">')
        parts += [f"<p>{escape(sentence)}</p>" for sentence in answer]
        if answer_table is not None and answer_table.rows:
            parts.append(_table(answer_table))
        parts.append("</section>")
    parts.append(
        f'<p class="meta">Report generated {escape(generated_at)} (UTC). {escape(period)}</p>'
    )
    parts += [f'<p class="notice">{escape(notice)}</p>' for notice in notices]
    if headline:
        parts.append("<table><tr><th>figure</th><th>value</th><th>how it is counted</th></tr>")
        parts += [
            f'<tr><td>{escape(what)}</td><td class="num">{escape(value)}</td>'
            f"<td>{escape(note)}</td></tr>"
            for what, value, note in headline
        ]
        parts.append("</table>")
    for figure in figures:
        parts.append(
            f'<figure><img src="{escape(figure.file)}" alt="{escape(figure.title)}">'
            f"<figcaption><h2>{escape(figure.title)}</h2>{_paragraphs(figure.caption)}"
            "</figcaption></figure>"
        )
    if flags:
        parts.append("<h2>Data-quality flags</h2><table>")
        parts.append("<tr><th>date</th><th>series</th><th>kind</th><th>what happened</th></tr>")
        for flag in flags:
            parts.append(
                f"<tr><td>{escape(str(flag['date']))}</td><td>{escape(str(flag['series']))}</td>"
                f"<td>{escape(str(flag['kind']))}</td><td>{escape(str(flag['detail']))}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<footer>Figures in <code>summary.json</code> beside this page. Flagged points "
        "(dropouts, spikes, steps, falls of counters, stale totals) are drawn apart and left "
        "out of every growth figure. Sources are never added together: each tracker counts "
        "a different thing.</footer></body></html>"
    )
    return "\n".join(parts) + "\n"


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in table.header)
    rows = [
        "<tr>"
        + "".join(
            f'<td class="num">{escape(cell)}</td>'
            if index in table.numeric
            else f"<td>{escape(cell)}</td>"
            for index, cell in enumerate(row)
        )
        + "</tr>"
        for row in table.rows
    ]
    return "\n".join([f'<table class="answer"><tr>{head}</tr>', *rows, "</table>"])


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{escape(part)}</p>" for part in text.split("\n\n") if part.strip())
