"""OpenTelemetry traces of predictor and LM calls (optional: ``pip install 'sigforge[otel]'``).

:func:`instrument` (or registering an :class:`OTelCallback` yourself) turns

* each predictor call into a span ``sigforge.predict <Signature>`` (kind internal) with
  ``sigforge.predictor``, ``sigforge.signature`` and ``sigforge.call_id``;
* each LM call into a child span ``sigforge.lm <model>`` (kind client) with the GenAI
  semantic-convention attributes: ``gen_ai.operation.name`` (``chat``),
  ``gen_ai.system`` and its newer name ``gen_ai.provider.name``, ``gen_ai.request.model``,
  ``gen_ai.request.temperature`` / ``max_tokens`` / ``top_p`` when the request sets
  them, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
  ``gen_ai.response.finish_reasons``; plus ``sigforge.cached`` (a cache hit made no
  request and has zero usage).

A call that raised gets status ``ERROR`` with the message, an ``error.type`` attribute
(the exception class) and an exception event; an LM error with an HTTP status also gets
``http.response.status_code``. Prompts and completions are not recorded.

Spans nest by sigforge's own call ids (an LM span's parent is the span of the module
call that made it), and a top-level predictor span is a child of whatever span is
current in OpenTelemetry's context, so sigforge's spans sit inside the application's.
While a sigforge span is open it is also the current OpenTelemetry span of the code
running inside it, so spans of other instrumentations made there (an HTTP client's, a
tool's) nest under it.

This module imports nothing from OpenTelemetry until a callback is made; without the
packages, that raises :class:`~sigforge.runtime.errors.ConfigurationError`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from . import settings
from ._version import __version__
from .callbacks import Callback, LMCall, ModuleCall
from .errors import ConfigurationError, LMError
from .messages import Completion

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from pydantic import BaseModel

__all__ = ["OTelCallback", "instrument", "uninstrument"]

_INSTALL_HINT = (
    "OpenTelemetry tracing needs the opentelemetry-api and opentelemetry-sdk packages: "
    "pip install 'sigforge[otel]'"
)

#: ``gen_ai.provider.name`` where it differs from sigforge's provider name
_PROVIDER_NAMES = {"gemini": "gcp.gemini"}

#: request parameters recorded as ``gen_ai.request.<name>``
_REQUEST_PARAMS = ("temperature", "max_tokens", "top_p")


class OTelCallback(Callback):
    """Records predictor and LM calls as OpenTelemetry spans.

    ``tracer_provider``: where spans go; ``None`` uses the global provider
    (``opentelemetry.trace.set_tracer_provider``). Thread-safe.
    """

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise ConfigurationError(_INSTALL_HINT) from exc
        self._tracer: Tracer = trace.get_tracer(
            "sigforge", __version__, tracer_provider=tracer_provider
        )
        self._lock = threading.Lock()
        # call id -> (span, the token of its attachment as the current span)
        self._open: dict[str, tuple[Span, Token[Context]]] = {}

    # -- the hooks ---------------------------------------------------------------------------

    def on_module_start(self, call: ModuleCall) -> None:
        self._start(
            call.call_id,
            call.parent_id,
            f"sigforge.predict {call.signature}",
            internal=True,
            attributes={
                "sigforge.predictor": call.predictor,
                "sigforge.signature": call.signature,
                "sigforge.call_id": call.call_id,
            },
        )

    def on_module_end(
        self, call: ModuleCall, outputs: BaseModel | None, error: BaseException | None
    ) -> None:
        self._end(call.call_id, error)

    def on_lm_request(self, call: LMCall) -> None:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": call.provider,
            "gen_ai.provider.name": _PROVIDER_NAMES.get(call.provider, call.provider),
            "gen_ai.request.model": call.model,
            "sigforge.call_id": call.call_id,
        }
        for name in _REQUEST_PARAMS:
            value = call.request.params.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                attributes[f"gen_ai.request.{name}"] = value
        name = f"sigforge.lm {call.model}"
        self._start(call.call_id, call.parent_id, name, internal=False, attributes=attributes)

    def on_lm_response(
        self, call: LMCall, completion: Completion | None, error: BaseException | None
    ) -> None:
        with self._lock:
            entry = self._open.get(call.call_id)
        if entry is not None and completion is not None:
            span = entry[0]
            if completion.model:
                span.set_attribute("gen_ai.response.model", completion.model)
            span.set_attribute("gen_ai.usage.input_tokens", completion.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", completion.usage.completion_tokens)
            if completion.finish_reason:
                span.set_attribute("gen_ai.response.finish_reasons", (completion.finish_reason,))
            span.set_attribute("sigforge.cached", completion.cached)
        self._end(call.call_id, error)

    # -- spans -------------------------------------------------------------------------------

    def _start(
        self,
        call_id: str,
        parent_id: str | None,
        name: str,
        *,
        internal: bool,
        attributes: dict[str, Any],
    ) -> None:
        from opentelemetry import context, trace

        with self._lock:
            parent = self._open.get(parent_id) if parent_id is not None else None
        parent_context: Context | None = (
            trace.set_span_in_context(parent[0]) if parent is not None else None
        )
        span = self._tracer.start_span(
            name,
            context=parent_context,  # None: the current context (the application's span)
            kind=trace.SpanKind.INTERNAL if internal else trace.SpanKind.CLIENT,
            attributes=attributes,
        )
        token = context.attach(trace.set_span_in_context(span))
        with self._lock:
            self._open[call_id] = (span, token)

    def _end(self, call_id: str, error: BaseException | None) -> None:
        from opentelemetry import context, trace

        with self._lock:
            entry = self._open.pop(call_id, None)
        if entry is None:
            return
        span, token = entry
        if error is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            span.set_attribute("error.type", type(error).__qualname__)
            if isinstance(error, LMError) and error.status is not None:
                span.set_attribute("http.response.status_code", error.status)
            span.record_exception(error)
        # Detach only where it was attached (the same thread or task): elsewhere the
        # token belongs to another context and detaching would corrupt this one.
        if trace.get_current_span() is span:
            context.detach(token)
        span.end()


def instrument(tracer_provider: TracerProvider | None = None) -> OTelCallback:
    """Trace every predictor and LM call of the process; returns the callback it registered.

    Adds an :class:`OTelCallback` to the process-wide callbacks (``configure``); to trace
    only a block, use ``with context(callbacks=[*current_callbacks(), OTelCallback()])``.
    Raises :class:`~sigforge.runtime.errors.ConfigurationError` without OpenTelemetry.
    """
    callback = OTelCallback(tracer_provider)
    # The process-wide list, not current_callbacks(): an active context()'s overrides
    # must not become process defaults.
    settings.configure(callbacks=[*settings._defaults.callbacks, callback])
    return callback


def uninstrument() -> None:
    """Remove every :class:`OTelCallback` from the process-wide callbacks."""
    kept = [c for c in settings._defaults.callbacks if not isinstance(c, OTelCallback)]
    settings.configure(callbacks=kept)
