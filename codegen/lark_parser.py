"""Lark's side of the parser: the grammar (``grammar/sig.lark``) built into Lark's LALR(1)
parser, and the tables that :mod:`.parse` runs, read from it.

Text that parses needs none of this: :mod:`.parse` runs its own loop over the tables
compiled from Lark's parser (:func:`compile_tables`), which ship with the grammar as
``grammar/sig.tables.json``; after a change of the grammar, write them again with

    python -m sigforge.codegen.lark_parser grammar/sig.tables.json

(a test fails until then). Lark itself is loaded only to parse text with a syntax error
(its diagnostics are Lark's), for ``sigforge fmt``, and to compile tables.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from collections.abc import Iterator
from functools import cache, partial
from pathlib import Path
from typing import Any

import lark
from lark import Lark, Token, Tree
from lark.common import LexerConf
from lark.lexer import BasicLexer, ContextualLexer, Lexer, LexerState, PatternStr, UnlessCallback
from lark.parse_tree_builder import (
    ChildFilterLALR,
    ChildFilterLALR_NoPlaceholders,
    ExpandSingleChild,
)
from lark.parsers.lalr_analysis import Reduce, Shift

from .parse import (
    BUILDER,
    Callback,
    LexerTable,
    ParseTables,
    StateLexer,
    grammar_digest,
    grammar_text,
    scan,
)


@cache
def parser() -> Lark:
    """The LALR parser, built once per process, with the parser's own lexer loop.

    Building the tables takes a good part of a second, so Lark keeps them in a file in
    sigforge's cache folder, named by the grammar's hash (Lark also checks it on load);
    without a writable cache folder the parser is built every time."""
    grammar = grammar_text()
    options: dict[str, Any] = {
        "parser": "lalr",
        "lexer": LarkLexer,
        "keep_all_tokens": True,
        "maybe_placeholders": True,
    }
    digest = hashlib.sha256(f"{grammar}{sorted(options.items())}{lark.__version__}".encode()).hexdigest()
    table: str | bool = False
    try:
        from sigforge.runtime.cache_dir import cache_dir

        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        table = str(folder / f"grammar-{digest[:24]}.lark")
    except OSError:
        pass
    lark_parser = Lark(grammar, cache=table, transformer=BUILDER, **options)
    # The lexer's tables come from the parse table, which Lark only hands to the lexer
    # while parsing: parsing the empty file builds them now (no rule but ``start`` runs,
    # so the shared builder is not disturbed).
    lark_parser.parse("")
    return lark_parser


class LarkLexer(Lexer):
    """Lark's contextual lexer with a faster loop for text that lexes.

    The contextual lexer matches, in each parser state, only the terminals that state
    accepts (a keyword where a name is expected lexes as a NAME). This class uses the very
    same per-state regexes, priorities and keyword lists, built by Lark's
    :class:`~lark.lexer.ContextualLexer`, and scans with :func:`.parse.scan` (one regex
    match per token: each state's regex is preceded by the ignored whitespace and comments,
    possessive: no other terminal starts with a blank or ``#``, so they never compete; line
    and column are counted as Lark's line counter does). Where no terminal of the state
    matches (at the end, or on an error), the position is handed to Lark's own contextual
    lexer, which ends or raises the very same error (and its expected terminals) it always
    did. (Nothing reads the lexer state's line counter before then, so it is only brought
    up to date there.) The same per-state tables are what :func:`compile_tables` keeps.
    """

    __future_interface__ = 2  # lex() gets the lexer and parser states

    def __init__(self, conf: LexerConf) -> None:
        self._conf = conf
        self.blanks = "|".join(conf.terminals_by_name[name].pattern.to_regexp() for name in conf.ignore)
        self._contextual: ContextualLexer | None = None
        self._states: dict[Any, StateLexer] = {}
        #: set when Lark's internals are not as expected (see :meth:`table`)
        self._unknown_internals = False

    @property
    def flags(self) -> int:
        return int(self._conf.g_regex_flags)

    def table(self, state: Any) -> LexerTable:
        """The terminals one parser state lexes, read from the internals of Lark's lexer for
        the state (its one regex, its keyword callback); raises if they are not what this
        class knows (another Lark version)."""
        assert self._contextual is not None
        lexer = self._contextual.lexers[state]
        if not isinstance(lexer, BasicLexer):
            raise TypeError("not a basic lexer")
        (terminals,) = lexer.scanner._mres  # few terminals: one regex
        keywords: dict[str, str] = {}
        for type_, callback in lexer.callback.items():
            if type_ != "NAME" or not isinstance(callback, UnlessCallback):
                raise TypeError(f"a callback for {type_}")
            for keyword in callback.scanner.terminals:
                if not isinstance(keyword.pattern, PatternStr) or keyword.pattern.flags:
                    raise TypeError("a keyword that is not plain text")
                keywords[keyword.pattern.value] = keyword.name
        return terminals.pattern, int(terminals.flags), sorted(lexer.newline_types), keywords

    def _state_lexer(self, state: Any) -> StateLexer | None:
        """The lexer of one parser state, made on the state's first token (as Lark does);
        None, for good, if Lark's internals are not what this class knows: Lark's own
        contextual lexer then does all the lexing, only slower."""
        if self._unknown_internals:
            return None
        try:
            pattern, flags, newline_types, keywords = self.table(state)
            regex = re.compile(f"((?:{self.blanks})*+)(?:{pattern})", flags)
        except (AssertionError, AttributeError, TypeError, ValueError, re.error):
            self._unknown_internals = True
            return None
        self._states[state] = found = (regex.match, frozenset(newline_types), keywords)
        return found

    def contextual(self, table: Any) -> ContextualLexer:
        """Lark's contextual lexer for the parse table ``table`` (made once)."""
        if self._contextual is None:
            self._contextual = ContextualLexer(self._conf, {s: list(t) for s, t in table.items()})
        return self._contextual

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        contextual = self.contextual(parser_state.parse_conf.states)
        source: Any = lexer_state.text  # a TextSlice (Lark >= 1.3) or the text itself
        text, end = (source, len(source)) if isinstance(source, str) else (source.text, source.end)
        counter = lexer_state.line_ctr
        pos, line, line_start = counter.char_pos, counter.line, counter.line_start_pos
        stack = parser_state.state_stack  # the parser's state is its top
        pos, line, line_start, token = yield from scan(
            text, end, stack, self._states, self._state_lexer, Token, pos, line, line_start
        )
        counter.char_pos, counter.line, counter.line_start_pos = pos, line, line_start
        counter.column = pos - line_start + 1
        if token is not None:
            lexer_state.last_token = token
        yield from contextual.lex(lexer_state, parser_state)


class UnknownInternals(Exception):
    """Lark's parser is not laid out as :func:`compile_tables` expects."""


def compile_tables(lark_parser: Lark) -> ParseTables:
    """The tables :mod:`.parse` runs, read from ``lark_parser`` (see :func:`parser`): per
    state its lexer and its actions, and per rule the callback Lark made for it, described
    as data (the wrappers Lark puts around the builder's method: placeholders for missing
    ``[...]`` items, inlined ``_rule`` children, a ``?rule``'s single child; see
    :data:`.parse.Callback`). Raises :class:`UnknownInternals` when Lark's parser is not
    laid out as this function knows (another Lark version): Lark then parses everything."""
    try:
        return _compile_tables(lark_parser)
    except (AssertionError, AttributeError, KeyError, TypeError, ValueError, re.error) as exc:
        raise UnknownInternals(str(exc)) from exc


def _compile_tables(lark_parser: Lark) -> ParseTables:
    frontend: Any = lark_parser.parser
    lexer = frontend.lexer
    if not isinstance(lexer, LarkLexer) or lexer._contextual is None:  # see parser()
        raise UnknownInternals("not the parser's lexer, or not ready")
    lalr = frontend.parser.parser  # the LALR parser that Lark's parser state runs
    table, callbacks = lalr.parse_table, lalr.callbacks
    if any(isinstance(key, str) for key in callbacks):
        raise UnknownInternals("a callback per terminal")
    rules: dict[Any, int] = {}
    reduces: list[tuple[int, str, Callback]] = []
    actions: list[dict[str, int]] = []
    lexers: list[LexerTable] = []
    lexer_of_state: list[int] = []
    for state in range(len(table.states)):
        row: dict[str, int] = {}
        for symbol, (action, arg) in table.states[state].items():
            if action is Shift and isinstance(arg, int):
                row[symbol] = arg
            elif action is Reduce:
                if arg not in rules:
                    rules[arg] = len(reduces)
                    name = arg.alias or arg.options.template_source or arg.origin.name
                    reduces.append((len(arg.expansion), arg.origin.name, _describe(callbacks[arg], name)))
                row[symbol] = -1 - rules[arg]  # a reduce: a negative number
            else:
                raise UnknownInternals(f"action {action!r}")
        actions.append(row)
        found = lexer.table(state)
        if found not in lexers:
            lexers.append(found)
        lexer_of_state.append(lexers.index(found))
    return ParseTables(
        blanks=lexer.blanks,
        flags=lexer.flags,
        lexers=tuple(lexers),
        lexer_of_state=tuple(lexer_of_state),
        actions=tuple(actions),
        reduces=tuple(reduces),
        start_state=table.start_states["start"],
        end_state=table.end_states["start"],
    )


def _describe(callback: Any, name: str) -> Callback:
    """A rule callback Lark made, as data (see :data:`.parse.Callback`); ``name``: the name
    Lark looks the builder's method up by (the rule's alias, else its name), which is what
    the tables record, so that they call what Lark calls (``description`` is the method
    ``string_value`` today, but may become a method of its own)."""
    kind = type(callback)
    if kind is ChildFilterLALR:
        include = tuple((int(i), bool(expand), int(nones)) for i, expand, nones in callback.to_include)
        return ("filter", include, int(callback.append_none), _describe(callback.node_builder, name))
    if kind is ChildFilterLALR_NoPlaceholders:
        include = tuple((int(i), bool(expand), 0) for i, expand in callback.to_include)
        return ("filter", include, 0, _describe(callback.node_builder, name))
    if kind is ExpandSingleChild:
        return ("expand1", _describe(callback.node_builder, name))
    if (
        inspect.ismethod(callback)
        and callback.__self__ is BUILDER
        and getattr(getattr(BUILDER, name, None), "__func__", None) is callback.__func__
    ):
        return ("method", name)
    if (
        isinstance(callback, partial)
        and callback.func is Tree
        and callback.args == (name,)
        and not callback.keywords
    ):
        return ("tree", name)
    raise UnknownInternals(f"a rule callback {callback!r}")


def write_tables(path: Path) -> None:
    """Write the tables of the grammar to ``path`` (JSON), with the grammar's digest and
    the Lark version that compiled them."""
    tables = compile_tables(parser())
    data = {"grammar": grammar_digest(grammar_text()), "lark": lark.__version__, "tables": tables}
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sigforge.codegen.lark_parser grammar/sig.tables.json", file=sys.stderr)
        return 2
    write_tables(Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
