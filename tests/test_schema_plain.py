"""The JSON schemas the compiler writes for plain types without pydantic are pydantic's own.

:func:`sigforge.runtime.adapters.types._plain_schema` describes scalars, lists, dicts,
tuples, ``Literal`` and unions directly (so that a build whose fields need nothing more
does not import pydantic); pydantic's ``TypeAdapter(...).json_schema()`` is the reference
for every one of them, nested to any depth. Anything else is left to pydantic.
"""

from __future__ import annotations

import datetime
import enum
import functools
import operator
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter

from sigforge.runtime.adapters.types import _plain_schema, output_json_schema, type_note

SCALARS: list[Any] = [str, int, float, bool, type(None), datetime.date, datetime.datetime]
LITERAL_VALUES = st.one_of(
    st.text(max_size=8), st.integers(-5, 5), st.booleans(), st.none()
)


def _literal(values: list[Any]) -> Any:
    return Literal.__getitem__(tuple(values))


def _union(members: list[Any]) -> Any:
    return functools.reduce(operator.or_, members)


def plain_types() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.sampled_from(SCALARS),
        st.lists(LITERAL_VALUES, min_size=1, max_size=4, unique_by=lambda v: (type(v), v)).map(_literal),
    )

    def extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            inner.map(lambda t: list[t]),  # type: ignore[valid-type]
            st.tuples(st.sampled_from([str, int]), inner).map(lambda kv: dict[kv[0], kv[1]]),  # type: ignore[valid-type]
            inner.map(lambda t: tuple[t, ...]),  # type: ignore[valid-type]
            st.lists(inner, min_size=1, max_size=3).map(lambda ts: tuple.__class_getitem__(tuple(ts))),
            st.lists(inner, min_size=2, max_size=3).map(_union),
        )

    return st.recursive(leaves, extend, max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(plain_types())
def test_plain_schemas_are_pydantics(annotation: Any) -> None:
    assert _plain_schema(annotation) == TypeAdapter(annotation).json_schema(), annotation


def test_each_kind_of_plain_type() -> None:
    cases: list[Any] = [
        *SCALARS,
        list[list[int]],
        dict[int, str],
        tuple[int, str],
        tuple[float, ...],
        tuple[()],
        Literal["a"],
        Literal["a", "b"],
        Literal[1, "a", None],
        Literal[True],
        str | None,
        int | list[str] | None,
    ]
    for annotation in cases:
        assert _plain_schema(annotation) == TypeAdapter(annotation).json_schema(), annotation


class Priority(enum.Enum):
    LOW = "low"


class Citation(BaseModel):
    source: str


def test_models_enums_and_other_types_are_left_to_pydantic() -> None:
    for annotation in [Priority, Citation, list[Citation], dict[str, Priority], Citation | None, bytes, Any]:
        assert _plain_schema(annotation) is None, annotation
    assert _plain_schema(dict[float, str]) is None  # (a key type a `.sig` file cannot declare)
    # ... and still described by pydantic, through the same entry points
    assert type_note(list[Citation]).startswith("must adhere to the JSON schema: ")
    schema = output_json_schema({"cited": list[Citation], "label": Literal["a", "b"]})
    assert schema["properties"]["label"] == {"enum": ["a", "b"], "title": "Label", "type": "string"}
    assert "Citation" in str(schema)
