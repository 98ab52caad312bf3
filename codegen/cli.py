"""The ``sigforge`` command: thin wrappers that parse arguments, run the pipeline and print.

A command imports what it needs when it runs (the formatter and its parser for ``fmt``,
the programs and retrieval runtime for ``evaluate``, ``optimize`` and ``index``), so that
``sigforge generate`` with nothing to compile starts in a few tens of milliseconds.
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, get_args

import click

from sigforge.runtime._version import __version__

from .diagnostics import Diagnostic, render_diagnostics
from .pipeline import CompileResult, compile_sources, display_path, find_sources
from .write import ForeignFileError, WriteReport, diff_outputs, write_outputs

if TYPE_CHECKING:
    from watchfiles import Change

    from .fmt import FileFormat

WarningMode = Literal["show", "hide", "error"]

# A command's process ends when the command does, and what the compiler built needs no
# collecting on the way out: frozen at exit, it is not walked by the interpreter's last
# garbage collection (a good part of a one-file rebuild's time otherwise).
atexit.register(gc.freeze)

#: Set when a compiler command (generate, check) runs: if the CLI is the program itself, the
#: process then ends as soon as the command is done (see :meth:`_LazyGroup.main`).
_compiler_ran = False


def _compiler_command() -> None:
    global _compiler_ran
    _compiler_ran = True


def _end_now(code: object) -> None:
    """End the process with ``sys.exit(code)``'s status without tearing the interpreter
    down: freeing every object and module of a build (~10-20 ms after a full build) buys
    nothing when the process ends. The output is flushed first; nothing the compiler
    commands use registers work for the exit. If flushing fails (a closed pipe), the
    caller exits as usual, which reports it."""
    if code is None or isinstance(code, int):
        status = code or 0
    else:  # sys.exit("message"): the message goes to stderr, the status is 1
        print(code, file=sys.stderr)
        status = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        return
    os._exit(status)


def filter_diagnostics(
    diagnostics: Iterable[Diagnostic], warnings: WarningMode, ignore: Collection[str] = ()
) -> list[Diagnostic]:
    """The diagnostics to report under ``--warnings`` and ``--ignore``.

    Warnings whose code is in ``ignore`` are dropped, all warnings are dropped for ``hide``
    and turned into errors for ``error`` (so they fail the command). Errors are always kept.
    """
    kept: list[Diagnostic] = []
    for diagnostic in diagnostics:
        if diagnostic.severity == "warning":
            if warnings == "hide" or diagnostic.code in ignore:
                continue
            if warnings == "error":
                diagnostic = replace(diagnostic, severity="error")
        kept.append(diagnostic)
    return kept


def _warning_codes(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> frozenset[str]:
    """``--ignore W101 --ignore w102,W103`` -> ``{"W101", "W102", "W103"}``; error codes are refused."""
    codes = {code.strip().upper() for value in values for code in value.split(",") if code.strip()}
    refused = sorted(code for code in codes if not re.fullmatch(r"W\d+", code))
    if refused:
        raise click.BadParameter(
            f"{', '.join(refused)}: only warning codes such as W101 can be ignored, errors cannot"
        )
    return frozenset(codes)


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
_warnings = click.option(
    "--warnings",
    type=click.Choice(get_args(WarningMode)),
    default="show",
    show_default=True,
    help="Print warnings, hide them, or treat them as errors (exit 1, nothing written).",
)
_ignore = click.option(
    "--ignore",
    metavar="CODE[,CODE...]",
    multiple=True,
    callback=_warning_codes,
    help="Silence a warning code, e.g. W101. Repeat the option or separate codes with commas.",
)

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _options(command: _Command) -> _Command:
    """The options every command takes: --src, --out, --format, --warnings, --ignore."""
    for option in (_ignore, _warnings, _format, _out, _src):
        command = option(command)
    return command


class _LazyGroup(click.Group):
    """A group whose commands from other modules are imported only when they are used
    (or listed, e.g. by ``--help``)."""

    #: command name -> (module, attribute) of the commands defined elsewhere
    lazy_commands: ClassVar[dict[str, tuple[str, str]]] = {
        "evaluate": ("sigforge.codegen.cli_programs", "evaluate"),
        "optimize": ("sigforge.codegen.cli_programs", "optimize"),
        "index": ("sigforge.codegen.cli_index", "index_command"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """As click runs a command; when the CLI is the program itself (arguments from the
        command line, standalone mode: the `sigforge` script, `python -m sigforge.codegen`)
        and the command was a compiler command, the process ends without tearing the
        interpreter down (:func:`_end_now`). Called with arguments (tests, other programs),
        it returns or raises as click does."""
        try:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        except SystemExit as done:
            if args is None and standalone_mode and _compiler_ran:
                _end_now(done.code)
            raise

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            import importlib

            module, attribute = self.lazy_commands[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
@click.version_option(__version__, prog_name="sigforge")
def main() -> None:
    """Compile .sig signature files into typed Python predictors."""


def _require_folder(src: Path) -> None:
    if not src.is_dir():
        raise click.UsageError(f"source folder {src} does not exist")


def _compile(
    src: Path,
    out: Path,
    warnings: WarningMode,
    ignore: Collection[str],
    *,
    incremental: bool = False,
) -> CompileResult:
    """Compile, keeping only the diagnostics to report (``ok`` is false when any is an error).

    ``incremental``: modules whose generated file is current are not compiled again."""
    result = compile_sources(src, out, incremental=incremental)
    return replace(result, diagnostics=filter_diagnostics(result.diagnostics, warnings, ignore))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


def _tally(diagnostics: list[Diagnostic]) -> str:
    """``"2 errors, 1 warning"``; empty when there are no diagnostics."""
    errors = sum(d.severity == "error" for d in diagnostics)
    counts = ((errors, "error"), (len(diagnostics) - errors, "warning"))
    return ", ".join(_plural(n, noun) for n, noun in counts if n)


def _outcome(result: CompileResult) -> str:
    """``"2 errors, 1 warning; nothing was written."``, ``"1 warning."``, or empty when clean."""
    tally = _tally(result.diagnostics)
    if not result.ok:
        return f"{tally}; nothing was written."
    return f"{tally}." if tally else ""


def _print_diagnostics(result: CompileResult, fmt: str) -> None:
    """JSON lines on stdout, or the rendered diagnostics on stderr."""
    if not result.diagnostics:
        return
    if fmt == "json":
        click.echo("\n".join(d.to_json() for d in result.diagnostics))
    else:
        click.echo(render_diagnostics(result.diagnostics, result.sources), err=True)


def _report_compile(result: CompileResult, fmt: str) -> None:
    _print_diagnostics(result, fmt)
    outcome = _outcome(result)
    if fmt == "text" and outcome:
        click.echo(f"\n{outcome}", err=True)


def _write_summary(report: WriteReport, *, names: bool = False) -> str:
    """``"1 written, 2 unchanged, 1 deleted"``; with ``names``, the written and deleted files too."""

    def part(files: list[str], what: str) -> str:
        if not (names and files):
            return f"{len(files)} {what}"
        shown = ", ".join(files[:3]) + (f", +{len(files) - 3} more" if len(files) > 3 else "")
        return f"{len(files)} {what} ({shown})"

    summary = f"{part(report.written, 'written')}, {len(report.unchanged)} unchanged"
    return summary + (f", {part(report.deleted, 'deleted')}" if report.deleted else "")


@main.command()
@_options
@click.option(
    "--full",
    is_flag=True,
    help="Compile every file, also those whose generated module is current "
    "(and report the warnings of all of them).",
)
def generate(
    src: Path, out: Path, fmt: str, warnings: WarningMode, ignore: frozenset[str], full: bool
) -> None:
    """Generate the Python package for every .sig file in --src.

    Only files that changed since the last run (or that import a changed file) are
    compiled again; `sigforge check` always compiles everything."""
    _compiler_command()
    _require_folder(src)
    _generate(src, out, fmt, warnings, ignore, incremental=not full)


def _generate(
    src: Path, out: Path, fmt: str, warnings: WarningMode, ignore: Collection[str], *, incremental: bool
) -> None:
    """Compile and write, printing diagnostics and a summary; exit 1 on errors."""
    result = _compile(src, out, warnings, ignore, incremental=incremental)
    _report_compile(result, fmt)
    if not result.ok:
        sys.exit(1)
    try:
        report = write_outputs(out, result.files, result.on_disk)
    except ForeignFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if fmt == "text":
        click.echo(f"{out}: {_write_summary(report)}")


@main.command()
@_options
def check(src: Path, out: Path, fmt: str, warnings: WarningMode, ignore: frozenset[str]) -> None:
    """Exit 1 with a diff when --out is not what `generate` would write."""
    _compiler_command()
    _require_folder(src)
    result = _compile(src, out, warnings, ignore)
    _report_compile(result, fmt)
    if not result.ok:
        sys.exit(1)
    diff = diff_outputs(out, result.files)
    if diff:
        click.echo(diff, nl=False)
        click.echo(f"\n{out} is stale: run `sigforge generate`.", err=True)
        sys.exit(1)
    if fmt == "text":
        click.echo(f"{out} is up to date.")


@main.command()
@click.argument("target", metavar="PACKAGE.MODULE:PREDICTOR")
@click.argument(
    "artifact", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--predictor",
    "which",
    metavar="NAME",
    help="The artifact's predictor to freeze when it holds several (e.g. `answer`).",
)
@click.option("--remove", is_flag=True, help="Remove the frozen state of PREDICTOR instead.")
@_options
def freeze(
    target: str,
    artifact: Path | None,
    which: str | None,
    remove: bool,
    src: Path,
    out: Path,
    fmt: str,
    warnings: WarningMode,
    ignore: frozenset[str],
) -> None:
    """Bake an optimized program's instructions and demos into a generated predictor.

    TARGET names the generated class, e.g. `generated.qa:Answerer`; ARTIFACT is a file
    written by `program.save(...)` or `sigforge optimize`. The state is recorded in the
    `.frozen.json` file next to the predictor's `.sig` source and the package is
    regenerated: new instances start from the frozen state, with no JSON at run time.
    """
    from .freeze import FreezeError, FrozenFile

    _require_folder(src)
    if remove and artifact is not None:
        raise click.UsageError("--remove takes no ARTIFACT")
    if not remove and artifact is None:
        raise click.UsageError("give the ARTIFACT to freeze (or --remove)")
    try:
        frozen = FrozenFile(target, src=src, out=out)
    except FreezeError as exc:
        raise click.ClickException(str(exc)) from None
    done = False
    try:
        frozen.drop(required=remove)
        if artifact is not None:
            # the package must be current (without the old entry) to validate against it
            _generate(src, out, "json" if fmt == "json" else "quiet", warnings, ignore, incremental=True)
            frozen.add(artifact, which)
        done = True
    except FreezeError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if not done:
            frozen.restore()
            compiled = _compile(src, out, "hide", ignore, incremental=True)
            if compiled.ok:
                write_outputs(out, compiled.files)
    click.echo(f"{'unfroze' if remove else 'froze'} {target}: {display_path(frozen.path)}")
    _generate(src, out, fmt, warnings, ignore, incremental=True)


@main.command()
@_options
@click.option(
    "--interval",
    type=click.FloatRange(0.01, 60),
    default=0.1,
    show_default=True,
    metavar="SECONDS",
    help="How long changes must settle before regenerating, so a burst of saves is one build.",
)
def watch(
    src: Path, out: Path, fmt: str, warnings: WarningMode, ignore: frozenset[str], interval: float
) -> None:
    """Generate, then regenerate whenever a .sig file in --src is created, changed or deleted.

    Every build prints its diagnostics, or one line saying what was written. Errors never stop
    the watch; Ctrl-C (or SIGTERM) does, with exit status 0.
    """
    try:
        import watchfiles
    except ImportError:
        raise click.ClickException(
            "`sigforge watch` needs the watchfiles package: pip install watchfiles"
        ) from None
    _require_folder(src)
    session = _WatchSession(src, out, fmt, warnings, ignore)
    if session.inside_out(session.src):
        raise click.UsageError("--src cannot be inside --out")
    step_ms = round(interval * 1000)
    stop = threading.Event()
    click.echo(f"watching {src} for .sig changes; press Ctrl-C to stop", err=True)
    with _stop_on_signals(stop):
        session.build()
        # The watcher starts on the first iteration, a moment after that first build. The first
        # yield (changes, or a timeout after a second) compares the sources with what was built,
        # so an edit made in between is not missed; after that, every change is an event.
        in_sync = False
        try:
            for changes in watchfiles.watch(
                session.src,
                watch_filter=session.is_source_change,
                step=step_ms,  # quiet time that ends a burst of changes
                debounce=max(1600, 4 * step_ms),  # build anyway after this long
                rust_timeout=1000,
                yield_on_timeout=True,
                stop_event=stop,
                raise_interrupt=False,
            ):
                if changes or (not in_sync and session.sources_changed()):
                    session.build()
                in_sync = True
        except OSError as exc:
            raise click.ClickException(f"cannot watch {src}: {exc}") from None
    click.echo("stopped watching", err=True)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While active, SIGINT (Ctrl-C) and SIGTERM set ``stop`` instead of ending the process.

    A second signal interrupts at once, should a build in progress hang.
    """

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, request_stop) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_Snapshot = dict[Path, tuple[int, int]]


