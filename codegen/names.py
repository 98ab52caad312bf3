"""The one table of Python names the generated code uses besides the user's own.

The checks reserve these names and the IR emits them, so the two cannot disagree.
"""

from __future__ import annotations

from . import ast

#: what generated modules may import from ``sigforge.runtime``
RUNTIME_NAMES = (
    "AdapterPrompts",
    "ChainOfThought",
    "FieldSpec",
    "Image",
    "Predict",
    "Signature",
    "ToolSpec",
    "check_generated_version",
)

#: what generated modules import from ``sigforge.runtime.streaming`` (the return types of
#: the ``stream`` / ``astream`` methods of predictors)
STREAMING_NAMES = ("AsyncPredictionStream", "PredictionStream")

#: the suffix of partial models: ``XOutputsPartial`` for a signature's outputs and
#: ``CitationPartial`` for a declared class (see :func:`partial_name`)
PARTIAL_SUFFIX = "Partial"


def camel(name: str) -> str:
    """``search_web`` -> ``SearchWeb``; names already in CamelCase keep their capitals."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def partial_name(name: str) -> str:
    """The model of ``name``'s values while they stream in: every field optional."""
    return f"{name}{PARTIAL_SUFFIX}"


def tool_class_names(tool: str) -> tuple[str, str, str]:
    """The arguments model, the function protocol and the tool class of a tool."""
    base = camel(tool) or "Tool"
    return f"{base}Args", f"{base}Function", f"{base}Tool"


def generated_names(decl: ast.Declaration) -> tuple[str, ...]:
    """The top-level names a declaration generates in its module.

    The ``WithReasoning`` names are reserved for every signature, whether or not a
    chain_of_thought predictor uses it, so adding one never renames anything. Every class
    has a partial model (``CitationPartial``), whether or not an output uses it: the
    declaring module cannot know how the modules importing the class will use it."""
    if isinstance(decl, ast.PredictorDecl | ast.EnumDecl):
        return (decl.name,)
    if isinstance(decl, ast.ClassDecl):
        return (decl.name, partial_name(decl.name))
    if isinstance(decl, ast.ToolDecl):
        return tool_class_names(decl.name)
    base = decl.name
    return (
        base,
        f"{base}Inputs",
        f"{base}Outputs",
        partial_name(f"{base}Outputs"),
        f"{base}WithReasoning",
        f"{base}WithReasoningOutputs",
        partial_name(f"{base}WithReasoningOutputs"),
    )
