"""OpenTelemetry spans of predictor and LM calls, recorded by the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from sigforge.runtime.callbacks import lm_requested, lm_responded, module_ended, module_started
from sigforge.runtime.errors import ConfigurationError, ServerError
from sigforge.runtime.messages import Completion, LMRequest, Usage
from sigforge.runtime.otel import OTelCallback, instrument, uninstrument
from sigforge.runtime.settings import configure, context, current_callbacks


class Question(BaseModel):
    question: str


class Answer(BaseModel):
    answer: str


REQUEST = LMRequest(
    ({"role": "user", "content": "Who wrote Dune?"},),
    {"temperature": 0.2, "max_tokens": 64, "response_format": {"type": "json_object"}},
)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """A tracer provider of its own (never the global one) exporting to memory, instrumented."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    configure(callbacks=[])
    instrument(provider)
    yield memory
    configure(callbacks=[])
    provider.shutdown()


def predict(signature: str = "AnswerQuestion", *, fail_lm: bool = False, cached: bool = False) -> None:
    call = module_started(f"{signature}Predictor", signature, Question(question="q"))
    try:
        lm_call = lm_requested("gpt-4o-mini", "openai", REQUEST)
        if fail_lm:
            error = ServerError("HTTP 503 from the server", status=503, provider="openai")
            lm_responded(lm_call, None, error)
            raise error
        completion = Completion(
            "Frank Herbert", Usage(31, 4), "gpt-4o-mini-2024-07-18", "stop", cached=cached
        )
        lm_responded(lm_call, completion)
    except BaseException as exc:
        module_ended(call, None, exc)
        raise
    module_ended(call, Answer(answer="Frank Herbert"))


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_a_prediction_is_a_predict_span_with_an_lm_child(exporter: InMemorySpanExporter) -> None:
    predict()
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [
        "sigforge.lm gpt-4o-mini",
        "sigforge.predict AnswerQuestion",
    ]
    lm, module = spans
    assert module.kind is SpanKind.INTERNAL and lm.kind is SpanKind.CLIENT
    assert parent_of(lm) == module.context.span_id
    assert lm.context.trace_id == module.context.trace_id
    assert module.parent is None
    assert module.attributes is not None and lm.attributes is not None
    assert module.attributes["sigforge.predictor"] == "AnswerQuestionPredictor"
    assert module.attributes["sigforge.signature"] == "AnswerQuestion"
    assert dict(lm.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 64,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 31,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.finish_reasons": ("stop",),
        "sigforge.cached": False,
        "sigforge.call_id": lm.attributes["sigforge.call_id"],
    }
    assert module.status.status_code is StatusCode.UNSET
    assert lm.status.status_code is StatusCode.UNSET
    assert module.start_time is not None and lm.start_time is not None
    assert module.end_time is not None and lm.end_time is not None
    assert module.start_time <= lm.start_time <= lm.end_time <= module.end_time


