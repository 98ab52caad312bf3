"""Signature extension per module kind, done at generation time so mypy sees the result.

``chain_of_thought(Sig)`` runs an extended signature ``SigWithReasoning`` whose outputs
start with ``reasoning: str``, exactly as DSPy's ChainOfThought extends its signature.
``predict(Sig)`` runs ``Sig`` unchanged. The other kinds run several signatures derived
from ``Sig``, one per inner predictor (names from :func:`.names.predictor_names`; for a
predictor ``P``):

- ``react``: ``PStep`` (the inputs and ``trajectory`` -> ``thought`` and ``next_call``,
  the union of the tools' call models) and ``PExtract`` (the inputs and ``trajectory``
  -> ``reasoning`` and the outputs), as DSPy's ReAct runs its ``react`` and ``extract``;
- ``program_of_thought``: ``PGenerate`` (-> ``reasoning``, ``generated_code``),
  ``PRegenerate`` (adds ``previous_code`` and ``error``) and ``PAnswer`` (adds
  ``final_generated_code`` and ``code_output`` -> ``reasoning`` and the outputs);
- ``multi_chain_comparison``: ``SigWithReasoning`` for the attempts and ``PCompare`` (the
  inputs and ``reasoning_attempt_1..m`` -> ``rationale`` and the outputs);
- ``best_of_n``: ``Sig`` (or ``SigWithReasoning`` with ``module="chain_of_thought"``);
- ``refine``: the same, ``PHinted`` (the attempt's signature with a ``hint_`` input) and
  ``PFeedback`` (advice after an attempt below the threshold).

Derived signatures keep the instructions of the signature they derive from (its
declared text, else DSPy's default sentence for its fields), as DSPy's signature
``append``/``prepend`` do; the step, code and feedback signatures have instructions of
their own (see docs/modules.md for the prompts).
"""

from __future__ import annotations

import json
from dataclasses import replace

from .model import (
    AttemptKind,
    CheckedField,
    CheckedModule,
    CheckedPredictor,
    CheckedSignature,
    PredictorKind,
    ToolUse,
)
from .types import DeclaredType, Primitive, SigType

REASONING = "reasoning"
#: the tool every react predictor has besides the declared ones: it ends the loop
FINISH_TOOL = "finish"
#: the field of a call model that names the tool (the union's discriminator)
CALL_DISCRIMINATOR = "tool"
TRAJECTORY = "trajectory"
HINT = "hint_"
_STR = Primitive("str")


def added_fields(
    kind: PredictorKind, *, attempt: AttemptKind = "predict", m: int | None = None
) -> tuple[str, ...]:
    """The field names a kind adds to the fields of its signature (they must be free)."""
    reasoning = (REASONING,) if attempt == "chain_of_thought" else ()
    if kind == "chain_of_thought":
        return (REASONING,)
    if kind == "react":
        return (TRAJECTORY, "thought", "next_call", REASONING)
    if kind == "program_of_thought":
        return (REASONING, "generated_code", "previous_code", "error", "final_generated_code", "code_output")
    if kind == "multi_chain_comparison":
        return (REASONING, *(f"reasoning_attempt_{i}" for i in range(1, (m or 0) + 1)), "rationale")
    if kind == "best_of_n":
        return reasoning
    if kind == "refine":
        return (*reasoning, HINT)
    return ()


def run_signature_name(pred: CheckedPredictor) -> str:
    """The name of the signature a predict or chain_of_thought predictor actually runs."""
    if pred.kind == "chain_of_thought":
        return f"{pred.signature.name}WithReasoning"
    return pred.signature.name


def attempt_signature_name(pred: CheckedPredictor) -> str:
    """The signature of the attempts of best_of_n, refine and multi_chain_comparison."""
    if pred.kind == "multi_chain_comparison" or pred.attempt == "chain_of_thought":
        return f"{pred.signature.name}WithReasoning"
    return pred.signature.name


