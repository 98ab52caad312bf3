"""The ``sigforge`` command: thin wrappers that parse arguments, run the pipeline and print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sigforge.runtime import __version__

from .pipeline import CompileResult, compile_sources
from .write import ForeignFileError, diff_outputs, write_outputs

_src = click.option(
    "--src",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("signatures"),
    show_default=True,
    help="Folder with the .sig files.",
)
_out = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("generated"),
    show_default=True,
    help="Folder (Python package) for the generated code.",
)
_format = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="How to print diagnostics: for people, or as JSON lines for tools.",
)


@click.group()
@click.version_option(__version__, prog_name="sigforge")
def main() -> None:
    """Compile .sig signature files into typed Python predictors."""


def _compile(src: Path, out: Path, fmt: str) -> CompileResult:
    if not src.is_dir():
        raise click.UsageError(f"source folder {src} does not exist")
    result = compile_sources(src, out)
    if result.diagnostics:
        if fmt == "json":
            for d in result.diagnostics:
                click.echo(d.to_json())
        else:
            text = "\n\n".join(d.render(result.sources.get(d.path)) for d in result.diagnostics)
            click.echo(text, err=True)
            errors = sum(d.severity == "error" for d in result.diagnostics)
            if errors:
                click.echo(f"\n{errors} error{'s' if errors != 1 else ''}; nothing was written.", err=True)
    return result


@main.command()
@_src
@_out
@_format
def generate(src: Path, out: Path, fmt: str) -> None:
    """Generate the Python package for every .sig file in --src."""
    result = _compile(src, out, fmt)
    if not result.ok:
        sys.exit(1)
    try:
        report = write_outputs(out, result.files)
    except ForeignFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if fmt == "text":
        click.echo(
            f"{out}: {len(report.written)} written, {len(report.unchanged)} unchanged"
            + (f", {len(report.deleted)} deleted" if report.deleted else "")
        )


@main.command()
@_src
@_out
@_format
def check(src: Path, out: Path, fmt: str) -> None:
    """Exit 1 with a diff when --out is not what `generate` would write."""
    result = _compile(src, out, fmt)
    if not result.ok:
        sys.exit(1)
    diff = diff_outputs(out, result.files)
    if diff:
        click.echo(diff, nl=False)
        click.echo(f"\n{out} is stale: run `sigforge generate`.", err=True)
        sys.exit(1)
    if fmt == "text":
        click.echo(f"{out} is up to date.")
