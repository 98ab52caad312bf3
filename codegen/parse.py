"""`.sig` text -> :class:`~.ast.SigFile`, or syntax diagnostics. Never raises on bad input."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import threading
from collections.abc import Callable, Generator, Iterator
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeGuard, cast

from . import ast
from .diagnostics import Diagnostic

if TYPE_CHECKING:  # Lark is loaded only to build the tables and on syntax errors
    import lark
    from lark.exceptions import UnexpectedInput

# How terminals are named to users in "expected ..." messages.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": "a string",
    "DOCSTRING": 'a """docstring"""',
    "NUMBER": "a number",
    "DIRECTION": "`in` or `out`",
    "$END": "end of file",
}


#: the package ``sigforge.grammar``: the grammar and the tables compiled from it
GRAMMAR_DIR = Path(__file__).parent.parent / "grammar"


def grammar_text() -> str:
    """The grammar, ``grammar/sig.lark``."""
    return (GRAMMAR_DIR / "sig.lark").read_text(encoding="utf-8")


class Token(str):
    """A token of the parser's own loop: its text, with its terminal's name and its place,
    as Lark's tokens have them (the rule callbacks read either kind alike: a child that is
    a ``str`` is a token)."""

    __slots__ = ("column", "end_column", "end_line", "end_pos", "line", "start_pos", "type", "value")
    type: str
    value: str
    start_pos: int
    end_pos: int
    line: int
    column: int
    end_line: int
    end_column: int


#: the terminals one parser state lexes: its regex (an alternation of named groups, one
#: per terminal, as Lark builds it), the regex's flags, the terminals whose text may hold a
#: newline, and the keywords a NAME turns into in this state (``"signature"`` -> SIGNATURE)
LexerTable = tuple[str, int, list[str], dict[str, str]]
#: a state's lexer ready to run: its regex's ``match`` (blanks first, in group 1), the
#: terminals whose text may hold a newline, and the keywords
StateLexer = tuple[Any, frozenset[str], dict[str, str]]
#: a rule's callback, as data (JSON: lists for tuples):
#: ``("method", name)``: the builder's method (see :class:`_ToAst`);
#: ``("tree", name)``: no method (a ``_rule``): its children, which its parent takes in;
#: ``("expand1", inner)``: a ``?rule``'s single child itself, else ``inner``;
#: ``("filter", include, append_none, inner)``: ``inner`` of the children ``include`` keeps,
#: each ``(index, taken in, Nones before it)`` (a None for each missing ``[...]`` item),
#: then ``append_none`` Nones
Callback = tuple[Any, ...]


class ParseTables(NamedTuple):
    """What the parser's own loop runs, compiled from Lark's parser (see
    :func:`.lark_parser.compile_tables`) and shipped with the grammar as JSON
    (``grammar/sig.tables.json``)."""

    #: the regex of the ignored whitespace and comments, and the grammar's regex flags
    blanks: str
    flags: int
    lexers: tuple[LexerTable, ...]
    #: per state, the index of its lexer in ``lexers``
    lexer_of_state: tuple[int, ...]
    #: per state: symbol -> a shift's (or goto's) next state, or ``-1 - i`` to reduce
    #: ``reduces[i]``
    actions: tuple[dict[str, int], ...]
    #: per rule reduced: its length, the nonterminal it makes and its callback
    reduces: tuple[tuple[int, str, Callback], ...]
    start_state: int
    end_state: int


def scan(
    text: str,
    end: int,
    stack: list[Any],
    states: dict[Any, StateLexer],
    make_state: Callable[[Any], StateLexer | None],
    token_class: type[Any],
    pos: int = 0,
    line: int = 1,
    line_start: int = 0,
) -> Generator[Any, None, tuple[int, int, int, Any]]:
    """The tokens of ``text[pos:end]``, each lexed in the parser state on top of ``stack``
    (which the parser changes between tokens), up to where no terminal of the state
    matches: the end, or an error. Returns where it stopped (the position, its line and
    where that line starts) and the last token.

    ``states``: the lexers of the states met so far; ``make_state`` makes a state's lexer
    on its first token (None: stop here); tokens are of ``token_class`` (this module's
    :class:`Token`, or Lark's for Lark's parser)."""
    new_str = str.__new__
    token = None
    while True:
        state_lexer = states.get(stack[-1]) or make_state(stack[-1])
        if state_lexer is None:
            break
        match, newline_types, keywords = state_lexer
        found = match(text, pos, end)
        if found is None:
            break
        start, next_pos, type_ = found.end(1), found.end(), found.lastgroup
        if start != pos:  # after blanks
            newlines = text.count("\n", pos, start)
            if newlines:
                line += newlines
                line_start = text.rindex("\n", pos, start) + 1
            pos = start
        value = text[pos:next_pos]
        column = pos - line_start + 1
        if type_ == "NAME" and value in keywords:
            type_ = keywords[value]
        if type_ in newline_types and "\n" in value:
            end_line = line + value.count("\n")
            line_start = pos + value.rindex("\n") + 1
            end_column = next_pos - line_start + 1
        else:
            end_line, end_column = line, column + next_pos - pos
        # made directly: Lark's Token() takes twice as long (it checks for a deprecated
        # keyword argument)
        token = new_str(token_class, value)
        token.type, token.value, token.start_pos, token.end_pos = type_, value, pos, next_pos
        token.line, token.column, token.end_line, token.end_column = line, column, end_line, end_column
        line, pos = end_line, next_pos
        yield token
    return pos, line, line_start, token


#: ``ast.Span(line, column, end_line, end_column)`` made from a tuple by ``tuple.__new__``:
#: half the time of the named tuple's Python-level ``__new__`` (the parser makes one or
#: two spans per node)
_new_span = partial(tuple.__new__, ast.Span)


def _is_token(child: object) -> TypeGuard[Token]:
    """Whether a rule's child is a token: a ``str`` (this module's :class:`Token`, or Lark's
    when Lark parses; both have the same attributes)."""
    return isinstance(child, str)


def _span(tok: Token | lark.Token) -> ast.Span:
    """A token's span (the lexer sets all four positions)."""
    return _new_span((tok.line, tok.column, tok.end_line, tok.end_column))


