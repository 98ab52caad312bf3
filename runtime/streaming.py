"""Streaming predictions: typed partial outputs while the reply arrives, then the outputs.

A generated predictor's ``stream(...)`` returns a :class:`PredictionStream` (``astream``
an :class:`AsyncPredictionStream`). Iterating it yields instances of the signature's
generated *partial model* (``XOutputsPartial``: the same fields, each ``None`` until it
arrives, declared classes replaced by their own partial models) as fields arrive;
:meth:`PredictionStream.final` then gives the validated outputs model::

    stream = QuickAnswer().stream(question="Who wrote Dune?", context=passages)
    for partial in stream:       # AnswerQuestionOutputsPartial
        show(partial.answer)     # str | None, growing as text arrives
    out = stream.final()         # AnswerQuestionOutputs, parsed from the whole reply

Why an object rather than a generator that yields the partials and then the outputs: the
items stay one type (no ``isinstance`` on every item to tell the last one apart), the
outputs keep their exact type, and they are there even when nobody iterates
(``final()`` alone consumes the stream).

How partials are made (:class:`PartialParser`, which does no I/O):

- **Chat format** (``[[ ## name ## ]]`` sections): the text is split by
  :func:`~sigforge.runtime.adapters.parsing.split_chat`, the adapters' own splitter. A
  text field (``str``) appears as soon as its section begins and grows with the text
  (trailing text that may be the start of the next marker is held back until it is
  known). Any other field appears once its section is closed by the next marker, whole.
- **JSON format**: the object is read with pydantic-core's partial JSON parser
  (``from_json(..., allow_partial=...)``). Text fields grow with their string; every
  other field is read from the complete values only (an unfinished string or number is
  left out), so nested objects and lists fill in item by item but every scalar in them
  arrives whole.
- A reply of the other shape (JSON for the chat adapter, sections for the JSON one) is
  followed in that shape, as the adapters' parsers accept it too.
- Values go through the adapters' own coercion (the parse plan of
  :mod:`~sigforge.runtime.adapters.parsing`), then are validated by the partial model.
  A field whose value does not validate (yet) keeps its last valid value, or stays
  ``None``. Partial models carry no constraints: a prefix of a valid value may break a
  ``min_length`` or a pattern; constraints are checked on the final outputs.
- A partial is yielded only when it differs from the previous one. Each partial is a new
  object; keeping one is safe.

The final outputs are never assembled from partials: when the stream ends they are parsed
from the LM's complete reply by the predictor's normal path (the adapter's parse, a
truncated reply raising :class:`~sigforge.runtime.errors.TruncatedOutputError`, and the
chat format's one fallback to JSON). Before iteration ends, one last partial holding
exactly the final outputs' values is yielded (when it differs from the one before), so
the last partial a consumer shows is the answer. An error ends the iteration with that
typed error; :meth:`PredictionStream.final` raises it again.

**Restarts**: when the LM retries a broken stream from the start
(:class:`~sigforge.runtime.messages.StreamRestart`), or the chat format falls back to
JSON with a second request, everything received so far is dropped and the partials start
over: the next partial holds only what the new attempt has sent (it may have fewer
fields than the one before). :attr:`PredictionStream.restarts` counts these, so a
consumer can tell a fresh sequence from a regression.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from .adapters import Adapter, JSONAdapter
from .adapters.parsing import ParsePlan, parse_plan, split_chat
from .errors import ConfigurationError, OutputParseError
from .lm import BaseLM
from .messages import Completion, LMRequest, StreamEvent, StreamRestart, TextDelta
from .signature import Signature

__all__ = ["AsyncPredictionStream", "PartialParser", "PredictionStream", "StreamedPrediction"]

PartialT = TypeVar("PartialT", bound=BaseModel, covariant=True)
OutT = TypeVar("OutT", bound=BaseModel, covariant=True)

_COMPLETED = "completed"
#: characters a JSON number may end with while more of it is still to come
_NUMBER_CHARS = frozenset("0123456789+-.eE")


def _without_open_marker(text: str) -> str:
    """``text`` without a trailing ``[[`` that is not closed yet: it may become a marker."""
    start = text.rfind("[[")
    if start != -1 and "]]" not in text[start:]:
        return text[:start]
    return text[:-1] if text.endswith("[") else text


def _without_open_number(text: str) -> str:
    """``text`` without trailing number characters: ``12`` may still become ``123``."""
    end = len(text)
    while end and text[end - 1] in _NUMBER_CHARS:
        end -= 1
    return text[:end]


def partial_model(signature: type[Signature]) -> type[BaseModel]:
    """The signature's partial outputs model; a clear error for code generated before it."""
    model: type[BaseModel] | None = getattr(signature, "partial_outputs", None)
    if model is None:
        raise ConfigurationError(
            f"{signature.__name__} has no partial outputs model (it was generated by an "
            f"earlier sigforge): run `sigforge generate --full` to stream it"
        )
    return model


class PartialParser:
    """Partial outputs from the text of one reply as it grows; no I/O.

    :meth:`feed` takes each piece of text and returns a new partial (an instance of the
    signature's ``partial_outputs`` model) when the outputs seen so far changed, else
    None. :meth:`restart` forgets everything (the LM starts its answer over);
    :meth:`finish` gives the partial holding the final outputs. See the module docstring
    for what appears when.
    """

    def __init__(self, signature: type[Signature], adapter: Adapter) -> None:
        self._model = partial_model(signature)
        self._plan: ParsePlan = parse_plan(signature)
        self._fields = {field.name: field for field in self._plan.fields}
        outputs = signature.outputs.model_fields
        #: fields whose value grows with the text (plain ``str``)
        self._text_fields = frozenset(
            name for name in self._fields if outputs[name].annotation is str
        )
        self._sections = self._plan.names | {_COMPLETED}
        self._json_adapter = isinstance(adapter, JSONAdapter)
        self._empty = self._model()
        self.restart()

    def restart(self) -> None:
        """Forget the text and the partials so far."""
        self._text = ""
        #: "chat" or "json" once the reply's first characters tell
        self._shape: str | None = None
        #: the raw values of the last partial, to skip work when nothing changed
        self._raw: dict[str, Any] = {}
        #: the last value of each field that validated
        self._valid: dict[str, Any] = {}
        self._last = self._empty

    def feed(self, text: str) -> BaseModel | None:
        """Take more of the reply; the new partial when the outputs changed, else None."""
        self._text += text
        shape = self._shape or self._detect_shape()
        if shape is None:
            return None
        raw = self._chat_values() if shape == "chat" else self._json_values()
        if raw is None or raw == self._raw:
            return None
        self._raw = raw
        textual = shape == "chat"
        values = {name: self._coerce(name, value, textual) for name, value in raw.items()}
        return self._emit(self._validate(values))

    def finish(self, outputs: BaseModel) -> BaseModel | None:
        """The partial holding exactly the final ``outputs``, if it differs from the last."""
        return self._emit(self._model.model_validate(outputs.model_dump()))

    # ------------------------------------------------------------------ internals

    def _detect_shape(self) -> str | None:
        head = self._text.lstrip()[:2]
        if not head or head == "[":
            return None  # nothing yet, or maybe the start of a marker
        if self._json_adapter:
            self._shape = "chat" if head == "[[" else "json"
        else:
            self._shape = "json" if head[0] in "{`" else "chat"
        return self._shape

    def _chat_values(self) -> dict[str, Any]:
        """Raw section text: of closed sections, and of the open one for a text field."""
        sections = split_chat(_without_open_marker(self._text), self._sections, [])
        names = list(sections)
        values: dict[str, Any] = {}
        for index, name in enumerate(names):
            if name == _COMPLETED:
                continue
            if index + 1 < len(names) or name in self._text_fields:
                values[name] = sections[name]
        return values

    def _json_values(self) -> dict[str, Any] | None:
        """Raw JSON values: growing text for text fields, complete values for the others."""
        start = self._text.find("{")
        if start == -1:
            return {}
        body = self._text[start:]
        try:
            complete = from_json(_without_open_number(body), allow_partial=True)
            growing = from_json(body, allow_partial="trailing-strings") if self._text_fields else {}
        except ValueError:
            return None  # not JSON as it stands; the final parse repairs what it can
        if not isinstance(complete, dict) or not isinstance(growing, dict):
            return None
        values: dict[str, Any] = {}
        for name in self._fields:
            source = growing if name in self._text_fields else complete
            if name in source:
                values[name] = source[name]
        return values

    def _coerce(self, name: str, value: Any, textual: bool) -> Any:
        """The adapters' first-pass coercion of one raw value (unclear values as they are)."""
        try:
            return self._fields[name].coerce(value, textual, [])
        except ValueError:
            return value

    def _validate(self, values: dict[str, Any]) -> BaseModel:
        """The partial model of ``values``. A field that does not validate is coerced
        inside (the adapters' second pass, on data), else keeps its last valid value, else
        is left out."""
        for attempt in range(3):
            try:
                partial = self._model.model_validate(values)
            except ValidationError as error:
                failing = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
                for name in failing & values.keys():
                    deep = self._fields[name].deep
                    if attempt == 0 and deep is not None:
                        try:
                            values[name] = deep(values[name], False, [])
                            continue
                        except ValueError:
                            pass
                    if attempt < 2 and name in self._valid:
                        values[name] = self._valid[name]
                    else:
                        del values[name]
            else:
                self._valid.update((name, getattr(partial, name)) for name in values)
                return partial
        return self._model.model_validate(values)  # every failing field is gone by now

    def _emit(self, partial: BaseModel) -> BaseModel | None:
        if partial == self._last:
            return None
        self._last = partial
        return partial


class StreamedPrediction:
    """One streamed prediction's state, shared by the blocking and the async stream.

    Made by :meth:`Predict.run_stream`; not used directly.

    The predictor passes in its own steps (the request for an adapter, the outputs of a
    whole reply, the fallback adapter after a failed parse), so a streamed prediction
    takes exactly the decisions :meth:`Predict.run` takes.
    """

    def __init__(
        self,
        signature: type[Signature],
        lm: BaseLM,
        adapter: Adapter,
        *,
        request: Callable[[Adapter], LMRequest],
        outputs: Callable[[Adapter, Completion], BaseModel],
        fallback: Callable[[Adapter, OutputParseError], Adapter],
    ) -> None:
        self.signature = signature
        self.lm = lm
        self.adapter = adapter
        self.request = request
        self._outputs = outputs
        self._fallback = fallback
        self.parser = PartialParser(signature, adapter)
        self.restarts = 0
        self.completion: Completion | None = None
        self.output: BaseModel | None = None
        self._fell_back = False

    def on_event(self, event: StreamEvent) -> BaseModel | None:
        """Take one stream event; a new partial, if any."""
        if isinstance(event, TextDelta):
            return self.parser.feed(event.text)
        if isinstance(event, StreamRestart):
            self.parser.restart()
            self.restarts += 1
            return None
        self.completion = event
        return None

    def finish(self) -> bool:
        """After a stream ended: True when :attr:`output` is ready, False when the
        prediction goes on with the fallback adapter (a new stream, partials start over).
        Raises the typed error a failed prediction ends with."""
        completion = self.completion
        if completion is None:  # BaseLM.stream guarantees one; a broken LM does not
            raise AssertionError(f"{type(self.lm).__name__} ended a stream without a Completion")
        try:
            self.output = self._outputs(self.adapter, completion)
        except OutputParseError as error:
            if self._fell_back:
                raise
            self.adapter = self._fallback(self.adapter, error)  # re-raises without one
            self._fell_back = True
            self.restarts += 1
            self.completion = None
            self.parser = PartialParser(self.signature, self.adapter)
            return False
        return True


class PredictionStream(Generic[PartialT, OutT]):
    """Partial outputs of one prediction as its reply streams in, then the outputs.

    Iterate it (once) for the partials; call :meth:`final` for the outputs (it consumes
    whatever was not iterated). Nothing is sent before the first of the two. Use it as a
    context manager, or call :meth:`close`, to stop early and release the connection.
    """

    def __init__(self, prediction: StreamedPrediction) -> None:
        self._prediction = prediction
        self._partials: Iterator[PartialT] | None = None
        self._error: Exception | None = None

    @property
    def restarts(self) -> int:
        """How often the partials started over (see the module docstring)."""
        return self._prediction.restarts

    @property
    def completion(self) -> Completion | None:
        """The LM's whole answer (text, usage, finish reason), once the stream has ended."""
        return self._prediction.completion

    def __iter__(self) -> PredictionStream[PartialT, OutT]:
        return self

    def __next__(self) -> PartialT:
        if self._error is not None:
            raise StopIteration
        if self._partials is None:
            self._partials = self._run()
        try:
            return next(self._partials)
        except StopIteration:
            raise
        except Exception as error:
            self._error = error
            raise

    def final(self) -> OutT:
        """The validated outputs, parsed from the whole reply (waits for the end)."""
        for _ in self:
            pass
        if self._error is not None:
            raise self._error
        if self._prediction.output is None:
            raise RuntimeError("the stream was closed before its end")
        return cast(OutT, self._prediction.output)

    def close(self) -> None:
        """Stop receiving (the LM's stream is closed); later iteration yields nothing."""
        if self._partials is not None and inspect.isgenerator(self._partials):
            self._partials.close()
        self._partials = iter(())

    def __enter__(self) -> PredictionStream[PartialT, OutT]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> Iterator[PartialT]:
        prediction = self._prediction
        while True:
            events = prediction.lm.stream(prediction.request(prediction.adapter))
            try:
                for event in events:
                    partial = prediction.on_event(event)
                    if partial is not None:
                        yield cast(PartialT, partial)
            finally:
                if inspect.isgenerator(events):
                    events.close()
            if prediction.finish():
                break
        assert prediction.output is not None
        last = prediction.parser.finish(prediction.output)
        if last is not None:
            yield cast(PartialT, last)


class AsyncPredictionStream(Generic[PartialT, OutT]):
    """Async :class:`PredictionStream`: ``async for`` over the partials, ``await final()``."""

    def __init__(self, prediction: StreamedPrediction) -> None:
        self._prediction = prediction
        self._partials: AsyncIterator[PartialT] | None = None
        self._error: Exception | None = None
        self._closed = False

    @property
    def restarts(self) -> int:
        """How often the partials started over (see the module docstring)."""
        return self._prediction.restarts

    @property
    def completion(self) -> Completion | None:
        """The LM's whole answer (text, usage, finish reason), once the stream has ended."""
        return self._prediction.completion

    def __aiter__(self) -> AsyncPredictionStream[PartialT, OutT]:
        return self

    async def __anext__(self) -> PartialT:
        if self._error is not None or self._closed:
            raise StopAsyncIteration
        if self._partials is None:
            self._partials = self._run()
        try:
            return await anext(self._partials)
        except StopAsyncIteration:
            raise
        except Exception as error:
            self._error = error
            raise

    async def final(self) -> OutT:
        """The validated outputs, parsed from the whole reply (waits for the end)."""
        async for _ in self:
            pass
        if self._error is not None:
            raise self._error
        if self._prediction.output is None:
            raise RuntimeError("the stream was closed before its end")
        return cast(OutT, self._prediction.output)

    async def aclose(self) -> None:
        """Stop receiving (the LM's stream is closed); later iteration yields nothing."""
        self._closed = True
        if self._partials is not None and inspect.isasyncgen(self._partials):
            await self._partials.aclose()

    async def __aenter__(self) -> AsyncPredictionStream[PartialT, OutT]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _run(self) -> AsyncIterator[PartialT]:
        prediction = self._prediction
        while True:
            events = prediction.lm.astream(prediction.request(prediction.adapter))
            try:
                async for event in events:
                    partial = prediction.on_event(event)
                    if partial is not None:
                        yield cast(PartialT, partial)
            finally:
                if inspect.isasyncgen(events):
                    await events.aclose()
            if prediction.finish():
                break
        assert prediction.output is not None
        last = prediction.parser.finish(prediction.output)
        if last is not None:
            yield cast(PartialT, last)
