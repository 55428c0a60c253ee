"""Answered questions end to end, on the local stack's LLM (Gemma 3 270M on llama.cpp).

A real turn, with `--tool-choice knowledge_search` so the agent always retrieves: the
question-phase span (invoke_agent with time to first chunk, answer size, finish reason),
the execute_tool span for the knowledge_search the server ran, the question/answer
canaries absent by default and present in the conventions' message attributes when opted
in, and the per-question metrics.
"""

from __future__ import annotations

import json
import uuid

import pytest

from local import stack
from tests.support.script import run_script
from tests.support.trace_shape import CLIENT_KIND, roots, server_spans_for_route

SERVICE = "PythonAgentRAG"
DOC_CANARY = "DOCCANARY-" + uuid.uuid4().hex[:8]
QUESTION_CANARY = "QCANARY-" + uuid.uuid4().hex[:8]
INSTRUCTIONS_CANARY = "ICANARY-" + uuid.uuid4().hex[:8]
QUESTION = f"{QUESTION_CANARY} Should I use npm to start a node.js application?"


@pytest.fixture(scope="module")
def chat_model(llama_stack):
    assert stack.MODEL_ID in llama_stack.llm_ids()
    return stack.MODEL_ID


@pytest.fixture(scope="module")
def canary_docs(tmp_path_factory):
    # The only document: whatever knowledge_search retrieves comes from it.
    folder = tmp_path_factory.mktemp("llm-canary-docs")
    (folder / "start.md").write_text(
        "# Starting a Node.js application\n\n"
        f"{DOC_CANARY}: do not use npm to start a node.js application in production; run `node server.js` "
        "directly so that signals such as SIGTERM reach the node process.\n")
    return folder


def answered_run(llama_stack, otlp_receiver, docs, model: str, *, env: dict[str, str] | None = None):
    instance = str(uuid.uuid4())
    run = run_script("--llama-stack-url", llama_stack.url, "--otlp-endpoint", otlp_receiver.traces_url,
                     "--docs", str(docs), "--model", model, "--question", QUESTION, "--tool-choice", "knowledge_search",
                     "--instructions", f"{INSTRUCTIONS_CANARY}: answer only from the documents",
                     env={"OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={instance}", **(env or {})}, timeout=600)
    assert run.returncode == 0, run.stderr
    spans = otlp_receiver.wait_for(lambda ss: bool(server_spans_for_route(ss, "DELETE", "/v1/vector-dbs")),
                                   trace_id=run.trace_id, timeout=60)
    answer = run.stdout.split("RESPONSE: ", 1)[1].split("\nTrace ID:", 1)[0].strip()
    return run, instance, spans, [s for s in spans if s.service == SERVICE], answer


@pytest.fixture(scope="module")
def private_turn(llama_stack, otlp_receiver, chat_model, canary_docs):
    return answered_run(llama_stack, otlp_receiver, canary_docs, chat_model)


@pytest.fixture(scope="module")
def opted_in_turn(llama_stack, otlp_receiver, chat_model, canary_docs):
    return answered_run(llama_stack, otlp_receiver, canary_docs, chat_model,
                        env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})


def named(spans, name):
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r}: {sorted(s.name for s in spans)}"
    return found[0]


def recorded(spans) -> str:
    return json.dumps([[s.name, s.attributes, s.events] for s in spans], default=str)


def server_ran_knowledge_search(spans) -> bool:
    """The server records its own span around each tool it executes."""
    return any(s.service != SERVICE and s.name == "tool_execution" for s in spans)


