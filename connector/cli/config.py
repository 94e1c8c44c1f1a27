"""`connector config ...`: help with writing the config file."""

from __future__ import annotations

from pathlib import Path

import click

from connector.config.schema import render_schema, undescribed


@click.group()
def config() -> None:
    """Help with the config file: its JSON Schema for an editor."""


@config.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the schema to FILE instead of printing it.",
)
def schema(output: Path | None) -> None:
    """Print the JSON Schema (draft 2020-12) of the config file, a description for every key.

    For completion and checks in VS Code or any editor with the YAML language server: put
    `# yaml-language-server: $schema=./connector.schema.json` at the top of the config file
    and the schema beside it (`connector config schema --output connector.schema.json`).
    """
    missing = undescribed()
    if missing:  # a developer's slip; the tests catch it first
        raise click.ClickException("keys without a description:\n" + "\n".join(missing))
    text = render_schema()
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)
