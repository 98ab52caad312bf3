"""`sigforge fmt`: the canonical layout of a `.sig` file, keeping every comment.

The text is rebuilt from the syntax tree plus the comments, which the grammar ignores and
a lexer callback collects; spacing in the input never matters.

Canonical style
---------------

- The module docstring comes first, then one blank line. Imports follow, grouped in the
  order they were written (one ``from m import A, B`` per import, no blank lines between
  them unless comments are), then the declarations in source order. There is at least
  one blank line between two top-level items, except between two predictors (or two
  one-line tools) in a row: those keep their grouping, a blank line only where there was.
- Inside ``{ }`` (and inside a wrapped parameter list) the indentation is 4 spaces. Blank
  lines between members are kept (several collapse into one), but never right after the
  opening ``{`` nor right before the closing ``}``. An empty block is ``{}``.
- Docstrings use triple quotes: ``\"\"\"text\"\"\"`` when the text is one line; otherwise
  the opening and closing quotes have lines of their own and the text lines are indented
  like the quotes (as in the examples). Only what would end the docstring is escaped. A
  docstring holding control characters is written as a plain string with escapes
  instead, so that no line-ending translation can change it.
- Signature fields read ``in  name: type (options) "description" = default``; ``in`` is
  padded so the names of ``in`` and ``out`` fields line up. Within a run of members not
  separated by a blank line, names, types, option lists and descriptions are aligned in
  columns, one space apart (a default without a description follows the type or options
  directly). A member that would end beyond column :data:`LINE_LIMIT` is written with
  single spaces instead, or an outsized one makes way for the others (see :func:`align`).
  Class attributes are laid out like fields without a direction; enum members read
  ``name = "value" "description"``, one per line, aligned the same way.
- Options read ``(ge=0, le=1)``; types ``str | None``, ``list[str]``, ``dict[str, int]``,
  ``tuple[int, ...]``, ``Literal["a", "b"]``: one space after each comma, around ``|``.
  Trailing commas go, except after the parameters of a wrapped list.
- Strings are re-escaped with JSON escapes (``\\" \\\\ \\n \\t``; ``\\uXXXX`` for other
  control characters and line separators); other non-ASCII characters stay as they are.
  Numbers are kept exactly as written.
- A tool is one line when that fits in :data:`LINE_LIMIT` columns and no comment is inside
  it; otherwise each parameter gets a line of its own with a trailing comma and the
  ``) -> type "description"`` closes the list. Predictors read
  ``predictor Name = kind(Signature, key=value)`` and wrap the same way.
- Comments keep their text (trailing whitespace removed) and their place: a comment on its
  own line stays on its own line before the item that follows it, indented like it (at
  the end of a block, indented like the block's members); a comment after an item on the
  same line stays there, two spaces after it. A comment inside an item that spans several
  lines (say, between two parts of a type) goes after the item; when an item collects
  more than one such comment, the others follow on lines of their own. Comments move
  with their item: with an import moved to the top, or a predictor argument put first.
- No trailing whitespace (except inside a docstring, where it is part of the text), and
  the file ends with exactly one newline.

The layout depends only on the syntax tree, on which item each comment belongs to and
on where blank lines were; formatting the output again finds the same, hence changes
nothing. Formatting never changes what a file means: the output is parsed again and
compared with the input, syntax tree for syntax tree (spans ignored), and the comments
must be the same (as a multiset, since moved imports take their comments along). If
anything differs, :func:`format_sig` returns the file unchanged with an ``E900`` error.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import stat
import tempfile
import threading
import unicodedata
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path

from lark import Lark, Token

from . import ast
from .diagnostics import Diagnostic
from .parse import parse

#: the column no aligned member and no one-line tool or predictor may go beyond
LINE_LIMIT = 100
INDENT = "    "

__all__ = ["INDENT", "LINE_LIMIT", "FileFormat", "format_file", "format_sig", "write_formatted"]


def format_sig(source: str, path: str) -> tuple[str | None, list[Diagnostic]]:
    """The canonical text of ``source``, or None and the errors when it does not parse.

    When the formatted text would not parse back to the same syntax tree and the same
    comments (a formatter bug), ``source`` comes back unchanged with an ``E900`` error.
    """
    sig_file, diagnostics = parse(source, path)
    if sig_file is None or any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    try:
        text = _Formatter(source, sig_file).format()
        problem = _compare(source, sig_file, text, path)
    except Exception as exc:  # a formatter bug must never cost the user their file
        problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        return source, [
            Diagnostic(
                path,
                ast.Span(1, 1, 1, 2),
                "E900",
                f"internal error: fmt refused to change the file ({problem})",
                hint="the file was left as it is; please report this as a sigforge bug",
            )
        ]
    return text, []


# ---------------------------------------------------------------- files


@dataclass(frozen=True, slots=True)
class FileFormat:
    """What formatting one file gives."""

    path: Path
    #: the path as the user sees it
    shown: str
    #: the file's text as it is on disk
    original: str
    #: the text the compiler reads (line endings translated), for rendering diagnostics
    source: str
    #: the canonical text; None when the file cannot be formatted (see ``diagnostics``)
    formatted: str | None
    diagnostics: list[Diagnostic]

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original

    def diff(self) -> str:
        """A unified diff from the file to its canonical text; empty when unchanged."""
        if not self.changed or self.formatted is None:
            return ""
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True),
            self.formatted.splitlines(keepends=True),
            fromfile=self.shown,
            tofile=f"{self.shown} (formatted)",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def format_file(path: Path, shown: str) -> FileFormat:
    """Read and format one file (nothing is written).

    The file is read as the compiler reads it, with ``\\r\\n`` and ``\\r`` taken as line
    ends, so the canonical text always ends its lines with ``\\n``.
    """
    data = path.read_bytes()
    try:
        original = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = Diagnostic(
            shown, ast.Span(1, 1, 1, 2), "E001", f"file is not valid UTF-8 ({exc.reason})"
        )
        return FileFormat(path, shown, "", "", None, [problem])
    source = original.replace("\r\n", "\n").replace("\r", "\n")
    formatted, diagnostics = format_sig(source, shown)
    if diagnostics:
        formatted = None
    return FileFormat(path, shown, original, source, formatted, diagnostics)


def write_formatted(path: Path, text: str) -> None:
    """Replace the file's content by ``text`` atomically, keeping its permissions.

    The text goes to a temporary file next to it, which then takes its place, so a reader
    never sees half a file. A symbolic link stays a link: its target is replaced.
    """
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- safety check


def strip_spans(node: object) -> object:
    """``node`` as nested tuples without any source position, for structural comparison."""
    if isinstance(node, ast.Span):
        return None
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return (
            type(node).__name__,
            tuple(
                (f.name, strip_spans(getattr(node, f.name)))
                for f in dataclasses.fields(node)
                if not isinstance(getattr(node, f.name), ast.Span)
            ),
        )
    if isinstance(node, tuple | list):
        return tuple(strip_spans(item) for item in node)
    return node


def _compare(source: str, before: ast.SigFile, text: str, path: str) -> str | None:
    """Why ``text`` is not a faithful rewrite of ``source``, or None when it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "its output cannot be saved as UTF-8"
    after, diagnostics = parse(text, path)
    if after is None or any(d.severity == "error" for d in diagnostics):
        return "its output does not parse"
    if strip_spans(after) != strip_spans(before):
        return "its output would mean something else"
    if Counter(comment_texts(source)) != Counter(comment_texts(text)):
        return "its output would lose or change comments"
    return None


