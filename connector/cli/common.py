"""What every command shares: the config from --config, errors as a message and an exit code,
and the targets a command is for."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from connector.config import Config, load_config
from connector.cycle.result import CycleResult, exit_code_of
from connector.errors import ConnectorError
from connector.reports.render import render_summary
from connector.service.logs import configure_logging
from connector.targets import Target, build_targets

F = TypeVar("F", bound=Callable[..., Any])


def plain_errors(command: F) -> F:
    """Turn the connector's own errors into a message and an exit code, not a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConnectorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def config_path(ctx: click.Context) -> Path:
    if ctx.obj is None:
        raise click.UsageError("--config FILE is required for this command")
    return Path(ctx.obj)


def load(ctx: click.Context) -> Config:
    """The config, with logging set up as it says (one-shot commands log to stderr)."""
    config = load_config(config_path(ctx))
    configure_logging(config.logging.format, config.logging.level)
    return config


def targets_of(config: Config, names: tuple[str, ...] = ()) -> list[Target]:
    """The targets a command is for: the named ones, or all."""
    check_target_names(config, names)
    return build_targets(config, list(names) if names else None)


def check_target_names(config: Config, names: tuple[str, ...] = ()) -> None:
    """Fail with a usage error for a target name the config does not have."""
    unknown = sorted(set(names) - {t.name for t in config.targets})
    if unknown:
        known = ", ".join(t.name for t in config.targets)
        raise click.UsageError(f"no target named {', '.join(unknown)} (the targets: {known})")


def close_all(targets: list[Target]) -> None:
    for target in targets:
        target.close()


def target_option() -> Callable[[F], F]:
    return click.option(
        "--target",
        "target_names",
        multiple=True,
        metavar="NAME",
        help="Only this target (repeat for several); default: every target.",
    )


def finish(results: list[CycleResult]) -> None:
    """Print each target's summary and exit with the cycle's code."""
    click.echo(render_summaries(results))
    sys.exit(exit_code_of(results))


def render_summaries(results: list[CycleResult]) -> str:
    if len(results) == 1:
        return render_summary(results[0])
    return "\n\n".join(f"== Target {r.target}\n{render_summary(r)}" for r in results)
