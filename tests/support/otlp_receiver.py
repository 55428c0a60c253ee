"""A real OTLP/HTTP receiver for tests: it listens on loopback, decodes the protobuf
export requests the SDKs send to /v1/traces and /v1/metrics, and keeps the spans and
metric data points for assertions.

Servers batch their spans (Llama Stack's every ~5 s), so tests wait for what they
expect with ``wait_for(...)`` on a monotonic deadline instead of sleeping.

It also answers the two calls of Jaeger's query API v3 that the script's ``--verify`` and
show_trace.py make: ``GET /api/v3/services`` and ``GET /api/v3/traces/<id>``. Jaeger itself
cannot run on these machines (no container engine, no package), so this stands in for it,
answering in the documented wire format: the trace as OTLP-JSON ``TracesData`` under
``"result"`` (hex ids, integer kind and status code, nanosecond times as strings), and 404
with an ``"error"`` object for a trace it does not have.

As a secured collector it can require a header on every export (``required_headers``: 401
without it, the export kept out) and speak only TLS (``tls``: a certificate and its key, e.g.
from local/credentials.py); ``encodings`` records each export's Content-Encoding (gzip).
"""

from __future__ import annotations

import gzip
import json
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.support.http_reply import reply as send


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    service: str
    kind: int
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    start_ns: int
    end_ns: int
    attributes: dict = field(hash=False)
    events: tuple = field(hash=False)  # (name, attributes) pairs


@dataclass(frozen=True)
class ReceivedPoint:
    """One data point of one metric, as exported; histograms carry count and sum, others value."""

    metric: str
    unit: str
    kind: str  # "histogram", "sum", "gauge", ...
    service: str
    resource: dict = field(hash=False)
    attributes: dict = field(hash=False)
    count: int = 0
    sum: float = 0.0
    value: float = 0.0


def any_value(value: AnyValue):
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def decode_spans(body: bytes) -> list[ReceivedSpan]:
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        service=service,
                        kind=span.kind,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                        events=tuple(
                            (e.name, {kv.key: any_value(kv.value) for kv in e.attributes}) for e in span.events
                        ),
                    )
                )
    return spans


def attributes_of(key_values) -> dict:
    return {kv.key: any_value(kv.value) for kv in key_values}


def decode_metrics(body: bytes) -> list[ReceivedPoint]:
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    points = []
    for resource_metrics in request.resource_metrics:
        resource = attributes_of(resource_metrics.resource.attributes)
        service = str(resource.get("service.name", ""))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                common = {"metric": metric.name, "unit": metric.unit, "kind": kind, "service": service,
                          "resource": resource}
                if kind == "histogram":
                    points.extend(
                        ReceivedPoint(**common, attributes=attributes_of(p.attributes), count=p.count, sum=p.sum)
                        for p in metric.histogram.data_points
                    )
                elif kind in ("sum", "gauge"):
                    for p in getattr(metric, kind).data_points:
                        value = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                        points.append(ReceivedPoint(**common, attributes=attributes_of(p.attributes), value=value))
    return points


