"""The run's own telemetry: phase spans, GenAI metrics, and what may go into them.

A phase of the run (``check_server``, ``ingest_documents``, ``create_agent <name>``,
``invoke_agent <name>`` per question, ``execute_tool <tool>``, ``clean_up``) gets one span
from ``Telemetry.phase``, named in the words of the OpenTelemetry GenAI conventions
(semconv.py), with failure recording and the ``gen_ai.client.operation.duration`` metric.
``AnswerObserver`` turns one streamed answer into time to first chunk, tool spans, token
usage and the finish reason; each Llama Stack generation feeds it from its own events.

Private by default: spans, events and metrics hold sizes, counts and ids only — never
question text, answers, instructions, documents or retrieved chunks, and never the text of
an error that may echo them. ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``
opts in to the conventions' content attributes. HTTP client spans get URLs without
credentials or query values, and no headers.

Only the OpenTelemetry API is imported here; the metrics SDK loads when metrics are on.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from llama_stack_otel.config import env_flag
from llama_stack_otel.semconv import (
    ANSWER_CHARS,
    CAPTURE_CONTENT_ENV,
    ERROR_TYPE,
    FAILED_PHASE,
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    OPERATION_NAME,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PROVIDER_NAME,
    QUESTION_CHARS,
    REQUEST_MODEL,
    TIME_TO_FIRST_CHUNK,
    TOKEN_TYPE,
    TOOL_CALL_ARGUMENTS,
    TOOL_CALL_RESULT,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource

METER_NAME = "Python LlamaStack application"
# Bucket boundaries the GenAI metric conventions advise.
DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


def capture_content_enabled() -> bool:
    return env_flag(CAPTURE_CONTENT_ENV)


# --- HTTP client spans: no credentials, no query values, no headers -----------------------------


def redact_url(url: str) -> str:
    """Drop user:password and replace every query value: a URL in a span is a URL anyone with
    access to the trace UI can read."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode([(key, "REDACTED") for key, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub_http_span(span: Span, request: Any) -> None:
    """HTTPX request hook: it runs after the instrumentation has set the URL attribute (``http.url``
    in the old HTTP conventions, ``url.full`` in the new; OTEL_SEMCONV_STABILITY_OPT_IN picks)
    and overwrites whichever is there."""
    present = getattr(span, "attributes", None) or {}
    for key in ("http.url", "url.full"):
        if key in present:
            span.set_attribute(key, redact_url(str(request.url)))


# --- Metrics -------------------------------------------------------------------------------------


def configure_metrics(*, endpoint: str, resource: Resource, metric_reader: MetricReader | None = None) -> MeterProvider:
    """Resource -> periodic reader + OTLP/HTTP exporter -> meter provider. The final export
    happens at shutdown, so even a short run delivers its numbers."""
    from opentelemetry.sdk.metrics import MeterProvider

    if metric_reader is None:  # tests pass an in-memory one
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint))
    # The script shuts the provider down itself, within its export timeout: no atexit hook.
    meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader], shutdown_on_exit=False)
    metrics.set_meter_provider(meter_provider)
    return meter_provider


class Instruments:
    """The run's histograms, from whichever meter provider is global (a no-op one when off)."""

    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter(METER_NAME)
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used, by gen_ai.token.type",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self.time_to_first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk", unit="s",
            description="Time from the request to the first streamed output chunk",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S)
        self.run_duration = meter.create_histogram(
            "rag_agent.run.duration", unit="s", description="Whole run of the RAG agent script",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S)


# --- Phases --------------------------------------------------------------------------------------


def safe_error_message(exc: BaseException, *, capture_content: bool) -> str:
    """What an exception event may say. Server errors can echo what was sent (a document, a
    question), so by default only our own messages (``trace_message``) and the shape of an
    HTTP failure go into the trace."""
    if capture_content:
        return str(exc)
    own = getattr(exc, "trace_message", None)
    if own:
        return own
    response = getattr(exc, "response", None)
    request = getattr(response, "request", None)
    if request is not None and hasattr(exc, "status_code"):
        return f"HTTP {exc.status_code} to {request.method} {request.url.path}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by SIGINT (Ctrl-C)"
    return f"{type(exc).__name__} (message withheld; {CAPTURE_CONTENT_ENV}=true records it)"


def record_failure(span: Span, exc: BaseException, *, capture_content: bool) -> None:
    message = safe_error_message(exc, capture_content=capture_content)
    attributes = {"exception.message": message}
    if not capture_content:
        # A formatted traceback ends with (and chains) the full messages: keep the frames only.
        frames = "".join(traceback.format_tb(exc.__traceback__))
        attributes["exception.stacktrace"] = (f"Traceback (most recent call last):\n{frames}"
                                              f"{type(exc).__qualname__}: {message}")
    span.record_exception(exc, attributes=attributes)
    span.set_status(StatusCode.ERROR, message)
    span.set_attribute(ERROR_TYPE, type(exc).__qualname__)


