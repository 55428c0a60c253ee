"""Shared fixtures: one OTLP receiver and one local stack (a real Llama Stack server with an LLM) per session."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors import QuietHandler, serving
from llama_stack_server import PROJECT_ROOT, StackServer, free_port
from local import stack
from otlp_receiver import OTLPReceiver

SCRIPT = PROJECT_ROOT / "llama_stack_agent_rag_otel.py"
TRACE_ID_LINE = re.compile(r"^Trace ID: ([0-9a-f]{32})$", re.MULTILINE)
# Variables that would change how the script behaves if the developer's shell had them.
SCRIPT_ENV_VARS = (
    "LLAMA_STACK_URL", "LLAMA_STACK_API", "INFERENCE_MODEL", "RAG_DOCS_DIR", "TRACE_UI_URL", "TRACE_BACKEND", "TOOL_CHOICE",
    "RAG_AGENT_DEBUG", "RAG_MAX_FILE_SIZE", "VERIFY_TRACE", "OTEL_PROPAGATORS",
    "OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_METRICS_EXPORTER", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "AGENT_INSTRUCTIONS",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
)


@dataclass
class ScriptRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def vector_db_id(self) -> str:
        """The vector DB the run reported ingesting into."""
        return self.stdout.split("into vector DB ")[1].split()[0]

    @property
    def trace_id(self) -> str:
        match = TRACE_ID_LINE.search(self.stdout)
        assert match, f"no 'Trace ID:' line in stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return match.group(1)


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the script's own variables, plus env: what a run
    is told comes from the test, not from the developer's shell."""
    return {**{k: v for k, v in os.environ.items() if k not in SCRIPT_ENV_VARS}, **(env or {})}


def run_script(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> ScriptRun:
    """Run the script the way a user does: a subprocess with real argv and environment."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=clean_env(env), capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT,
    )
    return ScriptRun(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def exporter(monkeypatch):
    """An in-memory span exporter; afterwards the global tracer provider, the HTTPX and Llama
    Stack client instrumentations and the propagator are put back as they were."""
    from opentelemetry import propagate, trace
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util._once import Once

    from llama_stack_otel.instrumentation import LlamaStackClientInstrumentor

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


@pytest.fixture(scope="session")
def stack_07(otlp_receiver, tmp_path_factory) -> stack.Stack:
    """The local stack with Llama Stack 0.7.3 (and a second llama-server for embeddings), on
    free ports, once per session, its spans going to the suite's OTLP receiver."""
    with stack_on_free_ports(tmp_path_factory.mktemp("local-stack-07"), trace_backend="external",
                             otlp_endpoint=otlp_receiver.base_url, llama_stack_version="0.7.3",
                             embedding_server_port=free_port()) as running:
        yield running


@contextlib.contextmanager
def stack_on_free_ports(state_dir: Path, **settings: str) -> Iterator[stack.Stack]:
    """A local stack on free loopback ports, stopped afterwards; a failed start fails the test.
    Llama Stack 0.2.12 unless settings name another (not LLAMA_STACK_VERSION from the shell)."""
    settings.setdefault("llama_stack_version", stack.DEFAULT_LLAMA_STACK_VERSION)
    ports = {"llama_stack_port": free_port(), "llama_server_port": free_port()}
    if settings.get("trace_backend") == "phoenix":
        ports["phoenix_port"] = free_port()
    try:
        running = stack.up(state_dir=state_dir, **ports, **settings)
    except stack.StackError as error:
        pytest.fail(f"the local stack ({settings}) did not start: {error}", pytrace=False)
    try:
        yield running
    finally:
        stack.down(state_dir=state_dir, quiet=True)


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
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            seen.append({k.lower(): v for k, v in self.headers.items()})
            self.drain_and_answer(200)

    with serving(Handler) as url:
        yield url, seen


def pytest_collection_modifyitems(items):
    for item in items:
        if {"llama_stack", "local_stack", "phoenix_stack", "server_without_vector_io", "stack_07"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)