def test_errors_set_the_error_status_on_both_spans(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(ServerError):
        predict(fail_lm=True)
    lm, module = exporter.get_finished_spans()
    for span in (lm, module):
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "ServerError: HTTP 503 from the server"
        assert span.attributes is not None
        assert span.attributes["error.type"] == "ServerError"
        assert [e.name for e in span.events] == ["exception"]
    assert lm.attributes is not None
    assert lm.attributes["http.response.status_code"] == 503
    assert "gen_ai.usage.input_tokens" not in lm.attributes


def test_cache_hits_are_marked(exporter: InMemorySpanExporter) -> None:
    predict(cached=True)
    lm = by_name(exporter.get_finished_spans(), "sigforge.lm gpt-4o-mini")[0]
    assert lm.attributes is not None and lm.attributes["sigforge.cached"] is True


def test_nested_modules_nest_and_sit_inside_the_applications_span(
    exporter: InMemorySpanExporter,
) -> None:
    app_tracer = trace.get_tracer("app", tracer_provider=exporter_provider(exporter))
    with app_tracer.start_as_current_span("handle request") as app_span:
        outer = module_started("Pipeline", "Pipeline", Question(question="q"))
        predict("Retrieve")
        predict("Answer")
        module_ended(outer, Answer(answer="x"))
        # after sigforge's spans end, the application's span is current again
        assert trace.get_current_span() is app_span
    spans = exporter.get_finished_spans()
    app = by_name(spans, "handle request")[0]
    pipeline = by_name(spans, "sigforge.predict Pipeline")[0]
    retrieve = by_name(spans, "sigforge.predict Retrieve")[0]
    answer = by_name(spans, "sigforge.predict Answer")[0]
    lms = by_name(spans, "sigforge.lm gpt-4o-mini")
    assert parent_of(pipeline) == app.context.span_id
    assert parent_of(retrieve) == parent_of(answer) == pipeline.context.span_id
    assert sorted(parent_of(s) or 0 for s in lms) == sorted(
        [retrieve.context.span_id, answer.context.span_id]
    )
    assert len({s.context.trace_id for s in spans}) == 1


def exporter_provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A provider that exports into the same memory exporter (for the application's spans)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_spans_made_inside_a_sigforge_span_nest_under_it(exporter: InMemorySpanExporter) -> None:
    tool_tracer = trace.get_tracer("tool", tracer_provider=exporter_provider(exporter))
    call = module_started("Agent", "Agent", Question(question="q"))
    lm_call = lm_requested("gpt-4o-mini", "openai", REQUEST)
    with tool_tracer.start_as_current_span("HTTP POST"):
        pass
    lm_responded(lm_call, Completion("x", Usage(1, 1)))
    module_ended(call, Answer(answer="x"))
    spans = exporter.get_finished_spans()
    http = by_name(spans, "HTTP POST")[0]
    lm = by_name(spans, "sigforge.lm gpt-4o-mini")[0]
    assert parent_of(http) == lm.context.span_id


def test_concurrent_tasks_get_their_own_trees(exporter: InMemorySpanExporter) -> None:
    async def one(index: int) -> None:
        call = module_started(f"P{index}", f"Sig{index}", Question(question=str(index)))
        await asyncio.sleep(0)
        lm_call = lm_requested(f"model-{index}", "anthropic", REQUEST)
        await asyncio.sleep(0)
        lm_responded(lm_call, Completion("x", Usage(index, index)))
        await asyncio.sleep(0)
        module_ended(call, Answer(answer="x"))

    async def main() -> None:
        await asyncio.gather(*(one(i) for i in range(6)))

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    assert len(spans) == 12
    for index in range(6):
        module = by_name(spans, f"sigforge.predict Sig{index}")[0]
        lm = by_name(spans, f"sigforge.lm model-{index}")[0]
        assert parent_of(lm) == module.context.span_id
        assert module.parent is None
        assert lm.attributes is not None
        assert lm.attributes["gen_ai.usage.output_tokens"] == index
    assert len({s.context.trace_id for s in spans}) == 6


def test_gemini_provider_name_and_context_scoped_tracing() -> None:
    memory = InMemorySpanExporter()
    callback = OTelCallback(exporter_provider(memory))
    configure(callbacks=[])
    with context(callbacks=[*current_callbacks(), callback]):
        call = lm_requested("gemini-2.5-flash", "gemini", LMRequest(()))
        lm_responded(call, Completion("x"))
    lm_responded(lm_requested("outside", "gemini", LMRequest(())), Completion("x"))
    (span,) = memory.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["gen_ai.system"] == "gemini"
    assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert "gen_ai.request.temperature" not in span.attributes


def test_instrument_adds_to_the_process_callbacks_and_uninstrument_removes() -> None:
    configure(callbacks=[])
    with context(callbacks=[]):
        callback = instrument(TracerProvider())
        assert current_callbacks() == ()  # the block's override still wins ...
    assert current_callbacks() == (callback,)  # ... the process list got it
    second = instrument(TracerProvider())
    assert current_callbacks() == (callback, second)
    uninstrument()
    assert current_callbacks() == ()


def test_without_opentelemetry_the_module_imports_and_use_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # importing sigforge (and this module) never imports OpenTelemetry
    probe = (
        "import sys, sigforge.runtime, sigforge.runtime.otel; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"

    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'sigforge\[otel\]'"):
        OTelCallback()
    with pytest.raises(ConfigurationError, match="opentelemetry"):
        instrument()
