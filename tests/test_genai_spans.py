"""The phase spans, their GenAI attributes, privacy and metrics — against a REAL Llama Stack server.

A turn that fails on the server, on purpose: the sentence-transformers provider accepts an
"llm" registration of a model that cannot chat, Llama Stack then creates the agent and its
session for real and the turn fails ("Sentence transformers don't support chat completion").
So a full run — check, ingest, create_agent, create_session, invoke_agent (failing), clean_up —
goes through
the real server, with canaries in the document, the instructions and the question.
Answered questions are tested in test_llm_turns.py, on the local stack's LLM.
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests.support.script import assert_one_line_error, run_script
from tests.support.trace_shape import CLIENT_KIND, roots, server_spans_for_route

SERVICE = "PythonAgentRAG"
MODEL_THAT_CANNOT_CHAT = "cannot-chat"
DOC_CANARY = "DOCCANARY-" + uuid.uuid4().hex[:8]
QUESTION_CANARY = "QCANARY-" + uuid.uuid4().hex[:8]
INSTRUCTIONS_CANARY = "ICANARY-" + uuid.uuid4().hex[:8]
CANARIES = (DOC_CANARY, QUESTION_CANARY, INSTRUCTIONS_CANARY)
PHASES = ["check_server", "ingest_documents", "create_agent rag-agent", "create_session rag-agent",
          "invoke_agent rag-agent", "clean_up"]


@pytest.fixture(scope="module")
def model_that_cannot_chat(llama_stack):
    llama_stack.call("POST", "/v1/models", {"model_id": MODEL_THAT_CANNOT_CHAT, "provider_id": "sentence-transformers",
                                            "provider_model_id": "none", "model_type": "llm"})
    yield MODEL_THAT_CANNOT_CHAT
    llama_stack.call("DELETE", f"/v1/models/{MODEL_THAT_CANNOT_CHAT}")


@pytest.fixture(scope="module")
def canary_docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("canary-docs")
    (folder / "start.md").write_text(f"# Starting Node\n\n{DOC_CANARY}: run `node server.js`, not `npm start`.\n")
    return folder


def full_run(llama_stack, otlp_receiver, docs, *, model: str, env: dict[str, str] | None = None):
    """A run through every phase; returns (run, instance id, every span of its trace, the script's spans)."""
    instance = str(uuid.uuid4())
    run = run_script("--llama-stack-url", llama_stack.url, "--otlp-endpoint", otlp_receiver.traces_url,
                     "--docs", str(docs), "--model", model, "--question", f"{QUESTION_CANARY} should I use npm?",
                     "--instructions", f"{INSTRUCTIONS_CANARY}: answer from the documents only",
                     env={"OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}", **(env or {})})
    # The server's span of the last call (clean-up) comes with its ~5 s batch.
    spans = otlp_receiver.wait_for(lambda ss: bool(server_spans_for_route(ss, "DELETE", "/v1/vector-dbs")),
                                   trace_id=run.trace_id, timeout=60)
    return run, instance, spans, [s for s in spans if s.service == SERVICE]


@pytest.fixture(scope="module")
def private_run(llama_stack, otlp_receiver, model_that_cannot_chat, canary_docs):
    return full_run(llama_stack, otlp_receiver, canary_docs, model=model_that_cannot_chat)


@pytest.fixture(scope="module")
def opted_in_run(llama_stack, otlp_receiver, model_that_cannot_chat, canary_docs):
    return full_run(llama_stack, otlp_receiver, canary_docs, model=model_that_cannot_chat,
                    env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})


def named(spans, name):
    [span] = [s for s in spans if s.name == name]
    return span


def recorded(spans) -> str:
    """Names, attributes, events and status of spans, as one string to search."""
    return json.dumps([[s.name, s.attributes, s.events] for s in spans], default=str)


def test_the_failed_turn_is_one_line_and_exit_3(private_run):
    run, *_ = private_run
    assert_one_line_error(run, exit_code=3, says="the agent turn failed on the server")