def comment_texts(source: str) -> list[str]:
    """The comments of a file that parses, in order, without trailing whitespace."""
    return [t.text for t in _lexer().tokens(source) if t.is_comment]


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class _Tok:
    """A token or comment: its text, character offsets and 1-based lines."""

    text: str
    start: int
    end: int
    line: int
    end_line: int
    is_comment: bool


class _TokenLexer:
    """The grammar of :func:`.parse.parser`, built to hand back every token and comment.

    Comments are ignored by the grammar, so a lexer callback collects them while parsing.
    The other tokens come from the parse tree, built with ``keep_all_tokens`` so that the
    keywords, brackets and commas are in it too. (A callback cannot collect those: Lark
    lexes keywords as names and converts them after the callbacks ran.)
    """

    def __init__(self) -> None:
        grammar = files("sigforge.grammar").joinpath("sig.lark").read_text(encoding="utf-8")
        self._lark = Lark(
            grammar,
            parser="lalr",
            propagate_positions=True,
            maybe_placeholders=True,
            keep_all_tokens=True,
            lexer_callbacks={"COMMENT": self._record},
        )
        self._lock = threading.Lock()
        self._comments: list[Token] = []

    def _record(self, comment: Token) -> Token:
        self._comments.append(comment)
        return comment

    def tokens(self, source: str) -> list[_Tok]:
        """Every token and comment of ``source`` (which must parse), in order."""
        with self._lock:
            self._comments = []
            try:
                tree = self._lark.parse(source)
                comments = self._comments
            finally:
                self._comments = []
        found = [*tree.scan_values(lambda v: isinstance(v, Token)), *comments]
        return sorted((_tok(t) for t in found), key=lambda t: t.start)


