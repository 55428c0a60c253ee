"""The run's own telemetry: the app's phase spans, the run's metric, and what may go into them.

The run's own phases (``check_server``, ``ingest_documents``, ``clean_up``) get one span each
from ``Telemetry.phase``, with failure recording, as OpenInference CHAIN spans. What the run
does through the Llama Stack client — ``create_agent``, ``invoke_agent`` per question with its
``execute_tool`` spans, and their GenAI metrics — is traced by the client instrumentor
(llama_stack_otel_instrumentation); ``Telemetry.step`` only remembers which of those steps a
failure happened in, for the root span. The root span gets the run's description
(``describe_run``) and outcome.

Private by default: spans, events and metrics hold sizes, counts and ids only — never
question text, answers, instructions, documents or retrieved chunks, and never the text of
an error that may echo them. ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (or
SPAN_ONLY) opts in to the conventions' content attributes. HTTP client spans get URLs without
credentials or query values, and no headers.

Only the OpenTelemetry API is imported here; the metrics SDK loads when metrics are on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from llama_stack_otel.config import capture_content_setting
from llama_stack_otel.semconv import (
    FAILED_PHASE,
    KIND_CHAIN,
    OPENINFERENCE_SPAN_KIND,
)

# Failures are recorded the instrumentor's way, with the same duration buckets.
from llama_stack_otel_instrumentation.failures import record_failure, safe_error_message
from llama_stack_otel_instrumentation.semconv import DURATION_BUCKETS_S

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.resources import Resource

METER_NAME = "Python LlamaStack application"


def capture_content_enabled() -> bool:
    return capture_content_setting()


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
    """The run's histogram, from whichever meter provider is global (a no-op one when off)."""

    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter or metrics.get_meter(METER_NAME)
        self.run_duration = meter.create_histogram(
            "rag_agent.run.duration", unit="s", description="Whole run of the RAG agent script",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S)


# --- Phases --------------------------------------------------------------------------------------


class Telemetry:
    """Phase spans under the run's root span, and the run's metric, for one run of the script."""

    def __init__(self, *, tracer: trace.Tracer, meter: metrics.Meter | None = None,
                 capture_content: bool | None = None, instruments: Instruments | None = None) -> None:
        self.tracer = tracer
        self.instruments = instruments or Instruments(meter)  # runs of one process share theirs
        self.capture_content = capture_content_enabled() if capture_content is None else capture_content
        self.failed_phase: str | None = None
        self.root: Span | None = None  # the run's top-level span, once it has started

    @contextmanager
    def phase(self, name: str, attributes: Mapping[str, Any] | None = None, *,
              kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
        """A span for one phase of the run; the HTTP calls made inside nest under it. On failure
        it gets status ERROR and the exception event, and the run remembers which phase failed
        (the innermost one)."""
        attributes = {OPENINFERENCE_SPAN_KIND: KIND_CHAIN, **(attributes or {})}
        with self.tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                               record_exception=False, set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as exc:
                record_failure(span, exc, capture_content=self.capture_content)
                self.failed_phase = self.failed_phase or name
                raise

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A step whose span the client instrumentor makes (``invoke_agent rag-agent``): a failure
        in it is that span's to record; the run only remembers that this step is where it failed."""
        try:
            yield
        except BaseException:
            self.failed_phase = self.failed_phase or name
            raise

    def describe_run(self, attributes: Mapping[str, Any]) -> None:
        """Attributes of the whole run (server version, API generation, ...) for its top-level span."""
        if self.root is not None:
            self.root.set_attributes(attributes)

    def record_run_failure(self, root: Span, exc: BaseException) -> str:
        """The root span records the failure and names the phase it happened in; returns the
        error type for the run-duration metric."""
        record_failure(root, exc, capture_content=self.capture_content)
        if self.failed_phase:
            root.set_attribute(FAILED_PHASE, self.failed_phase)
            message = safe_error_message(exc, capture_content=self.capture_content)
            root.set_status(StatusCode.ERROR, f"{self.failed_phase} failed: {message}")
        return type(exc).__qualname__


def outcome_of(exc: BaseException | None) -> str:
    """The run's outcome in one word, for the root span: ok, error, interrupted, terminated."""
    from llama_stack_otel.signals import Terminated

    if exc is None:
        return "ok"
    if isinstance(exc, Terminated):
        return "terminated"
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"

