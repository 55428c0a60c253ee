"""Which client this venv holds (make test-instrumentation runs the tests once per release),
and the instrumentor on in-memory providers over a canned server: what the tests share.

The client is ogx-client if it is installed, else llama-stack-client; ``AGENTS_API`` says
whether it still has 0.2.x's agents API (its Agent runs on it) or the Responses API's Agent.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor, OgxClientInstrumentor

PACKAGE = "ogx_client" if importlib.util.find_spec("ogx_client") else "llama_stack_client"
DISTRIBUTION = PACKAGE.replace("_", "-")
VERSION = importlib.metadata.version(DISTRIBUTION)
client_package: Any = importlib.import_module(PACKAGE)
agent_module: Any = importlib.import_module(f"{PACKAGE}.lib.agents.agent")
base_client: Any = importlib.import_module(f"{PACKAGE}._base_client")
AGENTS_API = hasattr(importlib.import_module(f"{PACKAGE}.resources"), "agents")  # 0.2.x
Instrumentor: Any = OgxClientInstrumentor if PACKAGE == "ogx_client" else LlamaStackClientInstrumentor
SyncClient: Any = getattr(client_package, "OgxClient", None) or client_package.LlamaStackClient
AsyncClient: Any = getattr(client_package, "AsyncOgxClient", None) or client_package.AsyncLlamaStackClient
Stream: Any = client_package.Stream
AsyncStream: Any = client_package.AsyncStream

only_agents_api = pytest.mark.skipif(not AGENTS_API, reason=f"{DISTRIBUTION} {VERSION} has no agents API")
only_responses_agent = pytest.mark.skipif(AGENTS_API, reason=f"{DISTRIBUTION} {VERSION}'s Agent is the agents API's")


class Traced:
    """The instrumentor on an in-memory tracer and meter provider, and a canned server."""

    def __init__(self, canned: Any, *, processor: SpanProcessor | None = None) -> None:
        self.canned = canned
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        if processor is not None:
            self.tracer_provider.add_span_processor(processor)
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor = Instrumentor()

    def instrument(self, **kwargs: Any) -> None:
        self.instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider,
                                     **kwargs)

    def client(self) -> Any:
        return SyncClient(base_url=self.canned.url, max_retries=0)

    def async_client(self) -> Any:
        return AsyncClient(base_url=self.canned.url, max_retries=0)

    def spans(self) -> dict:
        return {s.name: s for s in self.exporter.get_finished_spans()}

    def span_list(self) -> list:
        return list(self.exporter.get_finished_spans())

    def points(self) -> list:
        data = self.reader.get_metrics_data()
        return [(m.name, dict(p.attributes), p) for rm in (data.resource_metrics if data else [])
                for sm in rm.scope_metrics for m in sm.metrics for p in m.data.data_points]