def _reach(start: ast.Span, end: ast.Span) -> ast.Span:
    """From where ``start`` starts to where ``end`` ends."""
    return _new_span((start.line, start.column, end.end_line, end.end_column))


_JSON = json.JSONDecoder(strict=False)


def _decode_docstring(raw: str) -> str:
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


def _rule_span(children: list[Any]) -> ast.Span:
    """The span of a rule from its first to its last child (a token, a node with a ``span``
    or one of the helpers below; a rule never starts or ends with an optional ``[...]``, so
    neither is a ``None`` placeholder): what Lark's position propagation gives a tree, for a
    rule reduced straight into the AST. (The rules most files are made of know the kinds of
    their first and last child, and build their span directly.)"""
    first, last = children[0], children[-1]
    if _is_token(first):
        line, column = first.line, first.column
    else:
        line, column = first.span.line, first.span.column
    if _is_token(last):
        end_line, end_column = last.end_line, last.end_column
    else:
        end_line, end_column = last.span.end_line, last.span.end_column
    return _new_span((line, column, end_line, end_column))


def _names(children: list[Any]) -> list[Token]:
    return [c for c in children if _is_token(c) and c.type == "NAME"]


# The results of rules that only contribute to their parent (named tuples: made faster
# than frozen dataclasses).


class _Options(NamedTuple):
    options: tuple[ast.Option, ...]
    span: ast.Span


class _Default(NamedTuple):
    value: ast.Value
    span: ast.Span


class _Part(NamedTuple):
    """Any other such rule: its value and its span."""

    value: Any
    span: ast.Span


class _Param(NamedTuple):
    """``name: type (options) "description" = default``: made a :class:`~.ast.Field` by the
    rule that holds it (a signature field adds its direction and starts at it)."""

    name: Token
    type: ast.TypeExpr
    options: tuple[ast.Option, ...]
    description: ast.StringValue | None
    default: ast.Value | None
    span: ast.Span

    def field(self, direction: Literal["in", "out"] | None, span: ast.Span) -> ast.Field:
        return ast.Field(
            direction,
            self.name.value,
            self.type,
            self.options,
            self.description,
            self.default,
            span,
            _span(self.name),
        )


def _block(children: list[Any]) -> tuple[Token, ast.Doc | None, list[Any]]:
    """``KEYWORD NAME "{" doc? item* "}"``: the name, the docstring and the items."""
    if isinstance(children[3], ast.Doc):
        return children[1], children[3], children[4:-1]
    return children[1], None, children[3:-1]


