"""`.sig` text -> :class:`~.ast.SigFile`, or syntax diagnostics. Never raises on bad input.

One language, two readers. The grammar (``grammar/sig.lark``) belongs to Lark's LALR
parser (:mod:`.lark_parse`), which words syntax errors for people and recovers to report
all of them. Most files have no syntax error, though, and for those the recursive-descent
reader here is several times faster and needs no Lark at all (a one-file rebuild does
not even import it). It follows the grammar rule by rule over tokens cut with the
grammar's own terminal patterns, read from ``sig.lark``, and builds the same AST, spans
included, with the same value helpers. Whenever it meets something it is not certain
about -- any syntax error, a keyword or ``in``/``out`` where a name goes, brackets nested
deeply -- it declines, and Lark parses the file: the errors, their recovery and every
odd corner of the language stay Lark's. ``tests/test_parse.py`` checks that the readers
agree on every example file and on fuzzed ones.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import NoReturn

from . import ast
from .diagnostics import Diagnostic

#: Words the reader never takes as a name: the keywords, and the directions, which Lark
#: lexes by parser state (a declaration may legally start with one of them in places).
_RESERVED = frozenset(
    {"from", "import", "enum", "class", "tool", "signature", "predictor", "in", "out"}
)
#: The reader declines types and values nested deeper than this (Lark, whose tree is
#: transformed recursively, then decides whether the file is too deep).
_MAX_DEPTH = 32


def parse(source: str, path: str) -> tuple[ast.SigFile | None, list[Diagnostic]]:
    """Parse one file. Returns the AST (None after any syntax error) and all diagnostics.

    After a syntax error the broken declaration is blanked out and parsing starts again,
    so one run reports the syntax errors of every declaration, not just the first."""
    read = _Reader.read(source, path)
    if read is not None:
        return read
    from .lark_parse import parse_with_lark

    return parse_with_lark(source, path)


# ---------------------------------------------------------------- values (both readers)


def token_span(line: int, column: int, end_line: int, end_column: int) -> ast.Span:
    return ast.Span(line, column, end_line, end_column)


_JSON = json.JSONDecoder(strict=False)


def string_value(raw: str, span: ast.Span, path: str, diagnostics: list[Diagnostic]) -> ast.StringValue:
    """A ``STRING`` token's value (JSON escapes); a bad escape is an E103 in ``diagnostics``."""
    try:
        # without a backslash there is nothing to decode (control characters are allowed)
        value = _JSON.decode(raw) if "\\" in raw else raw[1:-1]
    except json.JSONDecodeError as exc:
        diagnostics.append(
            Diagnostic(
                path,
                span,
                "E103",
                f"invalid escape sequence in string ({exc.msg.lower()})",
                hint='strings use JSON escapes: \\" \\\\ \\n \\t \\uXXXX',
            )
        )
        value = raw[1:-1]
    return ast.StringValue(value, span)


def number_value(raw: str, span: ast.Span, path: str, diagnostics: list[Diagnostic]) -> ast.NumberValue:
    """A ``NUMBER`` token's value; too many digits is an E104 in ``diagnostics``."""
    is_float = "." in raw or "e" in raw or "E" in raw
    try:
        value: int | float = float(raw) if is_float else int(raw)
    except ValueError:  # more digits than Python converts
        diagnostics.append(Diagnostic(path, span, "E104", "number has too many digits"))
        value = 0
    return ast.NumberValue(value, raw, span)


