"""``sigforge index``: build or update a vector store from a folder of documents.

``sigforge index DOCS_DIR --store URL --embedder SPEC`` makes the store (any writable
:func:`~sigforge.runtime.retrieval.retriever_from_url` store: ``sqlite-vec:///path.db``,
``chroma://host:8000/collection``) mirror the folder:

* **Reading.** Files are found under ``DOCS_DIR`` by ``--glob`` patterns (default
  ``**/*.md``, ``**/*.markdown``, ``**/*.txt``, ``**/*.jsonl``), in sorted order,
  skipping hidden files and folders. Text and Markdown files are cut into chunks (below);
  a ``.jsonl`` file holds one passage per line: ``text``, optionally ``id``, and any
  other keys as metadata (strings, numbers, booleans).
* **Chunking.** A text is split into paragraphs at blank lines; in Markdown, ATX
  headings (``#`` to ``######``, outside fenced code) start a new section, and a fenced
  code block stays one paragraph. A section's paragraphs are packed into chunks of at
  most ``--chunk-size`` characters; a paragraph longer than that is split at sentence
  ends, then between words. Each chunk after the first of a section starts with the
  end of the previous one -- whole paragraphs, else sentences, else words -- of at most
  ``--chunk-overlap`` characters. A heading opens the first chunk of its section (a
  heading with no text of its own goes with the next one), and no chunk spans two
  sections.
* **Ids and metadata.** A chunk's id is ``<relative path>#<n>`` (``n`` from 0, in file
  order; for JSONL lines without an ``id``, ``n`` counts the file's passages), so ids
  are stable across runs. Metadata: ``source`` (the relative path), ``title`` (a
  Markdown file's first ``#`` heading, else the file name without extension),
  ``heading`` (the chunk's section heading, when it has one), ``chunk`` (``n``) and
  ``content_hash`` (a digest of the text and the other metadata). JSONL passages keep
  their own keys; ``source`` and ``chunk`` are added when absent.
* **Updating.** The chunks' ids are looked up in the store: a chunk stored with the same
  ``content_hash`` is unchanged and not embedded again; others are upserted (embedded).
  The ids each file produced are recorded in a manifest, so the chunks of files that
  were removed, and the tail chunks of files that shrank, are deleted. The manifest of a
  ``sqlite-vec`` store is a JSON file next to the database (``store.db.index.json``, or
  ``store.db.<table>.index.json`` for another table); other stores need
  ``--manifest PATH``. Without a manifest (a first run) nothing can be deleted.
* **Output.** A progress bar of the chunks being embedded (on a terminal), then a
  summary: files, chunks added / updated / unchanged / deleted, seconds
  (``--format json`` prints it as one JSON object).

``--embedder``: ``local`` (the packaged all-MiniLM-L6-v2, offline), ``local:MODEL``
(a sentence-transformers folder or cached model), or ``PROVIDER/MODEL`` for an
OpenAI-compatible embeddings API (``openai/text-embedding-3-small``,
``ollama/nomic-embed-text``, ...; ``--base-url`` for your own server, keys from the
provider's environment variable as for LMs). Every input problem (missing folder, bad
JSONL, an unusable store or embedder) is a one-line error, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

if TYPE_CHECKING:
    from sigforge.runtime.embeddings import Embedder
    from sigforge.runtime.retrieval import VectorStore

__all__ = [
    "DEFAULT_GLOBS",
    "Chunk",
    "IndexInputError",
    "IndexSummary",
    "chunk_text",
    "index",
    "read_chunks",
]

DEFAULT_GLOBS = ("**/*.md", "**/*.markdown", "**/*.txt", "**/*.jsonl")
MANIFEST_VERSION = 1
#: ids looked up (and passages written) per store call
_BATCH = 64

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


class IndexInputError(click.ClickException):
    """A document, option or store the command cannot use (printed without a traceback,
    exit 1). ``problems`` lists each problem when there are several."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


# ------------------------------------------------------------------ chunks


