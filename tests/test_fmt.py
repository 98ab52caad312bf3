"""`sigforge fmt`: canonical layout, idempotence, comments kept, meaning never changed."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from support import FIXTURES, ROOT

from sigforge.codegen import fmt
from sigforge.codegen.fmt import LINE_LIMIT, comment_texts, format_sig, strip_spans
from sigforge.codegen.parse import parse

EXAMPLES = sorted([*(ROOT / "signatures").glob("*.sig"), *FIXTURES.rglob("*.sig")])


def formatted(source: str) -> str:
    """The canonical text of ``source``, which must format without any diagnostic."""
    text, diagnostics = format_sig(source, "test.sig")
    assert not diagnostics, diagnostics
    assert text is not None
    return text


def same_meaning(before: str, after: str) -> bool:
    first, first_diags = parse(before, "test.sig")
    second, second_diags = parse(after, "test.sig")
    assert first is not None and second is not None and not first_diags and not second_diags
    return strip_spans(first) == strip_spans(second)


# ---------------------------------------------------------------- the examples


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_format_idempotently_and_keep_their_meaning(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    once = formatted(source)
    assert formatted(once) == once
    assert same_meaning(source, once)
    assert comment_texts(once) == comment_texts(source)
    assert once.endswith("\n") and not once.endswith("\n\n")
    assert all(line == line.rstrip() for line in once.splitlines())


def test_the_examples_are_found() -> None:
    assert {p.name for p in EXAMPLES} >= {"qa.sig", "support.sig", "dspy_qa.sig"}


# ---------------------------------------------------------------- one messy file, golden

MESSY = r'''# File header, before the docstring.
"""Support   triage."""   # trailing the docstring
from common import Citation ,Priority,# trailing the import
from   shared.types import Money
enum Department{"""Which team handles a ticket."""
billing "Invoices" technical="tech support"   "Bugs and outages"  # the techies
account
# end of the enum
}
class TicketSummary{title:str(max_length=80,)"One-line summary"
related : list[ TicketSummary ] = [ ]
cost: Money|None "Total" = None}
tool lookup_order(order_id: str (pattern="^[A-Z]{2}-\\d{6}$") "Order number, e.g. AB-123456", include_items: bool = False,) -> dict[str,str] "Fetch an order's status"
tool ping(  host :str,)->bool
signature TriageTicket { """
    Read a customer's message.
      Indented detail.
    """
in message:str(min_length=1)"The customer's message" # required
  in screenshot : Image|None = None
# outputs from here on
out scores:tuple[float,...](prefix="Scores:")"Confidences"
out tone : Literal["calm","angry",]   (format="json")
out reply:str "A reply" = "Hi\t\"you\""


   # end of TriageTicket
}
predictor Triage=chain_of_thought(TriageTicket,adapter="json",) # the main one
predictor QuickTriage = predict( TriageTicket )



# end of file
'''

MESSY_FORMATTED = r'''# File header, before the docstring.
"""Support   triage."""  # trailing the docstring

from common import Citation, Priority  # trailing the import
from shared.types import Money

enum Department {
    """Which team handles a ticket."""
    billing                    "Invoices"
    technical = "tech support" "Bugs and outages"  # the techies
    account
    # end of the enum
}

class TicketSummary {
    title:   str          (max_length=80) "One-line summary"
    related: list[TicketSummary] = []
    cost:    Money | None                 "Total" = None
}

tool lookup_order(
    order_id:      str (pattern="^[A-Z]{2}-\\d{6}$") "Order number, e.g. AB-123456",
    include_items: bool = False,
) -> dict[str, str] "Fetch an order's status"

tool ping(host: str) -> bool

signature TriageTicket {
    """
    Read a customer's message.
      Indented detail.
    """
    in  message:    str                      (min_length=1)     "The customer's message"  # required
    in  screenshot: Image | None = None
    # outputs from here on
    out scores:     tuple[float, ...]        (prefix="Scores:") "Confidences"
    out tone:       Literal["calm", "angry"] (format="json")
    out reply:      str                                         "A reply" = "Hi\t\"you\""

    # end of TriageTicket
}

predictor Triage = chain_of_thought(TriageTicket, adapter="json")  # the main one
predictor QuickTriage = predict(TriageTicket)

# end of file
'''


def test_messy_file_gets_the_canonical_layout() -> None:
    assert formatted(MESSY) == MESSY_FORMATTED


def test_messy_file_keeps_meaning_and_every_comment_in_order() -> None:
    assert same_meaning(MESSY, MESSY_FORMATTED)
    assert comment_texts(MESSY_FORMATTED) == comment_texts(MESSY)
    assert len(comment_texts(MESSY)) == 10


def test_canonical_text_is_a_fixed_point() -> None:
    assert formatted(MESSY_FORMATTED) == MESSY_FORMATTED


def test_everything_on_one_line() -> None:
    source = (
        'signature S { "Doc." in q: str "question" out a: int (ge=0, le=10) "answer" = 1 }'
        " predictor P = predict(S)"
    )
    assert formatted(source) == (
        "signature S {\n"
        '    """Doc."""\n'
        '    in  q: str               "question"\n'
        '    out a: int (ge=0, le=10) "answer" = 1\n'
        "}\n"
        "\n"
        "predictor P = predict(S)\n"
    )


# ---------------------------------------------------------------- comments


def test_comments_everywhere_stay_where_they_were() -> None:
    source = (
        "# top\n"
        "signature S { # after the brace\n"
        "  # before q\n"
        "  in q: str # trailing q\n"
        "  out a: str\n"
        "  # end of block\n"
        "} # after the block\n"
        "# end of file\n"
    )
    assert formatted(source) == (
        "# top\n"
        "signature S {  # after the brace\n"
        "    # before q\n"
        "    in  q: str  # trailing q\n"
        "    out a: str\n"
        "    # end of block\n"
        "}  # after the block\n"
        "# end of file\n"
    )


def test_comments_inside_a_multi_line_item_follow_it_in_order() -> None:
    source = "signature S {\n out a: list[ # one\n # two\n str] # three\n out b: str\n}\n"
    assert formatted(source) == (
        "signature S {\n"
        "    out a: list[str]  # one\n"
        "    # two\n"
        "    # three\n"
        "    out b: str\n"
        "}\n"
    )


def test_blank_lines_between_members_are_kept_once_and_split_the_alignment() -> None:
    source = (
        'signature S {\n\n\n in a: str "x"\n in long_name: int "y"\n\n\n\n'
        ' # outputs\n out b: float "z"\n\n}\n\n\n\npredictor P = predict(S)\n'
    )
    assert formatted(source) == (
        "signature S {\n"
        '    in  a:         str "x"\n'
        '    in  long_name: int "y"\n'
        "\n"
        "    # outputs\n"
        '    out b: float "z"\n'
        "}\n"
        "\n"
        "predictor P = predict(S)\n"
    )


def test_a_comment_inside_a_tool_or_predictor_wraps_it() -> None:
    source = (
        "tool t(a: int, # the a\n b: str) -> str\n"
        'predictor P = predict(S, # why json\n adapter="json")\n'
    )
    assert formatted(source) == (
        "tool t(\n"
        "    a: int,  # the a\n"
        "    b: str,\n"
        ") -> str\n"
        "\n"
        "predictor P = predict(\n"
        "    S,  # why json\n"
        '    adapter="json",\n'
        ")\n"
    )


def test_imports_move_first_with_their_comments() -> None:
    source = "signature S { out a: A }\n# where A lives\nfrom lib import A # ok\n"
    assert formatted(source) == (
        "# where A lives\nfrom lib import A  # ok\n\nsignature S {\n    out a: A\n}\n"
    )


def test_files_without_declarations() -> None:
    assert formatted("") == ""
    assert formatted("\n\n  \n") == ""
    assert formatted("\n\n# one   \n\n\n# two\n") == "# one\n\n# two\n"
    assert formatted('"""Only a docstring."""') == '"""Only a docstring."""\n'


def test_respaced_files_keep_comments_and_format_to_a_fixed_point() -> None:
    """Each example with its tokens re-spaced at random and comments slipped in."""
    rng = random.Random(20261121)
    for path in EXAMPLES:
        source = path.read_text(encoding="utf-8")
        tokens = [t for t in fmt._lexer().tokens(source) if not t.is_comment]
        for _ in range(4):
            parts: list[str] = []
            for number, token in enumerate(tokens):
                parts.append(token.text)
                roll = rng.random()
                if roll < 0.15:
                    before = rng.choice(["", " ", "\n", "\n\n"])
                    after = rng.choice(["\n", "\n\n", "\n  "])
                    parts.append(f"{before}# c{number}{after}")
                else:
                    parts.append(rng.choice([" ", "  ", "\t", "\n", "\n\n", "\n    "]))
            respaced = "".join(parts)
            once = formatted(respaced)
            assert formatted(once) == once, respaced
            assert same_meaning(respaced, once)
            assert comment_texts(once) == comment_texts(respaced)


# ---------------------------------------------------------------- strings and docstrings


def test_strings_are_re_escaped_canonically_and_round_trip() -> None:
    value = 'quote " back \\ nl \n tab \t é 😀 bell \x07 sep \u2028 end'
    source = (
        "signature S {\n"
        f'    in a: str "\\u00e9\\/\\ud83d\\ude00" = {json.dumps(value)}\n'
        "    out b: str\n"
        "}\n"
    )
    text = formatted(source)
    assert r'"é/😀" = "quote \" back \\ nl \n tab \t é 😀 bell \u0007 sep \u2028 end"' in text
    sig, _ = parse(text, "test.sig")
    assert sig is not None
    field = sig.declarations[0].fields[0]  # type: ignore[union-attr]
    assert field.default.value == value
    assert same_meaning(source, text)


@pytest.mark.parametrize(
    "doc",
    [
        'He said "hi", twice: ""',
        'ends with a quote"',
        '"starts with a quote',
        "ends with a backslash\\",
        "a \\ lone backslash, a \\\\ double one, a \\n that is no newline",
        'three quotes """ inside',
        "first line\n  indented line\n\nafter a blank line",
        "  indented first line\nsecond line",
        "trailing spaces are text   ",
        "",
    ],
)
def test_docstrings_round_trip(doc: str) -> None:
    source = f"signature S {{ {json.dumps(doc)} out a: str }}"
    expected, _ = parse(source, "test.sig")
    assert expected is not None
    text = formatted(source)
    assert same_meaning(source, text)
    assert text.splitlines()[1].lstrip().startswith('"""')
    assert formatted(text) == text


