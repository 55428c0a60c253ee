"""The instrumentor on in-memory providers over a canned server, and what its spans say: what the
tests of both client lines share.

It imports no client: the OpenAPI-generated client's tests (run alone, ``--confcutdir``, in the
ogx-client 1.2+ venvs) and the Stainless clients' tests (whose conftest imports ``_base_client``)
both import it. Each line's ``Traced`` adds its own instrumentor and clients.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llama_stack_otel_instrumentation import semconv as genai

_T = TypeVar("_T", bound="InMemoryTraced")


class InMemoryTraced:
    """An instrumentor on an in-memory tracer and meter provider, and a canned server."""

    def __init__(self, canned: Any, instrumentor: Any, *, processor: SpanProcessor | None = None) -> None:
        self.canned = canned
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        if processor is not None:
            self.tracer_provider.add_span_processor(processor)
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.instrumentor = instrumentor

    def instrument(self, **kwargs: Any) -> None:
        self.instrumentor.instrument(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider,
                                     **kwargs)

    def spans(self) -> dict:
        return {s.name: s for s in self.exporter.get_finished_spans()}

    def span_list(self) -> list:
        return list(self.exporter.get_finished_spans())

    def points(self) -> list:
        """(metric name, attributes, point) of every metric recorded."""
        data = self.reader.get_metrics_data()
        return [(m.name, dict(p.attributes), p) for rm in (data.resource_metrics if data else [])
                for sm in rm.scope_metrics for m in sm.metrics for p in m.data.data_points]

    def metric(self, name: str, operation: str) -> list:
        """(attributes, point) of one metric for one operation."""
        return [(attrs, p) for metric_name, attrs, p in self.points()
                if metric_name == name and attrs.get(genai.OPERATION_NAME) == operation]


@pytest.fixture(autouse=True)
def no_content_variable(monkeypatch):
    """Content capture is off unless a test turns it on, whatever the shell says."""
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)


@contextmanager
def taken_off_after(make: Callable[..., _T]) -> Iterator[Callable[..., _T]]:
    """The ``traced`` fixture's make(**kwargs): every instrumentor it made is taken off on the way out."""
    made: list[_T] = []

    def one(**kwargs: Any) -> _T:
        made.append(make(**kwargs))
        return made[-1]

    yield one
    for traced in made:
        traced.instrumentor.uninstrument()


def recorded(spans) -> str:
    """Everything the spans say, as one string to look for canaries in."""
    return json.dumps([[s.name, dict(s.attributes), [[e.name, dict(e.attributes)] for e in s.events],
                        s.status.description] for s in spans], default=str)
