"""What one streamed agent turn puts in the trace and the metrics, from the events alone.

The events are what a Llama Stack 0.2.12 server streams for a RAG turn (shaped like its
agent_instance.py and rag memory tool produce them), served over loopback HTTP by a canned
server (canned_llama_stack.py) to the real llama-stack-client and its Agent class. The spans
are the client instrumentor's, to an in-memory exporter; the metrics go to an in-memory
reader; the agents backend's ask() prints the answer as the script does.
"""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from canned_llama_stack import rag_turn, serving, usage_metrics
from llama_stack_otel import semconv as genai
from llama_stack_otel.backends import agents
from llama_stack_otel.console import Console
from llama_stack_otel.errors import UserError
from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor, agent_name
from llama_stack_otel_instrumentation.payloads import text_of

QUESTION = "QCANARY-7f3e: should I use npm to start a node.js application?"
CHUNK_TEXT = "DCANARY-91ab: start node directly so signals reach the process"
ANSWER = ["ACANARY-55c0: ", "no, run node ", "directly."]
VECTOR_DB = "test-vector-db-unit"
CANARIES = ("QCANARY-7f3e", "DCANARY-91ab", "ACANARY-55c0")


def turn(**kwargs) -> list[dict]:
    return rag_turn(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER, **kwargs)


@pytest.fixture
def observed():
    """Run ask() over a canned turn, the client instrumented; give back spans, metric points,
    the UserError if the turn failed, and the server's address."""
    instrumentor = LlamaStackClientInstrumentor()

    def run(events: list[dict], *, capture_content: bool = False):
        from llama_stack_client import Agent, LlamaStackClient

        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader]),
                                capture_content=capture_content)
        error = None
        with serving() as canned:
            canned.turn = events
            client = LlamaStackClient(base_url=canned.url, max_retries=0)
            with agent_name("rag-agent"):
                agent = Agent(client, model="m", instructions="answer from the documents",
                              tools=[{"name": "builtin::rag/knowledge_search", "args": {"vector_db_ids": [VECTOR_DB]}}])
                session_id = agent.create_session("rag-session-unit")
                try:
                    agents.ask(agent, session_id=session_id, question=QUESTION, out=Console())
                except UserError as exc:
                    error = exc
            server = ("127.0.0.1", int(canned.url.rsplit(":", 1)[1]))
        spans = {s.name: s for s in exporter.get_finished_spans()}
        data = reader.get_metrics_data()
        points = [(m.name, dict(p.attributes), p) for rm in (data.resource_metrics if data else [])
                  for sm in rm.scope_metrics for m in sm.metrics for p in m.data.data_points]
        return spans, points, error, server

    yield run
    instrumentor.uninstrument()


def everything_recorded(spans: dict) -> str:
    """Every name, attribute and event of the spans, as one string to search."""
    return json.dumps([[s.name, dict(s.attributes), [[e.name, dict(e.attributes)] for e in s.events],
                        s.status.description] for s in spans.values()], default=str)


def test_invoke_agent_span_gets_time_to_first_chunk_sizes_and_finish_reason(observed, capsys):
    spans, _, error, _ = observed(turn())
    assert error is None
    invoke = spans["invoke_agent rag-agent"]
    assert 0 < invoke.attributes[genai.TIME_TO_FIRST_CHUNK] < (invoke.end_time - invoke.start_time) / 1e9
    assert invoke.attributes[genai.QUESTION_CHARS] == len(QUESTION)
    assert invoke.attributes[genai.ANSWER_CHARS] == len("".join(ANSWER))
    assert invoke.attributes[genai.FINISH_REASONS] == ("end_of_turn",)
    assert invoke.attributes[genai.OPENINFERENCE_SPAN_KIND] == "AGENT"
    assert "RESPONSE: " + "".join(ANSWER) in capsys.readouterr().out  # printing is unchanged


def test_knowledge_search_becomes_an_execute_tool_span_under_invoke_agent(observed):
    spans, _, _, _ = observed(turn())
    tool = spans["execute_tool knowledge_search"]
    assert tool.parent.span_id == spans["invoke_agent rag-agent"].context.span_id
    tool_step = turn()[6]["event"]["payload"]["step_details"]
    assert dict(tool.attributes) == {
        genai.OPERATION_NAME: "execute_tool", genai.TOOL_NAME: "knowledge_search", genai.TOOL_CALL_ID: "call-1",
        genai.TOOL_TYPE: "datastore", genai.DATA_SOURCE_ID: VECTOR_DB, genai.RETRIEVED_CHUNKS: 2,
        genai.RETRIEVED_CHARS: len(text_of(tool_step["tool_responses"][0]["content"])),
        genai.OPENINFERENCE_SPAN_KIND: "RETRIEVER",
    }
    # It spans from the step_start event to the step_complete event.
    assert tool.start_time < tool.end_time


