"""GenAI spans and metrics for llama_stack_agent_rag_otel.py — private by default.

The script's trace tells what the application was doing, in the words of the
OpenTelemetry GenAI semantic conventions (development status) so that any backend
understands it: a span per phase of the run (``create_agent <name>``,
``invoke_agent <name>`` per question, ``execute_tool <tool>`` when the agent used
one), and the client metrics ``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage`` and ``gen_ai.client.operation.time_to_first_chunk``.

Privacy: by default the spans, events and metrics made here hold sizes, counts and
ids only — never question text, answers, instructions, documents or retrieved chunks,
and never the text of an error that may echo them. Setting
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` opts in to the
conventions' content attributes (``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions``, ``gen_ai.tool.call.arguments`` / ``.result``).
The HTTP client spans get URLs without credentials or query values, and no headers.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Span, SpanKind, StatusCode

# --- Names from the GenAI semantic conventions ---------------------------------------------------
# Written out rather than imported: the semconv package marks its gen_ai constants as moved.

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
DATA_SOURCE_ID = "gen_ai.data_source.id"
TOOL_NAME = "gen_ai.tool.name"
TOOL_TYPE = "gen_ai.tool.type"
TOOL_CALL_ID = "gen_ai.tool.call.id"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
# Content: only with the opt-in below.
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"

CREATE_AGENT = "create_agent"
INVOKE_AGENT = "invoke_agent"
EXECUTE_TOOL = "execute_tool"
PROVIDER = "llama_stack"  # what the client talks to; the server picks the inference provider

# What the conventions do not name: this application's own attributes.
DOCUMENTS_COUNT = "rag_agent.documents.count"
DOCUMENTS_BYTES = "rag_agent.documents.bytes"
CHUNK_SIZE_TOKENS = "rag_agent.chunk_size_tokens"
EMBEDDING_MODEL = "rag_agent.embedding_model"
QUESTION_CHARS = "rag_agent.question.chars"
ANSWER_CHARS = "rag_agent.answer.chars"
AGENTS_COUNT = "rag_agent.agents.count"
RETRIEVED_CHUNKS = "rag_agent.retrieval.chunks"
RETRIEVED_CHARS = "rag_agent.retrieval.chars"
FAILED_PHASE = "rag_agent.failed_phase"

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
HEADER_CAPTURE_ENVS = (
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)
METER_NAME = "Python LlamaStack application"
DEFAULT_OTLP_METRICS_ENDPOINT = "http://localhost:4318/v1/metrics"
# Bucket boundaries the GenAI metric conventions advise.
DURATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


def capture_content_enabled() -> bool:
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"


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


def disable_header_capture() -> list[str]:
    """The HTTPX instrumentation records headers named in these variables; we never do.
    Returns the variables that were set, so the caller can say they are ignored."""
    return [name for name in HEADER_CAPTURE_ENVS if os.environ.pop(name, None)]


# --- Metrics -------------------------------------------------------------------------------------


def metrics_disabled() -> bool:
    return os.environ.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "none"


def resolve_metrics_endpoint(traces_endpoint: str) -> str:
    """The signal variable, else the traces endpoint with /v1/metrics for /v1/traces (same base),
    else the base variable + /v1/metrics."""
    if os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"]
    if traces_endpoint.rstrip("/").endswith("/v1/traces"):
        return traces_endpoint.rstrip("/")[: -len("/v1/traces")] + "/v1/metrics"
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/metrics"
    return DEFAULT_OTLP_METRICS_ENDPOINT


def configure_metrics(*, endpoint: str, resource: Resource, metric_reader: MetricReader | None = None) -> MeterProvider:
    """Resource -> periodic reader + OTLP/HTTP exporter -> meter provider. The final export
    happens at shutdown, so even a short run delivers its numbers."""
    if metric_reader is None:  # tests pass an in-memory one
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
        attributes["exception.stacktrace"] = f"Traceback (most recent call last):\n{frames}{type(exc).__qualname__}: {message}"
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


# --- One streamed agent turn ---------------------------------------------------------------------


def flatten_content(content: Any) -> str:
    """Llama Stack's interleaved content (a string or a list of items) as text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(flatten_content(item) for item in content)
    return str(getattr(content, "text", "") or "")


def reported_usage(*sources: Any) -> tuple[int, int] | None:
    """Input and output tokens, if one of these objects carries the server's usage metrics
    (``metrics: [{metric: prompt_tokens | completion_tokens, value}]``, as Llama Stack's
    inference responses do). Llama Stack 0.2.12's agent turn events carry none."""
    for source in sources:
        found = {}
        for item in getattr(source, "metrics", None) or []:
            name = item.get("metric") if isinstance(item, dict) else getattr(item, "metric", None)
            value = item.get("value") if isinstance(item, dict) else getattr(item, "value", None)
            if name in ("prompt_tokens", "completion_tokens") and isinstance(value, (int, float)):
                found[name] = int(value)
        if found:
            return found.get("prompt_tokens", 0), found.get("completion_tokens", 0)
    return None


