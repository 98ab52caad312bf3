"""A small TextMate tokenizer, enough to test ``editors/vscode/syntaxes/sig.tmLanguage.json``.

Editors (VS Code, Sublime Text, TextMate, Shiki, ...) run TextMate grammars with the
Oniguruma regex engine; this module runs them with Python's :mod:`re`. A grammar tested here
must therefore only use regex features that both engines treat the same way;
:func:`translate_regex` rejects the ones that differ.

Supported grammar features:

- top-level ``scopeName``, ``patterns`` and ``repository``;
- ``match`` rules with ``name`` and ``captures``;
- ``begin``/``end`` rules with ``name``, ``contentName``, ``captures``, ``beginCaptures``,
  ``endCaptures`` and ``patterns``;
- ``include`` of ``#name`` (a repository entry) and ``$self``.

Everything else (``while`` rules, ``applyEndPatternLast``, ``patterns`` inside captures,
``$1`` in scope names, other grammars) raises :class:`UnsupportedGrammar` rather than being
silently ignored.

Matching follows vscode-textmate: text is matched one line at a time with ``"\\n"``
appended; at each position the candidate that matches earliest wins; a tie goes to the
``end`` pattern of the innermost open rule, then to the pattern listed first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

__all__ = [
    "Grammar",
    "GrammarLoopError",
    "Token",
    "UnsupportedGrammar",
    "translate_regex",
]

# Keys a rule may have; anything else is a feature this tokenizer does not implement.
_RULE_KEYS = frozenset(
    {
        "comment",
        "name",
        "contentName",
        "match",
        "begin",
        "end",
        "captures",
        "beginCaptures",
        "endCaptures",
        "patterns",
        "include",
    }
)


class UnsupportedGrammar(ValueError):
    """The grammar uses a TextMate or Oniguruma feature this tokenizer does not implement."""


class GrammarLoopError(RuntimeError):
    """The grammar matched without consuming text and came back to the same state."""


@dataclass(frozen=True)
class Token:
    """A run of text on one line with the scopes that apply to it, outermost first."""

    line: int  # 0-based
    start: int  # column of the first character, 0-based
    end: int  # column after the last character
    text: str
    scopes: tuple[str, ...]


# ---------------------------------------------------------------------------- regexes

# Escapes that mean something else (or nothing) in Python's re.
_UNPORTABLE_ESCAPES = {
    "G": "\\G (anchor at the end of the previous match)",
    "A": "\\A (start of the document in vscode-textmate, of every line here)",
    "z": "\\z (Python has no equivalent before 3.14)",
    "Z": "\\Z (Oniguruma also matches before a final newline)",
    "K": "\\K (keep)",
    "R": "\\R (generic newline)",
    "X": "\\X (grapheme cluster)",
    "p": "\\p{...} (Unicode property)",
    "P": "\\P{...} (Unicode property)",
    "k": "\\k<name> (named back-reference)",
    "g": "\\g<name> (subexpression call)",
    "O": "\\O (any character)",
    "o": "\\o{...} (octal code point)",
}
_HEX_DIGIT = "0-9A-Fa-f"
_QUANTIFIER_BRACES = re.compile(r"\{\d*(?:,\d*)?\}")


def translate_regex(source: str) -> str:
    """Return the Python spelling of an Oniguruma pattern, or raise :class:`UnsupportedGrammar`.

    Translated: ``\\h``/``\\H`` (hex digit) and ``(?<name>...)`` named groups.
    Rejected, because Python would read them differently or not at all: the escapes in
    ``_UNPORTABLE_ESCAPES``, numbered back-references (in an ``end`` pattern they refer to
    the ``begin`` match), ``(?P...)``, inline flags that are not scoped (``(?i)``), the
    absence operator ``(?~...)``, ``{n,m}+`` (possessive in Python, not in Oniguruma),
    and inside ``[...]``: nested classes, POSIX brackets (``[:alpha:]``), ``&&``, and a
    leading unescaped ``]``.
    """
    out: list[str] = []
    i = 0
    class_start: int | None = None  # index just after the '[' (and '^') of an open class

    def fail(what: str) -> UnsupportedGrammar:
        return UnsupportedGrammar(f"{what} at offset {i} in regex {source!r}")

    while i < len(source):
        char = source[i]
        nxt = source[i + 1 : i + 2]
        if char == "\\":
            if not nxt:
                raise fail("trailing backslash")
            if nxt == "h":
                out.append(_HEX_DIGIT if class_start is not None else f"[{_HEX_DIGIT}]")
            elif nxt == "H":
                if class_start is not None:
                    raise fail("\\H inside a character class")
                out.append(f"[^{_HEX_DIGIT}]")
            elif nxt in _UNPORTABLE_ESCAPES:
                raise fail(_UNPORTABLE_ESCAPES[nxt])
            elif nxt in "123456789":
                raise fail("back-reference")
            elif nxt == "x" and source[i + 2 : i + 3] == "{":
                raise fail("\\x{...} code point")
            else:
                out.append(char + nxt)
            i += 2
            continue
        if class_start is not None:  # inside [...]
            if char == "]":
                if i == class_start:
                    raise fail("unescaped ']' first in a character class")
                class_start = None
            elif char == "[":
                raise fail("'[' inside a character class (nested class or POSIX bracket)")
            elif char == "&" and nxt == "&":
                raise fail("'&&' (class intersection)")
            out.append(char)
            i += 1
            continue
        if char == "[":
            class_start = i + 2 if nxt == "^" else i + 1
            out.append(source[i:class_start])
            i = class_start
            continue
        if char == "(" and nxt == "?":
            group = source[i + 2 :]
            named = re.match(r"<([A-Za-z_]\w*)>", group)
            if named:
                out.append(f"(?P<{named.group(1)}>")
                i += 2 + named.end()
                continue
            if group.startswith(("P", "~")):
                raise fail(f"(?{group[0]}...) group")
            if re.match(r"[imx-]+\)", group):
                raise fail("unscoped inline flags (use (?i:...))")
        if char == "{":
            braces = _QUANTIFIER_BRACES.match(source, i)
            if braces and source[braces.end() : braces.end() + 1] == "+":
                raise fail("'{n,m}+' (possessive in Python, greedy-then-'+' in Oniguruma)")
        out.append(char)
        i += 1
    if class_start is not None:
        raise fail("unterminated character class")
    return "".join(out)


def _compile(source: Any) -> re.Pattern[str]:
    if not isinstance(source, str):
        raise UnsupportedGrammar(f"regex must be a string, got {source!r}")
    return re.compile(translate_regex(source))


# ---------------------------------------------------------------------------- rules


def _scope_names(name: Any) -> tuple[str, ...]:
    """A ``name``/``contentName`` value as scopes; it may list several, space-separated."""
    if name is None:
        return ()
    if not isinstance(name, str) or "$" in name:
        raise UnsupportedGrammar(f"unsupported scope name {name!r}")
    return tuple(name.split())


def _captures(raw: Any) -> dict[int, tuple[str, ...]]:
    """``{"1": {"name": "x"}}`` -> ``{1: ("x",)}``."""
    if raw is None:
        return {}
    captures: dict[int, tuple[str, ...]] = {}
    for group, spec in raw.items():
        if set(spec) - {"name", "comment"}:
            raise UnsupportedGrammar(
                f"capture {group} uses {sorted(set(spec))}; only name is supported"
            )
        captures[int(group)] = _scope_names(spec.get("name"))
    return captures


@dataclass(frozen=True, eq=False)
class _MatchRule:
    regex: re.Pattern[str]
    scopes: tuple[str, ...]
    captures: Mapping[int, tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class _BeginEndRule:
    begin: re.Pattern[str]
    end: re.Pattern[str]
    scopes: tuple[str, ...]
    content_scopes: tuple[str, ...]
    begin_captures: Mapping[int, tuple[str, ...]]
    end_captures: Mapping[int, tuple[str, ...]]
    patterns: tuple[_Rule, ...]


@dataclass(frozen=True, eq=False)
class _Include:
    target: str  # "#name" or "$self"


@dataclass(frozen=True, eq=False)
class _PatternList:
    """A rule that only groups other rules (``{"patterns": [...]}``)."""

    patterns: tuple[_Rule, ...]


_Rule = _MatchRule | _BeginEndRule | _Include | _PatternList
_Candidate = _MatchRule | _BeginEndRule


def _compile_rule(raw: Any) -> _Rule:
    if not isinstance(raw, Mapping):
        raise UnsupportedGrammar(f"a rule must be an object, got {raw!r}")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise UnsupportedGrammar(f"unsupported rule keys {sorted(unknown)}")
    if "include" in raw:
        target = raw["include"]
        if not isinstance(target, str) or not (target == "$self" or target.startswith("#")):
            raise UnsupportedGrammar(f"unsupported include {target!r}")
        return _Include(target)
    if "match" in raw:
        return _MatchRule(
            regex=_compile(raw["match"]),
            scopes=_scope_names(raw.get("name")),
            captures=_captures(raw.get("captures")),
        )
    if "begin" in raw:
        if "end" not in raw:
            raise UnsupportedGrammar("a begin rule needs an end")
        shared = _captures(raw.get("captures"))
        return _BeginEndRule(
            begin=_compile(raw["begin"]),
            end=_compile(raw["end"]),
            scopes=_scope_names(raw.get("name")),
            content_scopes=_scope_names(raw.get("contentName")),
            begin_captures=_captures(raw["beginCaptures"]) if "beginCaptures" in raw else shared,
            end_captures=_captures(raw["endCaptures"]) if "endCaptures" in raw else shared,
            patterns=_compile_rules(raw.get("patterns", [])),
        )
    if "patterns" in raw:
        return _PatternList(_compile_rules(raw["patterns"]))
    raise UnsupportedGrammar(f"rule has no match, begin, include or patterns: {dict(raw)!r}")


def _compile_rules(raw: Any) -> tuple[_Rule, ...]:
    if not isinstance(raw, list):
        raise UnsupportedGrammar(f"patterns must be a list, got {raw!r}")
    return tuple(_compile_rule(item) for item in raw)


# ---------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Frame:
    """An open begin/end rule (or the root) on the tokenizer's stack."""

    rule: _BeginEndRule | None
    scopes: tuple[str, ...]  # for the begin and end text: parent content + name
    content_scopes: tuple[str, ...]  # for text in between: scopes + contentName
    candidates: tuple[_Candidate, ...]


