"""``react``: an agent that reasons, calls typed tools and then answers (DSPy's ReAct).

For ``predictor Agent = react(TriageTicket, tools=[lookup_order, search_kb])`` the
generator writes, besides the tools' call models (``LookupOrderCall``: ``tool`` naming
the tool, then its typed arguments):

- ``AgentToolCall``: the discriminated union (on ``tool``) of the call models and
  :class:`Finish`;
- ``AgentTools``: a frozen dataclass with one attribute per tool, typed by the tool's
  protocols, so ``Agent(tools=AgentTools(lookup_order=..., search_kb=...))`` is checked by
  mypy against the declared parameter names and types (plain or ``async`` functions);
- ``AgentStep`` (the inputs and ``trajectory`` -> ``thought``, ``next_call``) run by
  ``AgentStepPredictor`` (a :class:`ReActStep`), and ``AgentExtract`` (the inputs and
  ``trajectory`` -> ``reasoning`` and the outputs) run by a ChainOfThought;
- ``AgentTrajectoryStep`` (``thought``, ``call``, ``observation``) and ``AgentOutputs``
  (the extract's outputs plus ``trajectory: list[AgentTrajectoryStep]``);
- ``Agent(ReAct[...])`` with typed ``forward``/``aforward``.

The loop (:meth:`ReAct._episode`) is DSPy's: up to ``max_iters`` turns, each a step
prediction followed by the tool call it chose; ``finish`` (or a reply with no usable
structure at all) ends the turns; then the extract predictor answers from the
trajectory. A call whose arguments do not validate, a call of an unknown tool and a tool
that raises are never raised to the caller: the error becomes the turn's observation, so
the model can correct itself. When the prompt outgrows the model's context
(:class:`ContextLengthError`), the oldest turns are left out of it, one at a time.

The trajectory is shown to the model as ``[[ ## ... ## ]]`` sections, per turn ``i``:
``thought_i``, ``next_call_i`` (the call as JSON) and ``observation_i`` (a tool's text
result as is, other results as JSON). See docs/modules.md.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..adapters.chat import ChatAdapter
from ..adapters.values import jsonable
from ..errors import ConfigurationError, ContextLengthError, OutputParseError
from ..module import Module
from ..predictors import InT, OutT, Predict
from ..signature import FieldSpec, Signature
from ._episode import Effect, Episode, adrive, drive, predict

if TYPE_CHECKING:
    from ..adapters import Adapter
    from ..callbacks import Callback
    from ..lm import BaseLM
    from ..messages import Completion
    from ..tools import ToolSpec

__all__ = ["Finish", "InvalidToolCall", "ReAct", "ReActStep", "ToolCallError", "format_trajectory"]

logger = logging.getLogger("sigforge")

ToolsT = TypeVar("ToolsT")

#: the observation of the ``finish`` call (DSPy's finish tool answers the same)
FINISHED = "Completed."
#: the step output holding the call
NEXT_CALL = "next_call"


class Finish(BaseModel):
    """Marks the task as complete: the trajectory now holds everything needed to produce the outputs."""

    model_config = ConfigDict(extra="forbid")
    tool: Literal["finish"]


class InvalidToolCall(BaseModel):
    """A tool call the model wrote that is not a valid call of one of its tools.

    Kept in the trajectory in place of the call; ``error`` (also the turn's
    observation) says what was wrong, ``written`` is the call as the reply had it."""

    model_config = ConfigDict(extra="forbid")
    #: the tool the call named, if it named one
    tool: str | None = None
    written: Any = None
    error: str


class ToolCallError(OutputParseError):
    """A step reply whose ``next_call`` is not a valid tool call (its other fields are fine).

    :class:`ReAct` feeds :attr:`problem` back to the model as the turn's observation;
    it reaches callers only of the step predictor itself."""

    def __init__(self, message: str, *, thought: str, written: Any, problem: str, raw: str, expected: str) -> None:
        super().__init__(message, field=NEXT_CALL, expected=expected, raw=raw)
        self.thought = thought
        self.written = written
        self.problem = problem


class ReActStep(Predict[InT, OutT]):
    """Base of the step predictors of react predictors (``thought``, ``next_call``).

    Like :class:`Predict`, but a reply whose ``next_call`` does not validate is a
    :class:`ToolCallError` carrying the thought and the call as written."""

    def _outputs(self, adapter: Adapter, completion: Completion) -> OutT:
        try:
            return super()._outputs(adapter, completion)
        except OutputParseError as error:
            if error.structural or error.field != NEXT_CALL:
                raise
            raise self._invalid_call(adapter, completion.text, error) from None

    def _invalid_call(self, adapter: Adapter, text: str, error: OutputParseError) -> OutputParseError:
        try:
            written = adapter.parse(_as_written(self.signature), text)
        except OutputParseError:
            return error
        values = dict(written)
        call = values[NEXT_CALL]
        try:
            self.signature.outputs.model_validate(values)
        except ValidationError as invalid:
            problem = _problem(invalid)
        else:  # pragma: no cover - the strict parse failed on this very value
            return error
        tool = call.get("tool") if isinstance(call, dict) else None
        return ToolCallError(
            str(error),
            thought=str(values.get("thought", "")),
            written=call,
            problem=f"Invalid call{f' of `{tool}`' if isinstance(tool, str) else ''}: {problem}",
            raw=text,
            expected=error.expected,
        )


_AS_WRITTEN: dict[type[Signature], type[Signature]] = {}


def _as_written(signature: type[Signature]) -> type[Signature]:
    """``signature`` with ``next_call`` taken as any JSON value, to read an invalid call."""
    made = _AS_WRITTEN.get(signature)
    if made is not None:
        return made
    fields: dict[str, Any] = {
        name: (Any, ...) if name == NEXT_CALL else (info.annotation, info)
        for name, info in signature.outputs.model_fields.items()
    }
    outputs = create_model(f"{signature.outputs.__name__}AsWritten", **fields)
    made = _AS_WRITTEN[signature] = type(f"{signature.__name__}AsWritten", (signature,), {"outputs": outputs})
    return made


def _problem(error: ValidationError) -> str:
    """The validation errors of a call, one clause each: ``order_id: String should ...``."""
    parts = []
    for detail in error.errors(include_url=False):
        location = [str(part) for part in detail["loc"]]
        if location[:1] == [NEXT_CALL]:
            location = location[2:] if len(location) > 1 else []  # drop the union member's tag
        where = ".".join(location)
        parts.append(f"{where}: {detail['msg']}" if where else detail["msg"])
    return "; ".join(parts)


# ---------------------------------------------------------------- tool calls


@dataclass(frozen=True, slots=True)
class _ToolOutcome:
    value: Any
    error: Exception | None


@dataclass(frozen=True, slots=True)
class CallsTool(Effect):
    """Call a tool with validated arguments; its exception is an outcome, not raised."""

    name: str
    function: Callable[..., Any]
    arguments: dict[str, Any]

    def run(self) -> _ToolOutcome:
        try:
            result = self.function(**self.arguments)
        except Exception as error:
            return _ToolOutcome(None, error)
        if not inspect.isawaitable(result):
            return _ToolOutcome(result, None)
        return _run_to_completion(self.name, result)

    async def arun(self) -> _ToolOutcome:
        try:
            result = self.function(**self.arguments)
            if inspect.isawaitable(result):
                result = await result
        except Exception as error:
            return _ToolOutcome(None, error)
        return _ToolOutcome(result, None)


def _run_to_completion(name: str, awaitable: Awaitable[Any]) -> _ToolOutcome:
    """An async tool under a blocking call: run it on an event loop of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise ConfigurationError(
            f"the tool `{name}` is async and the agent was called without await inside a "
            "running event loop; use `await agent.acall(...)` there"
        )

    async def wait() -> Any:
        return await awaitable

    try:
        return _ToolOutcome(asyncio.run(wait()), None)
    except Exception as error:
        return _ToolOutcome(None, error)


