"""`plc`: Bluesky sign-ups per day, from the PLC directory's log of every did:plc.

The directory export lists every operation on every did:plc in order; a DID's
first operation is its creation, and the PDS it names is where the account was
made (tracker/parsers/plc.py). The whole log is tens of thousands of pages, so
this collector is incremental: each run pages on from the stored cursor until
the export is empty (caught up), its `http.deadline` (minus one request's
`http.timeout`) or `max_pages`, waiting `pace` seconds between pages.

Each page is committed on its own, in one transaction: its attempt (fetch log,
archived body, rejected lines), its counts added to the day totals
(`accounts_created` per family, period `day`), and the new cursor
(`PlcPages` in tracker/storage/plc_rows.py). A SIGKILL therefore loses at most
the page in flight, which the next run fetches again; nothing is counted twice. A page
that fails (5xx, 429 beyond its retries, an HTML error page, a timeout) is
logged as a failed attempt and ends the run; the cursor stays before it.

The runner still writes one attempt for the target at the end: what is left in
the session's log (the failed request, or a note saying why paging stopped).

Reparse: the day totals are sums over pages and no run owns them (their points
keep `run_id` NULL), so `tracker reparse` leaves them and rebuilds only the
rejections and outcomes of the page attempts. After a fix to the counting
itself, `tracker plc rebuild` recounts every archived page in order
(tracker/storage/plc_rows.py `rebuild`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tracker.collectors.base import Collector
from tracker.config import PlcSettings
from tracker.http.session import TargetSession
from tracker.model import Fetched, Parsed, PayloadError, SourceFacts, TargetResult
from tracker.parsers import plc as p
from tracker.storage.history import History
from tracker.storage.plc_rows import SOURCE, PlcPages
from tracker.targets import Target, unique_targets

log = logging.getLogger(__name__)

PROGRESS_EVERY = 30.0
"""Seconds between two progress log lines."""


@dataclass
class Progress:
    """What a run did so far; logged every PROGRESS_EVERY seconds and at the end."""

    pages: int = 0
    created: int = 0
    repeated: int = 0
    rejected: int = 0
    families: Counter[str] = field(default_factory=Counter)
    last_time: datetime | None = None
    started: float = field(default_factory=time.monotonic)

    def line(self, reason: str = "") -> str:
        where = p.iso_ms(self.last_time) if self.last_time else "the start"
        by_family = ", ".join(f"{name} {n:,}" for name, n in sorted(self.families.items()))
        text = (
            f"plc: {self.pages:,} pages in {time.monotonic() - self.started:.0f} s, "
            f"{self.created:,} new identities ({by_family or 'none'}), "
            f"{self.repeated:,} repeats dropped, {self.rejected:,} lines rejected; "
            f"export read up to {where}"
        )
        return f"{text}; {reason}" if reason else text


class PlcCollector(Collector[PlcSettings]):
    name = SOURCE
    settings_model = PlcSettings
    summary = "Bluesky sign-ups per day and PDS family, from the PLC directory's export"
    metrics = (p.METRIC,)
    default_schedule = "45 * * * *"
    """Hourly: each run pages on from the stored cursor, so runs stay short."""
    about = SourceFacts(
        caption="new did:plc identities in the PLC directory export, by PDS family",
        brief="PLC directory",
        sentence="the PLC directory's new did:plc identities per day (identities, not "
        "people; did:web accounts are missing)",
    )

    def targets(self, history: History) -> Sequence[Target]:
        return unique_targets([self.settings.directory])

    async def fetch(self, target: Target, session: TargetSession, history: History) -> None:
        if history.engine is None:
            raise RuntimeError("the plc collector commits page by page and needs the database")
        pages = PlcPages(history.engine)
        run_id = _current_run(pages)
        if pages.cursor() is None and pages.has_counts():
            raise CursorLost(
                "day counts are stored but the export cursor is not (a database copied "
                "without its collector_state table?): paging from the start would count "
                "everything twice; run `tracker plc rebuild`"
            )
        margin = session.context.settings.timeout
        progress = Progress()
        reason = f"max_pages ({self.settings.max_pages:,}) reached"
        next_log = time.monotonic() + PROGRESS_EVERY
        for index in range(self.settings.max_pages):
            if index and self.settings.pace:
                await asyncio.sleep(self.settings.pace)
            if session.remaining < margin:
                reason = "stopped at the run's deadline (http.deadline); the next run resumes"
                break
            stored = pages.cursor()
            cursor = p.Cursor.loads(stored)
            params: dict[str, str | int] = {"count": self.settings.page_size}
            if cursor.after is not None:
                params["after"] = cursor.after
            record = await session.fetch(p.KIND, p.EXPORT_PATH, params=params)
            if not record.ok:
                return  # left in the session log: the runner records the failure
            try:
                page = p.parse_page(record.body or b"", cursor, self.settings.families)
            except PayloadError as exc:
                session.records[-1] = _refused(record, exc)
                return
            if not page.new and page.lines >= self.settings.page_size:
                session.records[-1] = _refused(
                    record,
                    PayloadError(
                        "stuck",
                        f"a full page of operations counted before, after {cursor.after}: "
                        "more than a page share one millisecond, or `after` is ignored",
                    ),
                )
                return
            session.records.pop()  # committed with its page below, not by the runner
            self._commit(pages, run_id, target, record, page, stored)
            progress.pages += 1
            progress.created += page.created
            progress.repeated += page.repeated
            progress.rejected += len(page.rejections)
            progress.last_time = page.cursor.last_time
            for (_, family), count in page.counts.items():
                progress.families[family] += count
            if time.monotonic() >= next_log:
                log.info("%s", progress.line())
                next_log = time.monotonic() + PROGRESS_EVERY
            if not page.new:
                reason = "caught up: the export has nothing new"
                break
        log.info("%s", progress.line(reason))
        _note_stop(session, progress.line(reason))

    def _commit(
        self,
        pages: PlcPages,
        run_id: int,
        target: Target,
        record: Fetched,
        page: p.Page,
        stored: str | None,
    ) -> None:
        """One page: its attempt and archived body, its counts, the cursor; one transaction."""
        parsed = Parsed(rejections=page.rejections, platform=p.PLATFORM)
        result = TargetResult(
            source=SOURCE,
            target=target.key,
            outcome="ok",
            started_at=record.fetched_at,
            fetched=[record],
            parsed=parsed,
        )
        pages.commit_page(run_id, result, page, stored, record.fetched_at)

    def parse(self, target: str, records: Sequence[Fetched], observed_at: datetime) -> Parsed:
        return p.parse(target, records, observed_at, families=self.settings.families)


def _refused(record: Fetched, exc: PayloadError) -> Fetched:
    """The page as logged when its body could not be used: a failure, body still archived."""
    return Fetched(
        kind=record.kind,
        url=record.url,
        fetched_at=record.fetched_at,
        method=record.method,
        status=record.status,
        error_kind=exc.kind,
        error_detail=exc.detail,
        body=record.body,
        content_type=record.content_type,
        elapsed_ms=record.elapsed_ms,
        attempts=record.attempts,
        final_url=record.final_url,
    )


def _note_stop(session: TargetSession, reason: str) -> None:
    """Why paging stopped, as a logged non-request (like wikipedia's `not_due`)."""
    session.records.append(
        Fetched(
            kind=p.KIND_STOP,
            url=session.url(p.EXPORT_PATH),
            fetched_at=session.context.clock(),
            error_detail=reason,
        )
    )


class CursorLost(RuntimeError):
    """Counts without a cursor: refusing to page from the start and count them twice."""


def _current_run(pages: PlcPages) -> int:
    """The run this process has open for `plc` (the runner opened it; pages join it)."""
    run_id = pages.running_run(os.getpid())
    if run_id is None:
        raise RuntimeError("no running `plc` run of this process to attach the pages to")
    return run_id
