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

#: what generated modules import from ``sigforge.runtime.modules``: the base classes of the
#: module kinds beyond predict and chain_of_thought, and the models their outputs use
MODULE_KIND_NAMES = (
    "BestOfN",
    "Finish",
    "InvalidToolCall",
    "MultiChainComparison",
    "ProgramOfThought",
    "ReAct",
    "ReActStep",
    "Refine",
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


def tool_class_names(tool: str) -> tuple[str, str, str, str, str]:
    """The arguments model, the function protocols (plain and async), the tool class and
    the call model (``tool`` naming it, then the arguments: one member of a react
    predictor's tool-call union) of a tool."""
    base = camel(tool) or "Tool"
    return f"{base}Args", f"{base}Function", f"{base}AsyncFunction", f"{base}Tool", f"{base}Call"


def signature_names(base: str) -> tuple[str, str, str, str]:
    """The signature class ``base`` and its inputs, outputs and partial outputs models."""
    return base, f"{base}Inputs", f"{base}Outputs", partial_name(f"{base}Outputs")


#: per module kind, the inner predictors it runs (its roles, in attribute order) and
#: whether each role runs a signature of its own (named ``<Predictor><Role>``); the
#: inner predictor class of a role is ``<Predictor><Role>Predictor`` and the instance
#: attribute is the role in lower case
KIND_ROLES: dict[str, tuple[tuple[str, bool], ...]] = {
    "react": (("Step", True), ("Extract", True)),
    "program_of_thought": (("Generate", True), ("Regenerate", True), ("Answer", True)),
    "multi_chain_comparison": (("Attempt", False), ("Compare", True)),
    "best_of_n": (("Attempt", False),),
    "refine": (("Attempt", False), ("Hinted", True), ("Feedback", True)),
}

#: the names a react predictor ``P`` generates besides its roles': ``PToolCall`` (the
#: discriminated union of the call models), ``PTools`` (the implementations),
#: ``PTrajectoryStep`` and ``POutputs``
REACT_SUFFIXES = ("ToolCall", "Tools", "TrajectoryStep", "Outputs")


def inner_predictor_name(predictor: str, role: str) -> str:
    return f"{predictor}{role}Predictor"


def predictor_names(name: str, kind: str) -> tuple[str, ...]:
    """The top-level names a predictor of ``kind`` generates (see :data:`KIND_ROLES`)."""
    names = [name]
    for role, own_signature in KIND_ROLES.get(kind, ()):
        names.append(inner_predictor_name(name, role))
        if own_signature:
            names += signature_names(f"{name}{role}")
    if kind == "react":
        names += [f"{name}{suffix}" for suffix in REACT_SUFFIXES]
    return tuple(names)


def generated_names(decl: ast.Declaration) -> tuple[str, ...]:
    """The top-level names a declaration generates in its module.

    The ``WithReasoning`` names are reserved for every signature, whether or not a
    chain_of_thought predictor uses it, so adding one never renames anything. Every class
    has a partial model (``CitationPartial``), whether or not an output uses it: the
    declaring module cannot know how the modules importing the class will use it."""
    if isinstance(decl, ast.PredictorDecl):
        return predictor_names(decl.name, decl.kind)
    if isinstance(decl, ast.EnumDecl):
        return (decl.name,)
    if isinstance(decl, ast.ClassDecl):
        return (decl.name, partial_name(decl.name))
    if isinstance(decl, ast.ToolDecl):
        return tool_class_names(decl.name)
    base = decl.name
    return (
        *signature_names(base),
        f"{base}WithReasoning",
        f"{base}WithReasoningOutputs",
        partial_name(f"{base}WithReasoningOutputs"),
    )