def _tok(token: Token) -> _Tok:
    assert token.start_pos is not None and token.end_pos is not None
    assert token.line is not None and token.end_line is not None
    is_comment = token.type == "COMMENT"
    text = str(token).rstrip() if is_comment else str(token)
    return _Tok(text, token.start_pos, token.end_pos, token.line, token.end_line, is_comment)


@cache
def _lexer() -> _TokenLexer:
    return _TokenLexer()


# ---------------------------------------------------------------- text of values and types

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
#: characters written as ``\\uXXXX``: controls, lone surrogates, line and paragraph separators
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def _needs_unicode_escape(ch: str) -> bool:
    return unicodedata.category(ch) in _ESCAPED_CATEGORIES


def quote(value: str) -> str:
    """``value`` as a `.sig` string literal with canonical JSON escapes."""
    out = ['"']
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif _needs_unicode_escape(ch):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _value(value: ast.Value) -> str:
    if isinstance(value, ast.StringValue):
        return quote(value.value)
    if isinstance(value, ast.NumberValue):
        return value.text
    if isinstance(value, ast.NameValue):
        return value.name
    return "[" + ", ".join(_value(item) for item in value.items) + "]"


def _type(expr: ast.TypeExpr) -> str:
    return " | ".join(_type_ref(member) for member in expr.members)


def _type_ref(ref: ast.TypeRef) -> str:
    if ref.args is None:
        return ref.name
    return f"{ref.name}[{', '.join(_type_arg(arg) for arg in ref.args)}]"


def _type_arg(arg: ast.TypeExpr | ast.LiteralArg | ast.EllipsisArg) -> str:
    if isinstance(arg, ast.TypeExpr):
        return _type(arg)
    if isinstance(arg, ast.EllipsisArg):
        return "..."
    return _value(arg)


def _options(options: Sequence[ast.Option]) -> str:
    """``(ge=0, le=1)``; empty without options."""
    if not options:
        return ""
    return "(" + ", ".join(f"{o.name}={_value(o.value)}" for o in options) + ")"


def _field_cells(param: ast.Field) -> list[str]:
    """The aligned columns of a field, class attribute or tool parameter.

    ``[name, type, options, "description" = default]``; the name carries the direction
    (padded to the width of ``out``) and the colon. Without a description, the default
    follows the type or options directly instead of standing in the description column.
    """
    name = f"{param.direction:<3} {param.name}:" if param.direction else f"{param.name}:"
    cells = [name, _type(param.type), _options(param.options), ""]
    if param.description is not None:
        cells[3] = quote(param.description.value)
    if param.default is not None:
        cells[_last_filled(cells)] += f" = {_value(param.default)}"
    return cells


def _member_cells(member: ast.EnumMember) -> list[str]:
    """``[name, = "value", "description"]`` of an enum member."""
    value = f"= {quote(member.value.value)}" if member.value is not None else ""
    description = quote(member.description.value) if member.description is not None else ""
    return [member.name, value, description]


def _single_spaced(cells: Iterable[str]) -> str:
    return " ".join(cell for cell in cells if cell)


