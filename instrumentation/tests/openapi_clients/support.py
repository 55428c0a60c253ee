"""What the OpenAPI-generated client's tests share: the client (ogx-client 1.2+), its canaries,
and the instrumentor on in-memory providers over the canned server.

ogx-client 1.2.0 has no ``Async<X>Api`` classes (its ``AsyncOgxClient`` hands the sync API classes
an async HTTP client, and every call fails): ``HAS_ASYNC_APIS`` says whether this release has them.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ogx_client
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from canned_llama_stack import CannedLlamaStack, rag_response, serving
from llama_stack_otel_instrumentation import OgxClientInstrumentor

VERSION = importlib.metadata.version("ogx-client")
HAS_ASYNC_APIS = hasattr(importlib.import_module("ogx_client.api.responses_api"), "AsyncResponsesApi")
agent_module: Any = importlib.import_module("ogx_client.lib.agents.agent")
needs_async_apis = pytest.mark.skipif(not HAS_ASYNC_APIS, reason=f"ogx-client {VERSION} has no Async<X>Api classes")

QUESTION = "QCANARY-7d31: how do I stop a node process?"
CHUNK_TEXT = "DCANARY-0b9e: send SIGTERM and close the server"
ANSWER = ["ACANARY-52c4: ", "send SIGTERM."]
INSTRUCTIONS = "ICANARY-e8f0: answer from the documents only"
CANARIES = ("QCANARY-7d31", "DCANARY-0b9e", "ACANARY-52c4", "ICANARY-e8f0")
FILE_SEARCH = {"type": "file_search", "vector_store_ids": ["vs_1"]}
MESSAGES = [{"role": "user", "content": QUESTION}]


@contextmanager
def canned_server() -> Iterator[CannedLlamaStack]:
    with serving(CannedLlamaStack(answer=list(ANSWER), chunk_text=CHUNK_TEXT)) as canned:
        canned.response = rag_response(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER)
        yield canned


def recorded(spans) -> str:
    """Everything the spans say, as one string to look for canaries in."""
    return json.dumps([[s.name, dict(s.attributes), [[e.name, dict(e.attributes)] for e in s.events],
                        s.status.description] for s in spans], default=str)


class Traced:
    """The instrumentor on an in-memory tracer and meter provider, and a canned server."""

    def __init__(self, canned: CannedLlamaStack) -> None:
        self.canned = canned
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor = OgxClientInstrumentor()

    def instrument(self, **kwargs: Any) -> None:
        self.instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider,
                                     **kwargs)

    def client(self) -> Any:
        return ogx_client.OgxClient(base_url=self.canned.url)

    def async_client(self) -> Any:
        return ogx_client.AsyncOgxClient(base_url=self.canned.url)

    def spans(self) -> dict:
        return {s.name: s for s in self.exporter.get_finished_spans()}

    def span_list(self) -> list:
        return list(self.exporter.get_finished_spans())

    def points(self, name: str, operation: str) -> list:
        """(attributes, point) of one metric for one operation."""
        data = self.reader.get_metrics_data()
        return [(dict(p.attributes), p) for rm in (data.resource_metrics if data else [])
                for sm in rm.scope_metrics for m in sm.metrics if m.name == name for p in m.data.data_points
                if p.attributes.get("gen_ai.operation.name") == operation]
