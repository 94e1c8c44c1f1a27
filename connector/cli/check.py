"""`connector check`: the config and mappings, each source judged as `sync` judges it, and each
target reached and checked. Exit 1 if anything would fail a sync."""

from __future__ import annotations

import sys

import click

from connector.cli.common import close_all, config_path, load, plain_errors, targets_of
from connector.cli.notify import check_lines
from connector.config import Config
from connector.errors import SourceError
from connector.people.externalid import ExternalIdMaker
from connector.people.model import SourceRead
from connector.sources import build_sources
from connector.sources.health import likely_cause, marking_digests, read_problem
from connector.sources.ldap_directory import DirectoryCheck, LdapDirectorySource
from connector.state.store import StateStore

# `check` lists at most this many skipped records of a source, then how many more there are.
SHOWN_SKIPPED = 20


@click.command()
@click.pass_context
@plain_errors
def check(ctx: click.Context) -> None:
    """Validate config and mappings, then test each source and each target."""
    config = load(ctx)
    click.echo(f"ok    config {config_path(ctx)}")
    targets = targets_of(config)
    for target in targets:
        mapping = target.mapping
        click.echo(f"ok    mapping {mapping.path} ({mapping.describe()})")
    problems = sum(check_source(config, source) for source in build_sources(config))
    state = StateStore.open_readonly(config.state)
    try:
        for target in targets:
            linked = state.target(target.name).linked_counts() if state else (0, 0)
            report = target.check(linked)
            for status, line in report.lines:
                click.echo(f"{status:<6}{line}" if status else f"        {line}")
            problems += report.problems
    finally:
        if state:
            state.close()
        close_all(targets)
    for line in check_lines(config):
        click.echo(line)
        problems += line.startswith("FAIL")
    if problems:
        sys.exit(1)


def check_source(config: Config, source: object) -> int:
    """Read a source as a sync would and print what check makes of it; its problems."""
    name = getattr(source, "name", "?")
    problems = 0
    try:
        if isinstance(source, LdapDirectorySource):
            found = source.inspect()
            problems += print_directory_check(source, found)
            if found.missing_bases:
                return problems  # its read would only fail on the same base
        read = source.read()  # type: ignore[attr-defined]
    except SourceError as exc:
        click.echo(f"FAIL  source {name}: {exc.reason}")
        return problems + 1
    return problems + check_read(config, read)


def print_directory_check(source: LdapDirectorySource, found: DirectoryCheck) -> int:
    """Print what `check` found in a directory; how many base DNs and groups are missing."""
    who = source.config.bind_dn or "anonymous"
    click.echo(f"ok    source {source.name}: bind as {who} at {found.server}")
    not_there = "does not exist (or the bind account may not see it)"
    for base in found.missing_bases:
        click.echo(
            f"FAIL  source {source.name}: the base DN {base!r} at {found.server} {not_there}"
        )
    for base, entries in found.entries_by_base.items():
        click.echo(f"        {base}: {entries} entries match the filter")
    missing_groups = 0
    for group in found.groups:
        rule = group.rule
        if group.members is None:
            missing_groups += 1
            click.echo(
                f"FAIL  source {source.name}: group rule for school unit {rule.school_unit_code}: "
                f"the group {rule.group!r} at {found.server} {not_there}"
            )
        else:
            click.echo(
                f"        group {rule.group} (school unit {rule.school_unit_code}): "
                f"{group.members} member{'' if group.members == 1 else 's'}"
            )
    return len(found.missing_bases) + missing_groups


def check_read(config: Config, read: SourceRead) -> int:
    """Print what `check` makes of a source's read, judged as `sync` would; 1 if it fails."""
    problem = read_problem(read, config.safety.max_skipped_percent)
    protected = sum(1 for p in read.persons if p.protected)
    click.echo(
        f"{'FAIL' if problem else 'ok  '}  source {read.source}: {read.rows_read} records, "
        f"{len(read.persons)} persons ({protected} protected, left out), "
        f"{len(read.issues)} records skipped"
    )
    if problem:
        click.echo(f"        {problem}")
    groups = _study_groups(read)
    if groups:
        click.echo(f"        {groups}")
    for issue in read.issues[:SHOWN_SKIPPED]:
        click.echo(f"        skipped {issue.location}: {issue.reason}")
    if len(read.issues) > SHOWN_SKIPPED:
        click.echo(f"        ... and {len(read.issues) - SHOWN_SKIPPED} more")
    for reason in read.suspect:
        click.echo(f"        warning: {reason}: a sync holds deactivations and removals")
    cause = likely_cause(read)
    if cause:
        click.echo(f"        hint: {cause}")
    new = _new_marking_records(config, read)
    if new:
        click.echo(
            f"        note: {new} records carry a protected-identity marking value this "
            "source never wrote before; they count as protected"
        )
    return 1 if problem else 0


def _study_groups(read: SourceRead) -> str:
    """How many classes and teaching groups the source gives its unprotected persons (a group
    only protected people are in is not counted: it must not show)."""
    found = {
        (g.school_unit_code, g.type, g.name)
        for person in read.persons
        if not person.protected
        for g in person.study_groups
    }
    if not found:
        return ""
    classes = sum(1 for _, kind, _ in found if kind == "Klass")
    return (
        f"study groups: {classes} classes and {len(found) - classes} teaching groups "
        "(for an EGIL target's StudentGroups)"
    )


def _new_marking_records(config: Config, read: SourceRead) -> int:
    state = StateStore.open_readonly(config.state)
    seen = state.marking_digests(read.source) if state else set()
    if state:
        state.close()
    digests = marking_digests(read, ExternalIdMaker(config.external_id))
    return sum(rows for digest, rows in digests.items() if digest not in seen)