def test_docstring_layout_mirrors_the_examples() -> None:
    text = formatted('"""\n   Module doc\n   on two lines.\n"""\nenum E { """One line.""" a }')
    assert text == (
        '"""\nModule doc\non two lines.\n"""\n\nenum E {\n    """One line."""\n    a\n}\n'
    )


def test_a_docstring_with_control_characters_becomes_an_escaped_string() -> None:
    text = formatted(r'signature S { "first\r\nsecond" out a: str }')
    assert r'    "first\r\nsecond"' in text.splitlines()


def test_numbers_are_kept_as_written() -> None:
    text = formatted("class C { a: float (ge=+1.0e-3, le=1E5) = .5 b: list[int] = [-0, 10,] }")
    assert "(ge=+1.0e-3, le=1E5) = .5" in text
    assert "b: list[int] = [-0, 10]" in text


# ---------------------------------------------------------------- every construct


def test_types_options_and_values_are_normalized() -> None:
    source = (
        "signature S { in img : Image|None in t:tuple[ int,... ] "
        'in l: Literal[ "a","b", ] (prefix="L:",format="x",) '
        "out d: dict[str,list[int|None]] (min_items=0) = [ ] }"
    )
    assert formatted(source) == (
        "signature S {\n"
        "    in  img: Image | None\n"
        "    in  t:   tuple[int, ...]\n"
        '    in  l:   Literal["a", "b"]           (prefix="L:", format="x")\n'
        "    out d:   dict[str, list[int | None]] (min_items=0) = []\n"
        "}\n"
    )