class _WatchSession:
    """What `sigforge watch` remembers between builds, and which file events start one."""

    def __init__(
        self, src: Path, out: Path, fmt: str, warnings: WarningMode, ignore: frozenset[str]
    ) -> None:
        self.src_arg, self.out_arg = src, out  # as given, for messages and display paths
        self.src, self.out = src.resolve(), out.resolve()
        self.fmt, self.warnings, self.ignore = fmt, warnings, ignore
        #: the .sig files of the last build, with their modification time and size
        self.built: _Snapshot = {}

    def inside_out(self, path: Path) -> bool:
        return path == self.out or self.out in path.parents

    def snapshot(self) -> _Snapshot:
        sources: _Snapshot = {}
        for path in find_sources(self.src):
            if self.inside_out(path):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted while we looked
                continue
            sources[path] = (stat.st_mtime_ns, stat.st_size)
        return sources

    def sources_changed(self) -> bool:
        return self.snapshot() != self.built

    def is_source_change(self, change: Change, path: str) -> bool:
        """Whether an event can change the output: a .sig file, or a folder of them, outside --out."""
        import watchfiles

        changed = Path(path)
        if self.inside_out(changed):
            return False
        if changed.suffix == ".sig":
            return True
        if change == watchfiles.Change.added:  # a folder of .sig files moved in
            return changed.is_dir() and any(changed.rglob("*.sig"))
        # a folder holding sources deleted or moved away (or --src itself)
        return change == watchfiles.Change.deleted and any(
            changed in source.parents for source in self.built
        )

    def build(self) -> None:
        """Compile and write, printing diagnostics or a summary; a failed build never raises."""
        stamp = datetime.now().strftime("[%H:%M:%S]")
        if not self.src.is_dir():
            self.built = {}
            missing = f"source folder {self.src_arg} does not exist"
            click.echo(f"{stamp} error: {missing}; nothing was written.", err=True)
            return
        try:
            self.built = self.snapshot()
            result = _compile(
                self.src_arg, self.out_arg, self.warnings, self.ignore, incremental=True
            )
            _print_diagnostics(result, self.fmt)
            if not result.ok:
                click.echo(f"{stamp} {_outcome(result)}", err=True)
                return
            report = write_outputs(self.out_arg, result.files, result.on_disk)
        except (ForeignFileError, OSError) as exc:
            click.echo(f"{stamp} error: {exc}", err=True)
            return
        except Exception:  # a compiler bug: show it, and let the next edit try again
            import traceback

            click.echo(
                f"{stamp} internal error, please report it:\n{traceback.format_exc()}", err=True
            )
            return
        tally = _tally(result.diagnostics)
        summary = f"{stamp} {self.out_arg}: {_write_summary(report, names=True)}"
        summary += f"; {tally}" if tally else ""
        click.echo(summary, err=self.fmt == "json")