class Grammar:
    """A compiled TextMate grammar."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        scope_name = data.get("scopeName")
        if not isinstance(scope_name, str) or not scope_name:
            raise UnsupportedGrammar("the grammar needs a scopeName")
        self.scope_name = scope_name
        self._root = _PatternList(_compile_rules(data.get("patterns", [])))
        self._repository = {
            name: _compile_rule(rule) for name, rule in data.get("repository", {}).items()
        }
        self._candidates: dict[int, tuple[_Candidate, ...]] = {}

    @classmethod
    def from_file(cls, path: Path) -> Grammar:
        """Load a ``.tmLanguage.json`` file."""
        return cls(json.loads(path.read_text(encoding="utf-8")))

    # -- include resolution

    def _resolve(self, include: _Include) -> _Rule:
        if include.target == "$self":
            return self._root
        try:
            return self._repository[include.target[1:]]
        except KeyError:
            raise UnsupportedGrammar(f"include of unknown rule {include.target!r}") from None

    def _flatten(self, rules: Sequence[_Rule], path: frozenset[int]) -> Iterator[_Candidate]:
        """Rules to try, in order, with includes and pattern lists expanded."""
        for rule in rules:
            if isinstance(rule, _MatchRule | _BeginEndRule):
                yield rule
                continue
            if id(rule) in path:  # an include cycle that never consumes text
                continue
            inner = (self._resolve(rule),) if isinstance(rule, _Include) else rule.patterns
            yield from self._flatten(inner, path | {id(rule)})

    def _candidates_of(self, owner: _BeginEndRule | None) -> tuple[_Candidate, ...]:
        key = id(owner)
        if key not in self._candidates:
            patterns = self._root.patterns if owner is None else owner.patterns
            self._candidates[key] = tuple(self._flatten(patterns, frozenset()))
        return self._candidates[key]

    # -- tokenizing

    def tokenize(self, text: str) -> list[Token]:
        """Tokenize a whole document; tokens never include line breaks."""
        root_scopes = (self.scope_name,)
        stack = [_Frame(None, root_scopes, root_scopes, self._candidates_of(None))]
        tokens: list[Token] = []
        for line_no, content in enumerate(re.split(r"\r\n|\r|\n", text)):
            self._tokenize_line(content, line_no, stack, tokens)
        return tokens

    def _tokenize_line(
        self, content: str, line_no: int, stack: list[_Frame], tokens: list[Token]
    ) -> None:
        line = content + "\n"

        def emit(start: int, end: int, scopes: tuple[str, ...]) -> None:
            end = min(end, len(content))
            if start < end:
                tokens.append(Token(line_no, start, end, content[start:end], scopes))

        def emit_match(
            m: re.Match[str], scopes: tuple[str, ...], captures: Mapping[int, tuple[str, ...]]
        ) -> None:
            for start, end, extra in _split_captures(m, captures):
                emit(start, end, scopes + extra)

        pos = 0
        states_here: set[tuple[int, int]] = set()  # states seen at `pos` without progress
        while pos < len(line):
            frame = stack[-1]
            found = self._next_match(frame, line, pos)
            if found is None:
                emit(pos, len(line), frame.content_scopes)
                break
            m, rule = found
            emit(pos, m.start(), frame.content_scopes)
            if rule is None:  # the end of the innermost open rule
                assert frame.rule is not None
                emit_match(m, frame.scopes, frame.rule.end_captures)
                stack.pop()
            elif isinstance(rule, _MatchRule):
                emit_match(m, frame.content_scopes + rule.scopes, rule.captures)
            else:
                scopes = frame.content_scopes + rule.scopes
                emit_match(m, scopes, rule.begin_captures)
                stack.append(
                    _Frame(rule, scopes, scopes + rule.content_scopes, self._candidates_of(rule))
                )
            if m.end() > pos:
                pos = m.end()
                states_here.clear()
                continue
            state = (len(stack), id(stack[-1].rule))
            if state in states_here:
                raise GrammarLoopError(
                    f"line {line_no + 1}, column {pos + 1}: the grammar keeps matching empty "
                    f"text ({m.re.pattern!r}) without making progress"
                )
            states_here.add(state)

    @staticmethod
    def _next_match(
        frame: _Frame, line: str, pos: int
    ) -> tuple[re.Match[str], _Candidate | None] | None:
        """The earliest match at or after ``pos``; ``None`` as the rule means "the end"."""
        best: tuple[re.Match[str], _Candidate | None] | None = None
        if frame.rule is not None:
            end = frame.rule.end.search(line, pos)
            if end is not None:
                best = (end, None)
        for rule in frame.candidates:
            if best is not None and best[0].start() == pos:
                break  # nothing can start earlier, and ties go to what came first
            regex = rule.regex if isinstance(rule, _MatchRule) else rule.begin
            m = regex.search(line, pos)
            if m is not None and (best is None or m.start() < best[0].start()):
                best = (m, rule)
        return best


def _split_captures(
    m: re.Match[str], captures: Mapping[int, tuple[str, ...]]
) -> Iterator[tuple[int, int, tuple[str, ...]]]:
    """Cut a match into runs, each with the capture scopes that cover it (outermost first)."""
    spans: list[tuple[int, int, tuple[str, ...]]] = []
    for group, scopes in captures.items():
        if group > m.re.groups:
            continue  # TextMate ignores captures of groups that do not exist
        start, end = m.span(group)
        if start < end:  # skip groups that did not take part or matched nothing
            spans.append((start, end, scopes))
    spans.sort(key=lambda span: (span[0], -span[1]))  # outer groups before inner ones
    cuts = sorted({m.start(), m.end(), *(s for s, _, _ in spans), *(e for _, e, _ in spans)})
    for start, end in pairwise(cuts):
        extra = tuple(
            scope for s, e, scopes in spans if s <= start and end <= e for scope in scopes
        )
        yield start, end, extra