def decode_docstring(raw: str) -> str:
    """Text between triple quotes: ``\\\\`` and ``\\"`` are escapes, everything else is literal."""
    body = raw[3:-3]
    if "\\" not in body:
        return inspect.cleandoc(body)
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in '\\"':
            out.append(body[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return inspect.cleandoc("".join(out))


def string_doc(raw: str, span: ast.Span, path: str, diagnostics: list[Diagnostic]) -> ast.Doc:
    """A docstring written as a plain ``STRING``."""
    return ast.Doc(inspect.cleandoc(string_value(raw, span, path, diagnostics).value), span)


# ---------------------------------------------------------------- the fast reader


class _Declined(Exception):
    """The reader is not certain about the file: Lark must parse it."""


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]] | None:
    """The token pattern (ignored text, then one of the terminals in Lark's order of
    preference), the pattern of ignored text alone and the ``DIRECTION`` pattern, from the
    grammar's terminal definitions; None (always Lark) if the grammar no longer defines
    them as this reader expects."""
    grammar = files("sigforge.grammar").joinpath("sig.lark").read_text(encoding="utf-8")
    terminals = dict(re.findall(r"(?m)^([A-Z]+)(?:\.\d+)?:\s*/(.+)/\s*$", grammar))
    ignored = re.findall(r"(?m)^%ignore\s+/(.+)/\s*$", grammar)
    wanted = ("DOCSTRING", "STRING", "NUMBER", "NAME", "DIRECTION", "COMMENT")
    if any(name not in terminals for name in wanted) or len(ignored) != 1:
        return None
    token = re.compile(
        # blanks and comments before the token, possessive: never backtracked into
        f"(?:{ignored[0]}|{terminals['COMMENT']})*+"
        f"(?:(?P<DOCSTRING>{terminals['DOCSTRING']})|(?P<STRING>{terminals['STRING']})"
        f"|(?P<NUMBER>{terminals['NUMBER']})|(?P<NAME>{terminals['NAME']})"
        r"|(?P<punct>\.\.\.|->|[{}()\[\],:=|.]))"
    )
    ignorable = re.compile(f"(?:{ignored[0]}|{terminals['COMMENT']})*+")
    return token, ignorable, re.compile(terminals["DIRECTION"])


#: a token: kind (``NAME``, ``STRING``, ``DOCSTRING``, ``NUMBER`` or the punctuation
#: itself), text, start offset, line, column, end line, end column (Lark's numbering)
_Token = tuple[str, str, int, int, int, int, int]
_END: _Token = ("$END", "", -1, 0, 0, 0, 0)


def _tokens(source: str, token: re.Pattern[str], ignorable: re.Pattern[str]) -> list[_Token]:
    """The tokens of ``source`` (comments and blanks left out), then :data:`_END`;
    declines on any character no terminal matches."""
    tokens: list[_Token] = []
    line, line_start, position = 1, 0, 0
    for match in token.finditer(source):
        if match.start() != position:  # no token here: only blanks and comments may follow
            break
        kind = match.lastgroup or ""
        start, position = match.span(kind)
        skipped = source.count("\n", match.start(), start)
        if skipped:
            line += skipped
            line_start = source.rindex("\n", 0, start) + 1
        text = match.group(kind)
        column = start - line_start + 1
        if kind == "DOCSTRING" and "\n" in text:
            first_line = line
            line += text.count("\n")
            line_start = start + text.rindex("\n") + 1
            tokens.append((kind, text, start, first_line, column, line, position - line_start + 1))
            continue
        if kind == "punct":
            kind = text
        tokens.append((kind, text, start, line, column, line, column + position - start))
    if not ignorable.fullmatch(source, position):
        raise _Declined
    tokens.append(_END)
    return tokens


