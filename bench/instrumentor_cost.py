"""What the llama-stack-client instrumentor itself costs an app: per call and per streamed chunk.

Measured in-process against a loopback server that answers like Llama Stack (the tests'
instrumentation/tests/canned_llama_stack.py): the same client calls with the instrumentor on and off, alternating
(on, off, off, on, ...) so that whatever else the machine does falls on both sides. The SDK is
set up as an app would (BatchSpanProcessor to an exporter that drops the spans, a meter
provider with a reader); the HTTPX instrumentation is off on both sides, so the difference is
the instrumentor's own.

- per call: a whole (not streamed) Responses API call with a file_search result, i.e. an
  invoke_agent span, an execute_tool span and their metrics;
- per chunk: the slope between a streamed response of few and of many text deltas, so the
  call's fixed cost drops out.

    PYTHONPATH=instrumentation/tests python -m bench.instrumentor_cost [--reps 30]   # or: make bench BENCH_ARGS="--only instr"
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Callable

from canned_llama_stack import rag_response, serving

CALLS_PER_REP = 50
FEW_CHUNKS, MANY_CHUNKS = 100, 2100
GOAL_PER_CALL_S, GOAL_PER_CHUNK_S = 1e-3, 50e-6
BODY = {"model": "m", "input": "How do I stop a node process?",
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}


def telemetry() -> tuple:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Dropping(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(Dropping()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def alternate(reps: int, measure: Callable[[], float], instrument: Callable[[], None],
              uninstrument: Callable[[], None]) -> dict[str, list[float]]:
    """measure() once per side per repetition, the sides' order alternating."""
    results: dict[str, list[float]] = {"on": [], "off": []}
    for rep in range(reps):
        for side in ("on", "off") if rep % 2 == 0 else ("off", "on"):
            (instrument if side == "on" else uninstrument)()
            results[side].append(measure())
    uninstrument()
    return results


def measure(reps: int) -> dict:
    from llama_stack_client import LlamaStackClient, Stream

    from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's import asks for a line per request
    tracer_provider, meter_provider = telemetry()
    instrumentor = LlamaStackClientInstrumentor()

    def instrument() -> None:
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)

    def uninstrument() -> None:
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()

    with serving() as canned:
        client = LlamaStackClient(base_url=canned.url, max_retries=0)

        def per_call() -> float:
            canned.response = rag_response(question="q", chunk_text="c", answer=["a"])
            started = time.perf_counter()
            for _ in range(CALLS_PER_REP):
                client.post("/v1/responses", cast_to=object, body=BODY)
            return (time.perf_counter() - started) / CALLS_PER_REP

        def streamed(chunks: int) -> Callable[[], float]:
            events = rag_response(question="q", chunk_text="c", answer=["x"] * chunks)

            def once() -> float:
                canned.response = events
                started = time.perf_counter()
                for _ in client.post("/v1/responses", cast_to=object, body={**BODY, "stream": True}, stream=True,
                                     stream_cls=Stream[object]):
                    pass
                return time.perf_counter() - started
            return once

        for warm_up in (per_call, streamed(FEW_CHUNKS)):  # imports, first connections
            instrument()
            warm_up()
            uninstrument()
            warm_up()
        calls = alternate(reps, per_call, instrument, uninstrument)
        few = alternate(reps, streamed(FEW_CHUNKS), instrument, uninstrument)
        many = alternate(reps, streamed(MANY_CHUNKS), instrument, uninstrument)
    tracer_provider.shutdown()

    def cost(results: dict[str, list[float]]) -> float:
        return statistics.median(results["on"]) - statistics.median(results["off"])

    return {
        "per_call_s": cost(calls), "call_on_s": statistics.median(calls["on"]),
        "call_off_s": statistics.median(calls["off"]),
        "per_chunk_s": (cost(many) - cost(few)) / (MANY_CHUNKS - FEW_CHUNKS),
        "chunk_off_s": (statistics.median(many["off"]) - statistics.median(few["off"])) / (MANY_CHUNKS - FEW_CHUNKS),
        "raw": {"calls": calls, "few": few, "many": many, "chunks": [FEW_CHUNKS, MANY_CHUNKS],
                "calls_per_rep": CALLS_PER_REP},
    }


def rows(figures: dict) -> list[dict]:
    """The two lines of the bench table: figure, what, ours, baseline, ratio, goal, met."""
    per_call, per_chunk = figures["per_call_s"], figures["per_chunk_s"]
    return [
        {"figure": "I1", "what": "instrumentor's own cost per call: a whole Responses call (invoke_agent + "
                                 "execute_tool + metrics), in-process, loopback; instrumented vs not (ms/call)",
         "ours": f"+{per_call * 1e3:.3f} ms ({figures['call_on_s'] * 1e3:.2f} ms/call)",
         "baseline": f"{figures['call_off_s'] * 1e3:.2f} ms/call",
         "ratio": f"{figures['call_on_s'] / figures['call_off_s']:.2f}", "goal": "<= 1 ms",
         "met": "yes" if per_call <= GOAL_PER_CALL_S else "NO"},
        {"figure": "I2", "what": "instrumentor's own cost per streamed chunk (slope from "
                                 f"{FEW_CHUNKS} to {MANY_CHUNKS} text deltas); baseline: the client's own per chunk",
         "ours": f"+{per_chunk * 1e6:.1f} µs", "baseline": f"{figures['chunk_off_s'] * 1e6:.1f} µs/chunk",
         "ratio": f"{(figures['chunk_off_s'] + per_chunk) / figures['chunk_off_s']:.2f}", "goal": "<= 50 µs",
         "met": "yes" if per_chunk <= GOAL_PER_CHUNK_S else "NO"},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=30, help="repetitions of each side (default %(default)s)")
    args = parser.parse_args()
    for row in rows(measure(args.reps)):
        print(f"{row['figure']}  {row['ours']:<28} {row['baseline']:<16} {row['ratio']:<6} {row['goal']:<9} "
              f"{row['met']:<4} {row['what']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
