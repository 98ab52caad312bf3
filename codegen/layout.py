"""Line layout of generated code, in exactly the form black gives it.

The generator does not run black: it lays out each construct that can exceed the line
length the way black would (one line when it fits; otherwise the opening bracket ends the
line, the items follow one per line with a trailing comma, and the closing bracket gets a
line of its own). A test checks that black leaves every generated file unchanged.

A :data:`Node` is plain text (an atom, never split), a :class:`Bracket` or a
:class:`Strings` (adjacent string literals, one per line of text). Nodes are never changed
once made; their classes are not ``frozen`` only because a frozen dataclass sets each
attribute through ``object.__setattr__``, which doubled the cost of making a node (the
lowering makes tens of thousands per thousand signatures).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pysource import py_literal, py_str, py_string_parts

LINE_LENGTH = 88
INDENT = "    "


@dataclass(slots=True, init=False)
class Bracket:
    """``lead`` (which ends with the opening bracket), the items, ``close``."""

    lead: str
    items: tuple[Node, ...]
    close: str
    #: a one-element tuple keeps its comma: ``(x,)``
    one_tuple: bool
    #: the node on one line, made once with the node (from its items' own), and its width
    flat: str = field(repr=False, compare=False)
    width: int = field(repr=False, compare=False)

    # (written out rather than generated with a ``__post_init__``: one call instead of two
    # for the lowering's most frequent object)
    def __init__(self, lead: str, items: tuple[Node, ...], close: str, one_tuple: bool = False) -> None:
        self.lead = lead
        self.items = items
        self.close = close
        self.one_tuple = one_tuple
        inner = ", ".join([item if isinstance(item, str) else item.flat for item in items])
        self.flat = f"{lead}{inner},{close}" if one_tuple else f"{lead}{inner}{close}"
        self.width = width(self.flat)


@dataclass(slots=True)
class Strings:
    """Implicitly concatenated string literals after ``lead`` (e.g. ``system=``)."""

    lead: str
    parts: tuple[str, ...]
    #: the node on one line, and its width
    flat: str = field(init=False, repr=False, compare=False)
    width: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.flat = self.lead + " ".join(self.parts)
        self.width = width(self.flat)


Node = str | Bracket | Strings


def width(text: str) -> int:
    """Columns ``text`` takes, counted exactly as black counts them (wide characters take
    two; black's own function, imported only for text that is not ASCII)."""
    if text.isascii():
        return len(text)
    from black.strings import str_width

    return str_width(text)


def fits(line: str) -> bool:
    # (the ASCII case of :func:`width` without the call: fits runs once per laid-out item)
    if line.isascii():
        return len(line) <= LINE_LENGTH
    return width(line) <= LINE_LENGTH


def flat(node: Node) -> str:
    """The node on one line."""
    return node if isinstance(node, str) else node.flat


def layout(node: Node, depth: int) -> str:
    """The node laid out at indentation ``depth`` (in levels), the first line without
    indentation (the template places it)."""
    if isinstance(node, str):  # an atom is never split
        return node
    pad = INDENT * depth
    if len(pad) + node.width <= LINE_LENGTH:  # the usual case: one line
        return node.flat
    out: list[str] = []
    _split(node, pad, "", out)
    out[0] = out[0][len(pad) :]
    return "\n".join(out)


def _split(node: Bracket | Strings, pad: str, suffix: str, out: list[str]) -> None:
    """Append to ``out`` the lines of a node that does not fit on one line after ``pad``
    (with ``suffix`` after its end). An item of ``out`` may hold several lines: ``out`` is
    only ever joined with line breaks."""
    inner = pad + INDENT
    if isinstance(node, Strings):
        body = f"{inner}{' '.join(node.parts)}"
        if len(node.parts) == 1:
            # black puts the value of an assignment in parentheses on its own line when it
            # fits there; an argument's string stays on its line, however long
            if node.lead.endswith(" = ") and fits(body):
                out += (f"{pad}{node.lead}(", body, f"{pad}){suffix}")
            else:
                out.append(f"{pad}{node.flat}{suffix}")
        elif fits(body):
            out += (f"{pad}{node.lead}(", body, f"{pad}){suffix}")
        else:
            out += (f"{pad}{node.lead}(", inner + f"\n{inner}".join(node.parts), f"{pad}){suffix}")
        return
    if not node.items:
        out.append(f"{pad}{node.flat}{suffix}")
        return
    out.append(f"{pad}{node.lead}")
    comma = "" if len(node.items) == 1 and not node.one_tuple else ","  # a sole argument: none added
    for item in node.items:
        # most items are atoms (never split) or fit on their line: placed here, without a call
        if isinstance(item, str):
            out.append(f"{inner}{item}{comma}")
        elif len(inner) + item.width + len(comma) <= LINE_LENGTH:
            out.append(f"{inner}{item.flat}{comma}")
        else:
            _split(item, inner, comma, out)
    out.append(f"{pad}{node.close}{suffix}")


def value_node(value: object, lead: str = "") -> Node:
    """A Python value (dicts, lists and tuples nested in any way) as a node after ``lead``."""
    if type(value) is str:  # the usual leaf (py_literal's own first case)
        return lead + py_str(value)
    if isinstance(value, dict):
        items = tuple([value_node(v, f"{py_literal(k)}: ") for k, v in value.items()])
        return Bracket(f"{lead}{{", items, "}")
    if isinstance(value, list):
        return Bracket(f"{lead}[", tuple([value_node(v) for v in value]), "]")
    if isinstance(value, tuple):
        items = tuple([value_node(v) for v in value])
        return Bracket(f"{lead}(", items, ")", one_tuple=len(items) == 1)
    return lead + py_literal(value)


def call_node(lead: str, args: list[Node] | tuple[Node, ...]) -> Node:
    """``lead(args)``: ``lead`` is everything before the opening parenthesis."""
    return Bracket(f"{lead}(", tuple(args), ")")


def import_node(module: str, names: tuple[str, ...] | list[str]) -> Node:
    """``from module import a, b``; exploded, an import keeps a comma after every name."""
    line = f"from {module} import {', '.join(names)}"
    if fits(line):
        return line
    return Bracket(f"from {module} import (", tuple(names), ")", one_tuple=True)


def string_node(lead: str, text: str) -> Node:
    """``lead`` then ``text`` as string literals, one per line of the text."""
    parts = py_string_parts(text)
    if len(parts) == 1 and not lead.endswith(" = "):
        # one literal that is not an assignment's value is never split: an atom (the
        # usual case: a description argument), which lays out as the Strings would
        return lead + parts[0]
    return Strings(lead, parts)