def observation_text(value: Any) -> str:
    """A tool's result as the model reads it: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


def format_trajectory(turns: Sequence[Any], first: int = 0) -> str:
    """The turns as the step and extract prompts show them (``thought_i``, ``next_call_i``,
    ``observation_i`` sections); ``first`` numbers the first turn (after truncation)."""
    specs: list[FieldSpec] = []
    values: dict[str, str] = {}
    for index, turn in enumerate(turns, first):
        call = turn.call
        written = call.written if isinstance(call, InvalidToolCall) else call.model_dump(mode="json")
        for key, text in (
            (f"thought_{index}", turn.thought),
            (f"{NEXT_CALL}_{index}", json.dumps(jsonable(written), ensure_ascii=False)),
            (f"observation_{index}", turn.observation),
        ):
            specs.append(FieldSpec(key, "str"))
            values[key] = text
    return _FORMAT.format_user(specs, values, None)


_FORMAT = ChatAdapter()


# ---------------------------------------------------------------- the module


class ReAct(Module, Generic[InT, OutT, ToolsT]):
    """Base class of generated react predictors (see the module docstring).

    ``tools`` is the generated tools dataclass (``AgentTools``); ``max_iters`` bounds the
    turns (default: the ``.sig`` file's, else DSPy's 20); ``lm``, ``adapter`` and
    ``callbacks`` go to both inner predictors (``step`` and ``extract``), which an
    optimizer sees through :meth:`named_predictors` and tunes like any predictor.
    """

    signature: ClassVar[type[Signature]]
    tool_specs: ClassVar[tuple[type[ToolSpec], ...]]
    step_predictor: ClassVar[type[ReActStep[Any, Any]]]
    extract_predictor: ClassVar[type[Predict[Any, Any]]]
    #: ``AgentOutputs`` and ``AgentTrajectoryStep``
    outputs_model: ClassVar[type[BaseModel]]
    trajectory_step: ClassVar[type[BaseModel]]
    default_max_iters: ClassVar[int] = 20

    def __init__(
        self,
        *,
        tools: ToolsT,
        max_iters: int | None = None,
        lm: BaseLM | None = None,
        adapter: Adapter | str | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        missing = [s.name for s in self.tool_specs if not callable(getattr(tools, s.name, None))]
        if missing:
            raise ConfigurationError(
                f"{type(self).__name__}: no function for the tool(s) {', '.join(missing)}"
            )
        self.tools = tools
        self.max_iters = self.default_max_iters if max_iters is None else max_iters
        if self.max_iters < 1:
            raise ValueError("max_iters must be at least 1")
        self.step = self.step_predictor(lm=lm, adapter=adapter, callbacks=callbacks)
        self.extract = self.extract_predictor(lm=lm, adapter=adapter, callbacks=callbacks)

    def run(self, inputs: InT) -> OutT:
        """Run the agent on validated inputs (the generated ``forward`` builds them)."""
        return drive(self._episode(inputs))

    async def arun(self, inputs: InT) -> OutT:
        """Async :meth:`run`: async tools are awaited, plain ones called."""
        return await adrive(self._episode(inputs))

    def _episode(self, inputs: InT) -> Episode[OutT]:
        values = dict(inputs)
        turns: list[BaseModel] = []
        shown = [0]  # the first turn still shown in prompts (after context overflows)
        for _ in range(self.max_iters):
            try:
                step = yield from self._with_trajectory(self.step, values, turns, shown)
            except ToolCallError as invalid:
                call = InvalidToolCall(
                    tool=_named_tool(invalid.written), written=invalid.written, error=invalid.problem
                )
                turns.append(self.trajectory_step(thought=invalid.thought, call=call, observation=invalid.problem))
                continue
            except OutputParseError as error:
                # as DSPy: a reply that picks no tool at all ends the turns
                logger.warning("%s: ending the turns, the step reply has no usable call: %s", type(self).__name__, error)
                break
            call = step.next_call
            if isinstance(call, Finish):
                turns.append(self.trajectory_step(thought=step.thought, call=call, observation=FINISHED))
                break
            observation = yield from self._call(call)
            turns.append(self.trajectory_step(thought=step.thought, call=call, observation=observation))
        extracted = yield from self._with_trajectory(self.extract, values, turns, shown)
        return cast(OutT, self.outputs_model(**dict(extracted), trajectory=turns))

    def _with_trajectory(
        self, predictor: Predict[Any, Any], values: dict[str, Any], turns: list[BaseModel], shown: list[int]
    ) -> Episode[Any]:
        """Run ``predictor`` on the inputs and the trajectory; on a context overflow leave
        the oldest turn out of the prompt and try again (the trajectory keeps it)."""
        while True:
            text = format_trajectory(turns[shown[0] :], shown[0])
            inputs = predictor.signature.inputs(**values, trajectory=text)
            try:
                return (yield from predict(predictor, inputs))
            except ContextLengthError:
                if shown[0] >= len(turns):
                    raise
                shown[0] += 1
                logger.warning(
                    "%s: the prompt exceeds the context window; leaving out the oldest turn",
                    type(self).__name__,
                )

    def _call(self, call: Any) -> Episode[str]:
        name = cast(str, call.tool)
        arguments = {key: getattr(call, key) for key in type(call).model_fields if key != "tool"}
        outcome: _ToolOutcome = yield CallsTool(name, getattr(self.tools, name), arguments)
        if outcome.error is not None:
            error = outcome.error
            return f"Execution error in {name}: {type(error).__name__}: {error}"
        return observation_text(outcome.value)


def _named_tool(written: Any) -> str | None:
    tool = written.get("tool") if isinstance(written, dict) else None
    return tool if isinstance(tool, str) else None
