"""End to end on Llama Stack 0.7.3: the same two-question run as on 0.2.12 (test_local_stack.py),
the script telling by itself that this server has the Responses API and no Agents API.

The run ingests sample-docs/ into a vector store, asks both questions through POST
/v1/responses with file_search over it, and must come out as one trace with one root, no
orphans and the server's spans under each call; everything it created (files, vector store,
stored responses) must be gone afterwards.
"""

from __future__ import annotations

import signal

import pytest

from local import stack
from local.stack import free_port
from tests.support.agent_run import QUESTIONS, ROOT_PREFIX, assert_clean_answers, question_args, tree_and_verdict
from tests.support.llama_stack_http import SERVICE_07, call
from tests.support.script import read_until, run_script, start_script
from tests.support.trace_shape import SERVER_KIND, ancestors, orphans, roots

pytestmark = pytest.mark.server


def server_spans(spans, name: str):
    return [s for s in spans if s.service == SERVICE_07 and s.kind == SERVER_KIND and s.name == name]


def listed(base: str, path: str) -> set[str]:
    return {item["id"] for item in call(base, "GET", path)["data"]}


@pytest.fixture(scope="module")
def run_07(stack_07, otlp_receiver):
    """Two questions with --verify against the 0.7.3 stack; what the server held before and after."""
    base = stack_07.llama_stack_url
    before = {path: listed(base, path) for path in ("/v1/vector_stores", "/v1/files", "/v1/responses")}
    env = {**stack_07.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url,
           "TRACE_UI_URL": otlp_receiver.base_url, "TRACE_BACKEND": "jaeger"}
    env.pop("LLAMA_STACK_VERSION", None)  # the script finds out by itself
    run = run_script(*question_args(), "--verify", env=env, timeout=600)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    after = {path: listed(base, path) for path in before}
    # The last call removes the last file; the server sends its spans in ~5 s batches.
    otlp_receiver.wait_for(lambda ss: bool(server_spans(ss, "DELETE /v1/files/{file_id}")) and not orphans(ss),
                           trace_id=run.trace_id, timeout=60)
    return run, otlp_receiver.spans(run.trace_id), before, after


def test_two_answers_and_nothing_on_stderr(run_07):
    run, _, _, _ = run_07
    assert run.stdout.count("QUESTION: ") == len(QUESTIONS)
    assert_clean_answers(run.stdout)  # non-empty, no chat-template text (the stop sequences work)
    assert "into vector store vs_" in run.stdout
    assert run.stderr == ""


def test_one_whole_trace_with_the_servers_spans_under_each_call(run_07):
    _, spans, _, _ = run_07
    [root] = roots(spans)
    assert root.name.startswith(ROOT_PREFIX) and root.service == "PythonAgentRAG"
    assert not orphans(spans), [f"{s.service}:{s.name}" for s in orphans(spans)]
    assert {s.service for s in spans} == {"PythonAgentRAG", SERVICE_07}
    phases = [s.name for s in sorted((s for s in spans if s.parent_span_id == root.span_id), key=lambda s: s.start_ns)]
    assert phases == ["check_server", "ingest_documents", "invoke_agent rag-agent", "invoke_agent rag-agent",
                      "clean_up"]
    by_name = {s.span_id: s for s in spans}
    responses = server_spans(spans, "POST /v1/responses")
    assert len(responses) == len(QUESTIONS)
    for server_span in responses:
        chain = [s.name for s in ancestors(server_span, spans)]
        # server span -> the script's HTTP client span -> the question's phase -> the root
        assert chain[1:] == ["invoke_agent rag-agent", root.name], chain
        assert by_name[server_span.parent_span_id].service == "PythonAgentRAG"
    assert server_spans(spans, "POST /v1/vector_stores") and server_spans(spans, "POST /v1/files")