def test_enum_members_one_per_line_with_values_and_descriptions() -> None:
    source = 'enum Priority { low normal very_high = "very high" "Drop everything" urgent "Now" }'
    assert formatted(source) == (
        "enum Priority {\n"
        "    low\n"
        "    normal\n"
        '    very_high = "very high" "Drop everything"\n'
        '    urgent                  "Now"\n'
        "}\n"
    )


def test_classes_recursive_with_defaults() -> None:
    source = 'class Node { label: str "Name" children: list[Node] = [] parent: Node | None = None }'
    assert formatted(source) == (
        "class Node {\n"
        '    label:    str "Name"\n'
        "    children: list[Node] = []\n"
        "    parent:   Node | None = None\n"
        "}\n"
    )


def test_tools_are_one_line_when_short_and_wrapped_when_long() -> None:
    short = 'tool add(a:int,b:int=0,)->int "Sum"'
    assert formatted(short) == 'tool add(a: int, b: int = 0) -> int "Sum"\n'
    long = (
        'tool search(query: str "What to look for in the whole corpus", k: int (ge=1, le=50) = 3, '
        'filters: dict[str, str] | None = None) -> list[tuple[str, float]] "Search the corpus"'
    )
    assert formatted(long) == (
        "tool search(\n"
        '    query:   str "What to look for in the whole corpus",\n'
        "    k:       int (ge=1, le=50) = 3,\n"
        "    filters: dict[str, str] | None = None,\n"
        ') -> list[tuple[str, float]] "Search the corpus"\n'
    )
    assert formatted("tool now() -> datetime") == "tool now() -> datetime\n"


