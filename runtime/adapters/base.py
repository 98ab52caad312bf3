"""What every adapter shares: demos, user turns, parsing replies.

Formatting works on :class:`FieldSpec`s and plain values only. The constant parts
(system message, output request) are :mod:`.prompts`, which the compiler precomputes
without generated classes; the run-time path only fills in values.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from ..errors import OutputParseError
from ..image import ImageSlots, content_parts
from ..messages import Message
from ..signature import FieldSpec, Signature
from .parsing import CutOffReply, ParsedReply, ParsePlan, build_outputs, parse_plan
from .prompts import PromptFormat
from .values import format_value

__all__ = ["Adapter"]

PARTIAL_DEMO_PREFIX = (
    "This is an example of the task, though some input or output fields are not supplied."
)
#: stands in for a partial demo's missing output (the trailing space is part of the format)
NOT_SUPPLIED = "Not supplied for this particular example. "


class Adapter(PromptFormat):
    """A prompt format: how a signature's fields become messages and a reply becomes outputs.

    The constant text (system message, output request) comes from :class:`PromptFormat`;
    this class adds the per-call parts. Adapters hold no state; one instance of each
    serves every signature.
    """

    # ------------------------------------------------------------- per-call parts

    def format_user(
        self,
        input_fields: Sequence[FieldSpec],
        values: Mapping[str, Any],
        output_request: str | None,
        prefix: str = "",
        slots: ImageSlots | None = None,
    ) -> str:
        """A user turn: ``prefix``, the input fields present in ``values``, the request.

        Images become markers in ``slots`` (see :func:`~sigforge.runtime.image.content_parts`)."""
        parts = [prefix] if prefix else []
        for spec in input_fields:
            if spec.name in values:
                text = format_value(values[spec.name], is_str=spec.is_str, slots=slots)
                parts.append(f"[[ ## {spec.name} ## ]]\n{text}")
        if output_request:
            parts.append(output_request)
        return "\n\n".join(parts).strip()

    @abc.abstractmethod
    def format_assistant(
        self,
        output_fields: Sequence[FieldSpec],
        values: Mapping[str, Any],
        *,
        missing: str | None = None,
    ) -> str:
        """An assistant turn holding ``values``; a field absent from them shows ``missing``."""

    def format_demos(
        self,
        input_fields: Sequence[FieldSpec],
        output_fields: Sequence[FieldSpec],
        demos: Sequence[Mapping[str, Any]],
    ) -> list[Message]:
        """Few-shot examples as user/assistant pairs.

        A demo with every field set (not None) is complete. Partial demos come first,
        flagged as such and showing :data:`NOT_SUPPLIED` for missing outputs; a demo
        without any input field or without any output field is left out.
        """
        complete: list[Mapping[str, Any]] = []
        partial: list[Mapping[str, Any]] = []
        for demo in demos:
            if all(demo.get(spec.name) is not None for spec in (*input_fields, *output_fields)):
                complete.append(demo)
            elif any(spec.name in demo for spec in input_fields) and any(
                spec.name in demo for spec in output_fields
            ):
                partial.append(demo)
        messages: list[Message] = []
        for demo in partial:
            slots = ImageSlots()
            user = self.format_user(
                input_fields, demo, None, prefix=PARTIAL_DEMO_PREFIX, slots=slots
            )
            assistant = self.format_assistant(output_fields, demo, missing=NOT_SUPPLIED)
            messages += [
                {"role": "user", "content": content_parts(user, slots)},
                {"role": "assistant", "content": assistant},
            ]
        for demo in complete:
            slots = ImageSlots()
            user = self.format_user(input_fields, demo, None, slots=slots)
            assistant = self.format_assistant(output_fields, demo)
            messages += [
                {"role": "user", "content": content_parts(user, slots)},
                {"role": "assistant", "content": assistant},
            ]
        return messages

    def messages(
        self,
        system: str,
        demo_messages: Sequence[Message],
        input_fields: Sequence[FieldSpec],
        values: Mapping[str, Any],
        output_request: str | None,
    ) -> list[Message]:
        """The whole conversation: system message, demos, the final user turn."""
        messages: list[Message] = [{"role": "system", "content": system}, *demo_messages]
        slots = ImageSlots()
        content = self.format_user(input_fields, values, output_request, slots=slots)
        if content:
            messages.append({"role": "user", "content": content_parts(content, slots)})
        return messages

    def request_params(self, signature_cls: type[Signature]) -> dict[str, Any]:
        """Extra request parameters this format needs (none by default)."""
        return {}

    # ------------------------------------------------------------- parsing

    def parse(self, signature_cls: type[Signature], text: str) -> BaseModel:
        """The reply ``text`` as an instance of ``signature_cls.outputs``.

        Raises :class:`OutputParseError`; its ``structural`` flag tells a reply without
        the expected structure (empty, no or missing fields) from an invalid value.
        """
        return self._parse(signature_cls, text, [])

    def parse_reply(self, signature_cls: type[Signature], text: str) -> ParsedReply:
        """Like :meth:`parse`, with the repairs the reply needed (see ``parsing.REPAIRS``)."""
        repairs: list[str] = []
        outputs = self._parse(signature_cls, text, repairs)
        return ParsedReply(outputs, tuple(repairs))

    def _parse(self, signature_cls: type[Signature], text: str, repairs: list[str]) -> BaseModel:
        plan = parse_plan(signature_cls)
        if not text or text.isspace():
            raise self._structure_error(plan, text, "The LM reply was empty.")
        try:
            found, textual = self.split_reply(text, plan.names, repairs)
        except CutOffReply:
            raise self._structure_error(
                plan, text, "The LM reply breaks off inside its JSON object (cut off?)."
            ) from None
        if not found:
            raise self._structure_error(
                plan, text, f"The LM reply has none of the output fields {_names(plan)}."
            )
        return build_outputs(plan, found, text, repairs, textual)

    @abc.abstractmethod
    def split_reply(
        self, text: str, names: frozenset[str], repairs: list[str]
    ) -> tuple[dict[str, Any], bool]:
        """The raw values of the output fields ``names`` found in a reply, and whether
        they are chat-section text (True) or JSON values (False).

        Repairs applied while splitting are noted in ``repairs``; may raise
        :class:`~.parsing.CutOffReply`.
        """

    @abc.abstractmethod
    def expected_structure(self, output_fields: Sequence[str]) -> str:
        """A short description of a well-formed reply, for error messages."""

    def _structure_error(self, plan: ParsePlan, text: str, message: str) -> OutputParseError:
        expected = self.expected_structure([field.name for field in plan.fields])
        return OutputParseError(
            f"{message} Expected {expected}.",
            field=None,
            expected=expected,
            raw=text,
            structural=True,
        )


def _names(plan: ParsePlan) -> str:
    return ", ".join(f"`{field.name}`" for field in plan.fields)