def _escape_docstring(text: str, *, at_edges: bool) -> str:
    """``text`` for between triple quotes, escaping only what would end or break them.

    Inside triple quotes ``\\\\`` and ``\\"`` are the only escapes. A quote is escaped when
    another follows it (no ``\"\"\"`` can form) and, with ``at_edges``, first or last; a
    backslash when a backslash or quote follows it, or last with ``at_edges``.
    """
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        following = text[i + 1] if i < last else ""
        if ch == '"':
            edge = at_edges and i in (0, last)
            out.append('\\"' if following == '"' or edge else ch)
        elif ch == "\\":
            edge = at_edges and i == last
            out.append("\\\\" if following in ('"', "\\") or edge else ch)
        else:
            out.append(ch)
    return "".join(out)


def _docstring_lines(text: str) -> list[str]:
    """The lines of a docstring (without the indentation of the block it is in)."""
    # Raw control characters (a carriage return above all) would not survive the
    # line-ending translation of reading the file back: a plain string escapes them.
    controls = any(_needs_unicode_escape(ch) for ch in text.replace("\n", ""))
    if controls and inspect.cleandoc(text) == text:
        return [quote(text)]
    if "\n" not in text:
        return [f'"""{_escape_docstring(text, at_edges=True)}"""']
    return ['"""', *_escape_docstring(text, at_edges=False).split("\n"), '"""']


# ---------------------------------------------------------------- layout


@dataclass(eq=False)
class _Row:
    """One output line (several for a docstring) and the source tokens ``lo..hi`` it holds.

    ``cells`` are aligned with the neighbouring rows before the row gets its ``lines``.
    ``gap`` holds the comments on lines of their own before the row (each with whether a
    blank line precedes it), ``blank`` whether a blank line separates the row from them.
    """

    lo: int
    hi: int
    depth: int
    lines: list[str] = field(default_factory=list)
    cells: list[str] | None = None
    #: appended after the aligned cells: the comma of a wrapped parameter
    suffix: str = ""
    #: the first row of a top-level item
    starts_item: bool = False
    #: ``import``, ``predictor`` or ``tool`` for an item written on one line
    one_liner: str | None = None
    #: ends with an opening ``{`` or ``(``: the rows after it are one level deeper
    opens: bool = False
    #: the closing ``}`` or ``)`` of a block
    closes: bool = False
    trailing: list[str] = field(default_factory=list)
    gap: list[tuple[str, bool]] = field(default_factory=list)
    blank: bool = False


class _LayoutError(Exception):
    """The syntax tree and the tokens disagree (a formatter bug): the file is left alone."""