def test_predictors_keep_keyword_arguments_after_the_signature() -> None:
    source = 'predictor  P=chain_of_thought( adapter = "json", Ask , )\npredictor Q = predict(Ask)'
    assert formatted(source) == (
        'predictor P = chain_of_thought(Ask, adapter="json")\npredictor Q = predict(Ask)\n'
    )


def test_alignment_never_goes_beyond_the_line_limit() -> None:
    long_description = "x" * 70
    source = (
        "signature S {\n"
        '  in a: str "short"\n'
        f'  in much_longer_name: dict[str, list[int]] "{long_description}"\n'
        '  out b: int (ge=0) "short too"\n'
        "}\n"
    )
    lines = formatted(source).splitlines()
    assert lines[1:4] == [
        '    in  a: str        "short"',
        f'    in  much_longer_name: dict[str, list[int]] "{long_description}"',
        '    out b: int (ge=0) "short too"',
    ]
    assert max(len(line) for line in lines if "short" in line) <= LINE_LIMIT


def test_empty_blocks() -> None:
    assert formatted("enum E{}\nclass C {\n\n}") == "enum E {}\n\nclass C {}\n"
    assert formatted("enum E { # nothing yet\n}") == "enum E {  # nothing yet\n}\n"


# ---------------------------------------------------------------- errors and the safety net


def test_a_file_with_a_syntax_error_is_not_formatted() -> None:
    text, diagnostics = format_sig("signature S {\n  out a str\n}\n", "bad.sig")
    assert text is None
    assert [d.code for d in diagnostics] == ["E102"]
    assert diagnostics[0].span.line == 2


def test_a_file_with_a_bad_escape_is_not_formatted() -> None:
    text, diagnostics = format_sig('signature S { out a: str "bad \\q escape" }', "bad.sig")
    assert text is None
    assert [d.code for d in diagnostics] == ["E103"]


def test_output_that_would_change_the_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "quote", lambda value: '"changed"')
    source = 'signature S { out a: str "description" }\n'
    text, diagnostics = format_sig(source, "x.sig")
    assert text == source
    assert [d.code for d in diagnostics] == ["E900"]
    assert "fmt refused to change the file" in diagnostics[0].message


def test_output_that_would_lose_a_comment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fmt, "_emit_gap", lambda out, gap, indent: None)
    source = "# a comment\nsignature S { out a: str }\n"
    text, diagnostics = format_sig(source, "x.sig")
    assert text == source
    assert [d.code for d in diagnostics] == ["E900"]


# ---------------------------------------------------------------- the command