def test_phases_hang_under_the_root_in_run_order(private_run):
    *_, mine = private_run
    [root] = roots(mine)
    phases = sorted((s for s in mine if s.parent_span_id == root.span_id), key=lambda s: s.start_ns)
    assert [s.name for s in phases] == PHASES


def test_ingest_documents_span_counts_bytes_and_ids(private_run, canary_docs):
    run, _, _, mine = private_run
    attributes = named(mine, "ingest_documents").attributes
    assert attributes == {
        "gen_ai.data_source.id": run.vector_db_id, "rag_agent.documents.count": 1,
        "rag_agent.documents.bytes": (canary_docs / "start.md").stat().st_size,
        "rag_agent.chunk_size_tokens": 125, "rag_agent.embedding_model": "all-MiniLM-L6-v2",
        "openinference.span.kind": "CHAIN",  # an app phase, to Phoenix
    }


def test_create_agent_and_invoke_agent_carry_the_genai_attributes(private_run):
    run, _, _, mine = private_run
    create, invoke = named(mine, "create_agent rag-agent"), named(mine, "invoke_agent rag-agent")
    session = named(mine, "create_session rag-agent")
    assert create.kind == session.kind == invoke.kind == CLIENT_KIND
    shared = {"gen_ai.agent.name": "rag-agent", "gen_ai.request.model": MODEL_THAT_CANNOT_CHAT,
              "gen_ai.provider.name": "llama_stack", "gen_ai.data_source.id": run.vector_db_id}
    assert create.attributes["gen_ai.operation.name"] == "create_agent"
    assert "gen_ai.operation.name" not in session.attributes  # the registry has no such operation
    assert invoke.attributes["gen_ai.operation.name"] == "invoke_agent"
    for span in (create, invoke):
        assert shared.items() <= span.attributes.items(), span.attributes
    # The ids the server gave: the agent, and the session (made by its own call) as the conversation.
    agent_id, session_id = create.attributes["gen_ai.agent.id"], session.attributes["gen_ai.conversation.id"]
    assert uuid.UUID(agent_id) and uuid.UUID(session_id)
    assert session.attributes["gen_ai.agent.id"] == agent_id
    assert (invoke.attributes["gen_ai.agent.id"], invoke.attributes["gen_ai.conversation.id"]) == (agent_id, session_id)
    assert invoke.attributes["rag_agent.question.chars"] == len(f"{QUESTION_CANARY} should I use npm?")
    # Phoenix's span kinds: the agent's calls are AGENT (the session CHAIN), the run's phases CHAIN.
    assert [s.attributes["openinference.span.kind"] for s in (create, session, invoke)] == ["AGENT", "CHAIN", "AGENT"]
    assert {s.attributes["openinference.span.kind"] for s in mine if s.name in PHASES[:2] + PHASES[-1:]} == {"CHAIN"}


def test_the_failing_phase_is_error_and_the_root_names_it(private_run):
    *_, mine = private_run
    invoke, root = named(mine, "invoke_agent rag-agent"), roots(mine)[0]
    assert invoke.status_code == 2
    assert [(name, attrs["exception.type"]) for name, attrs in invoke.events] == [
        ("exception", "llama_stack_otel.errors.UserError")]
    assert invoke.events[0][1]["exception.message"] == "the agent turn failed on the server"
    assert root.status_code == 2
    assert root.attributes["rag_agent.failed_phase"] == "invoke_agent rag-agent"
    # The phases before it and the clean-up after it went fine.
    assert [s.status_code for s in mine if s.name in ("ingest_documents", "create_agent rag-agent",
                                                      "create_session rag-agent", "clean_up")] == [0, 0, 0, 0]