@dataclass(frozen=True)
class Chunk:
    """One passage to store: its id, text and metadata (``content_hash`` included)."""

    id: str
    text: str
    metadata: dict[str, str | int | float | bool]


@dataclass(frozen=True)
class _Piece:
    """A piece of a section's text and what joins it to the piece before it."""

    text: str
    glue: str  # "\n\n" between paragraphs, " " inside a split paragraph


@dataclass
class _Section:
    heading: str | None
    paragraphs: list[str] = field(default_factory=list)


def chunk_text(
    text: str, *, chunk_size: int = 800, chunk_overlap: int = 100, markdown: bool = False
) -> list[tuple[str, str | None]]:
    """``text`` cut into ``(chunk, section heading)`` pairs (see the module docstring)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if not 0 <= chunk_overlap < chunk_size:
        raise ValueError("chunk_overlap must be at least 0 and less than chunk_size")
    chunks: list[tuple[str, str | None]] = []
    for section in _sections(text, markdown):
        for parts in _pack(_pieces(section.paragraphs, chunk_size), chunk_size, chunk_overlap):
            chunks.append((_join(parts), section.heading))
    return chunks


def _sections(text: str, markdown: bool) -> list[_Section]:
    """Paragraphs grouped by heading; a heading without text joins the next section."""
    sections: list[_Section] = []
    current = _Section(None)
    pending: list[str] = []  # heading lines waiting for their section's first text
    lines: list[str] = []
    fence: str | None = None

    def end_paragraph() -> None:
        if lines:
            current.paragraphs.extend([*pending, "\n".join(lines)])
            pending.clear()
            lines.clear()

    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if markdown:
            opened = _FENCE.match(line)
            if fence is not None:  # inside fenced code: blank lines and '#' are code
                lines.append(line.rstrip())
                if opened is not None and opened.group(1) == fence:
                    fence = None
                continue
            if opened is not None:
                fence = opened.group(1)
                lines.append(line.rstrip())
                continue
            heading = _HEADING.match(line)
            if heading is not None:
                end_paragraph()
                if current.paragraphs:
                    sections.append(current)
                current = _Section(heading.group(2).strip() or None)
                pending.append(line.strip())
                continue
        if line.strip():
            lines.append(line.rstrip())
        else:
            end_paragraph()
    end_paragraph()
    current.paragraphs.extend(pending)  # headings at the very end, with nothing after them
    if current.paragraphs:
        sections.append(current)
    return sections


def _pieces(paragraphs: list[str], size: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for paragraph in paragraphs:
        parts = [paragraph] if len(paragraph) <= size else _split_long(paragraph, size)
        pieces.append(_Piece(parts[0], "\n\n"))
        pieces.extend(_Piece(part, " ") for part in parts[1:])
    return pieces


def _split_long(paragraph: str, size: int) -> list[str]:
    """A paragraph longer than ``size`` as its sentences; a sentence longer than ``size``
    as runs of words of at most ``size`` characters (a longer word is cut)."""
    parts: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        sentence = sentence.strip()
        if len(sentence) <= size:
            if sentence:
                parts.append(sentence)
            continue
        run = ""
        for word in sentence.split():
            for start in range(0, len(word), size):
                piece = word[start : start + size]
                if run and len(run) + 1 + len(piece) > size:
                    parts.append(run)
                    run = piece
                else:
                    run = f"{run} {piece}" if run else piece
        if run:
            parts.append(run)
    return parts


def _length(parts: Sequence[_Piece]) -> int:
    return sum(len(p.text) for p in parts) + sum(len(p.glue) for p in parts[1:])


def _join(parts: Sequence[_Piece]) -> str:
    return "".join((p.glue if i else "") + p.text for i, p in enumerate(parts))


def _pack(pieces: list[_Piece], size: int, overlap: int) -> list[list[_Piece]]:
    chunks: list[list[_Piece]] = []
    current: list[_Piece] = []
    for piece in pieces:
        if current and _length([*current, piece]) > size:
            chunks.append(current)
            current = _tail(current, overlap)
            while current and _length([*current, piece]) > size:
                current.pop(0)
        current.append(piece)
    if current:
        chunks.append(current)
    return chunks


def _tail(parts: list[_Piece], overlap: int) -> list[_Piece]:
    """The end of a chunk to repeat at the start of the next: whole pieces, else the last
    piece's final sentences, else its final words, of at most ``overlap`` characters."""
    if overlap == 0:
        return []
    tail: list[_Piece] = []
    for piece in reversed(parts):
        if _length([piece, *tail]) > overlap:
            break
        tail.insert(0, piece)
    if tail:
        return tail
    last = parts[-1].text
    for units, joiner in ((_SENTENCE_END.split(last), " "), (last.split(), " ")):
        kept: list[str] = []
        for unit in reversed([u.strip() for u in units if u.strip()]):
            if len(joiner.join([unit, *kept])) > overlap:
                break
            kept.insert(0, unit)
        if kept:
            return [_Piece(joiner.join(kept), "\n\n")]
    return []