def test_each_question_searched_the_vector_store(run_07):
    """The model was made to call file_search (local/providers_responses: a forced tool call), the
    server ran it, and the script recorded it under the question's phase."""
    _, spans, _, _ = run_07
    by_id = {s.span_id: s for s in spans}
    searches = [s for s in spans if s.name == "execute_tool file_search"]
    assert len(searches) == len(QUESTIONS), sorted({s.name for s in spans})
    for search in searches:
        assert by_id[search.parent_span_id].name == "invoke_agent rag-agent"
        assert search.attributes["gen_ai.tool.type"] == "datastore"
        assert search.attributes["rag_agent.retrieval.chunks"] > 0 and search.attributes["rag_agent.retrieval.chars"] > 0
        assert search.attributes["gen_ai.data_source.id"].startswith("vs_")
    # The server's own span of the tool, inside each POST /v1/responses.
    assert sum(s.service == SERVICE_07 and s.name == "file_search" for s in spans) == len(QUESTIONS)


def test_the_run_detected_the_responses_api(run_07):
    _, spans, _, _ = run_07
    [check] = [s for s in spans if s.name == "check_server"]
    assert check.attributes["rag_agent.api"] == "responses"
    assert check.attributes["rag_agent.server.version"] == "0.7.3"
    [root] = roots(spans)  # the run's description too
    assert (root.attributes["rag_agent.api"], root.attributes["rag_agent.server.version"]) == ("responses", "0.7.3")
    assert root.attributes["rag_agent.run.outcome"] == "ok"


def test_verify_says_the_trace_is_whole(run_07):
    run, _, _, _ = run_07
    _, verdict = tree_and_verdict(run.stdout)
    assert f"trace {run.trace_id}: " in verdict[1] and " · 1 root(s) · 0 orphan(s) · " in verdict[1]
    assert verdict[2] == "trace OK"


def test_nothing_left_on_the_server(run_07):
    run, spans, before, after = run_07
    assert after == before
    # ... and the run did create them: one file per document, one store, one response per question.
    deletes = [s.name for s in spans if s.service == SERVICE_07 and s.kind == SERVER_KIND and s.name.startswith("DELETE ")]
    assert deletes.count("DELETE /v1/responses/{response_id}") == len(QUESTIONS)
    assert deletes.count("DELETE /v1/vector_stores/{vector_store_id}") == 1
    documents = int(run.stdout.split("Ingesting ")[1].split()[0])
    assert deletes.count("DELETE /v1/files/{file_id}") == documents == 9


def test_verify_says_how_to_fix_a_server_that_emits_no_spans(stack_07, otlp_receiver, tmp_path):
    """A 0.7.3 server started by hand, without opentelemetry-instrument, records nothing: --verify
    says the trace is broken, that no server span arrived, and how to start the server."""
    urls = {c.name: c.url for c in stack_07.components}
    profile = stack.PROFILES["0.7.3"]
    server = stack.start_llama_stack(
        profile, stack.prepare("external", profile).server_python, port=free_port(),
        llama_server_url=urls["llama-server"], embedding_server_url=urls["embedding-server"],
        otlp_endpoint=otlp_receiver.base_url, state_dir=tmp_path, logs=tmp_path / "logs", instrumented=False)
    try:
        env = {**stack_07.script_env(), "LLAMA_STACK_URL": server.url, "TRACE_BACKEND": "jaeger",
               "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url, "TRACE_UI_URL": otlp_receiver.base_url}
        run = run_script("--no-questions", "--docs", "sample-docs/delivery", "--verify", "--verify-wait", "8",
                         env=env, timeout=300)
    finally:
        stack.stop_component(server)
    assert run.returncode == 4, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.stdout.splitlines()[-1] == (
        "trace BROKEN: no server spans: only PythonAgentRAG's spans arrived — is the server's telemetry on "
        "(Llama Stack 0.4 and later: start it under opentelemetry-instrument with OTEL_EXPORTER_OTLP_ENDPOINT set), "
        "and does its request carry the traceparent header?")
    assert "into vector store vs_" in run.stdout and run.stderr == ""


def test_ctrl_c_during_an_answer_removes_what_the_run_made(stack_07, otlp_receiver):
    """SIGINT while the response streams: exit 130, one error line, and the files, the vector
    store and the response stored so far are removed all the same."""
    base = stack_07.llama_stack_url
    before = {path: listed(base, path) for path in ("/v1/vector_stores", "/v1/files", "/v1/responses")}
    env = {**stack_07.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url}
    process = start_script("--question", QUESTIONS[1], env=env)
    read_until(process, "RESPONSE: ", timeout=180)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["error: interrupted"]
    assert {path: listed(base, path) for path in before} == before