class _ToAst:
    """Builds the AST while Lark parses (its rule callbacks: no parse tree is built);
    string-escape problems are collected, not raised.

    Lark keeps every token (``keep_all_tokens``), so that a rule's span runs from its first
    token to its last, keywords and brackets included, and a rule's children sit at fixed
    places (``children[1:-1:2]`` are the items of a bracketed, comma-separated list). One
    instance serves the process's parser; :func:`parse` sets ``path`` and ``diagnostics``
    for each file."""

    def __init__(self) -> None:
        self.path = ""
        self.diagnostics: list[Diagnostic] = []

    # -- values
    def string_value(self, children: list[Token]) -> ast.StringValue:
        tok = children[0]
        raw: str = tok.value
        try:
            # without a backslash there is nothing to decode (control characters are allowed)
            value = _JSON.decode(raw) if "\\" in raw else raw[1:-1]
        except json.JSONDecodeError as exc:
            self.diagnostics.append(
                Diagnostic(
                    self.path,
                    _span(tok),
                    "E103",
                    f"invalid escape sequence in string ({exc.msg.lower()})",
                    hint='strings use JSON escapes: \\" \\\\ \\n \\t \\uXXXX',
                )
            )
            value = raw[1:-1]
        return ast.StringValue(value, _span(tok))

    def number_value(self, children: list[Token]) -> ast.NumberValue:
        tok = children[0]
        text: str = tok.value
        is_float = "." in text or "e" in text or "E" in text
        try:
            value: int | float = float(text) if is_float else int(text)
        except ValueError:  # more digits than Python converts
            self.diagnostics.append(
                Diagnostic(self.path, _span(tok), "E104", "number has too many digits")
            )
            value = 0
        return ast.NumberValue(value, text, _span(tok))

    def name_value(self, children: list[Token]) -> ast.NameValue:
        return ast.NameValue(children[0].value, _span(children[0]))

    def list_value(self, children: list[Any]) -> ast.ListValue:
        items = tuple(c for c in children if c is not None and not _is_token(c))
        return ast.ListValue(items, _rule_span(children))

    # -- types
    def type(self, children: list[Any]) -> ast.TypeExpr:
        if len(children) == 1:  # a single member spans the whole type
            return ast.TypeExpr((children[0],), children[0].span)
        members = tuple(children[::2])  # type_ref ("|" type_ref)*
        return ast.TypeExpr(members, _reach(members[0].span, members[-1].span))

    def type_ref(self, children: list[Any]) -> ast.TypeRef:
        name = children[0]
        name_span = _span(name)
        if len(children) == 1:
            return ast.TypeRef(name.value, None, name_span, name_span)
        args = children[1]
        return ast.TypeRef(name.value, args.value, _reach(name_span, args.span), name_span)

    def type_args(self, children: list[Any]) -> _Part:
        args = tuple(
            ast.EllipsisArg(_span(c)) if _is_token(c) else c  # a token: `...`
            for c in children[1:-1:2]
        )
        return _Part(args, _rule_span(children))

    # -- declarations
    def option(self, children: list[Any]) -> ast.Option:
        name, value = children[0], children[-1]
        name_span = _span(name)
        return ast.Option(name.value, value, _reach(name_span, value.span), name_span)

    def options(self, children: list[Any]) -> _Options:
        # "(" [option ("," option)* ","?] ")", and "(" None ")" when empty
        found = tuple(children[1:-1:2]) if children[1] is not None else ()
        return _Options(found, _rule_span(children))

    def default(self, children: list[Any]) -> _Default:
        return _Default(children[-1], _rule_span(children))

    def doc(self, children: list[Token]) -> ast.Doc:
        tok = children[0]
        if tok.type == "DOCSTRING":
            text = _decode_docstring(tok.value)
        else:
            text = inspect.cleandoc(self.string_value([tok]).value)
        return ast.Doc(text, _span(tok))

    description = string_value

    def param(self, children: list[Any]) -> _Param:
        name, type_ = children[0], children[2]
        options: tuple[ast.Option, ...] = ()
        description: ast.StringValue | None = None
        default: ast.Value | None = None
        for extra in children[3:]:
            if isinstance(extra, ast.StringValue):
                description = extra
            elif isinstance(extra, _Options):
                options = extra.options
            else:
                default = extra.value
        end = children[-1].span
        span = _new_span((name.line, name.column, end.end_line, end.end_column))
        return _Param(name, type_, options, description, default, span)

    def field(self, children: list[Any]) -> ast.Field:
        direction, param = children[0], children[1]
        end = param.span
        span = _new_span((direction.line, direction.column, end.end_line, end.end_column))
        field: ast.Field = param.field("in" if direction.value == "in" else "out", span)
        return field

    def enum_member(self, children: list[Any]) -> ast.EnumMember:
        name = children[0]
        value = next(
            (self.string_value([c]) for c in children[1:] if _is_token(c) and c.type == "STRING"),
            None,
        )
        description = next((c for c in children[1:] if isinstance(c, ast.StringValue)), None)
        return ast.EnumMember(name.value, value, description, _rule_span(children), _span(name))

    def enum_decl(self, children: list[Any]) -> ast.EnumDecl:
        name, doc, members = _block(children)
        return ast.EnumDecl(name.value, doc, tuple(members), _rule_span(children), _span(name))

    def class_decl(self, children: list[Any]) -> ast.ClassDecl:
        name, doc, params = _block(children)
        fields = tuple(p.field(None, p.span) for p in params)
        return ast.ClassDecl(name.value, doc, fields, _rule_span(children), _span(name))

    def tool_decl(self, children: list[Any]) -> ast.ToolDecl:
        name = children[1]
        params = tuple(c.field(None, c.span) for c in children if isinstance(c, _Param))
        returns = next(c for c in children if isinstance(c, ast.TypeExpr))
        description = next((c for c in children if isinstance(c, ast.StringValue)), None)
        return ast.ToolDecl(name.value, params, returns, description, _rule_span(children), _span(name))

    def module_path(self, children: list[Token]) -> _Part:
        return _Part(".".join(c.value for c in _names(children)), _rule_span(children))

    def import_decl(self, children: list[Any]) -> ast.ImportDecl:
        module = children[1]
        assert isinstance(module, _Part)
        return ast.ImportDecl(
            module.value,
            tuple(ast.ImportedName(n.value, _span(n)) for n in _names(children)),
            _rule_span(children),
            module.span,
        )

    def signature(self, children: list[Any]) -> ast.SignatureDecl:
        name, doc, fields = _block(children)
        return ast.SignatureDecl(name.value, doc, tuple(fields), _rule_span(children), _span(name))

    def positional_arg(self, children: list[Token]) -> ast.PositionalArg:
        return ast.PositionalArg(children[0].value, _span(children[0]))

    keyword_arg = option

    def predictor(self, children: list[Any]) -> ast.PredictorDecl:
        # PREDICTOR name "=" kind "(" [call_arg ("," call_arg)* ","?] ")"
        name, kind, args = children[1], children[3], children[5:-1:2]
        return ast.PredictorDecl(
            name.value,
            kind.value,
            tuple(c for c in args if isinstance(c, ast.PositionalArg)),
            tuple(c for c in args if isinstance(c, ast.Option)),
            _rule_span(children),
            _span(name),
            _span(kind),
        )

    def start(self, children: list[Any]) -> list[Any]:
        return children