@pytest.mark.parametrize("phase, method, path", [
    ("check_server", "GET", "/v1/version"), ("check_server", "GET", "/v1/providers"),
    ("check_server", "GET", "/v1/models"),
    ("ingest_documents", "POST", "/v1/vector-dbs"), ("ingest_documents", "POST", "/v1/tool-runtime/rag-tool/insert"),
    ("create_agent rag-agent", "POST", "/v1/agents"), ("create_agent rag-agent", "GET", "/v1/tools"),
    ("create_session rag-agent", "POST", "/v1/agents/[^/]+/session"),
    ("invoke_agent rag-agent", "POST", "/v1/agents/[^/]+/session/[^/]+/turn"),
    ("clean_up", "DELETE", "/v1/agents/[^/]+"), ("clean_up", "DELETE", "/v1/vector-dbs/[^/]+"),
])
def test_each_http_call_nests_under_the_phase_that_made_it(private_run, phase, method, path):
    *_, mine = private_run
    by_id = {s.span_id: s for s in mine}
    calls = [s for s in mine if s.kind == CLIENT_KIND and s.attributes.get("http.method") == method
             and re.fullmatch(path, urlsplit(s.attributes["http.url"]).path)]
    assert len(calls) == 1, f"{method} {path}: {[s.attributes for s in calls]}"
    assert by_id[calls[0].parent_span_id].name == phase


def test_no_content_in_the_scripts_spans_by_default(private_run):
    _, _, spans, mine = private_run
    for canary in CANARIES:
        assert canary not in recorded(mine), canary
    # The canaries did reach the server, whose own spans record call arguments (see README):
    # so the check above could have caught a leak.
    server_side = recorded([s for s in spans if s.service != SERVICE])
    assert DOC_CANARY in server_side and INSTRUCTIONS_CANARY in server_side and QUESTION_CANARY in server_side


def test_opted_in_content_goes_where_the_conventions_put_it(opted_in_run):
    *_, mine = opted_in_run
    create, invoke = named(mine, "create_agent rag-agent"), named(mine, "invoke_agent rag-agent")
    assert json.loads(create.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": f"{INSTRUCTIONS_CANARY}: answer from the documents only"}]
    assert json.loads(invoke.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": f"{QUESTION_CANARY} should I use npm?"}]}]
    # Ingestion records sizes only, opt-in or not; documents show up only as retrieved chunks.
    assert DOC_CANARY not in recorded(mine)


def test_metrics_of_the_run_arrive_at_the_receiver(private_run, otlp_receiver):
    _, instance, _, _ = private_run
    # Exported at shutdown, before the process exited: no waiting for a batch.
    points = otlp_receiver.wait_for_points(lambda ps: bool(ps), service_instance=instance, timeout=2)
    durations = {p.attributes["gen_ai.operation.name"]: p for p in points if p.metric == "gen_ai.client.operation.duration"}
    assert set(durations) == {"create_agent", "invoke_agent"}
    for point in durations.values():
        assert (point.kind, point.unit, point.count, point.service) == ("histogram", "s", 1, SERVICE)
        assert point.attributes["gen_ai.request.model"] == MODEL_THAT_CANNOT_CHAT
        assert point.attributes["gen_ai.provider.name"] == "llama_stack"
    assert "error.type" not in durations["create_agent"].attributes
    assert durations["invoke_agent"].attributes["error.type"] == "UserError"
    [run_duration] = [p for p in points if p.metric == "rag_agent.run.duration"]
    assert run_duration.attributes == {"error.type": "UserError"}
    assert run_duration.sum >= durations["create_agent"].sum + durations["invoke_agent"].sum
    # The server reported no token usage and no answer token came: nothing is made up.
    assert not [p for p in points if p.metric in ("gen_ai.client.token.usage",
                                                  "gen_ai.client.operation.time_to_first_chunk")]


def test_no_http_call_hangs_directly_under_the_root(private_run):
    *_, mine = private_run
    [root] = roots(mine)
    calls = [s for s in mine if s.kind == CLIENT_KIND and s.attributes.get("http.method")]
    assert len(calls) == 11  # the ten of the parametrized test above, and the version probe
    assert not [s.attributes["http.url"] for s in calls if s.parent_span_id == root.span_id]