def otlp_json_value(value) -> dict:
    """A Python attribute value as an OTLP-JSON AnyValue."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # 64-bit integers are strings in OTLP-JSON
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [otlp_json_value(v) for v in value]}}
    if isinstance(value, bytes):
        return {"bytesValue": value.hex()}
    return {"stringValue": str(value)}


def jaeger_v3_trace(spans: list[ReceivedSpan]) -> dict:
    """What Jaeger's ``GET /api/v3/traces/<id>`` answers for these spans: one resourceSpans
    entry per service."""
    by_service: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        by_service.setdefault(span.service, []).append(span)
    return {"result": {"resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeSpans": [{"scope": {}, "spans": [
                {
                    "traceId": s.trace_id, "spanId": s.span_id, "parentSpanId": s.parent_span_id,
                    "name": s.name, "kind": s.kind,
                    "startTimeUnixNano": str(s.start_ns), "endTimeUnixNano": str(s.end_ns),
                    "attributes": [{"key": k, "value": otlp_json_value(v)} for k, v in s.attributes.items()],
                    "status": {"code": s.status_code, **({"message": s.status_message} if s.status_message else {})},
                }
                for s in service_spans
            ]}],
        }
        for service, service_spans in by_service.items()
    ]}}


class OTLPReceiver:
    """Start with ``with OTLPReceiver() as receiver:``; ``receiver.traces_url`` and
    ``receiver.metrics_url`` are the endpoints. ``delay_s`` makes it a slow collector: each
    export is answered (and its spans kept) that long after it arrived. ``required_headers``
    (names in lower case) are wanted on every export, else it answers 401; with ``tls``
    (certificate file, key file) it speaks HTTPS only."""

    def __init__(self, *, delay_s: float = 0.0, required_headers: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        self._spans: list[ReceivedSpan] = []
        self._points: list[ReceivedPoint] = []
        self._lock = threading.Condition()
        self.requests = 0
        self.refused = 0  # exports answered 401 for want of the required headers
        self.encodings: list[str] = []  # each accepted export's Content-Encoding ("" when none)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if any(self.headers.get(name) != value for name, value in (required_headers or {}).items()):
                    with receiver._lock:
                        receiver.refused += 1
                    send(self, b'{"code":16,"message":"missing or wrong credentials"}',
                         content_type="application/json", status=401)
                    return
                encoding = self.headers.get("Content-Encoding", "")
                with receiver._lock:
                    receiver.encodings.append(encoding)
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                time.sleep(delay_s)
                if self.path == "/v1/traces":
                    receiver._add(decode_spans(body))
                    reply = ExportTraceServiceResponse().SerializeToString()
                elif self.path == "/v1/metrics":
                    receiver._add_points(decode_metrics(body))
                    reply = ExportMetricsServiceResponse().SerializeToString()
                else:  # logs are accepted and ignored
                    reply = b""
                send(self, reply, content_type="application/x-protobuf")

            def do_GET(self) -> None:
                status, document = 404, {"error": {"httpCode": 404, "message": "not found"}}
                if self.path == "/api/v3/services":
                    status, document = 200, {"services": sorted({s.service for s in receiver.spans()})}
                elif self.path.startswith("/api/v3/traces/"):
                    spans = receiver.spans(self.path.rsplit("/", 1)[1].split("?")[0].lower())
                    if spans:
                        status, document = 200, jaeger_v3_trace(spans)
                    else:
                        document = {"error": {"httpCode": 404, "message": "trace not found"}}
                send(self, json.dumps(document).encode(), content_type="application/json", status=status)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host}:{port}"

    @property
    def traces_url(self) -> str:
        return f"{self.base_url}/v1/traces"

    @property
    def metrics_url(self) -> str:
        return f"{self.base_url}/v1/metrics"

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._lock:
            self.requests += 1
            self._spans.extend(spans)
            self._lock.notify_all()

    def _add_points(self, points: list[ReceivedPoint]) -> None:
        with self._lock:
            self._points.extend(points)
            self._lock.notify_all()

    def points(self, service_instance: str | None = None) -> list[ReceivedPoint]:
        """Metric data points received, only those of one run if its service.instance.id is given."""
        with self._lock:
            return [p for p in self._points
                    if service_instance is None or p.resource.get("service.instance.id") == service_instance]

    def wait_for_points(
        self, predicate: Callable[[list[ReceivedPoint]], bool], *, service_instance: str, timeout: float = 10.0
    ) -> list[ReceivedPoint]:
        """Wait until predicate(points of that run) holds; return those points, or raise with what arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                points = [p for p in self._points if p.resource.get("service.instance.id") == service_instance]
                if predicate(points):
                    return points
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out after {timeout}s; metrics arrived: {sorted({p.metric for p in points})}")
                self._lock.wait(remaining)

    def spans(self, trace_id: str | None = None) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self._spans if trace_id is None or s.trace_id == trace_id]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], *, trace_id: str | None = None, timeout: float = 30.0
    ) -> list[ReceivedSpan]:
        """Wait until predicate(spans of that trace) holds; return those spans, or raise with what arrived."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                spans = [s for s in self._spans if trace_id is None or s.trace_id == trace_id]
                if predicate(spans):
                    return spans
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = sorted({f"{s.service}:{s.name}" for s in spans})
                    raise AssertionError(f"timed out after {timeout}s; {len(spans)} spans arrived: {names}")
                self._lock.wait(remaining)

    def wait_for_span(self, *, name: str, trace_id: str | None = None, timeout: float = 30.0) -> ReceivedSpan:
        spans = self.wait_for(lambda ss: any(s.name == name for s in ss), trace_id=trace_id, timeout=timeout)
        return next(s for s in spans if s.name == name)