#: the one builder of the process's parser, and the lock that gives it to one file at a time
BUILDER = _ToAst()
_PARSING = threading.Lock()


class _Inlined(NamedTuple):
    """The value of a rule the builder has no method for (a ``_rule``): its children, which
    the rule that holds it takes in (Lark makes a tree there)."""

    rule: str
    children: list[Any]


def _callback(spec: Callback) -> Callable[[list[Any]], Any]:
    """The rule callback ``spec`` describes (see :data:`Callback`), as Lark makes it."""
    kind = spec[0]
    if kind == "method":
        method: Callable[[list[Any]], Any] = getattr(BUILDER, spec[1])  # (missing: stale tables)
        return method
    if kind == "tree":
        if hasattr(BUILDER, spec[1]):  # the builder has a method for it now: stale tables
            raise ValueError(f"the tables inline the rule {spec[1]!r}, which the builder builds")
        return partial(_Inlined, spec[1])
    if kind == "expand1":
        inner = _callback(spec[1])
        return lambda children: children[0] if len(children) == 1 else inner(children)
    if kind == "filter":
        include, append_none, builder = spec[1], spec[2], _callback(spec[3])

        def filtered(children: list[Any]) -> Any:
            kept: list[Any] = []
            for i, taken_in, nones in include:
                if nones:
                    kept += [None] * nones
                if taken_in:
                    kept += children[i].children
                else:
                    kept.append(children[i])
            if append_none:
                kept += [None] * append_none
            return builder(kept)

        return filtered
    raise ValueError(f"unknown rule callback {kind!r}")


