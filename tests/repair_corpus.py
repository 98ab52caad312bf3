"""Sloppy LM replies, and what each prompt format must make of them.

Every case holds a reply and the signature it answers, and for the chat format and the
JSON format either the expected outputs (as ``model_dump()`` gives them) with the
repairs recorded, in order, or the expected error (field, a fragment of the message,
whether it is structural). tests/test_repair_corpus.py runs every case in both formats.

Most replies are in one layout, so both formats expect the same outputs, and the format
that did not ask for the layout records it first (``json_in_chat_format`` or
``markers_in_json_format``); :func:`json_reply` and :func:`chat_reply` derive that.
Signatures are small test ones built like generated code (``extra="forbid"`` outputs,
``StrEnum`` enums), plus two generated ones with Literals, nested classes and defaults.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from generated.classify import ClassifySentiment
from generated.common import Priority
from generated.support import Department, TriageTicket
from sigforge.runtime.adapters import field_spec, output_json_schema
from sigforge.runtime.adapters.parsing import (
    BOOL_FROM_STRING,
    CHOICE_CASE,
    CHOICE_IN_SENTENCE,
    DATA_FROM_STRING,
    DEFAULT_FOR_MISSING,
    EXTRA_KEYS_DROPPED,
    EXTRA_SECTIONS_DROPPED,
    FIRST_OF_SEVERAL,
    JSON_FENCE,
    JSON_IN_CHAT_FORMAT,
    JSON_IN_PROSE,
    JSON_SYNTAX,
    MARKERS_IN_JSON_FORMAT,
    NONE_FOR_MISSING,
    NUMBER_FROM_STRING,
    SINGLE_AS_LIST,
    VALUE_AS_TEXT,
)
from sigforge.runtime.signature import Signature

# ------------------------------------------------------------------ signatures


def signature_for(outputs: type[BaseModel]) -> type[Signature]:
    """A stand-in for a generated signature class with the given outputs model."""
    annotations = {name: info.annotation for name, info in outputs.model_fields.items()}
    return type(
        f"{outputs.__name__}Signature",
        (Signature,),
        {
            "name": outputs.__name__,
            "instructions": "",
            "outputs": outputs,
            "input_fields": (field_spec("question", str, is_input=True),),
            "output_fields": tuple(
                field_spec(name, annotation, is_input=False)
                for name, annotation in annotations.items()
            ),
            "prompts": {},
            "output_schema": output_json_schema(annotations),
        },
    )


class AnswerOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str
    confidence: float = Field(ge=0, le=1)


Answer = signature_for(AnswerOutputs)


class TagOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[str]
    count: int
    urgent: bool
    note: str = "none"
    source: str | None


Tags = signature_for(TagOutputs)


class Team(enum.StrEnum):
    billing = "billing"
    technical = "technical"
    account_closure = "account closure"


class RouteOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: Team
    priority: Literal["low", "normal", "high"] = "normal"


Route = signature_for(RouteOutputs)

# ------------------------------------------------------------------ expectations


@dataclass(frozen=True)
class Parsed:
    """The reply parses to ``outputs`` (``model_dump()``), recording ``repairs`` in order."""

    outputs: Mapping[str, Any]
    repairs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fails:
    """The reply raises OutputParseError for ``field`` with ``fragment`` in its message."""

    field: str | None
    fragment: str
    structural: bool = False


Outcome = Parsed | Fails


@dataclass(frozen=True)
class Case:
    id: str
    signature: type[Signature]
    reply: str
    chat: Outcome
    json: Outcome


def _switched(outcome: Outcome, repair: str) -> Outcome:
    if isinstance(outcome, Parsed):
        return replace(outcome, repairs=(repair, *outcome.repairs))
    return outcome


def json_reply(
    id: str,
    signature: type[Signature],
    reply: str,
    outcome: Outcome,
    *,
    chat: Outcome | None = None,
) -> Case:
    """A reply in the JSON layout: the chat format first records ``json_in_chat_format``."""
    chat_outcome = chat if chat is not None else _switched(outcome, JSON_IN_CHAT_FORMAT)
    return Case(id, signature, reply, chat=chat_outcome, json=outcome)


def chat_reply(
    id: str,
    signature: type[Signature],
    reply: str,
    outcome: Outcome,
    *,
    json: Outcome | None = None,
) -> Case:
    """A reply in the chat layout: the JSON format first records ``markers_in_json_format``."""
    json_outcome = json if json is not None else _switched(outcome, MARKERS_IN_JSON_FORMAT)
    return Case(id, signature, reply, chat=outcome, json=json_outcome)


def sections(**values: str) -> str:
    """A reply in the chat layout."""
    blocks = [f"[[ ## {name} ## ]]\n{value}" for name, value in values.items()]
    return "\n\n".join([*blocks, "[[ ## completed ## ]]"])


PARIS = {"answer": "Paris", "confidence": 0.9}
PARIS_JSON = '{"answer": "Paris", "confidence": 0.9}'
TAGGED = {"tags": ["billing"], "count": 2, "urgent": True, "note": "none", "source": "mail"}
TRIAGED = {
    "summary": {
        "title": "Refund request",
        "department": Department.billing,
        "priority": Priority.high,
        "tags": ["refund"],
        "related": [],
    },
    "reply": "We are on it.",
    "citations": [{"article_id": 3, "title": "Refunds", "quote": None}],
    "follow_up_by": datetime.date(2026, 12, 1),
    "scores": (0.9, 0.5),
}

# ------------------------------------------------------------------ the corpus

CASES: list[Case] = [
    # ---- well-formed replies: nothing to repair
    json_reply("json-clean", Answer, PARIS_JSON, Parsed(PARIS)),
    chat_reply("chat-clean", Answer, sections(answer="Paris", confidence="0.9"), Parsed(PARIS)),
    # ---- where the JSON is
    json_reply("fence", Answer, f"```json\n{PARIS_JSON}\n```", Parsed(PARIS, (JSON_FENCE,))),
    json_reply(
        "fence-in-prose",
        Answer,
        f"Sure! Here it is:\n```json\n{PARIS_JSON}\n```\nAnything else?",
        Parsed(PARIS, (JSON_FENCE, JSON_IN_PROSE)),
    ),
    json_reply(
        "prose-around",
        Answer,
        f"The answer, as JSON: {PARIS_JSON}. Hope that helps!",
        Parsed(PARIS, (JSON_IN_PROSE,)),
    ),
    json_reply(
        "first-of-several",
        Answer,
        f'{PARIS_JSON}\n{{"answer": "Lyon", "confidence": 0.2}}',
        Parsed(PARIS, (FIRST_OF_SEVERAL,)),
    ),
    json_reply(
        "first-of-several-in-prose",
        Answer,
        f'Option A: {PARIS_JSON}\nOption B: {{"answer": "Lyon", "confidence": 0.2}}',
        Parsed(PARIS, (JSON_IN_PROSE, FIRST_OF_SEVERAL)),
    ),
    json_reply(
        "object-without-fields-skipped",
        Answer,
        f'The schema is {{"type": "object"}} and my answer is {PARIS_JSON}',
        Parsed(PARIS, (JSON_IN_PROSE,)),
    ),
    # ---- broken JSON syntax (json-repair)
    json_reply(
        "trailing-commas",
        Tags,
        '{"tags": ["billing",], "count": 2, "urgent": true, "source": "mail",}',
        Parsed(TAGGED, (JSON_SYNTAX, DEFAULT_FOR_MISSING)),
    ),
    json_reply(
        "line-comment",
        Answer,
        '{\n  "answer": "Paris", // the capital\n  "confidence": 0.9\n}',
        Parsed(PARIS, (JSON_SYNTAX,)),
    ),
    json_reply(
        "block-comment",
        Answer,
        '{"answer": "Paris", /* fairly sure */ "confidence": 0.9}',
        Parsed(PARIS, (JSON_SYNTAX,)),
    ),
    json_reply(
        "unquoted-keys", Answer, '{answer: "Paris", confidence: 0.9}', Parsed(PARIS, (JSON_SYNTAX,))
    ),
    json_reply(
        "single-quotes",
        Answer,
        "{'answer': 'Paris', 'confidence': 0.9}",
        Parsed(PARIS, (JSON_SYNTAX,)),
    ),
    json_reply(
        "python-literals",
        Tags,
        '{"tags": ["billing"], "count": 2, "urgent": True, "source": None}',
        Parsed({**TAGGED, "source": None}, (JSON_SYNTAX, DEFAULT_FOR_MISSING)),
    ),
    json_reply(
        "fenced-and-broken",
        Answer,
        "Here:\n```json\n{'answer': 'Paris', 'confidence': 0.9,}\n```",
        Parsed(PARIS, (JSON_FENCE, JSON_IN_PROSE, JSON_SYNTAX)),
    ),
    json_reply(
        "missing-comma",
        Answer,
        '{"answer": "Paris"\n "confidence": 0.9}',
        Parsed(PARIS, (JSON_SYNTAX,)),
    ),
    json_reply(
        "unquoted-value-with-commas",
        Answer,
        "{answer: Paris, France, confidence: 0.9}",
        Fails("confidence", "missing the output field `confidence`", structural=True),
    ),
    # ---- keys and missing fields
    json_reply(
        "extra-keys",
        Answer,
        '{"answer": "Paris", "confidence": 0.9, "explanation": "It is the capital."}',
        Parsed(PARIS, (EXTRA_KEYS_DROPPED,)),
    ),
    json_reply(
        "default-for-missing",
        Tags,
        '{"tags": ["billing"], "count": 2, "urgent": true, "source": "mail"}',
        Parsed(TAGGED, (DEFAULT_FOR_MISSING,)),
    ),
    json_reply(
        "none-for-missing",
        Tags,
        '{"tags": ["billing"], "count": 2, "urgent": true, "note": "vip"}',
        Parsed({**TAGGED, "note": "vip", "source": None}, (NONE_FOR_MISSING,)),
    ),
    json_reply(
        "missing-required",
        Answer,
        '{"answer": "Paris"}',
        Fails("confidence", "missing the output field `confidence`", structural=True),
    ),
    # ---- values sent as strings
    json_reply(
        "number-from-string",
        Answer,
        '{"answer": "Paris", "confidence": "0.9"}',
        Parsed(PARIS, (NUMBER_FROM_STRING,)),
    ),
    json_reply(
        "int-and-bool-from-string",
        Tags,
        '{"tags": ["billing"], "count": "2", "urgent": "true", "source": "mail"}',
        Parsed(TAGGED, (NUMBER_FROM_STRING, BOOL_FROM_STRING, DEFAULT_FOR_MISSING)),
    ),
    chat_reply(
        "chat-quoted-number-and-yes",
        Tags,
        sections(tags='["billing"]', count="'2'", urgent="Yes", source="mail"),
        Parsed(TAGGED, (NUMBER_FROM_STRING, BOOL_FROM_STRING, DEFAULT_FOR_MISSING)),
    ),
    json_reply(
        "list-in-string",
        Tags,
        '{"tags": "[\\"billing\\"]", "count": 2, "urgent": true, "source": "mail"}',
        Parsed(TAGGED, (DATA_FROM_STRING, DEFAULT_FOR_MISSING)),
    ),
    json_reply(
        "number-as-text",
        Answer,
        '{"answer": 1889, "confidence": 1}',
        Parsed({"answer": "1889", "confidence": 1.0}, (VALUE_AS_TEXT,)),
    ),
    # ---- lists
    json_reply(
        "single-as-list",
        Tags,
        '{"tags": "billing", "count": 2, "urgent": true, "source": "mail"}',
        Parsed(TAGGED, (SINGLE_AS_LIST, DEFAULT_FOR_MISSING)),
    ),
    chat_reply(
        "chat-single-as-list",
        Tags,
        sections(tags="billing", count="2", urgent="True", source="mail"),
        Parsed(TAGGED, (SINGLE_AS_LIST, DEFAULT_FOR_MISSING)),
    ),
    chat_reply(
        "chat-several-items-as-text",
        Tags,
        sections(tags="billing, refund", count="2", urgent="True", source="mail"),
        Fails("tags", "Input should be a valid list"),
    ),
    chat_reply(
        "chat-list-in-prose-broken",
        Tags,
        sections(tags="Tags: [billing] (see above)", count="2", urgent="True", source="mail"),
        Fails("tags", "Input should be a valid list"),
    ),
    chat_reply(
        "chat-list-unquoted-items",
        Tags,
        sections(tags="[billing, refund]", count="2", urgent="True", source="mail"),
        Parsed({**TAGGED, "tags": ["billing", "refund"]}, (JSON_SYNTAX, DEFAULT_FOR_MISSING)),
    ),
    chat_reply(
        "chat-list-fenced",
        Tags,
        sections(tags='```json\n["billing"]\n```', count="2", urgent="True", source="mail"),
        Parsed(TAGGED, (JSON_FENCE, DEFAULT_FOR_MISSING)),
    ),
    chat_reply(
        "chat-list-in-prose",
        Tags,
        sections(tags='The tags are ["billing"].', count="2", urgent="True", source="mail"),
        Parsed(TAGGED, (JSON_IN_PROSE, DEFAULT_FOR_MISSING)),
    ),
    # ---- choices (Literal and enum)
    json_reply(
        "literal-other-case",
        ClassifySentiment,
        '{"sentiment": "POSITIVE", "confidence": 0.8}',
        Parsed({"sentiment": "positive", "confidence": 0.8}, (CHOICE_CASE,)),
    ),
    chat_reply(
        "chat-literal-quoted-with-period",
        ClassifySentiment,
        sections(sentiment="'Negative'.", confidence="0.8"),
        Parsed({"sentiment": "negative", "confidence": 0.8}, (CHOICE_CASE,)),
    ),
    json_reply(
        "literal-in-sentence",
        ClassifySentiment,
        '{"sentiment": "The sentiment is positive.", "confidence": 0.8}',
        Parsed({"sentiment": "positive", "confidence": 0.8}, (CHOICE_IN_SENTENCE,)),
    ),
    chat_reply(
        "chat-literal-in-sentence",
        ClassifySentiment,
        sections(sentiment="Overall, the tone is Neutral.", confidence="0.6"),
        Parsed({"sentiment": "neutral", "confidence": 0.6}, (CHOICE_IN_SENTENCE,)),
    ),
    json_reply(
        "literal-two-choices",
        ClassifySentiment,
        '{"sentiment": "POSITIVE or NEGATIVE", "confidence": 0.5}',
        Fails("sentiment", "names more than one choice (positive, negative)"),
    ),
    chat_reply(
        "chat-literal-negated",
        ClassifySentiment,
        sections(sentiment="It is not negative.", confidence="0.5"),
        Fails("sentiment", "negates a choice"),
    ),
    json_reply(
        "literal-unknown",
        ClassifySentiment,
        '{"sentiment": "mixed", "confidence": 0.5}',
        Fails("sentiment", "Input should be 'positive', 'negative' or 'neutral'"),
    ),
    json_reply(
        "enum-by-name-other-case",
        Route,
        '{"team": "ACCOUNT_CLOSURE", "priority": "High"}',
        Parsed({"team": Team.account_closure, "priority": "high"}, (CHOICE_CASE,)),
    ),
    chat_reply(
        "chat-enum-in-sentence",
        Route,
        sections(team="This is a technical problem.", priority="low"),
        Parsed({"team": Team.technical, "priority": "low"}, (CHOICE_IN_SENTENCE,)),
    ),
    chat_reply(
        "chat-enum-longest-member-wins",
        Route,
        sections(team="Send it to Account Closure.", priority="normal"),
        Parsed({"team": Team.account_closure, "priority": "normal"}, (CHOICE_IN_SENTENCE,)),
    ),
    json_reply(
        "enum-two-members",
        Route,
        '{"team": "billing or technical"}',
        Fails("team", "names more than one choice (billing, technical)"),
    ),
    # ---- chat layout
    chat_reply(
        "chat-echoed-input-section",
        Answer,
        "[[ ## question ## ]]\nCapital of France?\n\n" + sections(answer="Paris", confidence="0.9"),
        Parsed(PARIS, (EXTRA_SECTIONS_DROPPED,)),
    ),
    chat_reply(
        "chat-repeated-section",
        Answer,
        sections(answer="Paris", confidence="0.9") + "\n[[ ## answer ## ]]\nLyon",
        Parsed(PARIS, (FIRST_OF_SEVERAL,)),
    ),
    # ---- nested classes (generated support.sig): repairs inside objects and lists
    json_reply(
        "nested-case-extra-key-single-item",
        TriageTicket,
        '{"summary": {"title": "Refund request", "department": "Billing", "priority": "HIGH",'
        ' "tags": "refund", "mood": "angry"}, "reply": "We are on it.",'
        ' "citations": {"article_id": 3, "title": "Refunds"}, "follow_up_by": "2026-12-01",'
        ' "scores": [0.9, 0.5]}',
        Parsed(TRIAGED, (SINGLE_AS_LIST, CHOICE_CASE, EXTRA_KEYS_DROPPED)),
    ),
    chat_reply(
        "chat-nested-object-broken-syntax",
        TriageTicket,
        sections(
            summary="{title: 'Refund request', department: 'billing', priority: 'high',"
            " tags: ['refund'],}",
            reply="We are on it.",
            citations='[{"article_id": 3, "title": "Refunds"}]',
            follow_up_by="2026-12-01",
            scores="[0.9, 0.5]",
        ),
        Parsed(TRIAGED, (JSON_SYNTAX,)),
    ),
    json_reply(
        "nested-enum-two-members",
        TriageTicket,
        '{"summary": {"title": "Refund request", "department": "billing or account"},'
        ' "reply": "We are on it.", "citations": [], "follow_up_by": null,'
        ' "scores": [0.9, 0.5]}',
        Fails("summary", "names more than one choice (billing, account)"),
    ),
    json_reply(
        "nested-value-out-of-constraints",
        TriageTicket,
        '{"summary": {"title": "Refund request", "department": "billing"}, "reply": "Sure.",'
        ' "citations": [{"article_id": 0, "title": "Refunds"}], "follow_up_by": null,'
        ' "scores": [0.9, 0.5]}',
        Fails("citations", "greater than or equal to 1"),
    ),
    # ---- must not guess
    json_reply(
        "out-of-constraints",
        Answer,
        '{"answer": "Paris", "confidence": 1.5}',
        Fails("confidence", "less than or equal to 1"),
    ),
    json_reply(
        "number-in-prose",
        Answer,
        '{"answer": "Paris", "confidence": "about 0.9, maybe less"}',
        Fails("confidence", "unable to parse string as a number"),
    ),
    chat_reply(
        "chat-number-in-prose",
        Answer,
        sections(answer="Paris", confidence="I would say 90%"),
        Fails("confidence", "unable to parse string as a number"),
    ),
    Case(
        "refusal",
        Answer,
        "I'm sorry, I can't help with that.",
        chat=Fails(None, "none of the output fields", structural=True),
        json=Fails(None, "none of the output fields", structural=True),
    ),
    Case(
        "prose-in-braces",
        Answer,
        "I can't answer {that} without more context.",
        chat=Fails(None, "none of the output fields", structural=True),
        json=Fails(None, "none of the output fields", structural=True),
    ),
    Case(
        "placeholder-echo",
        Answer,
        "{answer}\n{confidence}",
        chat=Fails(None, "none of the output fields", structural=True),
        json=Fails(None, "none of the output fields", structural=True),
    ),
    Case(
        "wrapped-object",
        Answer,
        f'{{"result": {PARIS_JSON}}}',
        chat=Fails(None, "none of the output fields", structural=True),
        json=Fails(None, "none of the output fields", structural=True),
    ),
    Case(
        "schema-echo",
        Answer,
        '{"properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}}}',
        chat=Fails(None, "none of the output fields", structural=True),
        json=Fails(None, "none of the output fields", structural=True),
    ),
    Case(
        "choice-without-structure",
        ClassifySentiment,
        "The sentiment is positive.",
        chat=Fails(None, "none of the output fields", structural=True),
        json=Fails(None, "none of the output fields", structural=True),
    ),
    Case(
        "cut-off-object",
        Answer,
        '{"answer": "Paris", "confidence": 0.',
        chat=Fails(None, "breaks off inside its JSON object", structural=True),
        json=Fails(None, "breaks off inside its JSON object", structural=True),
    ),
    Case(
        "cut-off-in-string",
        Answer,
        'Here: {"answer": "Par',
        chat=Fails(None, "breaks off inside its JSON object", structural=True),
        json=Fails(None, "breaks off inside its JSON object", structural=True),
    ),
    Case(
        "json-list-not-object",
        Answer,
        '[{"answer": "Paris", "confidence": 0.9}]',
        chat=Fails(None, "none of the output fields", structural=True),
        json=Fails(None, "none of the output fields", structural=True),
    ),
]
