"""What the script's own telemetry may not carry, and its metrics switch — no Llama Stack needed.

HTTP spans: the Llama Stack client talks to a real loopback HTTP server, spans go to an
in-memory exporter. Metrics: the script runs as a subprocess against an unreachable
server and exports to the suite's real OTLP receiver, which decodes them.
"""

from __future__ import annotations

import uuid

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import llama_stack_agent_rag_otel as app
from llama_stack_otel import cli
from llama_stack_otel.config import TelemetrySettings
from llama_stack_otel.telemetry import redact_url
from local.stack import free_port
from tests.support.script import run_script

TRACES_NOWHERE = TelemetrySettings(traces_endpoint="http://127.0.0.1:9/v1/traces", metrics_endpoint=None,
                                   export_timeout_ms=1500)


@pytest.mark.parametrize("url, expected", [
    ("http://user:s3cret@host:8321/v1/tools?toolgroup_id=x", "http://host:8321/v1/tools?toolgroup_id=REDACTED"),
    ("https://host/v1/x?api_key=s3cret&sig=s3cret&flag", "https://host/v1/x?api_key=REDACTED&sig=REDACTED&flag=REDACTED"),
    ("http://127.0.0.1:8321/v1/vector-dbs/db-1", "http://127.0.0.1:8321/v1/vector-dbs/db-1"),
    ("http://token@host/#frag", "http://host/"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize("opt_in", ["", "http", "http/dup"])
def test_a_run_with_credentials_in_the_url_exports_none(otlp_receiver, recording_server, opt_in):
    """The script as a user runs it, in each HTTP conventions mode (old http.url, new url.full, both)."""
    url, seen = recording_server  # answers every GET with an empty list: "no vector_io provider"
    run = run_script("--no-questions", "--llama-stack-url", url.replace("http://", "http://alice:s3cret@"),
                     "--otlp-endpoint", otlp_receiver.traces_url, env={"OTEL_SEMCONV_STABILITY_OPT_IN": opt_in})
    assert run.returncode == 3 and "no vector_io provider" in run.stderr, run.stderr
    assert seen and "authorization" in seen[0]  # httpx sent the credentials as Basic auth
    spans = otlp_receiver.wait_for(lambda ss: sum(s.kind == 3 for s in ss) == 2, trace_id=run.trace_id, timeout=10)
    # The version probe, then the providers listing whose empty answer ends the run.
    for http_span, path in zip(sorted((s for s in spans if s.kind == 3), key=lambda s: s.start_ns),
                               ("/v1/version", "/v1/providers"), strict=True):
        urls = {key: value for key, value in http_span.attributes.items() if key in ("http.url", "url.full")}
        assert urls and set(urls.values()) == {f"{url}{path}"}
    assert "s3cret" not in repr(spans) and seen[0]["authorization"].split()[-1] not in repr(spans)


def test_http_spans_carry_no_credentials_query_values_or_headers(exporter, recording_server, monkeypatch, capsys):
    url, seen = recording_server
    # Asking the HTTPX instrumentation for every header must not work with this script.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE", ".*")
    cli.parse(["--no-questions"])  # the script checks its variables before it sets tracing up
    assert "ignoring OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST" in capsys.readouterr().err
    app.configure_tracing(TRACES_NOWHERE, span_processor=SimpleSpanProcessor(exporter))
    from llama_stack_client import LlamaStackClient

    with_credentials = url.replace("http://", "http://alice:s3cret-pw@")
    client = LlamaStackClient(base_url=with_credentials, api_key="s3cret-key", max_retries=0)
    client.tools.list(toolgroup_id="s3cret-group")
    assert seen and "authorization" in seen[0]  # the secrets really were sent (httpx makes user:pw Basic auth)
    [span] = exporter.get_finished_spans()
    # This instrumentation version records the URL as http.url (old HTTP conventions) by default.
    assert span.attributes["http.url"] == f"{url}/v1/tools?toolgroup_id=REDACTED"
    assert not [key for key in span.attributes if "header" in key]
    recorded = repr(dict(span.attributes))
    assert "s3cret" not in recorded and seen[0]["authorization"].split()[-1] not in recorded


@pytest.mark.parametrize("traces, env, expected", [
    ("http://collector:4318/v1/traces", {}, "http://collector:4318/v1/metrics"),
    ("http://collector:4318/v1/traces", {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:1/x"}, "http://m:1/x"),
    ("http://traces:4318/custom", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318/"}, "http://base:4318/v1/metrics"),
    ("http://traces:4318/custom", {}, "http://localhost:4318/v1/metrics"),
])
def test_metrics_endpoint_follows_the_traces_endpoint(monkeypatch, traces, env, expected):
    for name in ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.resolve_metrics_endpoint(traces) == expected


def run_unreachable(otlp_receiver, *args: str, env: dict[str, str] | None = None):
    """A run that fails fast (nothing listens at its Llama Stack URL), tagged so its metrics can be told apart."""
    instance = str(uuid.uuid4())
    run = run_script("--llama-stack-url", f"http://127.0.0.1:{free_port()}", "--otlp-endpoint", otlp_receiver.traces_url,
                     *args, env={"OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}", **(env or {})})
    assert run.returncode == 3, run.stderr
    return run, instance


def test_metrics_arrive_at_the_same_base_as_the_traces(otlp_receiver):
    _run, instance = run_unreachable(otlp_receiver)
    # The meter provider's shutdown exports before the process exits: no waiting for a batch.
    points = otlp_receiver.wait_for_points(lambda ps: bool(ps), service_instance=instance, timeout=2)
    [run_duration] = [p for p in points if p.metric == "rag_agent.run.duration"]
    assert (run_duration.kind, run_duration.unit, run_duration.count) == ("histogram", "s", 1)
    assert run_duration.service == "PythonAgentRAG"
    assert run_duration.attributes == {"error.type": "UserError"}
    assert 0 < run_duration.sum < 60


@pytest.mark.parametrize("args, env", [((), {"OTEL_METRICS_EXPORTER": "none"}), (("--no-metrics",), {})],
                         ids=["OTEL_METRICS_EXPORTER=none", "--no-metrics"])
def test_metrics_can_be_switched_off(otlp_receiver, args, env):
    run, instance = run_unreachable(otlp_receiver, *args, env=env)
    # The trace still went out (spans are flushed at exit just like metrics would be) ...
    otlp_receiver.wait_for(lambda spans: bool(spans), trace_id=run.trace_id, timeout=10)
    # ... but no metric of this run did.
    assert otlp_receiver.points(instance) == []