def tool_call_union(pred: CheckedPredictor) -> str:
    """The name of a react predictor's discriminated union of call models."""
    return f"{pred.name}ToolCall"


def base_instructions(sig: CheckedSignature) -> str:
    """A signature's instructions, or DSPy's default sentence for its fields."""
    if sig.instructions:
        return sig.instructions
    from sigforge.runtime.adapters import default_instructions
    from sigforge.runtime.signature import FieldSpec

    return default_instructions(
        [FieldSpec(f.name, "") for f in sig.inputs], [FieldSpec(f.name, "") for f in sig.outputs]
    )


def _field(
    sig: CheckedSignature,
    name: str,
    direction: str,
    description: str = "",
    type_: SigType = _STR,
    prefix: str | None = None,
) -> CheckedField:
    return CheckedField(
        name=name,
        direction="in" if direction == "in" else "out",
        type=type_,
        description=description,
        constraints=(),
        has_default=False,
        default=None,
        span=sig.span,
        prefix=prefix,
    )


def _reasoning(sig: CheckedSignature) -> CheckedField:
    # DSPy gives the field no description of its own, so the prompt shows none.
    return _field(sig, REASONING, "out")


def _names(fields: tuple[CheckedField, ...] | list[str]) -> str:
    names = [f if isinstance(f, str) else f.name for f in fields]
    return ", ".join(f"`{name}`" for name in names)


def _derived(
    sig: CheckedSignature,
    name: str,
    inputs: tuple[CheckedField, ...],
    outputs: tuple[CheckedField, ...],
    instructions: str,
    note: str,
) -> CheckedSignature:
    return CheckedSignature(name, instructions, inputs, outputs, sig.span, extension_note=note)


def _with_reasoning(sig: CheckedSignature) -> CheckedSignature:
    return replace(
        sig,
        name=f"{sig.name}WithReasoning",
        outputs=(_reasoning(sig), *sig.outputs),
        extends=sig.name,
        extension_note=f"`{sig.name}` with a `reasoning` output first, for chain_of_thought.",
    )


# ---------------------------------------------------------------- react


def _tool_line(number: int, use: ToolUse) -> str:
    from pydantic_core import to_jsonable_python

    tool = use.tool
    params = []
    for p in tool.params:
        text = f"{p.name}: {p.type.source()}"
        if p.has_default:
            text += f" = {json.dumps(to_jsonable_python(p.default), ensure_ascii=False)}"
        params.append(text)
    line = f"({number}) {tool.name}({', '.join(params)}) -> {tool.returns.source()}"
    return f"{line}: {tool.description}" if tool.description else line


def react_instructions(pred: CheckedPredictor) -> str:
    """The step signature's instructions: the task, how a turn works, the tools."""
    sig = pred.signature
    inputs, outputs = _names(sig.inputs), _names(sig.outputs)
    given = f"the fields {inputs} and " if sig.inputs else ""
    lines = [
        f"{base_instructions(sig)}\n",
        "You are an agent. In each turn you are given "
        f"{given}the `{TRAJECTORY}` of your earlier turns, and you use tools to gather "
        f"what is needed to produce {outputs}.\n",
        "In each turn, first write a `thought`: reason about the situation so far and plan "
        "the next steps. Then choose `next_call`, exactly one tool call: a JSON object whose "
        f'"{CALL_DISCRIMINATOR}" key names the tool and whose other keys are the tool\'s '
        "arguments. The tool's result is added to your trajectory as an observation; an "
        "invalid call or a failing tool gives an error message as the observation instead.\n",
        "The tools are:",
        *(_tool_line(i, use) for i, use in enumerate(pred.tools, 1)),
        f"({len(pred.tools) + 1}) {FINISH_TOOL}(): call it when the trajectory holds "
        f"everything needed to produce {outputs}; it ends your turns.",
    ]
    return "\n".join(lines)