#: a reduce action: the rule's length, the nonterminal it makes and its callback
_ReduceAction = tuple[int, str, Callable[[list[Any]], Any]]


class _Driver:
    """The LALR(1) parse loop, for text that parses: no Lark.

    It runs the tables compiled from Lark's parser (:class:`ParseTables`) with the same
    rule callbacks Lark makes, on the tokens of :func:`scan`, as Lark's parser state does,
    but with each state's actions resolved once: a shift is the next state, a reduce is
    the rule's length, the nonterminal it makes and the rule's callback; and in one loop
    with local variables instead of a method call per token. On anything else (a syntax
    error, text that does not lex) :meth:`parse` returns None, and Lark parses the text
    again from the start, raising the very errors it always did.
    """

    def __init__(self, tables: ParseTables) -> None:
        """Raises (KeyError, IndexError, TypeError, ValueError, AttributeError, re.error) on
        tables that are not well formed or do not fit the builder."""
        reduces = [(int(size), str(origin), _callback(spec)) for size, origin, spec in tables.reduces]
        #: per state (they are numbered from 0): terminal or nonterminal -> a shift's (or
        #: goto's) next state, or a reduce action
        self.actions: list[dict[str, int | _ReduceAction]] = [
            {symbol: action if action >= 0 else reduces[-1 - action] for symbol, action in row.items()}
            for row in tables.actions
        ]
        self.start_state = int(tables.start_state)
        self.end_state = int(tables.end_state)
        states = len(self.actions)
        targets = [a for row in tables.actions for a in row.values() if a >= 0]
        targets += [self.start_state, self.end_state]
        if not all(isinstance(t, int) and 0 <= t < states for t in targets):
            raise ValueError("a state out of range")
        if len(tables.lexer_of_state) != states or not all(
            isinstance(i, int) and 0 <= i < len(tables.lexers) for i in tables.lexer_of_state
        ):
            raise ValueError("a state without a lexer")
        for pattern, flags, newline_types, keywords in tables.lexers:
            names = [*newline_types, *keywords, *keywords.values()]
            if not (isinstance(pattern, str) and isinstance(flags, int) and all(isinstance(n, str) for n in names)):
                raise TypeError("a lexer that is not a pattern, flags, newline types and keywords")
        self.tables = tables
        self.blanks = re.compile(f"(?:{tables.blanks})*+", tables.flags)
        #: the lexers of the states met so far, by state and by lexer
        self.states: dict[int, StateLexer] = {}
        self._lexers: dict[int, StateLexer] = {}

    def _state_lexer(self, state: int) -> StateLexer | None:
        """The lexer of one parser state, made on the state's first token (None if its
        regex does not compile: damaged tables, and Lark lexes the text)."""
        which = self.tables.lexer_of_state[state]
        found = self._lexers.get(which)
        if found is None:
            pattern, flags, newline_types, keywords = self.tables.lexers[which]
            try:
                regex = re.compile(f"((?:{self.tables.blanks})*+)(?:{pattern})", flags)
            except (re.error, ValueError, OverflowError):
                return None
            found = self._lexers[which] = (regex.match, frozenset(newline_types), keywords)
        self.states[state] = found
        return found

    def _tokens(self, text: str, stack: list[Any]) -> Iterator[Token]:
        """The tokens of ``text``, then ``$END`` if nothing but blanks follow the last."""
        pos, *_ = yield from scan(text, len(text), stack, self.states, self._state_lexer, Token)
        if self.blanks.fullmatch(text, pos):
            yield _END

    def parse(self, text: str) -> list[Any] | None:
        """The value of the ``start`` rule for ``text`` (its children), or None where Lark
        must parse it."""
        try:
            return self._parse(text)
        except (KeyError, IndexError, TypeError):
            # a goto the tables lack (damaged tables), or a rule callback's bug: Lark parses
            # the text again, with the same callbacks (a bug is raised there as it would be)
            return None

    def _parse(self, text: str) -> list[Any] | None:
        actions, end_state = self.actions, self.end_state
        stack = [self.start_state]
        values: list[Any] = []
        for token in self._tokens(text, stack):
            type_ = token.type
            while True:
                action = actions[stack[-1]].get(type_)
                if action.__class__ is int:  # shift
                    stack.append(action)
                    values.append(token)
                    break
                if action is None:  # a syntax error
                    return None
                size, origin, callback = action  # type: ignore[misc]
                if size:
                    children = values[-size:]
                    del stack[-size:], values[-size:]
                else:
                    children = []
                values.append(callback(children))
                goto = actions[stack[-1]][origin]
                if goto == end_state:  # ``start`` was reduced (at the end)
                    return values[-1] if type_ == "$END" else None
                stack.append(goto)  # type: ignore[arg-type]
        return None  # the text does not lex to its end


