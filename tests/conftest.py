"""Shared fixtures: one OTLP receiver and one local stack (a real Llama Stack server with an LLM) per session.

Only fixtures and the collection hook live here; the helpers the tests share are in tests.support.
"""

from __future__ import annotations

import json

import pytest

from local import stack
from local.stack import free_port
from tests.support.collectors import QuietHandler, serving
from tests.support.http_reply import reply
from tests.support.llama_stack_server import RESPONSES_VERSIONS, StackServer, stack_id, stack_on_free_ports
from tests.support.otlp_receiver import OTLPReceiver


@pytest.fixture
def exporter(monkeypatch):
    """An in-memory span exporter; afterwards the global tracer provider, the HTTPX and Llama
    Stack client instrumentations and the propagator are put back as they were."""
    from opentelemetry import propagate, trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util._once import Once

    from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor

    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    original_propagator = propagate.get_global_textmap()
    exporter = InMemorySpanExporter()
    yield exporter
    HTTPXClientInstrumentor().uninstrument()
    LlamaStackClientInstrumentor().uninstrument()
    propagate.set_global_textmap(original_propagator)
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture(scope="session")
def otlp_receiver():
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def local_stack(otlp_receiver, tmp_path_factory) -> stack.Stack:
    """The whole local stack (llama-server with Gemma 3 270M, Llama Stack), on free ports, once
    per session. TRACE_BACKEND=external: the server's spans go to the suite's OTLP receiver."""
    with stack_on_free_ports(tmp_path_factory.mktemp("local-stack"), trace_backend="external",
                             otlp_endpoint=otlp_receiver.base_url) as running:
        yield running


@pytest.fixture(scope="session", params=RESPONSES_VERSIONS, ids=stack_id)
def responses_stack(request, otlp_receiver, tmp_path_factory) -> stack.Stack:
    """The local stack with a Responses-API server (and a second llama-server for embeddings),
    on free ports, its spans going to the suite's OTLP receiver: one per version of
    RESPONSES_VERSIONS, each started once (pytest runs every test of one version before it
    starts the next, and stops the first). A test marked current_responses_version_only runs
    on OGX 1.5.0 alone."""
    version = request.param
    with stack_on_free_ports(tmp_path_factory.mktemp(f"local-stack-{version}"), trace_backend="external",
                             otlp_endpoint=otlp_receiver.base_url, llama_stack_version=version,
                             embedding_server_port=free_port()) as running:
        yield running


@pytest.fixture(scope="session")
def secure_stack(otlp_receiver, tmp_path_factory) -> stack.Stack:
    """The local stack with OGX 1.5.0 as it runs in production (LLAMA_STACK_SECURE=1): HTTPS with
    a certificate from the stack's own CA and an API key, made in a folder of the session's
    (not the user's cache); once per session, its spans going to the suite's OTLP receiver."""
    with stack_on_free_ports(tmp_path_factory.mktemp("secure-stack"), trace_backend="external",
                             otlp_endpoint=otlp_receiver.base_url, llama_stack_version="1.5.0",
                             embedding_server_port=free_port(), secure=True,
                             credentials_dir=tmp_path_factory.mktemp("secure-credentials")) as running:
        yield running


@pytest.fixture(scope="session")
def llama_stack(local_stack) -> StackServer:
    return StackServer(url=local_stack.llama_stack_url)


@pytest.fixture
def recording_server():
    """A loopback HTTP server answering every GET with Llama Stack's empty-list JSON (and every
    POST with an empty 200) and keeping each request's headers: (url, list of header dicts)."""
    seen: list[dict[str, str]] = []
    body = json.dumps({"data": []}).encode()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            reply(self, body, content_type="application/json")

        def do_POST(self) -> None:
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.drain_and_answer(200)

    with serving(Handler) as url:
        yield url, seen


def pytest_collection_modifyitems(items):
    for item in items:
        server_fixtures = {"llama_stack", "local_stack", "phoenix_stack", "server_without_vector_io", "responses_stack",
                           "secure_stack"}
        if server_fixtures & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)
