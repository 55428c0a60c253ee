"""End to end on the Responses-API generations, OGX 1.5.0 and Llama Stack 0.7.3, each on a local
stack of its own (the `responses_stack` fixture, one per version): the same two-question run as on
0.2.12 (test_local_stack.py), the script telling by itself that this server has the Responses API
and no Agents API. The run is made on each server with each client line — llama-stack-client
0.7.5 on Python 3.12 (its typed calls) and the pinned 0.2.12 (its generic calls) — and everything
asked of its trace is asked of all four; the failures (Ctrl-C, a server without telemetry, a
file the server cannot process) run on OGX 1.5.0, the current release, with the pinned client.

The run ingests sample-docs/ into a vector store, asks both questions through POST /v1/responses
with file_search over it, and must come out as one trace with one root, no orphans and the
server's spans under each call: among them its calls to llama-server as GenAI `chat` spans with
the model and token counts, and none of the ASGI instrumentation's per-chunk `http send` /
`http receive` spans. Everything it created (files, vector store, stored responses,
conversations) must be gone afterwards, also after Ctrl-C. A server that records no spans, and
one that cannot process a file, get the one line that says what to do.
"""

from __future__ import annotations

import contextlib
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from local import stack
from local.profiles import MODEL_ID
from local.stack import free_port
from tests.support.agent_run import QUESTIONS, ROOT_PREFIX, answers, assert_clean_answers, question_args, tree_and_verdict
from tests.support.llama_stack_http import server_state
from tests.support.llama_stack_server import CURRENT_RESPONSES_VERSION, current_responses_version_only, stack_id
from tests.support.loopback_proxy import LoopbackProxy
from tests.support.script import (
    CURRENT_CLIENT,
    PINNED_CLIENT,
    ScriptRun,
    assert_one_line_error,
    client_python,
    read_until,
    run_script,
    start_script,
    write_slow_corpus,
)
from tests.support.trace_shape import CLIENT_KIND, SERVER_KIND, ancestors, orphans, roots

pytestmark = pytest.mark.server

# What a streamed answer would otherwise leave per SSE chunk (and per request body read).
PER_MESSAGE_SPAN_SUFFIXES = (" http send", " http receive")
# The attributes in which GenAI instrumentations put message content when it is opted in.
CONTENT_ATTRIBUTES = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"}


# The two-question run, (server, client): each server with today's client (its typed calls) and
# with the pinned one (its generic calls; 0.7.3 would answer that client's version header with
# HTTP 426, so its run there also proves the header is left out).
RUNS = [(version, client) for version in (CURRENT_RESPONSES_VERSION, "0.7.3") for client in (CURRENT_CLIENT, PINNED_CLIENT)]
each_run = pytest.mark.parametrize(("responses_stack", "script_client"), RUNS, indirect=True,
                                   ids=[f"{stack_id(version)}-client-{client}" for version, client in RUNS])


@pytest.fixture(scope="module")
def script_client(request) -> str:
    """The llama-stack-client version the run is made with (parametrized by each_run)."""
    return request.param


def server_spans(spans, running: stack.Stack, name: str):
    return [s for s in spans if s.service == running.profile.service_name and s.kind == SERVER_KIND and s.name == name]


def script_env(running: stack.Stack, receiver) -> dict[str, str]:
    """The stack's settings for the script, with --verify reading the trace back from the receiver."""
    env = {**running.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.base_url,
           "TRACE_UI_URL": receiver.base_url, "TRACE_BACKEND": "jaeger"}
    env.pop("LLAMA_STACK_VERSION", None)  # the script finds out by itself
    return env


@pytest.fixture(scope="module")
def responses_run(responses_stack, script_client, otlp_receiver):
    """Two questions with --verify against the stack; what the server held before and after."""
    python = client_python(script_client)
    before = server_state(responses_stack)
    run = run_script(*question_args(), "--verify", env=script_env(responses_stack, otlp_receiver), timeout=600,
                     python=python)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    after = server_state(responses_stack)
    # The last call removes the last file; the server sends its spans in ~5 s batches.
    otlp_receiver.wait_for(lambda ss: bool(server_spans(ss, responses_stack, "DELETE /v1/files/{file_id}"))
                           and not orphans(ss), trace_id=run.trace_id, timeout=60)
    return run, otlp_receiver.spans(run.trace_id), before, after