# ------------------------------------------------------------------ documents


def find_files(docs_dir: Path, globs: Sequence[str]) -> list[Path]:
    """The files under ``docs_dir`` matching ``globs``, sorted, hidden ones left out."""
    found: set[Path] = set()
    for pattern in globs:
        for path in docs_dir.glob(pattern):
            relative = path.relative_to(docs_dir)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                found.add(path)
    return sorted(found, key=lambda p: p.relative_to(docs_dir).as_posix())


def read_chunks(
    path: Path, relative: str, *, chunk_size: int, chunk_overlap: int
) -> list[Chunk]:
    """The chunks of one file (``IndexInputError`` for a file that cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise IndexInputError(f"{relative}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise IndexInputError(f"{relative}: cannot read it ({exc.strerror})") from None
    if path.suffix.lower() == ".jsonl":
        return _jsonl_chunks(text, relative)
    markdown = path.suffix.lower() in (".md", ".markdown")
    title = _title(text) if markdown else None
    chunks = []
    pieces = chunk_text(text, chunk_size=chunk_size, chunk_overlap=chunk_overlap, markdown=markdown)
    for number, (chunk, heading) in enumerate(pieces):
        metadata: dict[str, str | int | float | bool] = {
            "source": relative,
            "title": title or path.stem,
            "chunk": number,
        }
        if heading:
            metadata["heading"] = heading
        chunks.append(_chunk(f"{relative}#{number}", chunk, metadata))
    return chunks


def _title(text: str) -> str | None:
    first = None
    fence = None
    for line in text.splitlines():
        opened = _FENCE.match(line)
        if fence is not None:
            if opened is not None and opened.group(1) == fence:
                fence = None
            continue
        if opened is not None:
            fence = opened.group(1)
            continue
        heading = _HEADING.match(line)
        if heading is not None and heading.group(2).strip():
            if len(heading.group(1)) == 1:
                return heading.group(2).strip()
            first = first or heading.group(2).strip()
    return first


def _jsonl_chunks(text: str, relative: str) -> list[Chunk]:
    chunks: list[Chunk] = []
    problems: list[str] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{relative}:{line_number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        passage = row.get("text")
        if not isinstance(passage, str) or not passage.strip():
            problems.append(f"{where}: 'text' must be a non-empty string")
            continue
        given_id = row.get("id", None)
        if given_id is not None and (not isinstance(given_id, str) or not given_id):
            problems.append(f"{where}: 'id' must be a non-empty string")
            continue
        metadata: dict[str, str | int | float | bool] = {}
        bad = False
        for key, value in row.items():
            if key in ("text", "id"):
                continue
            if key == "content_hash":
                problems.append(f"{where}: 'content_hash' is reserved for sigforge index")
                bad = True
            elif not key or key.startswith("$") or '"' in key or "\\" in key:
                problems.append(f"{where}: {key!r} cannot be a metadata key")
                bad = True
            elif not isinstance(value, str | int | float | bool) or (
                isinstance(value, float) and value != value  # NaN
            ):
                kind = "null" if value is None else type(value).__name__
                problems.append(
                    f"{where}: {key!r} is {kind}; metadata values must be strings, numbers or "
                    "booleans"
                )
                bad = True
            else:
                metadata[key] = value
        if bad:
            continue
        number = len(chunks)
        metadata.setdefault("source", relative)
        metadata.setdefault("chunk", number)
        chunks.append(_chunk(given_id or f"{relative}#{number}", passage, metadata))
    if problems:
        raise IndexInputError(_problems(problems), problems)
    return chunks


def _chunk(id_: str, text: str, metadata: dict[str, str | int | float | bool]) -> Chunk:
    payload = json.dumps({"text": text, "metadata": metadata}, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
    return Chunk(id_, text, {**metadata, "content_hash": digest})


def _problems(problems: list[str], limit: int = 10) -> str:
    shown = problems[:limit]
    more = len(problems) - len(shown)
    return "\n  ".join(
        [f"{len(problems)} problem(s) in the input:", *shown, *([f"... and {more} more"] if more else [])]
    )


# ------------------------------------------------------------------ the manifest


def _default_manifest(store_url: str) -> Path | None:
    """Where a ``sqlite-vec`` store's manifest lives (``None`` for other stores)."""
    from urllib.parse import parse_qsl, unquote

    scheme, _, rest = store_url.partition("://")
    if scheme.lower() != "sqlite-vec":
        return None
    location, _, query = rest.partition("?")
    table = dict(parse_qsl(query)).get("table", "passages")
    suffix = ".index.json" if table == "passages" else f".{table}.index.json"
    return Path(unquote(location) + suffix)


