"""How the simulated models of :mod:`.tasks` and :mod:`.rag` read a request.

A request in DSPy's chat or JSON format, from sigforge in process (an ``LMRequest``) or
over HTTP (a recorded request), is read as a chat model would read it: the fields listed
in the system message, the instructions after ``your objective is:``, the demos (user and
assistant turns before the last user message) and the input sections of the last user
message. :func:`format_reply` answers in the format the prompt asks for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sigforge.runtime.messages import LMRequest

from ._core import RecordedRequest

__all__ = ["PromptField", "ReadPrompt", "format_reply", "read_prompt"]


@dataclass(frozen=True, slots=True)
class PromptField:
    name: str
    type_name: str

    @property
    def numeric(self) -> bool:
        return self.type_name in ("int", "float")


@dataclass(frozen=True, slots=True)
class ReadPrompt:
    """What the LM makes of a request."""

    inputs: tuple[PromptField, ...]
    outputs: tuple[PromptField, ...]
    instructions: str
    json_reply: bool
    #: (user values, assistant values) of each demo
    demos: tuple[tuple[dict[str, str], dict[str, Any]], ...]
    #: the input values of the last user message
    values: dict[str, str]
    #: every message's text, joined
    text: str
    rollout_id: object
    temperature: object


_SECTION = re.compile(r"\[\[ ## (\w+) ## \]\]\n?")
_FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \((.*?)\)(?::|$)", re.MULTILINE)
_OBJECTIVE = "your objective is:"


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) if part.get("type") == "text" else "[image]"
            for part in content
            if isinstance(part, dict)
        )
    return ""


def _sections(text: str) -> dict[str, str]:
    parts = _SECTION.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def _reply_values(text: str) -> dict[str, Any]:
    sections = _sections(text)
    if sections:
        return sections
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _fields(system: str, start: str, end: str) -> tuple[PromptField, ...]:
    begin = system.find(start)
    if begin < 0:
        return ()
    stop = system.find(end, begin + len(start))
    block = system[begin + len(start) : stop if stop >= 0 else len(system)]
    return tuple(PromptField(name, kind) for name, kind in _FIELD_LINE.findall(block))


def _without_request(text: str) -> str:
    """The last user message without its closing output request ("Respond with ...")."""
    cut = text.rfind("\n\nRespond with ")
    return text[:cut] if cut >= 0 else text


def read_prompt(request: LMRequest | RecordedRequest) -> ReadPrompt:
    """What a chat model makes of a request in DSPy's chat or JSON format."""
    if isinstance(request, LMRequest):
        messages: Sequence[Mapping[str, Any]] = request.messages
        temperature = request.params.get("temperature")
        rollout_id: object = request.rollout_id
    else:
        messages = request.messages
        body = request.json if isinstance(request.json, dict) else {}
        temperature = body.get("temperature")
        rollout_id = None
    texts = [(str(m.get("role", "")), _text(m.get("content"))) for m in messages]
    system = "\n".join(text for role, text in texts if role in ("system", "developer"))
    turns = [(role, text) for role, text in texts if role in ("user", "assistant")]
    last_user = max((i for i, (role, _) in enumerate(turns) if role == "user"), default=-1)
    demos = []
    for index in range(0, max(last_user, 0) - 1, 2):
        (role, user), (next_role, reply) = turns[index], turns[index + 1]
        if role == "user" and next_role == "assistant":
            demos.append((_sections(user), _reply_values(reply)))
    lower = system.lower()
    objective = lower.rfind(_OBJECTIVE)
    return ReadPrompt(
        inputs=_fields(system, "Your input fields are:", "Your output fields are:"),
        outputs=_fields(system, "Your output fields are:", "All interactions will be"),
        instructions=system[objective + len(_OBJECTIVE) :] if objective >= 0 else "",
        json_reply="Outputs will be a JSON object" in system,
        demos=tuple(demos),
        values=_sections(_without_request(turns[last_user][1])) if last_user >= 0 else {},
        text="\n\n".join(text for _, text in texts),
        rollout_id=rollout_id,
        temperature=temperature,
    )


def format_reply(prompt: ReadPrompt, values: Mapping[str, Any]) -> str:
    """A reply with ``values``, in the format the prompt asks for."""
    if prompt.json_reply:
        return json.dumps(dict(values), ensure_ascii=False)
    blocks = [f"[[ ## {name} ## ]]\n{value}" for name, value in values.items()]
    return "\n\n".join([*blocks, "[[ ## completed ## ]]"])
