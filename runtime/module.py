"""User pipelines built from generated predictors, and programs saved as plain data.

A *program* is either one generated predictor or a :class:`Module`: an ordinary Python
class whose attributes hold predictors (directly, inside lists, tuples or dicts, or
inside other modules) and whose ``forward`` composes them::

    class RAG(Module):
        def __init__(self, retriever: Retriever) -> None:
            self.retriever = retriever
            self.answer = Answerer()

        def forward(self, *, question: str) -> AnswerQuestionWithReasoningOutputs:
            passages = self.retriever.retrieve(question, k=3)
            return self.answer(context=[p.text for p in passages], question=question)

``rag(question=...)`` calls ``forward`` and is type-checked against it (a misspelled
keyword or a wrong type is a mypy error), ``await rag.acall(...)`` calls ``aforward``.

Optimizers see a program through :meth:`Module.named_predictors` (the predictors in
attribute order, with dotted names such as ``answer`` or ``hops[1]``), copy it with
:meth:`Module.deepcopy` (parameters copied, resources such as LMs and retrievers
shared), and save it with :func:`save_program`: one versioned JSON file holding every
predictor's instructions and demos plus the record of the optimization that made them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, Self, TypeVar

from ._version import __version__
from .callbacks import ModuleCall, module_ended, module_started
from .errors import StateError
from .predictors import Predict

if TYPE_CHECKING:
    from .lm import BaseLM

__all__ = ["PROGRAM_VERSION", "Module", "Program", "load_program", "save_program"]

#: Version of the program files written by :func:`save_program`.
PROGRAM_VERSION = 1

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class _HasForward(Protocol[P, R_co]):
    def forward(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...


class _HasAforward(Protocol[P, R_co]):
    def aforward(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R_co]: ...


class Module:
    """Base class of user pipelines: define ``forward`` (and ``aforward`` for async use).

    Subclasses need no ``__init__`` call to this class; it keeps no state of its own but
    the :attr:`optimization` record an optimizer leaves on the programs it returns.
    """

    #: what made this program (optimizer, settings, seed, scores); saved with it
    optimization: dict[str, Any] | None = None

    def __call__(self: _HasForward[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``forward``; module callbacks see the call."""
        call = _module_call(self, kwargs)
        try:
            result = self.forward(*args, **kwargs)
        except BaseException as error:
            module_ended(call, None, error)
            raise
        module_ended(call, result, None)
        return result

    async def acall(self: _HasAforward[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``aforward``; module callbacks see the call."""
        call = _module_call(self, kwargs)
        try:
            result = await self.aforward(*args, **kwargs)
        except BaseException as error:
            module_ended(call, None, error)
            raise
        module_ended(call, result, None)
        return result

    # ------------------------------------------------------------ parts
    def named_predictors(self) -> list[tuple[str, Predict[Any, Any]]]:
        """Every predictor reachable from this module's attributes, once, in attribute order.

        Names are attribute paths: ``answer``, ``hops[0]``, ``tools['search']``,
        ``inner.answer``. A predictor reachable twice is listed under its first name.
        """
        found: list[tuple[str, Predict[Any, Any]]] = []
        seen: set[int] = {id(self)}
        for name, value in _attributes(self):
            _collect(name, value, found, seen)
        return found

    def predictors(self) -> list[Predict[Any, Any]]:
        return [predictor for _, predictor in self.named_predictors()]

    def set_lm(self, lm: BaseLM | None) -> None:
        """Make every predictor use ``lm`` (``None``: the configured LM again).

        For one predictor only, set its ``lm`` attribute: ``pipeline.answer.lm = big_lm``.
        """
        for predictor in self.predictors():
            predictor.lm = lm

    # ------------------------------------------------------------ copies
    def deepcopy(self) -> Self:
        """A copy whose predictors (and sub-modules) change independently of this one.

        Predictors and modules are copied, also inside lists, tuples and dicts; every
        other attribute (LMs, retrievers, clients, configuration) is shared, so a copy
        never opens a second connection or duplicates an index.
        """
        return self._copy({id(self): None})

    def reset_copy(self) -> Self:
        """A :meth:`deepcopy` whose predictors have no demos (what optimizers start from)."""
        new = self.deepcopy()
        for predictor in new.predictors():
            predictor.demos = []
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self.deepcopy()

    def _copy(self, memo: dict[int, Any]) -> Self:
        new = copy.copy(self)
        memo[id(self)] = new
        for name, value in _attributes(self):
            setattr(new, name, _copied(value, memo))
        new.optimization = copy.deepcopy(self.optimization)
        return new

    # ------------------------------------------------------------ state
    def dump_state(self) -> dict[str, Any]:
        """Every predictor's state by name (see :meth:`Predict.dump_state`)."""
        return {name: predictor.dump_state() for name, predictor in self.named_predictors()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Load :meth:`dump_state` output; nothing changes unless every predictor fits."""
        _load_predictor_states(self, state, "state")

    def save(self, path: str | Path) -> None:
        """Write the program file (see :func:`save_program`)."""
        save_program(self, path)

    def load(self, path: str | Path) -> None:
        """Read a program file (see :func:`load_program`)."""
        load_program(self, path)


#: Anything optimizers and :func:`save_program` work on.
Program = Module | Predict[Any, Any]


def save_program(program: Program, path: str | Path) -> None:
    """Write ``program`` as versioned JSON: every predictor's state, plus its optimization record.

    The file is the optimized program as data: ``instructions`` and ``demos`` per
    predictor, the fields each was made for (so loading into a changed signature is a
    clear error), and ``optimization``: the optimizer, its settings, seed and scores.
    """
    data = {
        "sigforge_program": PROGRAM_VERSION,
        "runtime": __version__,
        "program": type(program).__name__,
        "predictors": {name: p.dump_state() for name, p in program.named_predictors()},
        "optimization": program.optimization,
    }
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    target = Path(path)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)


def read_program_file(path: str | Path) -> dict[str, Any]:
    """The JSON object of a program file (or of a single predictor's saved state)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StateError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StateError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise StateError(f"{path}: expected a JSON object")
    return data


def load_program(program: Program, path: str | Path) -> None:
    """Load a program file into ``program``; nothing changes unless all of it fits.

    Every predictor of the program must have a state in the file and the reverse; each
    state is validated against the generated signature (see :meth:`Predict.load_state`).
    A lone predictor also loads a file holding just its own state.
    """
    data = read_program_file(path)
    if "sigforge_program" not in data:
        if isinstance(program, Predict) and "sigforge_state" in data:
            program.load_state(data)
            return
        raise StateError(f"{path}: not a sigforge program file (no `sigforge_program` key)")
    if data["sigforge_program"] != PROGRAM_VERSION:
        raise StateError(
            f"{path}: unsupported program file version {data['sigforge_program']!r} "
            f"(this runtime reads version {PROGRAM_VERSION})"
        )
    states = data.get("predictors")
    if not isinstance(states, dict):
        raise StateError(f"{path}: `predictors` must be an object of name -> state")
    optimization = data.get("optimization")
    if optimization is not None and not isinstance(optimization, dict):
        raise StateError(f"{path}: `optimization` must be an object or null")
    _load_predictor_states(program, states, str(path))
    program.optimization = optimization


def _load_predictor_states(program: Program, states: dict[str, Any], where: str) -> None:
    named = dict(program.named_predictors())
    missing = [name for name in named if name not in states]
    extra = [name for name in states if name not in named]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no state for {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"states for predictors the program does not have: {', '.join(map(repr, extra))}")
        raise StateError(f"{where}: does not fit {type(program).__name__}: {'; '.join(parts)}")
    # validate everything on copies first, so a bad file changes nothing
    trial = {name: predictor.deepcopy() for name, predictor in named.items()}
    for name, copy_ in trial.items():
        state = states[name]
        if not isinstance(state, dict):
            raise StateError(f"{where}: state of {name!r} must be an object")
        try:
            copy_.load_state(state)
        except StateError as exc:
            raise StateError(f"{where}: predictor {name!r}: {exc}") from None
    for name, predictor in named.items():
        predictor.load_state(states[name])


# ---------------------------------------------------------------- helpers
def _module_call(module: object, kwargs: dict[str, Any]) -> ModuleCall | None:
    return module_started(type(module).__name__, "", kwargs)


def _attributes(obj: object) -> Iterator[tuple[str, Any]]:
    yield from (
        (name, value) for name, value in vars(obj).items() if name != "optimization"
    )


def _collect(
    name: str, value: Any, found: list[tuple[str, Predict[Any, Any]]], seen: set[int]
) -> None:
    if id(value) in seen:
        return
    if isinstance(value, Predict):
        seen.add(id(value))
        found.append((name, value))
    elif isinstance(value, Module):
        seen.add(id(value))
        for sub, item in _attributes(value):
            _collect(f"{name}.{sub}", item, found, seen)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _collect(f"{name}[{index}]", item, found, seen)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(f"{name}[{key!r}]", item, found, seen)


def _copied(value: Any, memo: dict[int, Any]) -> Any:
    if id(value) in memo and memo[id(value)] is not None:
        return memo[id(value)]
    if isinstance(value, Predict):
        new_predictor = value.deepcopy()
        memo[id(value)] = new_predictor
        return new_predictor
    if isinstance(value, Module):
        return value._copy(memo)
    if isinstance(value, list):
        return [_copied(item, memo) for item in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_copied(item, memo) for item in value)
    if isinstance(value, dict):
        return {key: _copied(item, memo) for key, item in value.items()}
    return value