@main.command(name="fmt")
@click.option(
    "--src",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("signatures"),
    show_default=True,
    help="Folder whose .sig files are formatted (when no FILES are given).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing: print a diff of what would change and exit 1 if anything would.",
)
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def fmt_command(src: Path, check: bool, files: tuple[Path, ...]) -> None:
    """Rewrite .sig files in the canonical layout, keeping every comment.

    Formats every .sig file below --src, or the FILES given. Only files whose text changes
    are written. A file with syntax errors is reported and left alone (exit status 1).
    """
    from .fmt import format_file

    if not files:
        _require_folder(src)
    paths = list(dict.fromkeys(files)) if files else find_sources(src)
    try:
        results = [format_file(path, display_path(path)) for path in paths]
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    failed = [r for r in results if r.formatted is None]
    changed = [r for r in results if r.changed]
    unchanged = len(results) - len(failed) - len(changed)
    for result in failed:
        text = "\n\n".join(d.render(result.source) for d in result.diagnostics)
        click.echo(text + "\n", err=True)
    if check:
        for result in changed:
            click.echo(result.diff(), nl=False)
        for result in changed:
            click.echo(f"would reformat {result.shown}", err=True)
        summary = f"would format {_plural(len(changed), 'file')}, {unchanged} unchanged"
    else:
        _write_all(changed)
        summary = f"formatted {_plural(len(changed), 'file')}, {unchanged} unchanged"
    if failed:
        summary += f"; {_plural(len(failed), 'file')} with errors left as they are"
    click.echo(summary, err=check)
    if failed or (check and changed):
        sys.exit(1)


