"""`connector notify test`: a test message to each notification channel, and what came of it.

(`connector check` lists the channels without sending anything.)"""

from __future__ import annotations

import sys

import click

from connector.cli.common import load, plain_errors
from connector.config import Config
from connector.service.notify import Event, Message, build_channels, deliver


@click.group()
def notify() -> None:
    """Notifications (`notify:` in the config)."""


@notify.command("test")
@click.option(
    "--channel",
    "names",
    multiple=True,
    metavar="NAME",
    help="Only this channel (repeat for several); default: every channel.",
)
@click.pass_context
@plain_errors
def test(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Send a test message to each channel; exit 1 if any could not be sent."""
    config = load(ctx)
    channels = build_channels(config.notify)
    unknown = sorted(set(names) - {channel.name for channel in channels})
    if unknown:
        known = ", ".join(channel.name for channel in channels) or "none"
        raise click.UsageError(f"no channel named {', '.join(unknown)} (the channels: {known})")
    chosen = [channel for channel in channels if not names or channel.name in names]
    if not chosen:
        click.echo("no notification channels: `notify:` lists no webhooks and no email")
        sys.exit(1)
    message = Message(Event("test"))
    failed = 0
    for channel in chosen:
        why_not = deliver(channel, message, delays=(1.0,))
        if why_not is None:
            click.echo(f"ok    {channel.kind} {channel.name}: test message sent")
        else:
            failed += 1
            click.echo(f"FAIL  {channel.kind} {channel.name}: {why_not}")
    if failed:
        sys.exit(1)


def check_lines(config: Config) -> list[str]:
    """What `check` says about the notification channels (nothing is sent)."""
    lines = []
    for channel in build_channels(config.notify):
        try:
            where = channel.where()
        except OSError as exc:
            lines.append(f"FAIL  notify {channel.kind} {channel.name}: {exc.strerror}")
            continue
        lines.append(
            f"ok    notify {channel.kind} {channel.name}: {where}; events: {', '.join(channel.events)} "
            "(`connector notify test` sends a test message)"
        )
    return lines
