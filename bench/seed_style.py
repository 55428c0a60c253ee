"""The baseline for the exit and delivery benchmarks: the same ingest-only request, traced the
way the original example does it and no more.

Provider with the SDK's defaults (its atexit hook flushes at exit), a BatchSpanProcessor in
front of the OTLP/HTTP exporter with its default timeout and retries, HTTPX instrumentation,
the W3C propagator, one top-level span. No signal handling, no bounded wait, no accounting:
what the process does at exit is whatever the SDK does.

    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 python bench/seed_style.py \
        --llama-stack-url http://127.0.0.1:8321 --docs sample-docs
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.propagate import set_global_textmap
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

provider = TracerProvider(resource=Resource.create())
processor = BatchSpanProcessor(OTLPSpanExporter())
provider.add_span_processor(processor)
trace.set_tracer_provider(provider)
HTTPXClientInstrumentor().instrument()
set_global_textmap(TraceContextTextMapPropagator())
tracer = trace.get_tracer("seed-style")

from llama_stack_client import LlamaStackClient  # noqa: E402 - after the instrumentation, as it expects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-stack-url", required=True)
    parser.add_argument("--docs", type=Path, required=True)
    args = parser.parse_args()
    run_id = uuid.uuid4()
    with tracer.start_as_current_span(f"Python LlamaStack request - {run_id}"):
        client = LlamaStackClient(base_url=args.llama_stack_url)
        provider_id = next(p.provider_id for p in client.providers.list() if p.api == "vector_io")
        vector_db_id = f"seed-style-{run_id}"
        client.vector_dbs.register(vector_db_id=vector_db_id, embedding_model="all-MiniLM-L6-v2",
                                   embedding_dimension=384, provider_id=provider_id)
        files = sorted(args.docs.rglob("*.md"))
        print(f"Ingesting {len(files)} documents into vector DB {vector_db_id} ...", flush=True)
        try:
            client.tool_runtime.rag_tool.insert(
                documents=[{"document_id": f"doc-{i}", "content": path.read_text(), "mime_type": "text/plain",
                            "metadata": {}} for i, path in enumerate(files)],
                vector_db_id=vector_db_id, chunk_size_in_tokens=125)
            print(f"Ingested {len(files)} documents", flush=True)
        finally:
            client.vector_dbs.unregister(vector_db_id)


if __name__ == "__main__":
    main()