def _write_all(results: list[FileFormat]) -> None:
    from .fmt import write_formatted

    for result in results:
        assert result.formatted is not None
        try:
            write_formatted(result.path, result.formatted)
        except OSError as exc:
            raise click.ClickException(f"cannot write {result.shown}: {exc}") from None


@main.command()
@click.argument("name")
@_src
def schema(name: str, src: Path) -> None:
    """Print the JSON Schema of signature NAME's inputs and outputs.

    NAME is a signature name, or `module.Name` when several modules have one of that name.
    """
    import json

    from .schema import SchemaLookupError, signature_schema

    _require_folder(src)
    result = compile_sources(src, Path("generated"), workers=1)  # one process: all modules checked
    if not result.ok:
        _report_compile(result, "text")
        sys.exit(1)
    try:
        found = signature_schema(result, name)
    except SchemaLookupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(json.dumps(found, indent=2, ensure_ascii=False))


# -- sigforge cache ----------------------------------------------------------------------

if TYPE_CHECKING:
    from sigforge.runtime.cache import Cache


@main.group(name="cache")
def cache_group() -> None:
    """Inspect or empty the completion cache (a SQLite file shared by all processes)."""


_cache_path = click.option(
    "--path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The cache file. Default: cache.sqlite in $SIGFORGE_CACHE_DIR, "
    "else in the user cache folder.",
)


