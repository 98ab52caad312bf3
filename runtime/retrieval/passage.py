"""What retrieval returns: :class:`Passage` (one text with its id, score and metadata)
and :class:`Passages` (the ranked list of them).

Both are designed to flow into generated predictors without glue code:

* A :class:`Passage` **is** a ``str`` (its text), carrying ``id``, ``score`` and
  ``metadata`` as attributes. It fits every ``str`` input, compares and hashes as its
  text, and formats into prompts as its text.
* :class:`Passages` **is** a ``list[str]`` whose items are all :class:`Passage` objects,
  and whose reads (iteration, indexing, slicing, ``pop``) are typed as such. A
  ``list[Passage]`` would be refused by ``mypy --strict`` for a ``list[str]`` input
  (``list`` is invariant: a function taking ``list[str]`` may append any ``str``); a
  ``Passages`` is accepted, and writes into it (``append("text")``, ``extend``, ...)
  turn plain strings into passages, so its items stay passages. So
  ``Answerer()(context=retriever.retrieve(question), question=question)`` type-checks,
  and ``for p in passages: p.score`` is a ``float | None``.

Pydantic models can declare ``Passage`` fields (``list[Passage]``, ``Passage | None``):
they accept a passage, a plain string, or a mapping with ``text`` (and optionally
``id``, ``score``, ``metadata``), and dump to that mapping in JSON mode (``model_dump()``
keeps the passage object), so saved traces and examples keep ids and scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, SupportsIndex, overload

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema

__all__ = ["Passage", "Passages"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Passage(str):
    """A retrieved text: a ``str`` that also carries ``id``, ``score`` and ``metadata``.

    ``id`` names the passage in its store (``""`` when it has none); ``score`` is how
    well it matched the query, higher is better (each retriever documents its scale;
    ``None`` when unknown); ``metadata`` is a read-only mapping of what was stored with
    it. Immutable. Equality and hashing are the text's (two passages with the same text
    are equal whatever their ids), as for any ``str``.
    """

    id: str
    score: float | None
    metadata: Mapping[str, Any]

    def __new__(
        cls,
        text: str,
        *,
        id: str = "",
        score: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Passage:
        if not isinstance(text, str):
            raise TypeError(f"a passage's text must be a str, not {type(text).__name__}")
        if not isinstance(id, str):
            raise TypeError(f"a passage's id must be a str, not {type(id).__name__}")
        passage = super().__new__(cls, text)
        object.__setattr__(passage, "id", id)
        object.__setattr__(passage, "score", None if score is None else float(score))
        object.__setattr__(
            passage, "metadata", MappingProxyType(dict(metadata)) if metadata else _EMPTY
        )
        return passage

    @property
    def text(self) -> str:
        """The text as a plain ``str``."""
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        parts = [str.__repr__(self)]
        if self.id:
            parts.append(f"id={self.id!r}")
        if self.score is not None:
            parts.append(f"score={self.score:.4g}")
        if self.metadata:
            parts.append(f"metadata={dict(self.metadata)!r}")
        return f"Passage({', '.join(parts)})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Passage is immutable (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Passage is immutable (cannot delete {name!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle and copy: rebuild through __new__ (the attributes are not plain state)
        return (_rebuild, (self.text, self.id, self.score, dict(self.metadata)))

    def as_dict(self) -> dict[str, Any]:
        """``{"text", "id", "score", "metadata"}`` as plain JSON-ready data."""
        return {
            "text": self.text,
            "id": self.id,
            "score": self.score,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def coerce(cls, value: object) -> Passage:
        """``value`` as a passage: a passage as it is, a ``str`` as a passage without id
        or score, a mapping with ``text`` (and optionally ``id``, ``score``,
        ``metadata``). Anything else is a ``TypeError``."""
        if isinstance(value, Passage):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping):
            unknown = set(value) - {"text", "id", "score", "metadata"}
            if "text" not in value or unknown:
                raise TypeError(
                    "a passage mapping needs 'text' and may have 'id', 'score', 'metadata'"
                    + (f" (unexpected: {', '.join(sorted(map(str, unknown)))})" if unknown else "")
                )
            score = value.get("score")
            if score is not None and not isinstance(score, int | float):
                raise TypeError("a passage's score must be a number or None")
            metadata = value.get("metadata")
            if metadata is not None and not isinstance(metadata, Mapping):
                raise TypeError("a passage's metadata must be a mapping")
            return cls(value["text"], id=value.get("id") or "", score=score, metadata=metadata)
        raise TypeError(f"cannot make a Passage from {type(value).__name__}")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        from pydantic_core import core_schema

        def validate(value: Any) -> Passage:
            try:
                return cls.coerce(value)
            except TypeError as exc:
                raise ValueError(str(exc)) from None

        return core_schema.no_info_plain_validator_function(
            validate,
            json_schema_input_schema=core_schema.union_schema(
                [
                    core_schema.str_schema(),
                    core_schema.typed_dict_schema(
                        {
                            "text": core_schema.typed_dict_field(core_schema.str_schema()),
                            "id": core_schema.typed_dict_field(
                                core_schema.str_schema(), required=False
                            ),
                            "score": core_schema.typed_dict_field(
                                core_schema.nullable_schema(core_schema.float_schema()),
                                required=False,
                            ),
                            "metadata": core_schema.typed_dict_field(
                                core_schema.dict_schema(core_schema.str_schema()),
                                required=False,
                            ),
                        }
                    ),
                ]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                Passage.as_dict, when_used="json"
            ),
        )


def _rebuild(text: str, id: str, score: float | None, metadata: dict[str, Any]) -> Passage:
    return Passage(text, id=id, score=score, metadata=metadata)


class Passages(list[str]):
    """Ranked passages, best first: a ``list[str]`` whose items are :class:`Passage`.

    Pass it wherever a ``list[str]`` is expected (a generated predictor's input, a
    prompt helper); read it as passages (``passages[0].score``, ``for p in passages``).
    Strings written into it become passages without id or score.
    """

    def __init__(self, passages: Iterable[str] = ()) -> None:
        super().__init__(Passage.coerce(p) for p in passages)

    # -- reads, typed as passages ------------------------------------------------------

    def __iter__(self) -> Iterator[Passage]:
        return super().__iter__()  # type: ignore[return-value]  # items are passages

    def __reversed__(self) -> Iterator[Passage]:
        return super().__reversed__()  # type: ignore[return-value]

    @overload
    def __getitem__(self, index: SupportsIndex) -> Passage: ...

    @overload
    def __getitem__(self, index: slice) -> Passages: ...

    def __getitem__(self, index: SupportsIndex | slice) -> Passage | Passages:
        if isinstance(index, slice):
            return Passages(super().__getitem__(index))
        return super().__getitem__(index)  # type: ignore[return-value]

    def pop(self, index: SupportsIndex = -1) -> Passage:
        return super().pop(index)  # type: ignore[return-value]

    def copy(self) -> Passages:
        return Passages(self)

    def __add__(self, other: list[str]) -> Passages:  # type: ignore[override]
        return Passages([*self, *other])

    def __mul__(self, times: SupportsIndex) -> Passages:
        return Passages(super().__mul__(times))

    def __rmul__(self, times: SupportsIndex) -> Passages:
        return Passages(super().__rmul__(times))

    # -- writes keep every item a passage ------------------------------------------------

    def append(self, passage: str) -> None:
        super().append(Passage.coerce(passage))

    def extend(self, passages: Iterable[str]) -> None:
        super().extend(Passage.coerce(p) for p in passages)

    def insert(self, index: SupportsIndex, passage: str) -> None:
        super().insert(index, Passage.coerce(passage))

    def __iadd__(self, passages: Iterable[str]) -> Passages:  # type: ignore[override]
        self.extend(passages)
        return self

    @overload
    def __setitem__(self, index: SupportsIndex, value: str) -> None: ...

    @overload
    def __setitem__(self, index: slice, value: Iterable[str]) -> None: ...

    def __setitem__(self, index: SupportsIndex | slice, value: str | Iterable[str]) -> None:
        if isinstance(index, slice):
            if isinstance(value, str):
                raise TypeError("can only assign an iterable of strings to a slice")
            super().__setitem__(index, [Passage.coerce(p) for p in value])
        else:
            if not isinstance(value, str):
                raise TypeError("a passage must be a str")
            super().__setitem__(index, Passage.coerce(value))

    # -- columns --------------------------------------------------------------------------

    @property
    def texts(self) -> list[str]:
        """The texts as plain strings."""
        return [p.text for p in self]

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self]

    @property
    def scores(self) -> list[float | None]:
        return [p.score for p in self]

    def __repr__(self) -> str:
        return f"Passages({list.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Passages, (list(self),))