class _Formatter:
    """Lays out one parsed file: rows from the syntax tree, comments attached to rows."""

    def __init__(self, source: str, sig_file: ast.SigFile) -> None:
        self.sig_file = sig_file
        self.stream = _lexer().tokens(source)
        self.tokens = [t for t in self.stream if not t.is_comment]
        self.token_starts = [t.start for t in self.tokens]
        self.comment_starts = [t.start for t in self.stream if t.is_comment]
        self.line_starts = [0] + [i + 1 for i, ch in enumerate(source) if ch == "\n"]
        self.rows: list[_Row] = []
        #: the row of each token
        self.owner: list[_Row] = []
        #: the comments after the last row
        self.end_gap: list[tuple[str, bool]] = []

    def format(self) -> str:
        self._build_rows()
        self._attach_comments()
        self._settle_blank_lines()
        self._align()
        return self._print()

    # -- positions

    def _offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column - 1

    def _range(self, span: ast.Span) -> tuple[int, int]:
        """The indices of the first and last token of ``span``."""
        start = self._offset(span.line, span.column)
        end = self._offset(span.end_line, span.end_column)
        lo = bisect_left(self.token_starts, start)
        hi = bisect_left(self.token_starts, end) - 1
        if not (lo <= hi and self.tokens[lo].start == start and self.tokens[hi].end == end):
            raise _LayoutError(f"no tokens at {span}")
        return lo, hi

    def _expect(self, index: int, text: str) -> int:
        if index >= len(self.tokens) or self.tokens[index].text != text:
            raise _LayoutError(f"expected `{text}` at token {index}")
        return index

    def _after_comma(self, hi: int) -> int:
        """``hi``, or the index of the comma right after it."""
        following = hi + 1
        if following < len(self.tokens) and self.tokens[following].text == ",":
            return following
        return hi

    def _comment_between(self, lo: int, hi: int) -> bool:
        """Whether a comment lies between token ``lo`` and token ``hi``."""
        first = bisect_left(self.comment_starts, self.tokens[lo].end)
        return (
            first < len(self.comment_starts) and self.comment_starts[first] < self.tokens[hi].start
        )

    # -- rows

    def _add(self, row: _Row) -> _Row:
        self.rows.append(row)
        return row

    def _build_rows(self) -> None:
        sig_file = self.sig_file
        if sig_file.doc is not None:
            lo, hi = self._range(sig_file.doc.span)
            self._add(_Row(lo, hi, 0, _docstring_lines(sig_file.doc.text), starts_item=True))
        for imported in sig_file.imports:
            lo, hi = self._range(imported.span)
            names = ", ".join(n.name for n in imported.names)
            text = f"from {imported.module} import {names}"
            self._add(_Row(lo, hi, 0, [text], starts_item=True, one_liner="import"))
        for decl in sig_file.declarations:
            if isinstance(decl, ast.EnumDecl):
                self._block(
                    "enum", decl, decl.doc, [(_member_cells(m), m.span) for m in decl.members]
                )
            elif isinstance(decl, ast.ClassDecl):
                self._block(
                    "class", decl, decl.doc, [(_field_cells(f), f.span) for f in decl.fields]
                )
            elif isinstance(decl, ast.SignatureDecl):
                fields = [(_field_cells(f), f.span) for f in decl.fields]
                self._block("signature", decl, decl.doc, fields)
            elif isinstance(decl, ast.ToolDecl):
                self._tool(decl)
            else:
                self._predictor(decl)
        self._check_coverage()

    def _block(
        self,
        keyword: str,
        decl: ast.EnumDecl | ast.ClassDecl | ast.SignatureDecl,
        doc: ast.Doc | None,
        members: list[tuple[list[str], ast.Span]],
    ) -> None:
        """``keyword Name {``, the docstring and members one level deeper, ``}``."""
        lo, hi = self._range(decl.span)
        brace = self._expect(self._range(decl.name_span)[1] + 1, "{")
        head = f"{keyword} {decl.name} {{"
        if doc is None and not members and not self._comment_between(brace, hi):
            self._add(_Row(lo, hi, 0, [head + "}"], starts_item=True))
            return
        self._add(_Row(lo, brace, 0, [head], starts_item=True, opens=True))
        cursor = brace + 1
        if doc is not None:
            doc_lo, doc_hi = self._range(doc.span)
            self._add(_Row(doc_lo, doc_hi, 1, _docstring_lines(doc.text)))
            cursor = doc_hi + 1
        for cells, span in members:
            member_lo, member_hi = self._range(span)
            if member_lo != cursor:
                raise _LayoutError(f"unexpected tokens before {span}")
            self._add(_Row(member_lo, member_hi, 1, cells=cells))
            cursor = member_hi + 1
        self._add(_Row(self._expect(cursor, "}"), hi, 0, ["}"], closes=True))
        if cursor != hi:
            raise _LayoutError(f"unexpected tokens at the end of {decl.name}")

    def _tool(self, tool: ast.ToolDecl) -> None:
        """One line when it fits without comments inside, else one parameter per line."""
        lo, hi = self._range(tool.span)
        close = " ".join(
            [f") -> {_type(tool.returns)}"]
            + ([quote(tool.description.value)] if tool.description is not None else [])
        )
        params = [(_field_cells(p), p.span) for p in tool.params]
        one_line = f"tool {tool.name}(" + ", ".join(_single_spaced(c) for c, _ in params) + close
        paren = self._expect(self._range(tool.name_span)[1] + 1, "(")
        self._wrappable("tool", lo, hi, paren, f"tool {tool.name}(", params, close, one_line)

    def _predictor(self, predictor: ast.PredictorDecl) -> None:
        """``predictor Name = kind(Signature, key=value)``, wrapped like a tool if need be."""
        lo, hi = self._range(predictor.span)
        args = [([a.name], a.span) for a in predictor.args]
        args += [([f"{o.name}={_value(o.value)}"], o.span) for o in predictor.options]
        head = f"predictor {predictor.name} = {predictor.kind}("
        one_line = head + ", ".join(cells[0] for cells, _ in args) + ")"
        paren = self._expect(self._range(predictor.kind_span)[1] + 1, "(")
        self._wrappable("predictor", lo, hi, paren, head, args, ")", one_line)

    def _wrappable(
        self,
        keyword: str,
        lo: int,
        hi: int,
        paren: int,
        head: str,
        items: list[tuple[list[str], ast.Span]],
        close: str,
        one_line: str,
    ) -> None:
        """A parenthesized list on one line, or wrapped with one item per line.

        It is wrapped when the line would be too long or a comment is inside the list (or
        before it): once wrapped, such a comment stays inside, so the choice is stable. A
        comment after the ``)`` trails the last line either way.

        ``items`` are in output order; in the source they may come in another order (a
        predictor's keyword arguments before its signature), but each with its comma.
        """
        ranges = [self._range(span) for _, span in items]
        cursor = paren + 1
        for item_lo, item_hi in sorted(ranges):
            if item_lo != cursor:
                raise _LayoutError(f"unexpected tokens in the list of {head}")
            cursor = self._after_comma(item_hi) + 1
        close_paren = self._expect(cursor, ")")
        if len(one_line) <= LINE_LIMIT and not self._comment_between(lo, close_paren):
            self._add(_Row(lo, hi, 0, [one_line], starts_item=True, one_liner=keyword))
            return
        self._add(_Row(lo, paren, 0, [head], starts_item=True, opens=True))
        for (cells, _), (item_lo, item_hi) in zip(items, ranges, strict=True):
            self._add(_Row(item_lo, self._after_comma(item_hi), 1, cells=cells, suffix=","))
        self._add(_Row(close_paren, hi, 0, [close], closes=True))

    def _check_coverage(self) -> None:
        """Every token belongs to exactly one row (so every comment finds its row)."""
        owner: list[_Row | None] = [None] * len(self.tokens)
        for row in self.rows:
            for index in range(row.lo, row.hi + 1):
                if owner[index] is not None:
                    raise _LayoutError(f"token {index} is in two rows")
                owner[index] = row
        if any(row is None for row in owner):
            raise _LayoutError("tokens outside every row")
        self.owner = [row for row in owner if row is not None]

    # -- comments and blank lines

    def _attach_comments(self) -> None:
        """Give each comment to the row it trails, or to the gap before the row after it.

        A comment between two tokens of one row (an item written over several lines)
        trails that row.
        """
        index = 0  # the index in self.tokens of the next token
        previous_end_line = 0  # where the previous token or comment ended
        for item in self.stream:
            blank = previous_end_line > 0 and item.line - previous_end_line >= 2
            previous_end_line = item.end_line
            if not item.is_comment:
                row = self.owner[index]
                if row.lo == index:
                    row.blank = blank
                index += 1
                continue
            before = self.owner[index - 1] if index > 0 else None
            after = self.owner[index] if index < len(self.tokens) else None
            if before is not None and (
                before is after or self.tokens[index - 1].end_line == item.line
            ):
                before.trailing.append(item.text)
            elif after is not None:
                after.gap.append((item.text, blank))
            else:
                self.end_gap.append((item.text, blank))

    def _settle_blank_lines(self) -> None:
        """Normalize the blank lines around comments and rows (see the module docstring).

        A row keeps one trailing comment; the others move to lines of their own after it.
        """
        pending: list[tuple[str, bool]] = []
        previous: _Row | None = None
        for row in self.rows:
            gap, blank = pending + row.gap, row.blank
            pending = [(text, False) for text in row.trailing[1:]]
            del row.trailing[1:]
            if previous is None or previous.opens:
                gap, blank = _no_blank_first(gap, blank)
            elif row.starts_item and row.one_liner == previous.one_liner == "import":
                blank = blank and bool(gap)
            elif row.starts_item and row.one_liner and row.one_liner == previous.one_liner:
                pass  # consecutive predictors (or one-line tools) keep their grouping
            elif row.starts_item and not blank and not any(b for _, b in gap):
                gap, blank = ([(gap[0][0], True), *gap[1:]], blank) if gap else (gap, True)
            if row.closes:
                blank = False
            row.gap, row.blank = gap, blank
            previous = row
        self.end_gap = pending + self.end_gap
        if previous is None:
            self.end_gap, _ = _no_blank_first(self.end_gap, False)

    # -- alignment and output

    def _align(self) -> None:
        """Give every row its lines; rows with cells are aligned with their neighbours."""
        group: list[_Row] = []
        for row in self.rows:
            if row.cells is None:
                self._flush(group)
                continue
            if group and (row.blank or any(b for _, b in row.gap)):
                self._flush(group)
            group.append(row)
        self._flush(group)

    @staticmethod
    def _flush(group: list[_Row]) -> None:
        if group:
            limits = [LINE_LIMIT - len(INDENT) * r.depth - len(r.suffix) for r in group]
            texts = align([r.cells or [] for r in group], limits)
            for row, text in zip(group, texts, strict=True):
                row.lines = [text + row.suffix]
        group.clear()

    def _print(self) -> str:
        out: list[str] = []
        for row in self.rows:
            indent = INDENT * row.depth
            comment_indent = INDENT * (row.depth + 1) if row.closes else indent
            _emit_gap(out, row.gap, comment_indent)
            if row.blank:
                out.append("")
            lines = [indent + line if line else "" for line in row.lines]
            if row.trailing:
                lines[-1] += "  " + row.trailing[0]
            out.extend(lines)
        _emit_gap(out, self.end_gap, "")
        return "\n".join(out) + "\n" if out else ""