def _react(pred: CheckedPredictor, module: str) -> list[CheckedSignature]:
    sig = pred.signature
    trajectory = _field(
        sig, TRAJECTORY, "in", "Your earlier turns: each thought, tool call and observation"
    )
    call = DeclaredType("class", tool_call_union(pred), module)
    step = _derived(
        sig,
        f"{pred.name}Step",
        (*sig.inputs, trajectory),
        (
            _field(sig, "thought", "out", "Your reasoning about the situation and the next step"),
            _field(
                sig,
                "next_call",
                "out",
                f'The next tool call: a JSON object whose "{CALL_DISCRIMINATOR}" names the tool '
                f'("{FINISH_TOOL}" when done) and whose other keys are its arguments',
                call,
            ),
        ),
        react_instructions(pred),
        f"A turn of the react predictor `{pred.name}`: a thought and the next tool call.",
    )
    extract = _derived(
        sig,
        f"{pred.name}Extract",
        (*sig.inputs, trajectory),
        (_reasoning(sig), *sig.outputs),
        base_instructions(sig),
        f"The outputs of `{sig.name}` from the trajectory of the react predictor `{pred.name}`.",
    )
    return [step, extract]


# ---------------------------------------------------------------- program_of_thought

_CODE_RULES = (
    "The code runs on its own in a fresh Python process with only the standard library, "
    "no network and no files, and with limits on time and memory. Its output is what it "
    "prints: print the values needed for {outputs}. Do not read input; write the values "
    "you are given into the code."
)


def _program_of_thought(pred: CheckedPredictor) -> list[CheckedSignature]:
    sig = pred.signature
    outputs = _names(sig.outputs)
    lead = [sig.instructions, ""] if sig.instructions else []
    rules = _CODE_RULES.format(outputs=outputs)
    code = _field(sig, "generated_code", "out", "Python code that computes the answer and prints it", prefix="Code:")
    previous = _field(sig, "previous_code", "in", "The code of the previous attempt, which failed", prefix="Previous Code:")
    error = _field(sig, "error", "in", "What went wrong when the previous code ran", prefix="Error:")
    final_code = _field(sig, "final_generated_code", "in", "The Python code that ran", prefix="Code:")
    output = _field(sig, "code_output", "in", "What the code printed", prefix="Code Output:")
    given = f"{_names(sig.inputs)} and " if sig.inputs else ""
    generate = _derived(
        sig,
        f"{pred.name}Generate",
        sig.inputs,
        (_reasoning(sig), code),
        "\n".join(
            [
                *lead,
                f"You will be given {_names(sig.inputs) or 'no fields'} and you will respond with "
                "`reasoning` and `generated_code`.",
                f"Write executable Python code that computes {outputs}.",
                rules,
            ]
        ),
        f"Code generation of the program_of_thought predictor `{pred.name}`.",
    )
    regenerate = _derived(
        sig,
        f"{pred.name}Regenerate",
        (*sig.inputs, previous, error),
        (_reasoning(sig), code),
        "\n".join(
            [
                *lead,
                f"You are given {given}`previous_code`, which failed with `error`.",
                f"Correct the error and respond with new `generated_code` that computes {outputs}.",
                rules,
            ]
        ),
        f"Code repair of the program_of_thought predictor `{pred.name}`.",
    )
    answer = _derived(
        sig,
        f"{pred.name}Answer",
        (*sig.inputs, final_code, output),
        (_reasoning(sig), *sig.outputs),
        "\n".join(
            [
                *lead,
                f"Given {given}the `final_generated_code` and the `code_output` it printed, "
                f"provide {outputs}.",
            ]
        ),
        f"The final answer of the program_of_thought predictor `{pred.name}`.",
    )
    return [generate, regenerate, answer]


# ---------------------------------------------------------------- multi_chain_comparison


