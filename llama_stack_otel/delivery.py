"""Getting the run's telemetry out — or saying plainly that it did not get out.

The script exports spans and metrics over OTLP/HTTP. With the
OpenTelemetry SDK's defaults (1.45), a collector that is down, answers 503 or never
answers keeps the script alive for 7 to 20 s after its work is done, retrying with
backoff, and lost spans are only mentioned in log lines. This module bounds that wait
and accounts for every span:

- one export timeout, in milliseconds as the OTLP specification defines
  ``OTEL_EXPORTER_OTLP_TIMEOUT`` (this SDK reads the variable as seconds), passed to both
  exporters explicitly; at the end of the run traces and metrics are flushed in parallel
  and the script waits no longer than that timeout for them;
- ``ExportWatch``: a ``requests.Session`` hook that remembers what the last failed export
  met (connection refused, HTTP 503, no answer, a refused credential, a certificate not
  trusted), for the warning, which names the variable to set for the last two;
- ``SpanAccounting``: counts the sampled spans that ended (a span processor) and the spans
  each export delivered or failed (a wrapping span exporter); whatever ended and was not
  delivered — failed exports, the batch queue overflowing, spans still in flight when the
  wait ended — is reported in one line at the end.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any

import requests
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

TIMEOUT_ENV = "OTEL_EXPORTER_OTLP_TIMEOUT"
# What a secured collector asks for: the exporters send the headers of the first (a token, an
# API key) with every export and verify the collector's certificate against the file the second names.
HEADERS_ENV = "OTEL_EXPORTER_OTLP_HEADERS"
CERTIFICATE_ENV = "OTEL_EXPORTER_OTLP_CERTIFICATE"
DROPPED = "connection dropped without an answer"
SPEAKS_HTTPS = "it speaks HTTPS, not plain HTTP"


# --- What the collector answered ------------------------------------------------------------------


def describe_failure(exc: BaseException, timeout: Any) -> str:
    """A few words for what went wrong with one export request."""
    if isinstance(exc, requests.Timeout):
        seconds = timeout[-1] if isinstance(timeout, tuple) else timeout
        # Worded as the run-level wait is (below): which of the two gives up first is a race.
        if isinstance(seconds, (int, float)):
            # The exporter passes what is left of its deadline (1.49999 s): whole milliseconds.
            return f"no answer within the {round(seconds * 1000)} ms export timeout"
        return "no answer in time"
    seen: BaseException | None = exc
    for _ in range(10):  # requests wraps urllib3, which wraps the socket error
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS: its certificate is not trusted: {seen.verify_message or seen.strerror}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {getattr(seen, 'reason', None) or seen.strerror or type(seen).__name__}"
        if isinstance(seen, ConnectionRefusedError) or "Connection refused" in str(seen):
            return "connection refused"
        if isinstance(seen, (ConnectionResetError, ConnectionAbortedError)) or "RemoteDisconnected" in repr(seen):
            return DROPPED
        seen = seen.__cause__ or seen.__context__
    return f"{type(exc).__name__}"


def advice_for(problem: str | None) -> str | None:
    """The variable to set when the collector refused the credential or its certificate, or the
    URL to use when it speaks only HTTPS; else None."""
    if problem is None:
        return None
    if problem == SPEAKS_HTTPS:
        return f"use an https:// endpoint (and {CERTIFICATE_ENV} for the CA that signed its certificate)"
    if problem.startswith(("HTTP 401", "HTTP 403")):
        return (f"the collector refused the export's credentials: set {HEADERS_ENV} to the header it wants "
                "(e.g. Authorization=Bearer%20<token>)")
    if problem.startswith("TLS"):
        return f"set {CERTIFICATE_ENV} to the CA certificate (PEM) that signed the collector's certificate"
    return None


class ExportWatch:
    """Remembers the last problem one exporter's HTTP requests met. ``session`` goes to the
    OTLP exporter's ``session`` parameter."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.problem: str | None = None
        self.session = _WatchedSession(self)


class _WatchedSession(requests.Session):
    def __init__(self, watch: ExportWatch) -> None:
        super().__init__()
        self._watch = watch

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if isinstance(self.verify, str) and kwargs.get("verify") is None:
            # The exporter puts OTEL_EXPORTER_OTLP_CERTIFICATE on the session, and requests lets
            # REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE from the environment beat a session's setting:
            # the file the OTLP variable names is the one to trust.
            kwargs["verify"] = self.verify
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.RequestException as exc:
            self._watch.problem = describe_failure(exc, kwargs.get("timeout"))
            raise
        if response.status_code >= 400:
            self._watch.problem = f"HTTP {response.status_code} {response.reason or ''}".strip()
        return response


# --- Spans: ended, delivered, failed ---------------------------------------------------------------