@each_run
def test_two_answers_and_nothing_on_stderr(responses_run):
    run, _, _, _ = responses_run
    assert run.stdout.count("QUESTION: ") == len(QUESTIONS)
    assert_clean_answers(run.stdout)  # non-empty, no chat-template text (the stop sequences work)
    assert "<untrusted_tool_output>" not in run.stdout  # OGX's marker around search results
    assert "into vector store vs_" in run.stdout
    assert run.stderr == ""


@each_run
def test_one_whole_trace_with_the_servers_spans_under_each_call(responses_run, responses_stack):
    _, spans, _, _ = responses_run
    service = responses_stack.profile.service_name
    [root] = roots(spans)
    assert root.name.startswith(ROOT_PREFIX) and root.service == "PythonAgentRAG"
    assert not orphans(spans), [f"{s.service}:{s.name}" for s in orphans(spans)]
    assert {s.service for s in spans} == {"PythonAgentRAG", service}
    phases = [s.name for s in sorted((s for s in spans if s.parent_span_id == root.span_id), key=lambda s: s.start_ns)]
    assert phases == ["check_server", "ingest_documents", "invoke_agent rag-agent", "invoke_agent rag-agent",
                      "clean_up"]
    by_name = {s.span_id: s for s in spans}
    responses = server_spans(spans, responses_stack, "POST /v1/responses")
    assert len(responses) == len(QUESTIONS)
    for server_span in responses:
        chain = [s.name for s in ancestors(server_span, spans)]
        # server span -> the script's HTTP client span -> the question's phase -> the root
        assert chain[1:] == ["invoke_agent rag-agent", root.name], chain
        assert by_name[server_span.parent_span_id].service == "PythonAgentRAG"
    assert server_spans(spans, responses_stack, "POST /v1/vector_stores")
    assert server_spans(spans, responses_stack, "POST /v1/files")


@each_run
def test_the_model_calls_are_genai_chat_spans_under_each_question(responses_run, responses_stack):
    """Under each question's POST /v1/responses, the server's two calls to llama-server (the
    forced search call, then the answer) as GenAI client spans from the OpenAI instrumentation
    in its venv: operation, model, token counts, and under each the HTTP request that carried
    the trace on to llama-server."""
    _, spans, _, _ = responses_run
    for response in server_spans(spans, responses_stack, "POST /v1/responses"):
        inside = [s for s in spans if response in ancestors(s, spans)]
        chats = [s for s in inside if s.attributes.get("gen_ai.operation.name") == "chat"]
        assert len(chats) == 2, sorted(s.name for s in inside)
        for chat in chats:
            assert chat.name == f"chat {MODEL_ID}" and chat.kind == CLIENT_KIND
            assert chat.service == responses_stack.profile.service_name
            assert chat.attributes["gen_ai.request.model"] == MODEL_ID
            assert chat.attributes["gen_ai.usage.input_tokens"] > 0, chat.attributes
            assert chat.attributes["gen_ai.usage.output_tokens"] > 0, chat.attributes
            [http] = [s for s in spans if s.parent_span_id == chat.span_id]
            assert http.kind == CLIENT_KIND
            assert str(http.attributes.get("http.url", http.attributes.get("url.full"))).endswith("/v1/chat/completions")


@each_run
def test_no_per_message_asgi_spans(responses_run):
    """The stack starts the server with its own OpenTelemetry distro (OTEL_PYTHON_DISTRO=local_stack),
    which hands the FastAPI instrumentation exclude_spans=["receive", "send"]."""
    _, spans, _, _ = responses_run
    per_message = [s.name for s in spans if s.name.endswith(PER_MESSAGE_SPAN_SUFFIXES)]
    assert not per_message, f"{len(per_message)} per-message spans, e.g. {per_message[:3]}"


@each_run
def test_the_servers_spans_hold_no_message_content(responses_run, responses_stack):
    """GenAI content capture is off on the server, as in the script's own spans: neither the
    questions nor the answers appear in any of its span attributes or events."""
    run, spans, _, _ = responses_run
    server = [s for s in spans if s.service == responses_stack.profile.service_name]
    assert not CONTENT_ATTRIBUTES & {key for s in server for key in s.attributes}
    recorded = " ".join(str(value) for s in server for value in s.attributes.values())
    recorded += " ".join(str(event) for s in server for event in s.events)
    for text in [*QUESTIONS, *(answer[:40] for answer in answers(run.stdout))]:
        assert text not in recorded, text