def _read_manifest(path: Path) -> dict[str, list[str]] | None:
    """The ids each file produced in the last run (``None``: no manifest yet)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IndexInputError(f"{path}: cannot read the index manifest ({exc})") from None
    files = data.get("files") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("version") != MANIFEST_VERSION
        or not isinstance(files, dict)
        or not all(
            isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in files.values()
        )
    ):
        raise IndexInputError(
            f"{path}: not a sigforge index manifest (version {MANIFEST_VERSION}); "
            "pass another --manifest or delete it"
        )
    return {str(name): list(ids) for name, ids in files.items()}


def _write_manifest(path: Path, store_url: str, files: dict[str, list[str]]) -> None:
    data = {"version": MANIFEST_VERSION, "store": store_url, "files": files}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise IndexInputError(f"{path}: cannot write the index manifest ({exc.strerror})") from None


# ------------------------------------------------------------------ running


@dataclass(frozen=True)
class IndexSummary:
    """What one run did."""

    store: str
    manifest: str
    files: int
    removed_files: int
    chunks: int
    added: int
    updated: int
    unchanged: int
    deleted: int
    seconds: float

    @property
    def embedded(self) -> int:
        """Chunks sent to the embedder (added or updated)."""
        return self.added + self.updated

    def text(self) -> str:
        removed = f", {self.removed_files} removed" if self.removed_files else ""
        return (
            f"indexed {self.files} file(s){removed} into {self.store}: {self.chunks} chunk(s) -- "
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted -- in {self.seconds:.2f} s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "manifest": self.manifest,
            "files": self.files,
            "removed_files": self.removed_files,
            "chunks": self.chunks,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
        }


def build_embedder(spec: str, base_url: str | None, dimensions: int | None) -> Embedder:
    """The embedder an ``--embedder`` value names."""
    from sigforge.runtime.embeddings import OpenAIEmbedder, SentenceTransformerEmbedder

    if spec == "local" or spec.startswith("local:"):
        if base_url is not None or dimensions is not None:
            raise IndexInputError("--base-url and --dimensions are for API embedders, not local")
        model = spec.partition(":")[2]
        return SentenceTransformerEmbedder(model) if model else SentenceTransformerEmbedder()
    return OpenAIEmbedder(spec, base_url=base_url, dimensions=dimensions)


def _open_store(url: str, embedder: Embedder) -> VectorStore:
    from sigforge.runtime.retrieval import VectorStore, retriever_from_url

    if url.lower().startswith("sqlite-vec://:memory:"):
        raise IndexInputError(f"{url!r}: an in-memory store would vanish when the command ends")
    store = retriever_from_url(url, embedder=embedder)
    if not isinstance(store, VectorStore):
        raise IndexInputError(f"{url!r} is a {type(store).__name__}, which cannot be written to")
    return store


def index(
    docs_dir: Path,
    store_url: str,
    embedder: Embedder,
    *,
    globs: Sequence[str] = DEFAULT_GLOBS,
    chunk_size: int = 800,
    chunk_overlap: int = 100,
    manifest: Path | None = None,
    progress: bool | None = None,
) -> IndexSummary:
    """Make the store at ``store_url`` mirror ``docs_dir`` (see the module docstring)."""
    started = time.perf_counter()
    if not 0 <= chunk_overlap < chunk_size:
        raise IndexInputError(
            f"--chunk-overlap ({chunk_overlap}) must be at least 0 and less than "
            f"--chunk-size ({chunk_size})"
        )
    store = _open_store(store_url, embedder)  # checks the URL; opens nothing yet
    try:
        summary = _update(
            store,
            docs_dir,
            store_url,
            globs=globs,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            manifest=manifest,
            progress=progress,
        )
        return replace(summary, seconds=time.perf_counter() - started)
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()


def _update(
    store: VectorStore,
    docs_dir: Path,
    store_url: str,
    *,
    globs: Sequence[str],
    chunk_size: int,
    chunk_overlap: int,
    manifest: Path | None,
    progress: bool | None,
) -> IndexSummary:
    manifest = manifest or _default_manifest(store_url)
    if manifest is None:
        raise IndexInputError(
            f"{store_url!r}: pass --manifest PATH (a JSON file where the command records "
            "which files it indexed, to delete their chunks when they go)"
        )
    files: dict[str, list[Chunk]] = {}
    problems: list[str] = []
    for path in find_files(docs_dir, globs):
        relative = path.relative_to(docs_dir).as_posix()
        try:
            files[relative] = read_chunks(
                path, relative, chunk_size=chunk_size, chunk_overlap=chunk_overlap
            )
        except IndexInputError as exc:  # report every file's problems at once
            problems.extend(exc.problems)
    if problems:
        raise IndexInputError(_problems(problems), problems)
    chunks = [chunk for found in files.values() for chunk in found]
    _check_unique(files)
    previous = _read_manifest(manifest) or {}

    stored = _stored_hashes(store, [chunk.id for chunk in chunks])
    changed = [c for c in chunks if stored.get(c.id) != c.metadata["content_hash"]]
    added = sum(1 for c in changed if c.id not in stored)
    current = {name: [c.id for c in found] for name, found in files.items()}
    wanted = {c.id for c in chunks}
    stale = sorted({i for ids in previous.values() for i in ids if i not in wanted})
    # Record what may be in the store before writing, so an interrupted run leaves
    # nothing that a later run could not find and delete.
    pending = {name: list(ids) for name, ids in previous.items()}
    for name, ids in current.items():
        pending[name] = list(dict.fromkeys([*pending.get(name, []), *ids]))
    _write_manifest(manifest, store_url, pending)
    _upsert(store, changed, progress)
    deleted = store.delete(stale) if stale else 0
    _write_manifest(manifest, store_url, current)
    return IndexSummary(
        store=store_url,
        manifest=str(manifest),
        files=len(files),
        removed_files=len(set(previous) - set(files)),
        chunks=len(chunks),
        added=added,
        updated=len(changed) - added,
        unchanged=len(chunks) - len(changed),
        deleted=deleted,
        seconds=0.0,
    )


def _check_unique(files: dict[str, list[Chunk]]) -> None:
    owner: dict[str, str] = {}
    problems = []
    for name, found in files.items():
        for chunk in found:
            if chunk.id in owner:
                problems.append(f"{name}: id {chunk.id!r} is also used by {owner[chunk.id]}")
            else:
                owner[chunk.id] = name
    if problems:
        raise IndexInputError(_problems(problems), problems)


def _stored_hashes(store: VectorStore, ids: list[str]) -> dict[str, object]:
    """The ``content_hash`` of each of ``ids`` already in the store (``None`` if it has none)."""
    found: dict[str, object] = {}
    for start in range(0, len(ids), _BATCH):
        for passage in store.get(ids[start : start + _BATCH]):
            found[passage.id] = passage.metadata.get("content_hash")
    return found


def _upsert(store: VectorStore, chunks: list[Chunk], progress: bool | None) -> None:
    if not chunks:
        return
    bar = _progress_bar(progress, len(chunks))
    try:
        for batch in _batches(chunks):
            store.upsert(
                [c.text for c in batch], ids=[c.id for c in batch], metadata=[c.metadata for c in batch]
            )
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()


def _batches(chunks: list[Chunk]) -> Iterator[list[Chunk]]:
    for start in range(0, len(chunks), _BATCH):
        yield chunks[start : start + _BATCH]


def _progress_bar(progress: bool | None, total: int) -> Any:
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="embedding", unit="chunk", file=sys.stderr)


# ------------------------------------------------------------------ the command


@click.command("index")
@click.argument(
    "docs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DOCS_DIR"
)
@click.option(
    "--store", "store_url", required=True, metavar="URL",
    help="A writable store: sqlite-vec:///path/store.db, chroma://host:8000/collection, ...",
)
@click.option(
    "--embedder", "embedder_spec", default="local", show_default=True, metavar="SPEC",
    help="local, local:MODEL, or PROVIDER/MODEL for an OpenAI-compatible embeddings API.",
)
@click.option("--base-url", help="Base URL of an OpenAI-compatible embeddings server.")
@click.option("--dimensions", type=click.IntRange(min=1), help="Ask the API for vectors this long.")
@click.option("--chunk-size", default=800, show_default=True, type=click.IntRange(min=1), help="Most characters per chunk.")
@click.option("--chunk-overlap", default=100, show_default=True, type=click.IntRange(min=0), help="Characters a chunk repeats from the one before.")
@click.option(
    "--glob", "globs", multiple=True, metavar="PATTERN",
    help="Files to read, relative to DOCS_DIR (repeatable; default: **/*.md, **/*.markdown, "
    "**/*.txt, **/*.jsonl).",
)
@click.option(
    "--manifest", type=click.Path(dir_okay=False, path_type=Path),
    help="Where to record which files were indexed (default for sqlite-vec: next to the file).",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def index_command(
    docs_dir: Path,
    store_url: str,
    embedder_spec: str,
    base_url: str | None,
    dimensions: int | None,
    chunk_size: int,
    chunk_overlap: int,
    globs: tuple[str, ...],
    manifest: Path | None,
    progress: bool | None,
    output: Literal["text", "json"],
) -> None:
    """Build or update a vector store from the documents in DOCS_DIR.

    Text and Markdown files are chunked on paragraph and heading boundaries; JSON Lines
    files hold one passage per line. Unchanged chunks are not embedded again; chunks of
    removed or shortened files are deleted. Prints a summary."""
    from sigforge.runtime.errors import SigforgeError

    try:
        embedder = build_embedder(embedder_spec, base_url, dimensions)
        summary = index(
            docs_dir,
            store_url,
            embedder,
            globs=globs or DEFAULT_GLOBS,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            manifest=manifest,
            progress=progress,
        )
    except SigforgeError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    if output == "json":
        click.echo(json.dumps(summary.as_dict()))
    else:
        click.echo(summary.text())
