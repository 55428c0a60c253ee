#!/usr/bin/env python3
"""A RAG agent on Llama Stack, seen as ONE OpenTelemetry trace: this script's spans and the server's.

Set up tracing first — resource, provider, batch processor with the OTLP/HTTP exporter,
HTTPX and Llama Stack client instrumentation, W3C propagator — then import the Llama Stack
client and run the whole request inside one top-level span. Every call the client makes
carries `traceparent`, so the spans the server records for it nest under ours, and the
instrumentor gives the agent's calls their GenAI spans. configure_tracing() and run_request()
are the part to copy into your own app; everything else (flags, the two Llama Stack
generations, the app's phase spans, delivery accounting, signals, --verify) lives in the
llama_stack_otel package.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 LLAMA_STACK_URL=http://localhost:8321 \\
        python llama_stack_agent_rag_otel.py --question "Should I use npm to start a node.js application?"

No containers at hand? `make demo` runs it on a local stack. `--help` lists every flag.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace

from llama_stack_otel import cli, names
from llama_stack_otel.config import DEFAULT_SERVICE_NAME, TelemetrySettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from llama_stack_otel.delivery import Delivery
    from llama_stack_otel.runner import Run
    from llama_stack_otel.telemetry import Telemetry

TRACER_NAME = "Python LlamaStack application"


def configure_tracing(settings: TelemetrySettings, *, span_delivery: Delivery | None = None,
                      span_processor: SpanProcessor | None = None) -> TracerProvider:
    """The five steps that make the server's spans join ours, in order."""
    # Imported here rather than at the top, so that --help and a bad flag answer at once.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from llama_stack_otel.telemetry import scrub_http_span
    from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor

    # 1. The resource names us on every span; OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES win.
    resource = Resource.create()
    if str(resource.attributes[SERVICE_NAME]).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    # 2. The provider. main() shuts it down within the export timeout: no atexit hook.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    # 3. Spans leave in batches over OTLP/HTTP. span_delivery bounds each export (the timeout
    #    is in seconds here) and counts what arrives, to say in one line what did not.
    if span_processor is None:  # tests pass an in-memory one
        span_exporter = OTLPSpanExporter(endpoint=settings.traces_endpoint,
                                         timeout=settings.export_timeout_ms / 1000,
                                         session=span_delivery.session if span_delivery else None)
        span_processor = BatchSpanProcessor(span_delivery.counted(span_exporter) if span_delivery else span_exporter)
    if span_delivery is not None:
        provider.add_span_processor(span_delivery.spans)  # counts the spans that end
    provider.add_span_processor(span_processor)
    trace.set_tracer_provider(provider)
    # 4. Every httpx client created from now on (the Llama Stack client's too) makes a client
    #    span per request and injects the current context; the hook strips credentials from URLs.
    #    The Llama Stack client's own instrumentor adds the GenAI spans and metrics: create_agent,
    #    invoke_agent per question with execute_tool per tool the server ran.
    HTTPXClientInstrumentor().instrument(request_hook=scrub_http_span)
    LlamaStackClientInstrumentor().instrument()
    # 5. W3C traceparent on every request, unless OTEL_PROPAGATORS names others (the SDK has
    #    set those up already); OTEL_PROPAGATORS=none sends none, and the trace comes out broken.
    if not os.environ.get("OTEL_PROPAGATORS", "").strip():
        set_global_textmap(TraceContextTextMapPropagator())
    return provider


def run_request(run: Run, telemetry: Telemetry, *, options: cli.Options) -> None:
    """One whole request inside one top-level span: the phases, every HTTP call and every span
    the server records for them nest under it."""
    from llama_stack_otel import backends, runner

    settings = options.settings
    with telemetry.tracer.start_as_current_span(names.root_span(run.run_id), record_exception=False,
                                                set_status_on_exception=False) as root:
        with runner.outcome(root, run=run, telemetry=telemetry, options=options):
            # check_server; on the way out, whatever happens, clean_up removes what the run made.
            with backends.connect(settings, run_id=run.run_id, telemetry=telemetry, out=run.out) as rag:
                rag.ingest(options.documents)  # ingest_documents
                for question in settings.questions:
                    rag.ask(question)  # the instrumentor's invoke_agent, with execute_tool under it


def main(argv: Sequence[str] | None = None) -> int:
    gc.disable()  # start-up imports make many objects and no garbage; connect() turns it back on
    options = cli.parse(argv)  # a bad flag, variable or docs folder: one line, exit 2
    from llama_stack_otel import runner

    provider = span_delivery = None
    if options.telemetry is not None:  # None: OTEL_SDK_DISABLED=true
        from llama_stack_otel.delivery import Delivery

        span_delivery = Delivery(traces_endpoint=options.telemetry.traces_endpoint,
                                 timeout_ms=options.telemetry.export_timeout_ms)
        provider = configure_tracing(options.telemetry, span_delivery=span_delivery)
    return runner.run(options, lambda run, telemetry: run_request(run, telemetry, options=options),
                      tracer=trace.get_tracer(TRACER_NAME), provider=provider, span_delivery=span_delivery)


def exit_now(exit_code: int) -> None:
    """Exit with everything flushed, minus the interpreter's last garbage collection: it walks
    every object the client libraries made (0.3-0.45 s here, bench P2). Frozen objects are
    skipped; the OS takes the memory back anyway."""
    gc.freeze()
    sys.exit(exit_code)


if __name__ == "__main__":
    exit_now(main())