@each_run
def test_each_question_searched_the_vector_store(responses_run, responses_stack):
    """The model was made to call file_search (the stack's remote::llama-cpp provider: a forced
    tool call), the server ran it, and the script recorded it under the question's phase."""
    _, spans, _, _ = responses_run
    by_id = {s.span_id: s for s in spans}
    searches = [s for s in spans if s.name == "execute_tool file_search"]
    assert len(searches) == len(QUESTIONS), sorted({s.name for s in spans})
    for search in searches:
        assert by_id[search.parent_span_id].name == "invoke_agent rag-agent"
        assert search.attributes["gen_ai.tool.type"] == "datastore"
        assert search.attributes["rag_agent.retrieval.chunks"] > 0 and search.attributes["rag_agent.retrieval.chars"] > 0
        assert search.attributes["gen_ai.data_source.id"].startswith("vs_")
    # The server's own span of the tool, inside each POST /v1/responses.
    service = responses_stack.profile.service_name
    assert sum(s.service == service and s.name == "file_search" for s in spans) == len(QUESTIONS)


@each_run
def test_the_run_detected_the_responses_api(responses_run, responses_stack):
    _, spans, _, _ = responses_run
    [check] = [s for s in spans if s.name == "check_server"]
    assert check.attributes["rag_agent.api"] == "responses"
    assert check.attributes["rag_agent.server.version"] == responses_stack.profile.version


@each_run
def test_verify_says_the_trace_is_whole(responses_run):
    run, _, _, _ = responses_run
    _, verdict = tree_and_verdict(run.stdout)
    assert f"trace {run.trace_id}: " in verdict[1] and " · 1 root(s) · 0 orphan(s) · " in verdict[1]
    assert verdict[2] == "trace OK"


@each_run
def test_nothing_left_on_the_server(responses_run, responses_stack):
    run, spans, before, after = responses_run
    assert after == before  # files, vector stores, stored responses, and the conversations count
    # ... and the run did create them: one file per document, one store, one response per question.
    service = responses_stack.profile.service_name
    deletes = [s.name for s in spans if s.service == service and s.kind == SERVER_KIND and s.name.startswith("DELETE ")]
    assert deletes.count("DELETE /v1/responses/{response_id}") == len(QUESTIONS)
    assert deletes.count("DELETE /v1/vector_stores/{vector_store_id}") == 1
    documents = int(run.stdout.split("Ingesting ")[1].split()[0])
    assert deletes.count("DELETE /v1/files/{file_id}") == documents == 9


@current_responses_version_only
def test_verify_says_how_to_fix_a_server_that_emits_no_spans(responses_stack, otlp_receiver, tmp_path):
    """A server started by hand, without opentelemetry-instrument, records nothing: --verify
    says the trace is broken, that no server span arrived, and how to start the server."""
    urls = {c.name: c.url for c in responses_stack.components}
    profile = responses_stack.profile
    server = stack.start_llama_stack(
        profile, stack.prepare("external", profile).server_python, port=free_port(),
        llama_server_url=urls["llama-server"], embedding_server_url=urls["embedding-server"],
        otlp_endpoint=otlp_receiver.base_url, state_dir=tmp_path, logs=tmp_path / "logs", instrumented=False)
    try:
        env = {**script_env(responses_stack, otlp_receiver), "LLAMA_STACK_URL": server.url}
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


@current_responses_version_only
def test_ctrl_c_during_an_answer_removes_what_the_run_made(responses_stack, otlp_receiver):
    """SIGINT while the response streams: exit 130, one error line, and the files, the vector
    store and the response stored so far are removed all the same."""
    before = server_state(responses_stack)
    env = {**responses_stack.script_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.base_url}
    process = start_script("--question", QUESTIONS[1], env=env)
    read_until(process, "RESPONSE: ", timeout=180)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["error: interrupted"]
    assert server_state(responses_stack) == before


# --- a file the server cannot process -----------------------------------------------------------

DOCS = "sample-docs/delivery"
FIRST_DOCUMENT = "container-images.md"  # the folder's first file: the one whose processing fails


@dataclass
class ServerBehindProxy:
    """A second server of the stack's version whose embeddings go through a loopback proxy in
    front of the stack's embedding llama-server, so that a test can stall or cut them."""

    running: stack.Stack  # the same stack, with this server's URL
    proxy: LoopbackProxy