def run_fmt(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sigforge.codegen", "fmt", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    src = tmp_path / "signatures"
    (src / "sub").mkdir(parents=True)
    (src / "messy.sig").write_text(MESSY, encoding="utf-8")
    (src / "sub" / "clean.sig").write_text(MESSY_FORMATTED, encoding="utf-8")
    (src / "messy.sig").chmod(0o640)
    return tmp_path


def test_fmt_formats_in_place_and_only_writes_what_changes(project: Path) -> None:
    messy = project / "signatures" / "messy.sig"
    clean = project / "signatures" / "sub" / "clean.sig"
    clean_mtime = clean.stat().st_mtime_ns
    run = run_fmt(project)
    assert run.returncode == 0, run.stderr
    assert "formatted 1 file, 1 unchanged" in run.stdout
    assert messy.read_text(encoding="utf-8") == MESSY_FORMATTED
    assert stat.S_IMODE(messy.stat().st_mode) == 0o640
    assert clean.stat().st_mtime_ns == clean_mtime
    assert sorted(p.name for p in project.rglob("*") if p.is_file()) == ["clean.sig", "messy.sig"]
    again = run_fmt(project)
    assert again.returncode == 0 and "formatted 0 files, 2 unchanged" in again.stdout


def test_fmt_check_writes_nothing_and_shows_a_diff(project: Path) -> None:
    messy = project / "signatures" / "messy.sig"
    run = run_fmt(project, "--check")
    assert run.returncode == 1
    assert messy.read_text(encoding="utf-8") == MESSY
    assert "signatures/messy.sig" in run.stderr and "clean.sig" not in run.stderr
    assert "--- signatures/messy.sig" in run.stdout
    assert "+predictor QuickTriage = predict(TriageTicket)" in run.stdout
    run_fmt(project)
    clean = run_fmt(project, "--check")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == ""


def test_fmt_takes_files_and_other_source_folders(project: Path) -> None:
    other = project / "other"
    other.mkdir()
    (other / "a.sig").write_text("enum E{a}", encoding="utf-8")
    run = run_fmt(project, "--src", "other")
    assert run.returncode == 0, run.stderr
    assert (other / "a.sig").read_text(encoding="utf-8") == "enum E {\n    a\n}\n"
    assert (project / "signatures" / "messy.sig").read_text(encoding="utf-8") == MESSY
    run = run_fmt(project, "signatures/messy.sig")
    assert run.returncode == 0, run.stderr
    assert "formatted 1 file, 0 unchanged" in run.stdout
    assert (project / "signatures" / "messy.sig").read_text(encoding="utf-8") == MESSY_FORMATTED


def test_fmt_reports_syntax_errors_and_leaves_the_file_alone(project: Path) -> None:
    broken = project / "signatures" / "broken.sig"
    broken.write_text("signature S {\n  out a str\n}\n", encoding="utf-8")
    run = run_fmt(project)
    assert run.returncode == 1
    assert "signatures/broken.sig:2:" in run.stderr and "error[E102]" in run.stderr
    assert " 2 |   out a str" in run.stderr  # rendered with its source line, like `generate`
    assert broken.read_text(encoding="utf-8") == "signature S {\n  out a str\n}\n"
    assert (project / "signatures" / "messy.sig").read_text(encoding="utf-8") == MESSY_FORMATTED
    check = run_fmt(project, "--check")
    assert check.returncode == 1 and "error[E102]" in check.stderr


def test_fmt_turns_crlf_line_ends_into_lf(tmp_path: Path) -> None:
    (tmp_path / "signatures").mkdir()
    path = tmp_path / "signatures" / "a.sig"
    path.write_bytes(
        b'signature S {\r\n  """\r\n  Doc.\r\n  More.\r\n  """\r\n  out a: str\r\n}\r\n'
    )
    run = run_fmt(tmp_path)
    assert run.returncode == 0, run.stderr
    expected = b'signature S {\n    """\n    Doc.\n    More.\n    """\n    out a: str\n}\n'
    assert path.read_bytes() == expected


def test_fmt_without_sources_folder_is_a_usage_error(tmp_path: Path) -> None:
    run = run_fmt(tmp_path)
    assert run.returncode == 2
    assert "does not exist" in run.stderr
    assert not os.listdir(tmp_path)