class TurnObserver:
    """Watches the stream of one agent turn inside its ``invoke_agent`` span: time to the first
    answer token, an ``execute_tool`` span per tool the server ran, token usage when reported,
    the finish reason. It reads the events; printing the answer is the caller's business."""

    def __init__(self, telemetry: Telemetry, span: Span, *, question: str, data_source_id: str,
                 metric_attributes: Mapping[str, Any]) -> None:
        self.telemetry = telemetry
        self.span = span
        span.set_attribute(QUESTION_CHARS, len(question))
        telemetry.content(span, INPUT_MESSAGES, [{"role": "user", "parts": text_parts(question)}])
        self.data_source_id = data_source_id
        self.metric_attributes = dict(metric_attributes)
        self.started = time.perf_counter()
        self.first_chunk_s: float | None = None
        self.tool_started_ns: dict[str, int] = {}
        self.input_tokens = 0
        self.output_tokens = 0
        self.usage_reported = False

    def observe(self, chunk: Any) -> None:
        event = getattr(chunk, "event", None)
        payload = getattr(event, "payload", None)
        if payload is None:  # an error chunk: the caller raises, the phase span records it
            return
        kind = (payload.event_type, getattr(payload, "step_type", None))
        if kind == ("step_progress", "inference") and getattr(payload.delta, "type", None) == "text":
            if self.first_chunk_s is None and payload.delta.text:
                self.first_chunk_s = time.perf_counter() - self.started
                self.span.set_attribute(TIME_TO_FIRST_CHUNK, self.first_chunk_s)
        elif kind == ("step_start", "tool_execution"):
            self.tool_started_ns[payload.step_id] = time.time_ns()
        elif kind == ("step_complete", "tool_execution"):
            self._tool_spans(payload.step_details, started_ns=self.tool_started_ns.pop(payload.step_id, None))
        elif kind == ("step_complete", "inference"):
            self._add_usage(reported_usage(payload.step_details, payload, chunk))
        elif payload.event_type == "turn_complete":
            turn = payload.turn
            if not self.usage_reported:  # a per-turn total, if the server gives one instead
                self._add_usage(reported_usage(turn, payload, chunk))
            self.span.set_attribute(FINISH_REASONS, [turn.output_message.stop_reason])

    def _add_usage(self, usage: tuple[int, int] | None) -> None:
        if usage is None:
            return
        self.usage_reported = True
        self.input_tokens += usage[0]
        self.output_tokens += usage[1]

    def _tool_spans(self, step: Any, *, started_ns: int | None) -> None:
        """One execute_tool span per call, from when the server announced the step to now."""
        calls = {call.call_id: call for call in step.tool_calls}
        for response in step.tool_responses:
            tool = str(response.tool_name)
            call = calls.get(response.call_id)
            attributes: dict[str, Any] = {OPERATION_NAME: EXECUTE_TOOL, TOOL_NAME: tool, TOOL_CALL_ID: response.call_id}
            result = flatten_content(response.content)
            if tool == "knowledge_search":
                metadata = response.metadata or {}
                attributes.update({TOOL_TYPE: "datastore", DATA_SOURCE_ID: self.data_source_id,
                                   RETRIEVED_CHUNKS: len(metadata.get("document_ids") or []),
                                   RETRIEVED_CHARS: len(result)})
            span = self.telemetry.tracer.start_span(f"{EXECUTE_TOOL} {tool}", kind=SpanKind.INTERNAL,
                                                    attributes=attributes, start_time=started_ns)
            if call is not None:
                self.telemetry.content(span, TOOL_CALL_ARGUMENTS, call.arguments)
            self.telemetry.content(span, TOOL_CALL_RESULT, result)
            span.end()

    def finish(self, *, answer: str) -> None:
        """The answer's size always, its text only with the opt-in; metrics for the turn."""
        self.span.set_attribute(ANSWER_CHARS, len(answer))
        self.telemetry.content(self.span, OUTPUT_MESSAGES, [{"role": "assistant", "parts": text_parts(answer)}])
        instruments = self.telemetry.instruments
        if self.first_chunk_s is not None:
            instruments.time_to_first_chunk.record(self.first_chunk_s, self.metric_attributes)
        if self.usage_reported:
            self.span.set_attribute(INPUT_TOKENS, self.input_tokens)
            self.span.set_attribute(OUTPUT_TOKENS, self.output_tokens)
            for token_type, count in (("input", self.input_tokens), ("output", self.output_tokens)):
                instruments.token_usage.record(count, {**self.metric_attributes, TOKEN_TYPE: token_type})