def test_invoke_agent_span_of_an_answered_question(private_turn, chat_model):
    _run, _, _, mine, answer = private_turn
    invoke = named(mine, "invoke_agent rag-agent")
    assert invoke.kind == CLIENT_KIND and invoke.status_code != 2
    attributes = invoke.attributes
    assert attributes["gen_ai.operation.name"] == "invoke_agent"
    assert attributes["gen_ai.request.model"] == chat_model
    assert attributes["gen_ai.conversation.id"] == named(mine, "create_session rag-agent").attributes["gen_ai.conversation.id"]
    assert attributes["rag_agent.question.chars"] == len(QUESTION)
    assert attributes["rag_agent.answer.chars"] == len(answer) > 0
    turn_seconds = (invoke.end_ns - invoke.start_ns) / 1e9
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] < turn_seconds
    assert attributes["gen_ai.response.finish_reasons"] in (["end_of_turn"], ["end_of_message"], ["out_of_tokens"])
    # The turn's HTTP call hangs under it, and the server's turn spans under that.
    by_id = {s.span_id: s for s in mine}
    [turn_call] = [s for s in mine if s.kind == CLIENT_KIND and str(s.attributes.get("http.url", "")).endswith("/turn")]
    assert by_id[turn_call.parent_span_id] is invoke
    assert not roots(mine)[0].attributes.get("rag_agent.failed_phase")


def test_execute_tool_span_matches_what_the_server_ran(private_turn, canary_docs):
    run, _, spans, mine, _ = private_turn
    assert server_ran_knowledge_search(spans)  # --tool-choice knowledge_search
    [tool] = [s for s in mine if s.name == "execute_tool knowledge_search"]
    invoke = named(mine, "invoke_agent rag-agent")
    assert tool.parent_span_id == invoke.span_id
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.type"] == "datastore"
    assert tool.attributes["gen_ai.data_source.id"] == run.vector_db_id
    assert tool.attributes["rag_agent.retrieval.chunks"] >= 1
    assert invoke.start_ns <= tool.start_ns <= tool.end_ns <= invoke.end_ns


def test_no_question_answer_instructions_or_chunks_in_the_scripts_spans(private_turn):
    _, _, spans, mine, answer = private_turn
    for canary in (QUESTION_CANARY, DOC_CANARY, INSTRUCTIONS_CANARY):
        assert canary not in recorded(mine), canary
    if len(answer) >= 12:  # long enough not to turn up by chance
        assert answer not in recorded(mine)
    assert QUESTION_CANARY in recorded([s for s in spans if s.service != SERVICE])  # it did reach the server


def test_opted_in_the_messages_are_recorded_per_the_conventions(opted_in_turn):
    _, _, _spans, mine, answer = opted_in_turn
    invoke = named(mine, "invoke_agent rag-agent")
    assert json.loads(invoke.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    [output] = json.loads(invoke.attributes["gen_ai.output.messages"])
    assert output["role"] == "assistant" and output["parts"][0]["content"] == answer
    assert INSTRUCTIONS_CANARY in named(mine, "create_agent rag-agent").attributes["gen_ai.system_instructions"]
    tool = named(mine, "execute_tool knowledge_search")
    assert DOC_CANARY in tool.attributes["gen_ai.tool.call.result"]
    assert "query" in json.loads(tool.attributes["gen_ai.tool.call.arguments"])


def test_per_question_metrics(private_turn, otlp_receiver, chat_model):
    _, instance, _, _, _ = private_turn
    points = otlp_receiver.wait_for_points(lambda ps: bool(ps), service_instance=instance, timeout=2)
    [turn] = [p for p in points if p.metric == "gen_ai.client.operation.duration"
              and p.attributes["gen_ai.operation.name"] == "invoke_agent"]
    assert turn.count == 1 and "error.type" not in turn.attributes
    assert turn.attributes["gen_ai.request.model"] == chat_model
    [first_chunk] = [p for p in points if p.metric == "gen_ai.client.operation.time_to_first_chunk"]
    assert first_chunk.count == 1 and 0 < first_chunk.sum < turn.sum
    # Llama Stack 0.2.12 reports no token usage on agent turns; if a later server does,
    # both token types must be there.
    tokens = {p.attributes["gen_ai.token.type"] for p in points if p.metric == "gen_ai.client.token.usage"}
    assert tokens in (set(), {"input", "output"})
