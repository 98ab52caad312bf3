"""Base classes of generated predictors: run a signature through an adapter and an LM.

A generated predictor subclasses :class:`Predict` (or :class:`ChainOfThought`) with its
inputs and outputs models as type arguments and a typed keyword-only ``__call__`` that
builds the inputs model and calls :meth:`Predict.run`. Everything that is the same on
every call is either a generated constant or computed once and kept here; per call, only
the final user message is formatted and the reply parsed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar, cast, overload

from pydantic import BaseModel, TypeAdapter, ValidationError

from . import history
from ._version import __version__
from .adapters import ADAPTERS, Adapter, adapter_for
from .callbacks import Callback, module_ended, module_started
from .errors import OutputParseError, SigforgeError, StateError, TruncatedOutputError
from .lm import BaseLM
from .messages import Completion, LMRequest, Message
from .settings import current_adapter, current_lm
from .signature import AdapterPrompts, Signature
from .streaming import AsyncPredictionStream, PredictionStream, StreamedPrediction
from .trace import record

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)

#: Version of the JSON written by :meth:`Predict.save`.
STATE_VERSION = 2


def get_adapter(adapter: Adapter | str) -> Adapter:
    """An adapter instance from an instance or a name (``"chat"``, ``"json"``)."""
    return adapter if isinstance(adapter, Adapter) else adapter_for(adapter)


@dataclass(frozen=True, slots=True)
class Demo:
    """One worked example shown to the LM: field name -> value, inputs and outputs together.

    A demo may leave fields out (DSPy calls such demos partial); build complete, typed
    demos with :meth:`Predict.make_demo`.
    """

    values: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))


class Predict(Generic[InT, OutT]):
    """Runs one signature: format the prompt, call the LM, parse and validate the reply."""

    signature: ClassVar[type[Signature]]
    #: the adapter used when neither the predictor nor the settings name one
    default_adapter: ClassVar[str] = "chat"
    #: what ``sigforge freeze`` baked into the generated class: the optimized
    #: instructions, demos and the record of the optimization that made them. A new
    #: predictor starts from these unless given its own.
    frozen_instructions: ClassVar[str | None] = None
    frozen_demos: ClassVar[tuple[Mapping[str, Any], ...]] = ()
    frozen_optimization: ClassVar[Mapping[str, Any] | None] = None

    def __init__(
        self,
        *,
        lm: BaseLM | None = None,
        adapter: Adapter | str | None = None,
        instructions: str | None = None,
        demos: Iterable[Demo | Mapping[str, Any]] | None = None,
        callbacks: Sequence[Callback] = (),
        config: Mapping[str, Any] | None = None,
    ) -> None:
        """``instructions`` and ``demos`` default to the frozen ones (see
        :attr:`frozen_instructions`), else to the signature's instructions and no demos."""
        self.lm = lm
        #: request parameters for every call of this predictor (``temperature``, ``n``...),
        #: over the LM's own; a call's ``config`` wins over these. ``rollout_id`` is not
        #: sent: it asks for a separate answer to an identical request (see
        #: :attr:`~sigforge.runtime.messages.LMRequest.rollout_id`).
        self.config: dict[str, Any] = dict(config or {})
        #: callbacks that see this predictor's calls (besides those of the settings)
        self.callbacks = tuple(callbacks)
        self.adapter: Adapter | None = get_adapter(adapter) if adapter is not None else None
        self._instructions: str | None = None
        self._prompt_cache: dict[str, AdapterPrompts] = {}
        self._demo_cache: dict[str, list[Message]] = {}
        self._demos: tuple[Demo, ...] = ()
        self.instructions = self.frozen_instructions if instructions is None else instructions
        self.demos = list(self.frozen_demos if demos is None else demos)
        #: what made this program (optimizer, settings, seed, scores); saved with it
        self.optimization: dict[str, Any] | None = (
            None if self.frozen_optimization is None else copy.deepcopy(dict(self.frozen_optimization))
        )

    # ------------------------------------------------------------ instructions and demos
    @property
    def instructions(self) -> str:
        """The instructions in use: an override, or the signature's declared ones."""
        return self.signature.instructions if self._instructions is None else self._instructions

    @instructions.setter
    def instructions(self, value: str | None) -> None:
        self._instructions = None if value == self.signature.instructions else value
        self._prompt_cache.clear()

    @property
    def demos(self) -> list[Demo]:
        return list(self._demos)

    @demos.setter
    def demos(self, demos: Iterable[Demo | Mapping[str, Any]]) -> None:
        self._demos = tuple(self._validate_demo(d) for d in demos)
        self._demo_cache.clear()

    def make_demo(self, inputs: InT, outputs: OutT) -> Demo:
        """A complete demo from typed inputs and outputs."""
        return Demo({**dict(inputs), **dict(outputs)})

    @classmethod
    def _field_adapters(cls) -> dict[str, TypeAdapter[Any]]:
        cache: dict[str, TypeAdapter[Any]] | None = cls.__dict__.get("_field_adapter_cache")
        if cache is None:
            cache = {}
            for model in (cls.signature.inputs, cls.signature.outputs):
                for name, info in model.model_fields.items():
                    # the annotation with its constraints (ge, max_length, ...)
                    annotated = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
                    cache[name] = TypeAdapter(cast(Any, annotated))
            cls._field_adapter_cache = cache  # type: ignore[attr-defined]
        return cache

    def _validate_demo(self, demo: Demo | Mapping[str, Any]) -> Demo:
        values = demo.values if isinstance(demo, Demo) else demo
        adapters = self._field_adapters()
        checked: dict[str, Any] = {}
        for name, value in values.items():
            if name not in adapters:
                raise StateError(
                    f"demo field {name!r} is not a field of {self.signature.name} "
                    f"(fields: {', '.join(adapters)})"
                )
            try:
                checked[name] = adapters[name].validate_python(value)
            except ValidationError as exc:
                raise StateError(
                    f"demo field {name!r} of {self.signature.name}: {exc.errors()[0]['msg']}"
                ) from None
        return demo if isinstance(demo, Demo) and checked == dict(values) else Demo(checked)

    # ------------------------------------------------------------ prompt parts
    def _resolve_adapter(self) -> Adapter:
        if self.adapter is not None:
            return self.adapter
        configured = current_adapter()
        if configured is not None:
            return get_adapter(cast("Adapter | str", configured))
        return adapter_for(self.default_adapter)

    def _prompts(self, adapter: Adapter) -> AdapterPrompts:
        if self._instructions is None:
            precomputed = self.signature.prompts.get(adapter.name)
            if precomputed is not None:
                return precomputed
        parts = self._prompt_cache.get(adapter.name)
        if parts is None:
            sig = self.signature
            parts = adapter.prompts(sig.input_fields, sig.output_fields, self.instructions)
            self._prompt_cache[adapter.name] = parts
        return parts

    def _demo_messages(self, adapter: Adapter) -> list[Message]:
        if not self._demos:
            return []
        messages = self._demo_cache.get(adapter.name)
        if messages is None:
            sig = self.signature
            messages = adapter.format_demos(
                sig.input_fields, sig.output_fields, [d.values for d in self._demos]
            )
            self._demo_cache[adapter.name] = messages
        return messages

    def format(self, inputs: InT, adapter: Adapter | str | None = None) -> list[Message]:
        """The messages this predictor would send for ``inputs`` (copies: for inspection and tests)."""
        chosen = get_adapter(adapter) if adapter is not None else self._resolve_adapter()
        return [cast(Message, dict(m)) for m in self._request(inputs, chosen).messages]

    def _request(
        self, inputs: InT, adapter: Adapter, config: Mapping[str, Any] | None = None
    ) -> LMRequest:
        prompts = self._prompts(adapter)
        messages = adapter.messages(
            prompts.system,
            self._demo_messages(adapter),
            self.signature.input_fields,
            inputs.__dict__,
            prompts.output_request,
        )
        params = adapter.request_params(self.signature)
        if not (self.config or config):
            return LMRequest(tuple(messages), params)
        merged = {**self.config, **(config or {})}
        rollout_id = merged.pop("rollout_id", None)
        return LMRequest(tuple(messages), {**params, **merged}, rollout_id)

    # ------------------------------------------------------------ calling
    def _lm(self) -> BaseLM:
        return self.lm if self.lm is not None else current_lm()

    def run(self, inputs: InT, *, config: Mapping[str, Any] | None = None) -> OutT:
        """Predict the outputs for a validated inputs model.

        ``config`` adds request parameters for this call only (see :attr:`config`)."""
        call = module_started(type(self).__name__, self.signature.name, inputs, self.callbacks)
        try:
            lm = self._lm()
            adapter = self._resolve_adapter()
            completion = lm.complete(self._request(inputs, adapter, config))
            try:
                outputs = self._outputs(adapter, completion)
            except OutputParseError as exc:
                fallback = self._fallback(adapter, exc)
                completion = lm.complete(self._request(inputs, fallback, config))
                outputs = self._outputs(fallback, completion)
        except BaseException as error:
            module_ended(call, None, error)
            raise
        module_ended(call, outputs, None)
        record(self, inputs, outputs)
        return outputs

    async def arun(self, inputs: InT, *, config: Mapping[str, Any] | None = None) -> OutT:
        """Async :meth:`run`."""
        call = module_started(type(self).__name__, self.signature.name, inputs, self.callbacks)
        try:
            lm = self._lm()
            adapter = self._resolve_adapter()
            completion = await lm.acomplete(self._request(inputs, adapter, config))
            try:
                outputs = self._outputs(adapter, completion)
            except OutputParseError as exc:
                fallback = self._fallback(adapter, exc)
                completion = await lm.acomplete(self._request(inputs, fallback, config))
                outputs = self._outputs(fallback, completion)
        except BaseException as error:
            module_ended(call, None, error)
            raise
        module_ended(call, outputs, None)
        record(self, inputs, outputs)
        return outputs

    def _outputs(self, adapter: Adapter, completion: Completion) -> OutT:
        """The typed outputs of a whole reply; a reply cut off by the token limit is an error."""
        if completion.finish_reason == "length":
            raise TruncatedOutputError(
                f"{self.signature.name}: the LM reply was cut off by the token limit "
                f"(finish_reason 'length') and is not a complete answer; raise the LM's "
                f"max_tokens or shorten the prompt",
                field=None,
                expected=adapter.expected_structure(
                    [spec.name for spec in self.signature.output_fields]
                ),
                raw=completion.text,
            )
        parsed = adapter.parse_reply(self.signature, completion.text)
        if parsed.repairs:
            history.add_repairs(completion.call_id, parsed.repairs)
        return cast(OutT, parsed.outputs)

    # ------------------------------------------------------------ many calls
    @overload
    def batch(
        self,
        inputs: Iterable[InT | Mapping[str, Any]],
        *,
        concurrency: int = 8,
        return_exceptions: Literal[True] = True,
        progress: bool | None = None,
    ) -> list[OutT | SigforgeError]: ...

    @overload
    def batch(
        self,
        inputs: Iterable[InT | Mapping[str, Any]],
        *,
        concurrency: int = 8,
        return_exceptions: Literal[False],
        progress: bool | None = None,
    ) -> list[OutT]: ...

    def batch(
        self,
        inputs: Iterable[InT | Mapping[str, Any]],
        *,
        concurrency: int = 8,
        return_exceptions: bool = True,
        progress: bool | None = None,
    ) -> list[OutT | SigforgeError] | list[OutT]:
        """Predict for every inputs model with up to ``concurrency`` threads, in input order.

        With ``return_exceptions=True`` (the default) each item is its outputs or the
        :class:`SigforgeError` its prediction ended with; with ``False`` the first error
        is raised and no further items start. Mappings are validated as inputs first.
        ``progress`` shows a progress bar (default: when stderr is a terminal). See
        :mod:`sigforge.runtime.batch`.
        """
        from .batch import run_batch

        items = [self._as_inputs(item) for item in inputs]
        return run_batch(
            self.run,
            items,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            progress=progress,
            description=self.signature.name,
        )

    @overload
    async def abatch(
        self,
        inputs: Iterable[InT | Mapping[str, Any]],
        *,
        concurrency: int = 16,
        return_exceptions: Literal[True] = True,
        progress: bool | None = None,
    ) -> list[OutT | SigforgeError]: ...

    @overload
    async def abatch(
        self,
        inputs: Iterable[InT | Mapping[str, Any]],
        *,
        concurrency: int = 16,
        return_exceptions: Literal[False],
        progress: bool | None = None,
    ) -> list[OutT]: ...

    async def abatch(
        self,
        inputs: Iterable[InT | Mapping[str, Any]],
        *,
        concurrency: int = 16,
        return_exceptions: bool = True,
        progress: bool | None = None,
    ) -> list[OutT | SigforgeError] | list[OutT]:
        """Async :meth:`batch`: up to ``concurrency`` predictions in flight on this event loop."""
        from .batch import arun_batch

        items = [self._as_inputs(item) for item in inputs]
        return await arun_batch(
            self.arun,
            items,
            concurrency=concurrency,
            return_exceptions=return_exceptions,
            progress=progress,
            description=self.signature.name,
        )

    def _as_inputs(self, item: InT | Mapping[str, Any]) -> InT:
        if isinstance(item, BaseModel):
            return item
        return cast(InT, self.signature.inputs.model_validate(item))

    @staticmethod
    def _fallback(adapter: Adapter, exc: OutputParseError) -> Adapter:
        """The JSON adapter, once, when a chat reply had no usable structure; else re-raise."""
        if adapter.name == "chat" and exc.structural:
            return ADAPTERS["json"]
        raise exc

    # ------------------------------------------------------------ streaming
    def run_stream(self, inputs: InT) -> PredictionStream[Any, OutT]:
        """Stream the prediction for a validated inputs model: partial outputs as the
        reply arrives, then the outputs. The generated ``stream`` method types the
        partials as the signature's partial model; see :mod:`sigforge.runtime.streaming`."""
        return PredictionStream(self._streamed(inputs))

    def arun_stream(self, inputs: InT) -> AsyncPredictionStream[Any, OutT]:
        """Async :meth:`run_stream` (``async for`` over the partials, ``await final()``)."""
        return AsyncPredictionStream(self._streamed(inputs))

    def _streamed(self, inputs: InT) -> StreamedPrediction:
        """A streamed prediction taking this predictor's own steps (request, parse, fallback)."""
        return StreamedPrediction(
            self.signature,
            self._lm(),
            self._resolve_adapter(),
            request=lambda adapter: self._request(inputs, adapter),
            outputs=self._outputs,
            fallback=self._fallback,
        )

    # ------------------------------------------------------------ program
    def named_predictors(self) -> list[tuple[str, Predict[Any, Any]]]:
        """A lone predictor is a program of one predictor, named ``self`` (as in DSPy)."""
        return [("self", self)]

    def deepcopy(self) -> Self:
        """A copy whose instructions, demos and config change independently of this one.

        The LM, adapter and callbacks are shared: they are resources, not parameters.
        """
        new = copy.copy(self)
        new.config = dict(self.config)
        new._prompt_cache = {}
        new._demo_cache = {}
        new.optimization = copy.deepcopy(self.optimization)
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self.deepcopy()

    def reset_copy(self) -> Self:
        """A :meth:`deepcopy` without demos (what optimizers start from)."""
        new = self.deepcopy()
        new.demos = []
        return new

    # ------------------------------------------------------------ state
    def dump_state(self) -> dict[str, Any]:
        """Instructions and demos as JSON data, with the fields they were made for."""
        from pydantic_core import to_jsonable_python

        sig = self.signature
        return {
            "sigforge_state": STATE_VERSION,
            "runtime": __version__,
            "predictor": type(self).__name__,
            "signature": sig.name,
            "fields": {f.name: f.type_name for f in (*sig.input_fields, *sig.output_fields)},
            "instructions": self._instructions,
            "demos": [to_jsonable_python(dict(d.values)) for d in self._demos],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Take what :meth:`dump_state` wrote; the predictor is unchanged if it does not fit.

        The saved fields must still be the signature's fields, with the same types: a
        renamed, removed or retyped field is a :class:`StateError` naming each of them.
        """
        version = state.get("sigforge_state")
        if version not in (1, STATE_VERSION):
            raise StateError(
                f"unsupported state version {version!r} (this runtime reads versions 1 to "
                f"{STATE_VERSION})"
            )
        if state.get("signature") != self.signature.name:
            raise StateError(
                f"state was saved for signature {state.get('signature')!r}, "
                f"not {self.signature.name!r}"
            )
        self._check_fields(state.get("fields"))
        instructions = state.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise StateError("`instructions` in saved state must be a string or null")
        demos = state.get("demos", [])
        if not isinstance(demos, list) or not all(isinstance(d, dict) for d in demos):
            raise StateError("`demos` in saved state must be a list of objects")
        new_demos = [self._validate_demo(d) for d in demos]
        self.instructions = instructions
        self._demos = tuple(new_demos)
        self._demo_cache.clear()

    def _check_fields(self, saved: object) -> None:
        if saved is None:
            return  # version 1 did not record the fields; demos are still validated
        if not isinstance(saved, dict):
            raise StateError("`fields` in saved state must be an object of field name -> type")
        sig = self.signature
        now = {f.name: f.type_name for f in (*sig.input_fields, *sig.output_fields)}
        problems = [
            f"field `{name}` ({kind}) is no longer in the signature (renamed or removed?)"
            if name not in now
            else f"field `{name}` was `{kind}` when saved and is `{now[name]}` now"
            for name, kind in saved.items()
            if now.get(name) != kind
        ]
        if problems:
            raise StateError(
                f"saved state does not fit {sig.name} as generated now: "
                + "; ".join(problems)
                + " (re-run the optimizer, or regenerate from the `.sig` file it was made for)"
            )

    def save(self, path: str | Path) -> None:
        """Write instructions, demos and any optimization record as a program file
        (see :func:`sigforge.runtime.module.save_program`)."""
        from .module import save_program

        save_program(self, path)

    def load(self, path: str | Path) -> None:
        """Read what :meth:`save` wrote (or a bare predictor state); the predictor is
        unchanged if the file does not fit."""
        from .module import load_program

        load_program(self, path)


class ChainOfThought(Predict[InT, OutT]):
    """Predict over a signature extended at generation time with a leading ``reasoning`` output."""
