"""The command line. Exit codes: 0 success, 1 failure, 2 bad config or usage, 3 finished but
something was held back by a safety rule, 4 interrupted (Ctrl-C or SIGTERM stopped a `sync` or
`approve` with planned operations not sent; the next cycle plans them again).

One module per group of commands: check.py (check), cycle.py (plan, sync, approve, run),
reports.py (status, explain, history, report, demo), notify.py (notify test), config.py
(config schema); common.py is what they share.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path

import click

import connector
from connector.cli.check import check
from connector.cli.config import config
from connector.cli.cycle import approve, plan, run, sync
from connector.cli.notify import notify
from connector.cli.reports import demo, explain, history, report, status
from connector.service.memory import tune_for_large_cycles


def version() -> str:
    """The installed distribution's version; the source tree's when it runs uninstalled."""
    try:
        return installed_version("connector")
    except PackageNotFoundError:
        return connector.__version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), "--version", prog_name="connector", message="%(prog)s %(version)s")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="CONNECTOR_CONFIG",
    help="The YAML configuration file (or $CONNECTOR_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Keep a municipality's students and staff in step with their edtech vendors."""
    tune_for_large_cycles()
    ctx.obj = config_path


for command in (
    check,
    plan,
    sync,
    approve,
    run,
    status,
    explain,
    history,
    report,
    demo,
    notify,
    config,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