def test_no_content_in_any_span_by_default(observed):
    spans, _, _, _ = observed(turn())
    recorded = everything_recorded(spans)
    for canary in CANARIES:
        assert canary not in recorded
    for name in (genai.INPUT_MESSAGES, genai.OUTPUT_MESSAGES, genai.TOOL_CALL_ARGUMENTS, genai.TOOL_CALL_RESULT,
                 genai.SYSTEM_INSTRUCTIONS, genai.INPUT_VALUE, genai.OUTPUT_VALUE):
        assert name not in recorded


def test_opted_in_content_uses_the_conventions_message_attributes(observed):
    spans, _, _, _ = observed(turn(), capture_content=True)
    invoke, tool = spans["invoke_agent rag-agent"], spans["execute_tool knowledge_search"]
    assert json.loads(invoke.attributes[genai.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    assert json.loads(invoke.attributes[genai.OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "".join(ANSWER)}]}]
    assert json.loads(tool.attributes[genai.TOOL_CALL_ARGUMENTS]) == {"query": QUESTION}
    assert CHUNK_TEXT in tool.attributes[genai.TOOL_CALL_RESULT]
    assert json.loads(spans["create_agent rag-agent"].attributes[genai.SYSTEM_INSTRUCTIONS]) == [
        {"type": "text", "content": "answer from the documents"}]


def test_token_usage_when_the_server_reports_it(observed):
    spans, points, _, _ = observed(turn(inference_metrics=usage_metrics(100, 7)))
    invoke = spans["invoke_agent rag-agent"]
    # Two inference steps in the turn: their usage adds up.
    assert (invoke.attributes[genai.INPUT_TOKENS], invoke.attributes[genai.OUTPUT_TOKENS]) == (200, 14)
    tokens = {attrs[genai.TOKEN_TYPE]: p.sum for name, attrs, p in points if name == "gen_ai.client.token.usage"}
    assert tokens == {"input": 200, "output": 14}


def test_no_token_usage_is_invented_when_the_server_reports_none(observed):
    spans, points, _, _ = observed(turn())
    assert genai.INPUT_TOKENS not in spans["invoke_agent rag-agent"].attributes
    assert not [name for name, _, _ in points if name == "gen_ai.client.token.usage"]


def test_turn_metrics_duration_and_time_to_first_chunk(observed):
    _, points, _, (address, port) = observed(turn())
    by_name = {(name, attrs.get(genai.OPERATION_NAME)): (attrs, p) for name, attrs, p in points}
    attrs, duration = by_name["gen_ai.client.operation.duration", "invoke_agent"]
    assert attrs == {genai.OPERATION_NAME: "invoke_agent", genai.REQUEST_MODEL: "m", genai.PROVIDER_NAME: "llama_stack",
                     "server.address": address, "server.port": port}
    assert duration.count == 1
    _, first_chunk = by_name["gen_ai.client.operation.time_to_first_chunk", "invoke_agent"]
    assert first_chunk.count == 1 and 0 < first_chunk.sum <= duration.sum
    create_attrs, created = by_name["gen_ai.client.operation.duration", "create_agent"]
    assert create_attrs == {genai.OPERATION_NAME: "create_agent", genai.REQUEST_MODEL: "m",
                            genai.PROVIDER_NAME: "llama_stack"} and created.count == 1


def test_a_failed_turn_marks_the_span_error_without_the_servers_text(observed):
    failing = [*turn()[:2], {"error": {"message": f"400: Invalid value: {QUESTION}"}}]
    spans, points, error, _ = observed(failing)
    assert error is not None and QUESTION in str(error)  # the terminal still says what the server said
    invoke = spans["invoke_agent rag-agent"]
    assert invoke.status.status_code == StatusCode.ERROR
    [event] = invoke.events
    assert event.name == "exception" and event.attributes["exception.message"] == "the agent turn failed on the server"
    assert event.attributes["exception.type"] == "llama_stack_otel.errors.UserError"
    assert "QCANARY-7f3e" not in everything_recorded(spans)
    [(_, attrs, _)] = [pt for pt in points if pt[0] == "gen_ai.client.operation.duration"
                       and pt[1][genai.OPERATION_NAME] == "invoke_agent"]
    assert attrs[genai.ERROR_TYPE] == "UserError"
