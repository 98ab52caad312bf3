"""render.needs_black: which generated texts black must see (a line it would split).

The ASCII fast path (long lines found by a regular expression, triple quotes counted
only where needed) must give the answer of the plain line-by-line reading."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sigforge.codegen.render import _needs_black_by_line, needs_black

LONG = "x" * 90


def test_long_code_line_needs_black() -> None:
    assert needs_black(f"a = 1\nresult = call({LONG}, {LONG})\n")


def test_first_and_last_lines_are_looked_at() -> None:
    assert needs_black(f"value = ({LONG})\nb = 2\n")
    assert needs_black(f"a = 1\nvalue = ({LONG})")


def test_lines_black_leaves_long_do_not_need_it() -> None:
    text = "\n".join(
        [
            f'    "{LONG}\\n"',
            f"    system='{LONG}',",
            f'    output_request="{LONG} \\"quoted\\"",',
            f'    "key": "{LONG}",',
            f"    # {LONG}",
            f'    """{LONG}"""',
            "",
        ]
    )
    assert not needs_black(text)


def test_long_lines_inside_a_docstring_do_not_need_it() -> None:
    text = f'def f():\n    """Doc.\n\n    {LONG} (x, y)\n    """\n'
    assert not needs_black(text)
    # after the docstring closes, a long line of code does
    assert needs_black(text + f"x = call({LONG})\n")


def test_string_then_code_on_one_line_needs_black() -> None:
    assert needs_black(f'    "{LONG}" + call(a, b)\n')
    assert needs_black(f'    "key": "{LONG}" + x,\n')


_PIECES = st.sampled_from(
    ['"', "'", "\\", '"""', ":", ": ", ",", "=", " = ", "#", " ", "\t", "\n", "\n", "x", "call(", ")"]
)
_LINE_FILLER = st.integers(0, 100).map(lambda n: "a" * n)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_PIECES, _LINE_FILLER), max_size=40))
def test_fast_path_agrees_with_reading_line_by_line(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert needs_black(text) == _needs_black_by_line(text)