@pytest.fixture
def server_behind_proxy(responses_stack, otlp_receiver, tmp_path) -> Iterator[ServerBehindProxy]:
    urls = {c.name: c.url for c in responses_stack.components}
    proxy = LoopbackProxy(int(urls["embedding-server"].rsplit(":", 1)[1]))
    profile = responses_stack.profile
    server = stack.start_llama_stack(
        profile, stack.prepare("external", profile).server_python, port=free_port(),
        llama_server_url=urls["llama-server"], embedding_server_url=proxy.url,
        otlp_endpoint=otlp_receiver.base_url, state_dir=tmp_path, logs=tmp_path / "logs")
    running = stack.Stack(state_dir=str(tmp_path), trace_backend="external", otlp_endpoint=otlp_receiver.base_url,
                          trace_ui="", llama_stack_url=server.url, components=[server],
                          llama_stack_version=profile.version)
    try:
        yield ServerBehindProxy(running, proxy)
    finally:
        with contextlib.suppress(OSError):
            proxy.cut()  # a request still waiting on a stalled embedding fails now, and the server stops at once
        stack.stop_component(server)


def run_ingestion(server: ServerBehindProxy, receiver, *, stall_timeout: int) -> tuple[ScriptRun, float]:
    env = script_env(server.running, receiver)
    started = time.monotonic()
    run = run_script("--no-questions", "--docs", DOCS, "--stall-timeout", str(stall_timeout), env=env, timeout=300)
    return run, time.monotonic() - started


@current_responses_version_only
def test_a_file_the_server_fails_to_process_stops_the_run_with_its_reason(server_behind_proxy, otlp_receiver):
    """The embedding endpoint refuses connections: the server marks the file failed, and the run
    stops at once — long before --stall-timeout — with exit 3, the file's name and the server's
    reason, having removed what it made."""
    before = server_state(server_behind_proxy.running)
    server_behind_proxy.proxy.cut()
    run, elapsed = run_ingestion(server_behind_proxy, otlp_receiver, stall_timeout=90)
    prefix = f"error: Llama Stack could not ingest {FIRST_DOCUMENT}: "
    assert_one_line_error(run, exit_code=3, says=prefix)
    reason = run.stderr.strip().removeprefix(prefix)
    assert reason and reason != "failed", run.stderr  # the server's own words, not only the status
    assert elapsed < 90, elapsed
    assert server_state(server_behind_proxy.running) == before


@current_responses_version_only
def test_a_file_whose_processing_stalls_stops_the_run_within_the_bound(server_behind_proxy, otlp_receiver):
    """The embedding endpoint accepts the request and never answers: the server neither finishes
    the file nor fails it. The run gives up after --stall-timeout with exit 3, naming the file and
    the flag, and removes its vector store."""
    stall_timeout = 15
    server_behind_proxy.proxy.stall()
    run, elapsed = run_ingestion(server_behind_proxy, otlp_receiver, stall_timeout=stall_timeout)
    assert_one_line_error(run, exit_code=3, says="error: Llama Stack ")
    line = run.stderr.strip()
    assert f"{FIRST_DOCUMENT} " in line and f" {stall_timeout} s" in line, line
    assert line.endswith("— see the server's log, or raise --stall-timeout"), line
    # The bound, plus the script's start, the upload and the clean-up on a busy 2-core machine.
    assert stall_timeout <= elapsed < stall_timeout + 30, elapsed
    store = run.stdout.split("into vector store ")[1].split()[0]
    assert store not in server_state(server_behind_proxy.running)["/v1/vector_stores"]


@current_responses_version_only
def test_a_long_ingestion_says_how_many_files_are_done(responses_stack, otlp_receiver, tmp_path):
    """The server embeds each file inside the call that adds it to the vector store: while that
    goes on for a while, a line says how many of the files are done, and the run ends as usual."""
    write_slow_corpus(tmp_path, "Rolling updates replace pods one at a time. ", files=40)
    before = server_state(responses_stack)
    run = run_script("--no-questions", "--docs", str(tmp_path), env=script_env(responses_stack, otlp_receiver),
                     timeout=600)
    assert run.returncode == 0, run.stderr
    counts = [int(m.group(1)) for m in re.finditer(r"^  (\d+) of 40 files processed \.\.\.$", run.stdout, re.M)]
    assert counts and counts == sorted(counts) and counts[0] > 0 and counts[-1] < 40, run.stdout
    assert re.search(r"^Ingested 40 documents in \d+\.\d s$", run.stdout, re.M), run.stdout
    assert server_state(responses_stack) == before