def _end_token() -> Token:
    end = str.__new__(Token, "")
    end.type, end.value = "$END", ""
    return end


_END = _end_token()

#: the version of the tables' layout (part of their digest: a new layout needs new tables)
TABLES_FORMAT = 1
#: the tables compiled from the grammar, shipped with it (see :func:`.lark_parser.main`)
TABLES_FILE = "sig.tables.json"


def grammar_digest(grammar: str) -> str:
    """What the shipped tables record of the grammar they were compiled from."""
    return hashlib.sha256(f"{grammar}\0{TABLES_FORMAT}".encode()).hexdigest()[:32]


def _tables_file() -> Path:
    return GRAMMAR_DIR / TABLES_FILE


@cache
def _driver() -> _Driver | None:
    """The parse loop of the process (tables loaded in about a millisecond), or None:
    Lark's parser parses everything.

    The tables ship with the grammar (``grammar/sig.tables.json``, written by
    ``python -m sigforge.codegen.lark_parser``), recording the digest of the grammar they
    were compiled from. Should they not be this grammar's (an edited grammar in a working
    copy: a test fails until they are written again) or not be readable, they are
    compiled from Lark's parser in this process."""
    grammar = grammar_text()
    try:
        shipped = json.loads(_tables_file().read_bytes())
        if shipped["grammar"] == grammar_digest(grammar):
            return _Driver(ParseTables(*shipped["tables"]))
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError, re.error):
        pass  # compiled below
    from .lark_parser import UnknownInternals, compile_tables, parser

    try:
        return _Driver(compile_tables(parser()))
    except UnknownInternals:
        return None


def _lark_parse(text: str) -> list[Any] | UnexpectedInput:
    """What Lark's parser makes of ``text``: the value of the ``start`` rule, or the syntax
    error it stopped at."""
    from lark.exceptions import UnexpectedInput

    from .lark_parser import parser

    try:
        return cast("list[Any]", parser().parse(text))
    except UnexpectedInput as exc:
        return exc


def load_parser() -> None:
    """Load the parser's tables now (they are loaded once per process, on first use)."""
    _driver()


def _describe_expected(names: set[str]) -> str:
    from lark.lexer import PatternStr

    from .lark_parser import parser

    terminals = {t.name: t for t in parser().terminals}
    words: list[str] = []
    for name in names:
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
        elif name in terminals and isinstance(terminals[name].pattern, PatternStr):
            words.append(f"`{terminals[name].pattern.value}`")
        else:
            words.append(name.lower())
    words = sorted(set(words))
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _syntax_diagnostic(path: str, source: str, exc: UnexpectedInput) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream
        ch = source[pos] if pos is not None and pos < len(source) else ""
        hint = None
        if ch == '"':
            hint = 'a string must close on the line it opens; use """...""" for text over several lines'
        return Diagnostic(
            path,
            ast.Span(line, column, line, column + 1),
            "E101",
            f"unexpected character {ch!r}",
            hint=hint or f"expected {_describe_expected(set(exc.allowed or ()))}",
        )
    if isinstance(exc, UnexpectedToken | UnexpectedEOF):
        tok = exc.token
        expected = set(exc.expected)
        if isinstance(exc, UnexpectedToken) and exc.interactive_parser is not None:
            # The LALR table's lookahead set can include tokens that only a reduction
            # would accept; ask the parser what it really accepts here.
            expected = set(exc.interactive_parser.accepts()) or expected  # type: ignore[no-untyped-call]
        if tok is None or tok.type == "$END":
            lines = source.rstrip("\n").split("\n")
            last = len(lines)
            span = ast.Span(last, len(lines[-1]) + 1, last, len(lines[-1]) + 2)
            what = "unexpected end of file"
        else:
            span = _span(tok)
            what = f"unexpected {_token_words(tok)}"
        hint = f"expected {_describe_expected(expected)}"
        if tok is not None and tok.type == "STRING" and "STRING" not in expected:
            hint += '; a description goes before the default: `name: type "description" = default`'
        if "DIRECTION" in expected and tok is not None and tok.type == "NAME":
            if str(tok) in ("in", "out"):
                hint = f"`{tok}` starts a field and needs a field name, e.g. `{tok} answer: str`"
            else:
                hint += "; each field starts with `in` or `out`, e.g. `in question: str`"
        return Diagnostic(path, span, "E102", what, hint=hint)
    return Diagnostic(path, ast.Span(max(line, 1), max(column, 1), 1, 1), "E100", str(exc))