def _multi_chain_comparison(pred: CheckedPredictor) -> list[CheckedSignature]:
    # DSPy's MultiChainComparison: the attempts as inputs labelled "Student Attempt #i:",
    # then a `rationale` output first, labelled as the start of the corrected reasoning.
    sig = pred.signature
    attempts = tuple(
        _field(
            sig,
            f"reasoning_attempt_{i}",
            "in",
            "${reasoning attempt}",
            prefix=f"Student Attempt #{i}:",
        )
        for i in range(1, (pred.m or 0) + 1)
    )
    rationale = _field(
        sig,
        "rationale",
        "out",
        "${corrected reasoning}",
        prefix="Accurate Reasoning: Thank you everyone. Let's now holistically",
    )
    compare = _derived(
        sig,
        f"{pred.name}Compare",
        (*sig.inputs, *attempts),
        (rationale, *sig.outputs),
        base_instructions(sig),
        f"Compares {pred.m} reasoning attempts at `{sig.name}`, for the multi_chain_comparison "
        f"predictor `{pred.name}`.",
    )
    return [compare]


# ---------------------------------------------------------------- refine

FEEDBACK_INSTRUCTIONS = (
    "A module was run on the inputs below and its outputs were scored by a reward function. "
    "The reward fell short of the target threshold.\n"
    "In `discussion`, work out what in the outputs cost reward, given the reward function's "
    "code and the module's definition. Then give `advice`: concrete, actionable guidance for "
    "the module's next attempt on the same or similar inputs. The module will not see this "
    "attempt, so say exactly what to do differently, not only what went wrong."
)


def _refine(pred: CheckedPredictor, attempt: CheckedSignature) -> list[CheckedSignature]:
    sig = pred.signature
    hint = _field(sig, HINT, "in", "Advice from an earlier attempt at this task")
    hinted = CheckedSignature(
        f"{pred.name}Hinted",
        base_instructions(sig),
        (*attempt.inputs, hint),
        attempt.outputs,
        sig.span,
        extension_note=f"`{attempt.name}` with the advice of an earlier attempt as a `{HINT}` "
        f"input, for the refine predictor `{pred.name}`.",
        outputs_from=attempt.name,
    )

    def text(name: str, description: str, type_: SigType = _STR) -> CheckedField:
        return _field(sig, name, "in", description, type_)

    feedback = _derived(
        sig,
        f"{pred.name}Feedback",
        (
            text("module_definition", "The module's instructions and its input and output fields"),
            text("program_inputs", "The inputs the module was given, as JSON"),
            text("program_outputs", "The outputs the module produced, as JSON"),
            text("reward_code", "The code of the reward function that scored the outputs"),
            text("target_threshold", "The reward the outputs had to reach", Primitive("float")),
            text("reward_value", "The reward the outputs got", Primitive("float")),
        ),
        (
            _field(sig, "discussion", "out", "What in the outputs made the reward fall short, and why"),
            _field(sig, "advice", "out", "Concrete advice for the module's next attempt"),
        ),
        FEEDBACK_INSTRUCTIONS,
        f"Advice after an attempt below the threshold, for the refine predictor `{pred.name}`.",
    )
    return [hinted, feedback]


def extend(module: CheckedModule) -> CheckedModule:
    """Add the signatures the module's predictors run (each once, in first-use order)."""
    extended: dict[str, CheckedSignature] = {}

    def add(sig: CheckedSignature) -> None:
        extended.setdefault(sig.name, sig)

    for pred in module.predictors:
        sig = pred.signature
        if pred.kind == "chain_of_thought":
            add(_with_reasoning(sig))
        elif pred.kind == "react":
            for derived in _react(pred, module.module):
                add(derived)
        elif pred.kind == "program_of_thought":
            for derived in _program_of_thought(pred):
                add(derived)
        elif pred.kind == "multi_chain_comparison":
            add(_with_reasoning(sig))
            for derived in _multi_chain_comparison(pred):
                add(derived)
        elif pred.kind in ("best_of_n", "refine"):
            attempt = sig
            if pred.attempt == "chain_of_thought":
                attempt = _with_reasoning(sig)
                add(attempt)
            if pred.kind == "refine":
                for derived in _refine(pred, attempt):
                    add(derived)
    return replace(module, extended=tuple(extended.values()))