class SpanAccounting(SpanProcessor):
    """Counts the sampled spans that ended (what a batch processor would be handed) and,
    through ``wrap()``, the spans each export delivered or failed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ended = 0
        self.delivered = 0
        self.failed = 0

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            with self._lock:
                self.ended += 1

    def wrap(self, span_exporter: SpanExporter) -> SpanExporter:
        return _AccountingSpanExporter(span_exporter, self)

    def _count(self, spans: int, *, delivered: bool) -> None:
        with self._lock:
            if delivered:
                self.delivered += spans
            else:
                self.failed += spans

    @property
    def lost(self) -> int:
        """Ended and not delivered: in a failed export, dropped from a full queue, or not sent yet."""
        return self.ended - self.delivered

    @property
    def unsent(self) -> int:
        return self.ended - self.delivered - self.failed


class _AccountingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, accounting: SpanAccounting) -> None:
        self._inner = inner
        self._accounting = accounting

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:
            self._accounting._count(len(spans), delivered=False)
            raise
        self._accounting._count(len(spans), delivered=result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class AccountingMetricExporter(OTLPMetricExporter):
    """The OTLP/HTTP metric exporter, counting the exports that failed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failed_exports = 0

    def export(self, metrics_data: Any, timeout_millis: float | None = 10_000, **kwargs: Any) -> MetricExportResult:
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is not MetricExportResult.SUCCESS:
            self.failed_exports += 1
        return result


# --- The run's telemetry pipeline as delivery sees it ----------------------------------------------


class Delivery:
    """Builds the exporters with the timeout and the watches, and after the run says, in at
    most one line, what did not reach the collector."""

    def __init__(self, *, traces_endpoint: str, timeout_ms: float) -> None:
        self.timeout_ms = timeout_ms
        self.traces = ExportWatch(traces_endpoint)
        self.spans = SpanAccounting()
        self.metrics: ExportWatch | None = None
        self.metric_exporter: AccountingMetricExporter | None = None
        self.unfinished: list[str] = []  # providers whose shutdown was still running when the wait ended

    @property
    def session(self) -> requests.Session:
        """For the OTLP span exporter's ``session``: it watches what each export meets."""
        return self.traces.session

    def counted(self, span_exporter: SpanExporter) -> SpanExporter:
        """The span exporter, counting the spans each export delivered or failed."""
        return self.spans.wrap(span_exporter)

    def new_metric_exporter(self, endpoint: str) -> AccountingMetricExporter:
        self.metrics = ExportWatch(endpoint)
        self.metric_exporter = AccountingMetricExporter(endpoint=endpoint, timeout=self.timeout_ms / 1000,
                                                        session=self.metrics.session)
        return self.metric_exporter

    def shut_down(self, **providers: Any) -> None:
        """Shut the named providers down in parallel (each flushes what it holds), waiting at
        most the export timeout in all; a shutdown still running then is left behind, in a
        daemon thread, and what it held counts as not delivered."""
        threads = {name: threading.Thread(target=provider.shutdown, name=f"shutdown-{name}", daemon=True)
                   for name, provider in providers.items() if provider is not None}
        for thread in threads.values():
            thread.start()
        deadline = time.monotonic() + self.timeout_ms / 1000
        for name, thread in threads.items():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.unfinished.append(name)

    def metrics_lost(self) -> bool:
        if self.metric_exporter is None:
            return False
        return self.metric_exporter.failed_exports > 0 or "metrics" in self.unfinished

    def summary(self) -> str | None:
        """One line when spans or metrics did not reach the collector; None when all did."""
        spans = self.spans
        metrics_lost = self.metrics_lost()
        if not spans.lost and not metrics_lost:
            return None
        for watch in (self.traces, self.metrics):
            if watch is not None:
                self._https_only(watch)
        advice = (f"is the collector running? (--otlp-endpoint; --export-timeout or {TIMEOUT_ENV}, "
                  f"now {self.timeout_ms:g} ms, bounds the wait)")
        if not spans.lost:
            assert self.metrics is not None
            reason = self.metrics.problem or self._waited()
            return (f"metrics could not be delivered to {self.metrics.endpoint} ({reason}) — "
                    f"{advice_for(self.metrics.problem) or advice}")
        problem = self.traces.problem or (self._waited() if "traces" in self.unfinished else None)
        reason = problem or "the span export queue was full"
        if problem is None:
            # Every export tried succeeded: the missing spans never left the process.
            advice = "raise OTEL_BSP_MAX_QUEUE_SIZE"
        line = (f"traces could not be delivered to {self.traces.endpoint} ({reason}): "
                f"{spans.lost} of {spans.ended} spans lost")
        if metrics_lost:
            line += "; metrics were not delivered either"
        return f"{line} — {advice_for(self.traces.problem) or advice}"

    @staticmethod
    def _https_only(watch: ExportWatch) -> None:
        """A collector that dropped plain HTTP connections may speak only HTTPS: a TLS handshake
        tells (asked once, after the run, only then)."""
        from llama_stack_otel.errors import speaks_tls

        if watch.problem == DROPPED and speaks_tls(watch.endpoint):
            watch.problem = SPEAKS_HTTPS

    def _waited(self) -> str:
        return f"no answer within the {self.timeout_ms:g} ms export timeout"