def _no_blank_first(
    gap: list[tuple[str, bool]], blank: bool
) -> tuple[list[tuple[str, bool]], bool]:
    """No blank line right at the start of a file or block."""
    if gap:
        return [(gap[0][0], False), *gap[1:]], blank
    return gap, False


def _emit_gap(out: list[str], gap: list[tuple[str, bool]], indent: str) -> None:
    for text, blank in gap:
        if blank:
            out.append("")
        out.append(indent + text)


def align(rows: Sequence[Sequence[str]], limits: Sequence[int]) -> list[str]:
    """Join each row's cells with the columns aligned across rows; ``""`` is an empty cell.

    A column is as wide as its widest cell among the rows that have something after it;
    a row's last non-empty cell is never padded. While some row would be longer than its
    limit, one row is taken out of the alignment (it is joined with single spaces and no
    longer widens the columns): the one whose removal lets the most of the others fit,
    the longest of those on a tie. So a row with an outsized cell gives way, rather than
    the rows it pushes beyond the limit.
    """
    aligned = list(range(len(rows)))

    def fitting(kept: list[int]) -> int:
        widths = _column_widths([rows[i] for i in kept])
        return sum(len(_aligned(rows[i], widths)) <= limits[i] for i in kept)

    while fitting(aligned) < len(aligned):
        aligned.remove(
            max(
                aligned,
                key=lambda i: (
                    fitting([k for k in aligned if k != i]),
                    len(_single_spaced(rows[i])),
                    -i,
                ),
            )
        )
    widths = _column_widths([rows[i] for i in aligned])
    return [
        _aligned(row, widths) if i in aligned else _single_spaced(row) for i, row in enumerate(rows)
    ]


def _column_widths(rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [0] * max((len(row) for row in rows), default=0)
    for row in rows:
        last = _last_filled(row)
        for column, cell in enumerate(row[:last]):
            widths[column] = max(widths[column], len(cell))
    return widths


def _last_filled(row: Sequence[str]) -> int:
    return max((i for i, cell in enumerate(row) if cell), default=0)


def _aligned(row: Sequence[str], widths: Sequence[int]) -> str:
    last = _last_filled(row)
    parts = [cell.ljust(widths[i]) for i, cell in enumerate(row[:last]) if widths[i]]
    return " ".join([*parts, row[last]])
