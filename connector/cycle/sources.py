"""The first half of a cycle, shared by every target: read each source once, judge its health,
and decide who is in scope. Writes nothing but log events; `remember` keeps what the next
cycle needs (each source's count, snapshot and marking values) once the targets are done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog

from connector.config import Config
from connector.cycle.quiet import CachedRead, CycleMemory
from connector.cycle.result import SourceFailure
from connector.errors import SourceError
from connector.people.externalid import ExternalIdMaker
from connector.people.join import join_persons
from connector.people.model import ReadContext, SourceRead
from connector.people.scope import Scoped, apply_scope
from connector.sources import Source, build_sources
from connector.sources.health import (
    hold_all_but_protected,
    marking_digests,
    read_problem,
    report_new_marking_values,
)
from connector.state.store import StateStore

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Sources:
    """One cycle's reading of the sources: what each returned, which failed, who is in scope."""

    reads: list[SourceRead]
    failures: list[SourceFailure]
    scoped: Scoped
    only: str | None = None  # an on-demand read for one person: no picture of the whole


def warn_about_assumed_markings(config: Config) -> None:
    for source_config in config.sources:
        marking = getattr(source_config, "protected_identity", None)
        if marking is not None and marking.assume_not_protected:
            log.warning(
                "source.marking_assumed",
                source=source_config.name,
                consequence="this source carries no protected-identity marking; "
                "its people are treated as not protected",
            )


def read_sources(
    config: Config,
    state: StateStore | None = None,
    *,
    full: bool = True,
    only: str | None = None,
    memory: CycleMemory | None = None,
    refresh: bool = False,
) -> tuple[list[SourceRead], list[SourceFailure]]:
    """Read every source. `state` lets incremental sources read only what changed (unless
    `full`); they return what to keep for next time in `SourceRead.snapshot`. `memory` (a
    daemon's): a source whose content is unchanged is not read again - unless `refresh`
    (the periodic full plan), where only a file's fingerprint is believed."""
    warn_about_assumed_markings(config)
    ids = ExternalIdMaker(config.external_id)
    reads: list[SourceRead] = []
    failures: list[SourceFailure] = []
    for source in build_sources(config):
        cached = memory.reads.get(source.name) if memory is not None and only is None else None
        context = _context(source.name, cached, state, full, only)
        try:
            read, fingerprint = _read_or_reuse(source, context, cached, memory, refresh)
        except SourceError as exc:
            log.error("source.failed", source=exc.source, reason=exc.reason)
            failures.append(SourceFailure(exc.source, exc.reason))
            if memory is not None:
                memory.reads.pop(source.name, None)
            continue
        if read.unchanged:
            # The last healthy read stands (judged then); its skipped records were logged then.
            log.info("source.unchanged", source=read.source, persons=len(read.persons))
            reads.append(read)
            continue
        for issue in read.issues:
            log.warning(
                "source.record_skipped",
                source=issue.source,
                location=issue.location,
                reason=issue.reason,
            )
        if only is None and not judge(config, state, ids, read, failures):
            continue
        reads.append(read)
        if memory is not None and only is None:
            _remember_read(memory, source.name, fingerprint, read, failures)
    return reads, failures


def _context(
    name: str, cached: CachedRead | None, state: StateStore | None, full: bool, only: str | None
) -> ReadContext:
    context = ReadContext(full=full, only=only)
    if cached is not None and cached.read.snapshot is not None and not full:
        # A daemon's last picture of an incremental source: not loaded from the state again.
        context.snapshot = cached.read.snapshot.objects
        context.checkpoint = cached.read.snapshot.checkpoint
        context.previous = cached.read
    elif state is not None and not full:
        context.snapshot = state.load_snapshot(name) or None
        context.checkpoint = state.checkpoint_of(name)
    return context


