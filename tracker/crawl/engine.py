"""`tracker crawl`: find every reachable fediverse server from the seeds, and measure it.

Breadth-first over peer lists. Each server is fetched by the fediverse collector in
crawl mode (robots.txt, NodeInfo, its peer list) through its own `TargetSession`:
two connections at most, `requests_per_second`, the address rule, its deadline.
Many servers are in flight at once (`discover.concurrency`), each with its own
tiny client, because one shared client with a large pool slows down as it grows.

One writer on the event loop commits each finished server in its own
transaction: its measurement, its new state in `servers`, and the hosts its peer
list named for the first time. So a kill loses only the servers in flight, and
the next crawl resumes: it skips the servers the killed crawl had checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from tracker.clock import Clock
from tracker.collectors.fediverse import FediverseCollector, FediverseSettings
from tracker.config import Config, DiscoverSettings
from tracker.crawl import backoff
from tracker.crawl.policy import (
    ClusterWatch,
    ExclusionError,
    Exclusions,
    cluster_members_to_count,
)
from tracker.errors import ConfigError
from tracker.http.session import HttpContext, user_agent
from tracker.model import Fetched, Observation, Parsed, TargetResult
from tracker.parsers import fediverse as fp
from tracker.parsers.peers import PeerSet, clean_peers, read_peer_records
from tracker.runner import STOP_GRACE, Runner
from tracker.storage.servers import (
    insert_servers,
    interrupted_crawl_start,
    load_servers,
    save_servers,
    set_cluster,
)
from tracker.storage.store import Store
from tracker.targets import TargetError, parse_target, target_for

log = logging.getLogger(__name__)

RESOLVER_THREADS = 64
"""getaddrinfo runs in threads; the default pool (6 on 2 cores) would queue look-ups."""
SOURCE = "crawl"
"""Run name of a crawl, and source of its per-family server counts."""


@dataclass
class CrawlSummary:
    run_id: int
    status: str = "ok"
    seeds: int = 0
    known: int = 0
    new: int = 0
    checked: int = 0
    measured: int = 0
    failed: int = 0
    opted_out: int = 0
    moved: int = 0
    excluded: int = 0
    skipped_resumed: int = 0
    junk: Counter[str] = field(default_factory=Counter)
    flagged: int = 0
    clusters: int = 0
    capped: int = 0
    written: int = 0
    seconds: float = 0.0
    message: str | None = None

    def line(self) -> str:
        junk = sum(self.junk.values())
        reasons = ", ".join(f"{kind} {count:,}" for kind, count in self.junk.most_common())
        parts = [
            f"crawl: {self.known:,} servers known ({self.new:,} new)",
            f"{self.checked:,} checked: {self.measured:,} measured, {self.failed:,} failed, "
            f"{self.opted_out:,} opted out, {self.moved:,} moved",
            f"{self.excluded:,} excluded",
            f"{junk:,} junk peer names dropped" + (f" ({reasons})" if reasons else ""),
        ]
        if self.flagged:
            parts.append(f"{self.flagged:,} flagged in {self.clusters:,} spam clusters")
        if self.capped:
            parts.append(f"{self.capped:,} not added (max_servers reached)")
        if self.skipped_resumed:
            parts.append(f"resumed: {self.skipped_resumed:,} already checked")
        tail = f" ({self.status}: {self.message})" if self.message else ""
        return "; ".join(parts) + f"; in {self.seconds:.1f} s{tail}"


@dataclass
class _Checked:
    """One finished server, handed from a worker to the writer."""

    host: str
    result: TargetResult
    row: dict[str, Any]
    peers: PeerSet | None
    moved_to: str | None


def discover_settings(config: Config) -> tuple[FediverseSettings, DiscoverSettings]:
    settings = config.collectors.get("fediverse")
    if not isinstance(settings, FediverseSettings) or settings.discover is None:
        raise ConfigError(
            f"{config.path}: collectors.fediverse.discover: missing (tracker crawl needs seeds)"
        )
    return settings, settings.discover


class Crawl:
    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        *,
        stop: asyncio.Event | None = None,
        on_server: Callable[[TargetResult], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.stop = stop
        self.on_server = on_server
        settings, self.discover = discover_settings(config)
        self.settings = settings
        self.collector = FediverseCollector(settings, config.http_for("fediverse"))
        self.collector.crawl_mode = True
        self.allow = frozenset(config.http.allow_hosts)
        self.context = HttpContext(
            settings=self.collector.http,
            user_agent=user_agent(config.contact),
            clock=clock,
            respect_robots=True,
            min_interval=1.0 / self.discover.requests_per_second,
        )
        self.runner = Runner(store, clock, contact=config.contact)
        try:
            self.exclusions = Exclusions.from_config(self.discover.exclude, self._exclude_file())
        except ExclusionError as exc:
            raise ConfigError(f"collectors.fediverse.discover.exclude_file: {exc}") from None
        self.clusters = ClusterWatch(self.discover.cluster_threshold)
        self.servers: dict[str, dict[str, Any]] = {}
        self.signatures: dict[str, tuple[Any, ...] | None] = {}
        self.families: Counter[str] = Counter()

    def _excluded(self, host: str) -> bool:
        return self.exclusions.matches(host)

    def _exclude_file(self) -> Path | None:
        name = self.discover.exclude_file
        if name is None:
            return None
        path = Path(name)
        return path if path.is_absolute() else self.config.path.parent / path

    async def run(self) -> CrawlSummary:
        started = time.monotonic()
        now = self.clock()
        _raise_open_files_limit()
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(RESOLVER_THREADS))
        run_id = self.store.start_run(SOURCE, now)
        summary = CrawlSummary(run_id)
        resume_from = interrupted_crawl_start(self.store.engine, run_id)
        self.servers = load_servers(self.store.engine)
        due = self._prepare(now, resume_from, summary)
        await self._crawl(run_id, due, summary)
        self._finish(run_id, now, summary)
        summary.seconds = time.monotonic() - started
        summary.known = len(self.servers)
        return summary

    def _prepare(
        self, now: datetime, resume_from: datetime | None, summary: CrawlSummary
    ) -> list[str]:
        """Seeds and listed servers known; exclusions applied; the servers due, seeds first."""
        first: list[str] = []
        for text in [*self.discover.seeds, *self.settings.instances]:
            try:
                first.append(parse_target(text).key)
            except TargetError:
                continue  # validated with the config; cannot happen
        summary.seeds = len(self.discover.seeds)
        fresh = [self._new_row(host, None, now) for host in first if host not in self.servers]
        changed: list[dict[str, Any]] = []
        for host, row in self.servers.items():
            excluded = self._excluded(host)
            if excluded and row["state"] != "excluded":
                row.update(state="excluded", next_check=now)
                changed.append(row)
            elif not excluded and row["state"] == "excluded":
                row.update(state="discovered", next_check=now)
                changed.append(row)
        with self.store.engine.begin() as connection:
            insert_servers(connection, fresh)
            save_servers(connection, changed)
        for row in fresh:
            self.servers[row["host"]] = row
        order = {host: index for index, host in enumerate(first)}
        due = []
        for host, row in self.servers.items():
            if row["state"] == "excluded":
                continue
            if resume_from is not None and _after(row["last_checked"], resume_from):
                summary.skipped_resumed += 1
                continue
            if row["next_check"] is None or row["next_check"] <= now or host in order:
                due.append(host)
        due.sort(key=lambda host: (order.get(host, len(order)), host))
        summary.excluded = sum(1 for row in self.servers.values() if row["state"] == "excluded")
        return due

    def _new_row(self, host: str, found_by: str | None, now: datetime) -> dict[str, Any]:
        state = "excluded" if self._excluded(host) else "discovered"
        return {
            "host": host,
            "state": state,
            "first_seen": now,
            "discovered_from": found_by,
            "failures": 0,
            "next_check": now,
        }

    async def _crawl(self, run_id: int, due: list[str], summary: CrawlSummary) -> None:
        """Workers fetch, one writer commits and feeds the frontier, until it is empty."""
        frontier = _Frontier(due)
        finished: asyncio.Queue[_Checked] = asyncio.Queue()
        failed: list[BaseException] = []

        async def worker() -> None:
            while (host := await frontier.next()) is not None:
                if self.stop is not None and self.stop.is_set():
                    frontier.settle()
                    continue
                try:
                    finished.put_nowait(await self._check(host))
                except Exception:  # a bug must not end the crawl; this server is skipped
                    log.exception("crawl: %s failed internally", host)
                    frontier.settle()

        async def writer() -> None:
            try:
                while True:
                    checked = await finished.get()
                    frontier.extend(self._write(run_id, checked, summary))
                    frontier.settle()
            except Exception as exc:  # the database: nothing more can be recorded
                failed.append(exc)
                frontier.done.set()

        workers = [asyncio.create_task(worker()) for _ in range(self.discover.concurrency)]
        writing = asyncio.create_task(writer())
        await self._until_done_or_stopped(frontier, summary)
        frontier.close(len(workers))
        await asyncio.wait(workers, timeout=1.0)
        for task in [*workers, writing]:
            task.cancel()
        await asyncio.gather(*workers, writing, return_exceptions=True)
        if failed:
            raise failed[0]
        while not finished.empty():  # finished before the stop: write them, lose nothing
            self._write(run_id, finished.get_nowait(), summary)

    async def _until_done_or_stopped(self, frontier: _Frontier, summary: CrawlSummary) -> None:
        waiting = [asyncio.create_task(frontier.done.wait())]
        if self.stop is not None:
            waiting.append(asyncio.create_task(self.stop.wait()))
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        for task in waiting:
            task.cancel()
        if self.stop is not None and self.stop.is_set() and not frontier.done.is_set():
            summary.status = "interrupted"
            with contextlib.suppress(TimeoutError):  # those in flight get a grace period
                await asyncio.wait_for(frontier.done.wait(), STOP_GRACE)

    async def _check(self, host: str) -> _Checked:
        """Fetch and parse one server; decide its next state (nothing written yet)."""
        target = target_for(host, self.allow)
        result = await self.runner.collect_one(self.collector, self.context, target)
        row = dict(self.servers[host])
        now = self.clock()
        state = backoff.ServerState.of(row)
        moved_to = _moved_to(result.fetched)
        peers = None
        failure = result.failure
        if failure is not None and failure.kind in ("opted_out", "robots"):
            state = backoff.after_opt_out(state, now)
        elif moved_to is not None and moved_to != host:
            state = backoff.after_move(state, now, moved_to)
        elif failure is None:
            state = backoff.after_success(state, now)
            row["software"] = (result.parsed.software or "")[:64] or None
        else:
            state = backoff.after_failure(state, failure.kind, now)
        if failure is None or failure.kind != "opted_out":
            peers = clean_peers(read_peer_records(result.fetched), self.allow)
        row.update(state.as_row())
        return _Checked(host, result, row, peers, moved_to)

    def _write(self, run_id: int, checked: _Checked, summary: CrawlSummary) -> list[str]:
        """Commit one server with what it discovered; returns the hosts to crawl next."""
        now = self.clock()
        new_rows: list[dict[str, Any]] = []
        names = set(checked.peers.hosts) if checked.peers is not None else set()
        if checked.peers is not None:
            summary.junk.update(checked.peers.junk)
        if checked.moved_to is not None and checked.moved_to != checked.host:
            names.add(checked.moved_to)
        for name in sorted(names):
            if name in self.servers:
                continue
            if len(self.servers) + len(new_rows) >= self.discover.max_servers:
                summary.capped += 1
                continue
            new_rows.append(self._new_row(name, checked.host, now))
        flag = self.clusters.add([row["host"] for row in new_rows if row["state"] != "excluded"])

        def also(connection: Connection) -> None:
            save_servers(connection, [checked.row])
            insert_servers(connection, new_rows)
            for domain, hosts in flag.items():
                set_cluster(connection, hosts, domain)

        summary.written += self.store.write_target(run_id, checked.result, also)
        self.servers[checked.host] = checked.row
        for row in new_rows:
            self.servers[row["host"]] = row
        for domain, hosts in flag.items():
            for host in hosts:
                self.servers[host]["cluster"] = domain
        self._count(checked, summary)
        summary.new += len(new_rows)
        if self.on_server is not None:
            self.on_server(checked.result)
        return [row["host"] for row in new_rows if row["state"] != "excluded"]

    def _count(self, checked: _Checked, summary: CrawlSummary) -> None:
        summary.checked += 1
        state = checked.row["state"]
        if state == "alive":
            summary.measured += 1
            values = {o.metric: o.value for o in checked.result.parsed.observations}
            self.signatures[checked.host] = (
                checked.row.get("software"),
                values.get("users_total"),
                values.get("posts_total"),
            )
            if not checked.row.get("cluster"):
                self.families[checked.result.parsed.platform or "unknown"] += 1
        elif state == "opted_out":
            summary.opted_out += 1
        elif state == "moved":
            summary.moved += 1
        else:
            summary.failed += 1

    def _finish(self, run_id: int, started: datetime, summary: CrawlSummary) -> None:
        """Clusters reviewed, per-family server counts stored, the run closed."""
        self._review_clusters(summary)
        # Spam-cluster servers still flagged are left out of the totals, so out of
        # the counts their coverage is measured against too.
        alive = Counter(
            fp.platform_of(row["software"]) if row.get("software") else "unknown"
            for row in self.servers.values()
            if row["state"] == "alive" and not row.get("cluster")
        )
        observations = [
            Observation(family, family, metric, value, started)
            for family in sorted(set(alive) | set(self.families))
            for metric, value in (
                ("servers_alive", alive[family]),
                ("servers_measured", self.families[family]),
            )
        ]
        if summary.status != "interrupted" and observations:
            counts = TargetResult(
                source=SOURCE,
                target="*",
                outcome="ok",
                started_at=started,
                fetched=(),
                parsed=Parsed(observations=observations),
                failure=None,
            )
            summary.written += self.store.write_target(run_id, counts)
        message = summary.message
        if summary.status == "interrupted":
            message = "stopped: the next crawl resumes where this one ended"
            summary.message = message
        self.store.finish_run(
            run_id,
            self.clock(),
            summary.status,
            {
                "targets_ok": summary.measured,
                "targets_failed": summary.failed,
                "targets_skipped": summary.opted_out + summary.moved,
                "observations_written": summary.written,
            },
            message,
        )

    def _review_clusters(self, summary: CrawlSummary) -> None:
        """A flagged server counts once its numbers differ from every other member's."""
        members: dict[str, dict[str, tuple[Any, ...] | None]] = {}
        for host, row in self.servers.items():
            if row.get("cluster"):
                members.setdefault(row["cluster"], {})[host] = self.signatures.get(host)
        cleared: list[str] = []
        for hosts in members.values():
            cleared.extend(cluster_members_to_count(hosts))
        if cleared:
            with self.store.engine.begin() as connection:
                set_cluster(connection, cleared, None)
            for host in cleared:
                self.servers[host]["cluster"] = None
        still = [row for row in self.servers.values() if row.get("cluster")]
        summary.flagged = len(still)
        summary.clusters = len({row["cluster"] for row in still})


class _Frontier:
    """Hosts still to crawl; `done` is set when none is queued, in flight or unwritten."""

    def __init__(self, hosts: Sequence[str]) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.outstanding = 0
        self.done = asyncio.Event()
        self.extend(hosts)
        if not hosts:
            self.done.set()

    def extend(self, hosts: Sequence[str]) -> None:
        for host in hosts:
            self.outstanding += 1
            self.queue.put_nowait(host)

    async def next(self) -> str | None:
        return await self.queue.get()

    def settle(self) -> None:
        """One host fully handled (written, or given up)."""
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done.set()

    def close(self, workers: int) -> None:
        for _ in range(workers):
            self.queue.put_nowait(None)


def _moved_to(records: Sequence[Fetched]) -> str | None:
    """The host NodeInfo's permanent redirects led to, off this server."""
    for record in records:
        if record.kind in (fp.WELLKNOWN, fp.NODEINFO) and record.moved_to:
            return record.moved_to
    return None


def _after(moment: datetime | None, since: datetime) -> bool:
    return moment is not None and moment >= since


def _raise_open_files_limit() -> None:
    """Hundreds of servers in flight, two sockets each: use the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
