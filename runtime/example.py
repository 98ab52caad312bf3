"""Examples: the rows of a training or evaluation set, split into inputs and labels.

An :class:`Example` holds the keyword arguments a program is called with (``inputs``)
and what a metric compares the prediction with (``labels``: gold answers, supporting
passages...). Datasets are plain lists of examples; :func:`load_jsonl` reads one from a
JSON Lines file naming which keys are inputs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import SigforgeError

__all__ = ["DatasetError", "Example", "load_jsonl"]


class DatasetError(SigforgeError):
    """A dataset file could not be read as examples (the message names the line)."""


@dataclass(frozen=True, slots=True)
class Example:
    """One row: the program's keyword ``inputs`` and the ``labels`` a metric checks against.

    ``example["answer"]`` reads a label or an input (labels first); ``id`` names the row
    in results files (its position in the dataset when not given).
    """

    inputs: Mapping[str, Any]
    labels: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def __getitem__(self, name: str) -> Any:
        if name in self.labels:
            return self.labels[name]
        if name in self.inputs:
            return self.inputs[name]
        raise KeyError(
            f"{name!r} is neither a label nor an input of this example "
            f"(labels: {', '.join(self.labels) or 'none'}; inputs: {', '.join(self.inputs) or 'none'})"
        )

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return self[name]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """Inputs and labels in one mapping (inputs first), as a demo or a JSONL row."""
        return {**self.inputs, **self.labels}

    @classmethod
    def from_dict(
        cls, row: Mapping[str, Any], inputs: Iterable[str], *, id: str | None = None
    ) -> Example:
        """Split ``row``: the keys named in ``inputs`` are inputs, the rest labels."""
        names = set(inputs)
        missing = sorted(names - row.keys())
        if missing:
            raise DatasetError(f"the row has no input {', '.join(map(repr, missing))}")
        return cls(
            {k: v for k, v in row.items() if k in names},
            {k: v for k, v in row.items() if k not in names},
            id,
        )


def load_jsonl(path: str | Path, inputs: Iterable[str], *, id_key: str | None = None) -> list[Example]:
    """Read a JSON Lines file of objects as examples; blank lines are skipped.

    ``inputs`` names the keys passed to the program; every other key is a label, except
    ``id_key`` (if given), whose value becomes the example's id.
    """
    names = tuple(inputs)
    examples: list[Example] = []
    with Path(path).open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object per line")
            row_id = None
            if id_key is not None and id_key in row:
                row_id = str(row.pop(id_key))
            try:
                examples.append(Example.from_dict(row, names, id=row_id))
            except DatasetError as exc:
                raise DatasetError(f"{path}:{number}: {exc}") from None
    return examples