def _token_words(tok: Token | lark.Token) -> str:
    if tok.type in ("NAME", "NUMBER"):
        return f"{_TERMINAL_WORDS[tok.type].split(' ', 1)[1]} `{tok}`"
    if tok.type in ("STRING", "DOCSTRING"):
        return "string"
    return f"`{tok}`"


# Where a top-level declaration starts: parsing resumes there after a syntax error.
_DECLARATION_START = re.compile(
    r"(?m)^[ \t]*(?=(?:signature|class|enum)[ \t]+\w+\s*\{|tool[ \t]+\w+\s*\("
    r"|predictor[ \t]+\w+\s*=|from[ \t]+[\w.]+[ \t]+import\b)"
)
#: syntax errors reported per file before giving up on it
MAX_SYNTAX_ERRORS = 50


def _error_offset(exc: UnexpectedInput, text: str) -> int:
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    if isinstance(exc, UnexpectedCharacters):
        return exc.pos_in_stream if exc.pos_in_stream is not None else len(text)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        start = exc.token.start_pos
        return start if start is not None else len(text)
    return len(text)


def _broken_region(starts: list[int], offset: int, length: int) -> tuple[int, int]:
    """The declaration around a syntax error at ``offset``, as a character range.

    When the error is the keyword of the next declaration (an unclosed ``{``), the broken
    one is the declaration before it."""
    if offset in starts:
        before = [s for s in starts if s < offset]
        return (before[-1] if before else 0), offset
    begin = max((s for s in starts if s <= offset), default=0)
    return begin, min((s for s in starts if s > offset), default=length)


def _blank(text: str, begin: int, end: int) -> str:
    """``text`` with ``[begin, end)`` turned into spaces; newlines stay, so positions do too."""
    return text[:begin] + re.sub(r"[^\n]", " ", text[begin:end]) + text[end:]


def parse(source: str, path: str) -> tuple[ast.SigFile | None, list[Diagnostic]]:
    """Parse one file. Returns the AST (None after any syntax error) and all diagnostics.

    After a syntax error the broken declaration is blanked out and parsing starts again,
    so one run reports the syntax errors of every declaration, not just the first."""
    starts: list[int] | None = None  # where declarations start: found on the first syntax error
    text = source
    diagnostics: list[Diagnostic] = []
    with _PARSING:  # one builder per process (see _ToAst)
        while True:
            BUILDER.path, BUILDER.diagnostics = path, []
            driver = _driver()
            children = driver.parse(text) if driver is not None else None
            if children is None:  # Lark parses it, stopping at any syntax error
                BUILDER.diagnostics = []
                parsed = _lark_parse(text)
                if not isinstance(parsed, list):
                    diagnostics.append(_syntax_diagnostic(path, text, parsed))
                    if starts is None:
                        starts = [m.end() for m in _DECLARATION_START.finditer(source)]
                    begin, end = _broken_region(starts, _error_offset(parsed, text), len(text))
                    blanked = _blank(text, begin, end)
                    if blanked == text or len(diagnostics) >= MAX_SYNTAX_ERRORS:
                        return None, diagnostics
                    text = blanked
                    continue
                children = parsed
            if diagnostics:
                return None, diagnostics
            break
        values = BUILDER.diagnostics
    doc = children[0] if children and isinstance(children[0], ast.Doc) else None
    imports = tuple(c for c in children if isinstance(c, ast.ImportDecl))
    decls = tuple(c for c in children if not isinstance(c, ast.Doc | ast.ImportDecl))
    return ast.SigFile(path, doc, imports, decls), values