class Telemetry:
    """Phase spans under the run's root span, and the metrics, for one run of the script."""

    def __init__(self, *, tracer: trace.Tracer, meter: metrics.Meter | None = None,
                 capture_content: bool | None = None, instruments: Instruments | None = None) -> None:
        self.tracer = tracer
        self.instruments = instruments or Instruments(meter)  # runs of one process share theirs
        self.capture_content = capture_content_enabled() if capture_content is None else capture_content
        self.failed_phase: str | None = None

    @contextmanager
    def phase(self, name: str, attributes: Mapping[str, Any] | None = None, *,
              kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
        """A span for one phase of the run; the HTTP calls made inside nest under it. On failure
        it gets status ERROR and the exception event, and the run remembers which phase failed
        (the innermost one). gen_ai operations also feed gen_ai.client.operation.duration."""
        attributes = dict(attributes or {})
        started = time.perf_counter()
        with self.tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                               record_exception=False, set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as exc:
                record_failure(span, exc, capture_content=self.capture_content)
                self.failed_phase = self.failed_phase or name
                self._record_duration(attributes, started, error=type(exc).__qualname__)
                raise
            self._record_duration(attributes, started, error=None)

    def _record_duration(self, attributes: Mapping[str, Any], started: float, *, error: str | None) -> None:
        if OPERATION_NAME not in attributes:
            return
        point = {key: attributes[key] for key in (OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL) if key in attributes}
        if error:
            point[ERROR_TYPE] = error
        self.instruments.operation_duration.record(time.perf_counter() - started, point)

    def record_run_failure(self, root: Span, exc: BaseException) -> str:
        """The root span records the failure and names the phase it happened in; returns the
        error type for the run-duration metric."""
        record_failure(root, exc, capture_content=self.capture_content)
        if self.failed_phase:
            root.set_attribute(FAILED_PHASE, self.failed_phase)
            message = safe_error_message(exc, capture_content=self.capture_content)
            root.set_status(StatusCode.ERROR, f"{self.failed_phase} failed: {message}")
        return type(exc).__qualname__

    def content(self, span: Span, name: str, value: Any) -> None:
        """Set a content attribute — only when the user opted in."""
        if self.capture_content:
            span.set_attribute(name, value if isinstance(value, str) else json.dumps(value))


def text_parts(text: str) -> list[dict[str, str]]:
    return [{"type": "text", "content": text}]


# --- One streamed answer --------------------------------------------------------------------------


class AnswerObserver:
    """What one question's ``invoke_agent`` span learns while its answer streams: time to the
    first answer text, an ``execute_tool`` span per tool the server ran, token usage when the
    server reports it, the finish reason; metrics when the answer is done. Each Llama Stack
    generation reads its own events and calls these methods; printing is not done here."""

    def __init__(self, telemetry: Telemetry, span: Span, *, question: str, data_source_id: str,
                 metric_attributes: Mapping[str, Any]) -> None:
        self.telemetry = telemetry
        self.span = span
        self.data_source_id = data_source_id
        self.metric_attributes = dict(metric_attributes)
        span.set_attribute(QUESTION_CHARS, len(question))
        telemetry.content(span, INPUT_MESSAGES, [{"role": "user", "parts": text_parts(question)}])
        self.started = time.perf_counter()
        self.first_chunk_s: float | None = None
        self.tool_started_ns: dict[str, int] = {}
        self.usage: tuple[int, int] | None = None

    def text_arrived(self, text: str) -> None:
        if self.first_chunk_s is None and text:
            self.first_chunk_s = time.perf_counter() - self.started
            self.span.set_attribute(TIME_TO_FIRST_CHUNK, self.first_chunk_s)

    def tool_started(self, call_id: str) -> None:
        self.tool_started_ns.setdefault(call_id, time.time_ns())

    def tool_done(self, *, tool: str, call_id: str, attributes: Mapping[str, Any], arguments: Any,
                  result: Any) -> None:
        """One execute_tool span, from when the server announced the call to now."""
        from llama_stack_otel.semconv import EXECUTE_TOOL, TOOL_CALL_ID, TOOL_NAME

        span = self.telemetry.tracer.start_span(
            f"{EXECUTE_TOOL} {tool}", kind=SpanKind.INTERNAL,
            attributes={OPERATION_NAME: EXECUTE_TOOL, TOOL_NAME: tool, TOOL_CALL_ID: call_id, **attributes},
            start_time=self.tool_started_ns.pop(call_id, None))
        if arguments is not None:
            self.telemetry.content(span, TOOL_CALL_ARGUMENTS, arguments)
        self.telemetry.content(span, TOOL_CALL_RESULT, result)
        span.end()

    def add_usage(self, input_tokens: int, output_tokens: int) -> None:
        before = self.usage or (0, 0)
        self.usage = (before[0] + input_tokens, before[1] + output_tokens)

    def finish_reason(self, reason: str) -> None:
        self.span.set_attribute(FINISH_REASONS, [reason])

    def finish(self, *, answer: str) -> None:
        """The answer's size always, its text only with the opt-in; metrics for the answer."""
        self.span.set_attribute(ANSWER_CHARS, len(answer))
        self.telemetry.content(self.span, OUTPUT_MESSAGES, [{"role": "assistant", "parts": text_parts(answer)}])
        instruments = self.telemetry.instruments
        if self.first_chunk_s is not None:
            instruments.time_to_first_chunk.record(self.first_chunk_s, self.metric_attributes)
        if self.usage is not None:
            self.span.set_attribute(INPUT_TOKENS, self.usage[0])
            self.span.set_attribute(OUTPUT_TOKENS, self.usage[1])
            for token_type, count in zip(("input", "output"), self.usage, strict=True):
                instruments.token_usage.record(count, {**self.metric_attributes, TOKEN_TYPE: token_type})
