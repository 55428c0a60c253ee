"""The script against a REAL Llama Stack 0.2.12 server, its spans caught by a real OTLP receiver.

An ingest-only run (--no-questions) needs no LLM: list providers, register a vector DB,
insert the sample docs, unregister. The server's spans must land in the script's trace,
under its top-level span.
"""

from __future__ import annotations

import re
import uuid

import pytest

from local.stack import PROJECT_ROOT
from tests.support.script import run_script
from tests.support.trace_shape import (
    CLIENT_KIND,
    SERVER_KIND,
    ancestors,
    orphans,
    roots,
    server_spans_for_route,
    whole_trace,
)

SERVICE = "PythonAgentRAG"
SERVER_SERVICE = "LlamaStack"


def run_ingest(llama_stack, otlp_receiver, *extra: str, env: dict[str, str] | None = None):
    return run_script(
        "--no-questions", "--llama-stack-url", llama_stack.url, "--otlp-endpoint", otlp_receiver.traces_url,
        *extra, env=env,
    )


@pytest.fixture(scope="module")
def ingest_run(llama_stack, otlp_receiver):
    """One ingest-only run over the sample docs, and every span of its trace once the server's arrived."""
    instance = str(uuid.uuid4())
    run = run_ingest(llama_stack, otlp_receiver, env={"OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}"})
    assert run.returncode == 0, run.stderr
    run.instance = instance
    return run, run.trace_id, whole_trace(otlp_receiver, run.trace_id)


def test_run_prints_trace_id_and_link(ingest_run):
    run, trace_id, _ = ingest_run
    assert "Ingesting 9 documents (10.0 KB) into vector DB test-vector-db-" in run.stdout
    assert re.search(r"^Ingested 9 documents in \d+\.\d s$", run.stdout, re.M)
    assert f"Trace link: http://localhost:16686/trace/{trace_id}" in run.stdout
    assert run.stderr == ""


def test_one_trace_with_the_run_span_as_its_only_root(ingest_run):
    _, _trace_id, spans = ingest_run
    [root] = roots(spans)
    assert root.service == SERVICE
    assert root.name.startswith("Python LlamaStack request - ")
    assert root.status_code != 2


def test_no_orphan_spans(ingest_run):
    _, _, spans = ingest_run
    assert not orphans(spans), [f"{s.service}:{s.name}" for s in orphans(spans)]


def test_every_server_span_hangs_under_the_run_span(ingest_run):
    _, _, spans = ingest_run
    [root] = roots(spans)
    server = [s for s in spans if s.service == SERVER_SERVICE]
    assert len(server) >= 4, [s.name for s in server]
    for span in server:
        chain = ancestors(span, spans)
        assert chain and chain[-1] is root, f"{span.name} does not reach the root: {[s.name for s in chain]}"
        # ... and through one of the script's HTTP client spans.
        assert any(s.service == SERVICE and s.kind == CLIENT_KIND for s in chain), span.name


@pytest.mark.parametrize(
    "method, route",
    [("GET", "/v1/version"), ("GET", "/v1/providers"), ("POST", "/v1/vector-dbs"), ("POST", "/v1/tool-runtime/rag-tool/insert"),
     ("DELETE", "/v1/vector-dbs")],
)
def test_server_recorded_each_api_call(ingest_run, method, route):
    _, _, spans = ingest_run
    assert server_spans_for_route(spans, method, route), f"no server span for {method} {route}"


def test_vector_db_removed_after_the_run(ingest_run, llama_stack):
    run, _, _ = ingest_run
    created = run.vector_db_id
    assert created.startswith("test-vector-db-")
    assert created not in llama_stack.vector_db_ids()


def test_tracing_switched_off_the_run_still_works(llama_stack, otlp_receiver):
    run = run_ingest(llama_stack, otlp_receiver, env={"OTEL_SDK_DISABLED": "true"})
    assert run.returncode == 0, run.stderr
    assert "Trace ID" not in run.stdout
    vector_db_id = run.vector_db_id
    assert vector_db_id not in llama_stack.vector_db_ids()
    # The server still records its side, but with no traceparent coming in, its span of the
    # unregister call is a root of a trace that holds nothing from the script.

    def is_delete(span) -> bool:
        return span.kind == SERVER_KIND and vector_db_id in str(span.attributes.get("url.path", ""))

    spans = otlp_receiver.wait_for(lambda ss: any(is_delete(s) for s in ss), timeout=60)
    [delete] = [s for s in spans if is_delete(s)]
    assert delete.parent_span_id == ""
    assert not [s for s in otlp_receiver.spans(delete.trace_id) if s.service == SERVICE]


def test_an_ingest_only_run_has_three_phases_and_every_call_inside_one(ingest_run):
    run, _, spans = ingest_run
    mine = [s for s in spans if s.service == SERVICE]
    [root] = roots(mine)
    phases = sorted((s for s in mine if s.parent_span_id == root.span_id), key=lambda s: s.start_ns)
    assert [s.name for s in phases] == ["check_server", "ingest_documents", "clean_up"]
    assert all(s.status_code == 0 for s in phases) and "rag_agent.failed_phase" not in root.attributes
    sample_docs = sorted((PROJECT_ROOT / "sample-docs").rglob("*.md"))
    assert phases[1].attributes == {
        "gen_ai.data_source.id": run.vector_db_id, "rag_agent.documents.count": len(sample_docs),
        "rag_agent.documents.bytes": sum(p.stat().st_size for p in sample_docs),
        "rag_agent.chunk_size_tokens": 125, "rag_agent.embedding_model": "all-MiniLM-L6-v2",
        "openinference.span.kind": "CHAIN",  # an app phase, to Phoenix
    }
    phase_ids = {s.span_id for s in phases}
    calls = [s for s in mine if s.kind == CLIENT_KIND]
    # GET /v1/version (which API the server has), providers, register, insert, unregister
    assert len(calls) == 5 and all(s.parent_span_id in phase_ids for s in calls)


def test_an_ingest_only_run_exports_its_duration_metric(ingest_run, otlp_receiver):
    run, _, _ = ingest_run
    points = otlp_receiver.wait_for_points(lambda ps: bool(ps), service_instance=run.instance, timeout=2)
    [run_duration] = [p for p in points if p.metric == "rag_agent.run.duration"]
    assert run_duration.attributes == {} and run_duration.count == 1 and run_duration.sum > 0
    # No agent, no question: no GenAI operation to measure.
    assert not [p for p in points if p.metric.startswith("gen_ai.")]


def test_an_option_of_the_other_generation_says_it_does_nothing_here(llama_stack, otlp_receiver):
    """--stall-timeout bounds 0.4+'s asynchronous ingestion; on 0.2.x the run says so and goes on."""
    run = run_ingest(llama_stack, otlp_receiver, "--stall-timeout", "30")
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == ["warning: --stall-timeout applies to Llama Stack 0.4 and later only; on 0.2.x "
                                       "ingestion is one call, bounded by --timeout"]
