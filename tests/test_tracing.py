"""Tracing set-up: resource, propagator, and the traceparent every outgoing request carries.

Spans go to an in-memory exporter through a SimpleSpanProcessor; the HTTP side is real:
the Llama Stack client talks to a loopback HTTP server that records the headers it got.
"""

from __future__ import annotations

import re

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

import llama_stack_agent_rag_otel as app
from llama_stack_otel import cli
from llama_stack_otel.config import TelemetrySettings
from llama_stack_otel.errors import UserError

# version 00, trace id, parent span id, flags; this SDK also sets the level-2 "random" flag (02)
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

TRACES_NOWHERE = TelemetrySettings(traces_endpoint="http://127.0.0.1:9/v1/traces", metrics_endpoint=None,
                                   export_timeout_ms=1500)


def setup_tracing(exporter: InMemorySpanExporter):
    return app.configure_tracing(TRACES_NOWHERE, span_processor=SimpleSpanProcessor(exporter))


def test_resource_names_the_service_PythonAgentRAG_by_default(exporter):
    provider = setup_tracing(exporter)
    assert provider.resource.attributes["service.name"] == "PythonAgentRAG"


def test_OTEL_SERVICE_NAME_names_the_service(exporter, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout-rag")
    assert setup_tracing(exporter).resource.attributes["service.name"] == "checkout-rag"


def test_OTEL_RESOURCE_ATTRIBUTES_are_honoured(exporter, monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,service.name=from-attrs")
    attributes = setup_tracing(exporter).resource.attributes
    assert attributes["deployment.environment"] == "staging"
    assert attributes["service.name"] == "from-attrs"


def test_global_propagator_is_w3c_tracecontext(exporter):
    setup_tracing(exporter)
    assert isinstance(propagate.get_global_textmap(), TraceContextTextMapPropagator)


def test_provider_is_the_global_one(exporter):
    provider = setup_tracing(exporter)
    assert trace.get_tracer_provider() is provider


def test_every_request_carries_a_sampled_traceparent_of_its_own_client_span(exporter, recording_server):
    url, seen = recording_server
    setup_tracing(exporter)
    from llama_stack_client import LlamaStackClient

    client = LlamaStackClient(base_url=url, max_retries=0)
    tracer = trace.get_tracer(app.TRACER_NAME)
    with tracer.start_as_current_span("root") as root:
        client.providers.list()
        client.vector_dbs.list()
    assert len(seen) == 2

    spans = exporter.get_finished_spans()
    client_spans = [s for s in spans if s.kind == trace.SpanKind.CLIENT]
    assert len(client_spans) == 2
    for headers, client_span in zip(seen, sorted(client_spans, key=lambda s: s.start_time), strict=True):
        match = TRACEPARENT.match(headers.get("traceparent", ""))
        assert match, sorted(headers.items())
        trace_id, parent_id, flags = match.groups()
        assert int(flags, 16) & 0x01, f"not sampled: {flags}"
        assert trace_id == trace.format_trace_id(root.get_span_context().trace_id)
        # The server's spans will hang under the HTTP client span, which hangs under the root.
        assert parent_id == trace.format_span_id(client_span.context.span_id)
        assert client_span.parent.span_id == root.get_span_context().span_id


def test_root_span_records_the_exception_with_status_error(exporter):
    setup_tracing(exporter)
    tracer = trace.get_tracer(app.TRACER_NAME)
    with pytest.raises(UserError):
        with tracer.start_as_current_span("root"):
            raise UserError("docs folder missing")
    [span] = exporter.get_finished_spans()
    assert span.status.status_code == trace.StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


@pytest.mark.parametrize(
    "flag, env, expected",
    [
        ("http://flag:4318/v1/traces", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/v1/traces"},
         "http://flag:4318/v1/traces"),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4318/x", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318"},
         "http://traces:4318/x"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318/"}, "http://base:4318/v1/traces"),
        (None, {}, "http://localhost:4318/v1/traces"),
    ],
)
def test_traces_endpoint_precedence(monkeypatch, flag, env, expected):
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.resolve_traces_endpoint(flag) == expected