def _cache_file(path: Path | None) -> Path:
    from sigforge.runtime.cache import default_cache_path

    return path if path is not None else default_cache_path()


def _open_cache_file(path: Path) -> Cache:
    """The :class:`~sigforge.runtime.cache.Cache` on ``path``, raising instead of degrading."""
    from sigforge.runtime.cache import Cache

    # No size limit: inspecting or clearing a file must not evict anything from it.
    return Cache(path, memory_entries=0, max_bytes=None, on_error="raise")


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def _bytes(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@cache_group.command(name="stats")
@_cache_path
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="For people, or one JSON object for tools.",
)
def cache_stats(path: Path | None, fmt: str) -> None:
    """Show what the cache holds and how lookups went.

    Entries, stored and on-disk size, hits and misses of all processes, evictions,
    expired entries, oldest and newest entry. Reading never creates the file."""
    import json

    from sigforge.runtime.cache import CacheError, CacheStats

    target = _cache_file(path)
    exists = target.is_file()
    try:
        if exists:
            with _open_cache_file(target) as cache:
                stats = cache.stats()
        else:  # reading must not create the file
            stats = CacheStats(entries=0, hits=0, misses=0)
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "json":
        click.echo(json.dumps({"path": str(target), "exists": exists, **stats.as_dict()}))
        return
    if not exists:
        click.echo(f"no cache at {target}")
        return

    def when(stamp: float | None) -> str:
        return "-" if stamp is None else datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")

    rate = "-" if stats.hit_rate is None else f"{stats.hit_rate:.1%}"
    rows = [
        ("cache file", str(target)),
        ("entries", f"{stats.entries:,}"),
        ("stored", f"{_bytes(stats.stored_bytes)} (keys and values)"),
        ("on disk", f"{_bytes(stats.file_bytes or 0)} (database and write-ahead log)"),
        ("hits", f"{stats.hits:,}"),
        ("misses", f"{stats.misses:,}"),
        ("hit rate", rate),
        ("evictions", f"{stats.evictions:,}"),
        ("expired", f"{stats.expired:,}"),
        ("oldest entry", when(stats.oldest)),
        ("newest entry", when(stats.newest)),
    ]
    for label, value in rows:
        click.echo(f"{label + ':':<14}{value}")


@cache_group.command(name="clear")
@_cache_path
@click.option(
    "--expired-only",
    is_flag=True,
    help="Remove only entries whose TTL has passed, and keep the counters.",
)
def cache_clear(path: Path | None, expired_only: bool) -> None:
    """Remove all entries (or only expired ones).

    Without --expired-only the hit, miss and eviction counters are reset too."""
    from sigforge.runtime.cache import CacheError

    target = _cache_file(path)
    if not target.is_file():
        click.echo(f"no cache at {target}: nothing to clear")
        return
    try:
        with _open_cache_file(target) as cache:
            removed = cache.clear(expired_only=expired_only)
    except CacheError as exc:
        raise click.ClickException(str(exc)) from None
    if expired_only:
        click.echo(f"removed {_entries(removed)} whose TTL had passed from {target}")
    else:
        click.echo(f"removed {_entries(removed)} from {target}; counters reset")