class _Reader:
    """Recursive descent over the grammar; each method reads one rule at ``self.at``."""

    def __init__(self, source: str, path: str, tokens: list[_Token], direction: re.Pattern[str]) -> None:
        self.source = source
        self.path = path
        self.tokens = tokens
        self.direction = direction
        self.at = 0
        self.depth = 0
        self.diagnostics: list[Diagnostic] = []

    @classmethod
    def read(cls, source: str, path: str) -> tuple[ast.SigFile, list[Diagnostic]] | None:
        """The file's AST and value diagnostics, or None when Lark must parse it."""
        patterns = _patterns()
        if patterns is None:
            return None
        try:
            tokens = _tokens(source, patterns[0], patterns[1])
            reader = cls(source, path, tokens, patterns[2])
            return reader.file(), reader.diagnostics
        except (_Declined, RecursionError):
            return None

    # -- tokens

    def peek(self) -> _Token:
        return self.tokens[self.at]  # the last token is _END

    def take(self, kind: str) -> _Token:
        token = self.peek()
        if token[0] != kind:
            self.decline()
        self.at += 1
        return token

    def name(self) -> _Token:
        token = self.peek()
        if token[0] != "NAME" or token[1] in _RESERVED:
            self.decline()
        self.at += 1
        return token

    def decline(self) -> NoReturn:
        raise _Declined

    def span(self, token: _Token) -> ast.Span:
        return ast.Span(token[3], token[4], token[5], token[6])

    def since(self, first: int) -> ast.Span:
        """The span from token ``first`` to the last token taken (a rule's meta in Lark)."""
        start, end = self.tokens[first], self.tokens[self.at - 1]
        return ast.Span(start[3], start[4], end[5], end[6])

    def string(self, token: _Token) -> ast.StringValue:
        return string_value(token[1], self.span(token), self.path, self.diagnostics)

    # -- rules

    def file(self) -> ast.SigFile:
        doc = self.doc()
        imports: list[ast.ImportDecl] = []
        declarations: list[ast.Declaration] = []
        readers: dict[str, Callable[[], ast.Declaration]] = {
            "enum": self.enum_decl,
            "class": self.class_decl,
            "tool": self.tool_decl,
            "signature": self.signature,
            "predictor": self.predictor,
        }
        while self.tokens[self.at] is not _END:
            kind, word = self.peek()[:2]
            if kind != "NAME":
                self.decline()
            if word == "from":
                imports.append(self.import_decl())
            elif word in readers:
                declarations.append(readers[word]())
            else:
                self.decline()
        return ast.SigFile(self.path, doc, tuple(imports), tuple(declarations))

    def doc(self) -> ast.Doc | None:
        token = self.peek()
        if token[0] == "DOCSTRING":
            self.at += 1
            return ast.Doc(decode_docstring(token[1]), self.span(token))
        if token[0] == "STRING":
            self.at += 1
            return string_doc(token[1], self.span(token), self.path, self.diagnostics)
        return None

    def import_decl(self) -> ast.ImportDecl:
        first = self.at
        self.at += 1  # from
        path_first = self.at
        parts = [self.name()[1]]
        while self.peek()[0] == ".":
            self.at += 1
            parts.append(self.name()[1])
        module_span = self.since(path_first)
        keyword = self.take("NAME")
        if keyword[1] != "import":
            self.decline()
        names = [self.name()]
        while self.peek()[0] == ",":
            self.at += 1
            token = self.peek()
            if token[0] != "NAME" or token[1] in _RESERVED:
                break  # a trailing comma (a keyword starts the next declaration)
            names.append(self.name())
        return ast.ImportDecl(
            ".".join(parts),
            tuple(ast.ImportedName(n[1], self.span(n)) for n in names),
            self.since(first),
            module_span,
        )

    def enum_decl(self) -> ast.EnumDecl:
        first = self.at
        self.at += 1  # enum
        name = self.name()
        self.take("{")
        doc = self.doc()
        members: list[ast.EnumMember] = []
        while self.peek()[0] == "NAME":
            members.append(self.enum_member())
        self.take("}")
        return ast.EnumDecl(name[1], doc, tuple(members), self.since(first), self.span(name))

    def enum_member(self) -> ast.EnumMember:
        first = self.at
        name = self.name()
        wire: _Token | None = None
        if self.peek()[0] == "=":
            self.at += 1
            wire = self.take("STRING")
        description = None
        if self.peek()[0] == "STRING":
            description = self.string(self.take("STRING"))
        # Lark converts the description (a rule of its own) before the value token
        value = self.string(wire) if wire is not None else None
        return ast.EnumMember(name[1], value, description, self.since(first), self.span(name))

    def class_decl(self) -> ast.ClassDecl:
        first = self.at
        self.at += 1  # class
        name = self.name()
        self.take("{")
        doc = self.doc()
        fields: list[ast.Field] = []
        while self.peek()[0] == "NAME":
            fields.append(self.param())
        self.take("}")
        return ast.ClassDecl(name[1], doc, tuple(fields), self.since(first), self.span(name))

    def tool_decl(self) -> ast.ToolDecl:
        first = self.at
        self.at += 1  # tool
        name = self.name()
        self.take("(")
        params: list[ast.Field] = []
        if self.peek()[0] != ")":
            params.append(self.param())
            while self.peek()[0] == ",":
                self.at += 1
                if self.peek()[0] == ")":
                    break
                params.append(self.param())
        self.take(")")
        self.take("->")
        returns = self.type()
        description = self.string(self.take("STRING")) if self.peek()[0] == "STRING" else None
        return ast.ToolDecl(
            name[1], tuple(params), returns, description, self.since(first), self.span(name)
        )

    def signature(self) -> ast.SignatureDecl:
        first = self.at
        self.at += 1  # signature
        name = self.name()
        self.take("{")
        doc = self.doc()
        fields: list[ast.Field] = []
        while True:
            token = self.peek()
            if token[0] != "NAME" or not self.direction.match(self.source, token[2]):
                break
            field_first = self.at
            self.at += 1
            param = self.param()
            fields.append(
                ast.Field(
                    "in" if token[1] == "in" else "out",
                    param.name,
                    param.type,
                    param.options,
                    param.description,
                    param.default,
                    self.since(field_first),
                    param.name_span,
                )
            )
        self.take("}")
        return ast.SignatureDecl(name[1], doc, tuple(fields), self.since(first), self.span(name))

    def param(self) -> ast.Field:
        first = self.at
        name = self.name()
        self.take(":")
        type_ = self.type()
        options: tuple[ast.Option, ...] = ()
        if self.peek()[0] == "(":
            options = self.options()
        description = self.string(self.take("STRING")) if self.peek()[0] == "STRING" else None
        default = None
        if self.peek()[0] == "=":
            self.at += 1
            default = self.value()
        return ast.Field(
            None, name[1], type_, options, description, default, self.since(first), self.span(name)
        )

    def options(self) -> tuple[ast.Option, ...]:
        self.take("(")
        options: list[ast.Option] = []
        if self.peek()[0] != ")":
            options.append(self.option())
            while self.peek()[0] == ",":
                self.at += 1
                if self.peek()[0] == ")":
                    break
                options.append(self.option())
        self.take(")")
        return tuple(options)

    def option(self) -> ast.Option:
        first = self.at
        name = self.name()
        self.take("=")
        value = self.value()
        return ast.Option(name[1], value, self.since(first), self.span(name))

    def predictor(self) -> ast.PredictorDecl:
        first = self.at
        self.at += 1  # predictor
        name = self.name()
        self.take("=")
        kind = self.name()
        self.take("(")
        args: list[ast.PositionalArg] = []
        options: list[ast.Option] = []
        if self.peek()[0] != ")":
            while True:
                if self.peek() is not _END and self.tokens[self.at + 1][0] == "=":
                    options.append(self.option())
                else:
                    arg = self.name()
                    args.append(ast.PositionalArg(arg[1], self.span(arg)))
                if self.peek()[0] != ",":
                    break
                self.at += 1
                if self.peek()[0] == ")":
                    break
        self.take(")")
        return ast.PredictorDecl(
            name[1],
            kind[1],
            tuple(args),
            tuple(options),
            self.since(first),
            self.span(name),
            self.span(kind),
        )

    # -- types and values

    def type(self) -> ast.TypeExpr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.decline()
        first = self.at
        members = [self.type_ref()]
        while self.peek()[0] == "|":
            self.at += 1
            members.append(self.type_ref())
        self.depth -= 1
        return ast.TypeExpr(tuple(members), self.since(first))

    def type_ref(self) -> ast.TypeRef:
        first = self.at
        name = self.name()
        args: tuple[ast.TypeExpr | ast.LiteralArg | ast.EllipsisArg, ...] | None = None
        if self.peek()[0] == "[":
            self.at += 1
            found = [self.type_arg()]
            while self.peek()[0] == ",":
                self.at += 1
                if self.peek()[0] == "]":
                    break
                found.append(self.type_arg())
            self.take("]")
            args = tuple(found)
        return ast.TypeRef(name[1], args, self.since(first), self.span(name))

    def type_arg(self) -> ast.TypeExpr | ast.LiteralArg | ast.EllipsisArg:
        token = self.peek()
        kind = token[0]
        if kind == "NAME":
            return self.type()
        self.at += 1
        if kind == "STRING":
            return self.string(token)
        if kind == "NUMBER":
            return number_value(token[1], self.span(token), self.path, self.diagnostics)
        if kind == "...":
            return ast.EllipsisArg(self.span(token))
        self.decline()

    def value(self) -> ast.Value:
        token = self.peek()
        kind = token[0]
        if kind == "STRING":
            self.at += 1
            return self.string(token)
        if kind == "NUMBER":
            self.at += 1
            return number_value(token[1], self.span(token), self.path, self.diagnostics)
        if kind == "NAME":
            self.name()
            return ast.NameValue(token[1], self.span(token))
        if kind != "[":
            self.decline()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            self.decline()
        first = self.at
        self.at += 1
        items: list[ast.Value] = []
        if self.peek()[0] != "]":
            items.append(self.value())
            while self.peek()[0] == ",":
                self.at += 1
                if self.peek()[0] == "]":
                    break
                items.append(self.value())
        self.take("]")
        self.depth -= 1
        return ast.ListValue(tuple(items), self.since(first))