def _read_or_reuse(
    source: Source,
    context: ReadContext,
    cached: CachedRead | None,
    memory: CycleMemory | None,
    refresh: bool,
) -> tuple[SourceRead, Any]:
    """The source's read - or its last one, where the source can show cheaply that nothing
    changed - and what will show it next time: a file's fingerprint, a directory's change
    marker (sources/ldap_changes.py), or None."""
    if memory is None or context.only is not None:
        return source.read(context), None
    fingerprint = getattr(source, "fingerprint", None)
    if callable(fingerprint):
        now = fingerprint()
        if cached is not None and cached.fingerprint == now:
            return cached.read, now
    else:
        marker = getattr(source, "change_marker", None)
        if not callable(marker):
            return source.read(context), None
        previous = cached.fingerprint if cached is not None and not refresh else None
        now = _asked(marker, previous)
        if previous is not None and now is not None and previous.unchanged_at(now):
            return cached.read if cached is not None else source.read(context), previous
        if previous is not None and now is not None:
            now = _asked(marker, None)  # changed: a fresh marker, taken before the read
    # The old picture goes before the new one is built (two of them at 100,000 persons would
    # double the memory a cycle needs).
    memory.reads.pop(source.name, None)
    return source.read(context), now


def _asked(marker: Callable[[Any], Any], previous: Any) -> Any:
    """A change marker, or None where the directory could not say (then it is read whole)."""
    try:
        return marker(previous)
    except SourceError as exc:
        log.warning("source.changes_unknown", source=exc.source, reason=exc.reason)
        return None


def _remember_read(
    memory: CycleMemory,
    name: str,
    fingerprint: Any,
    read: SourceRead,
    failures: list[SourceFailure],
) -> None:
    """Only a healthy read is kept to stand in for the next: an unhealthy one is judged (and
    held) again each cycle until its source is mended."""
    if any(f.source == name for f in failures) or read.suspect or read.unreadable_keys:
        memory.reads.pop(name, None)
        return
    kept = replace(read, unchanged=True)
    memory.reads[name] = CachedRead(fingerprint, kept)


def judge(
    config: Config,
    state: StateStore | None,
    ids: ExternalIdMaker,
    read: SourceRead,
    failures: list[SourceFailure],
) -> bool:
    """Report new marking values and fail a read that cannot be trusted as a whole; False
    when the read is to be dropped (a joined source: the join then holds everyone)."""
    seen = state.marking_digests(read.source) if state is not None else ()
    report_new_marking_values(read.source, marking_digests(read, ids), seen)
    problem = read_problem(read, config.safety.max_skipped_percent)
    if not problem:
        return True
    log.error("source.failed", source=read.source, reason=problem)
    failures.append(SourceFailure(read.source, problem))
    if config.join and read.source in config.join.sources:
        return False
    hold_all_but_protected(read)
    return True


def read_all(
    config: Config,
    state: StateStore | None = None,
    *,
    full: bool = True,
    only: str | None = None,
    memory: CycleMemory | None = None,
    refresh: bool = False,
) -> Sources:
    reads, failures = read_sources(
        config, state, full=full, only=only, memory=memory, refresh=refresh
    )
    joined = join_persons(config, reads)  # one person per human, across the sources
    return Sources(reads, failures, apply_scope(config, reads, joined), only)


def remember(config: Config, state: StateStore, sources: Sources, keep_counts_of: set[str]) -> None:
    """Keep what the next cycle compares with: each healthy source's count (`keep_counts_of`:
    the sources whose count may be kept), snapshots of incremental sources, marking values."""
    if sources.only is not None:
        return  # a read for one person is no picture of the whole
    failed = {f.source for f in sources.failures}
    ids = ExternalIdMaker(config.external_id)
    for read in sources.reads:
        state.remember_marking_digests(read.source, marking_digests(read, ids))
        if read.source in keep_counts_of:
            state.set_source_count(read.source, len(read.persons))
        if read.snapshot is not None and read.source not in failed and not read.unchanged:
            state.save_snapshot(read.source, read.snapshot.objects, read.snapshot.checkpoint)
