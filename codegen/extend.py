"""Signature extension per module kind, done at generation time so mypy sees the result.

``chain_of_thought(Sig)`` runs an extended signature ``SigWithReasoning`` whose outputs
start with ``reasoning: str``, exactly as DSPy's ChainOfThought extends its signature.
``predict(Sig)`` runs ``Sig`` unchanged.
"""

from __future__ import annotations

from dataclasses import replace

from .model import CheckedField, CheckedModule, CheckedPredictor, CheckedSignature
from .types import Primitive

REASONING = "reasoning"


def run_signature_name(pred: CheckedPredictor) -> str:
    """The name of the signature a predictor actually runs."""
    if pred.kind == "chain_of_thought":
        return f"{pred.signature.name}WithReasoning"
    return pred.signature.name


def _with_reasoning(sig: CheckedSignature) -> CheckedSignature:
    reasoning = CheckedField(
        name=REASONING,
        direction="out",
        type=Primitive("str"),
        # DSPy gives the field no description of its own, so the prompt shows none.
        description="",
        constraints=(),
        has_default=False,
        default=None,
        span=sig.span,
    )
    return replace(
        sig,
        name=f"{sig.name}WithReasoning",
        outputs=(reasoning, *sig.outputs),
        extends=sig.name,
        extension_note=f"`{sig.name}` with a `reasoning` output first, for chain_of_thought.",
    )


def extend(module: CheckedModule) -> CheckedModule:
    """Add the extended signatures the module's predictors need (each once, in first-use order)."""
    extended: dict[str, CheckedSignature] = {}
    for pred in module.predictors:
        if pred.kind == "chain_of_thought" and run_signature_name(pred) not in extended:
            extended[run_signature_name(pred)] = _with_reasoning(pred.signature)
    return replace(module, extended=tuple(extended.values()))
