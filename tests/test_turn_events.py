"""What one streamed agent turn puts in the trace and the metrics, from the events alone.

The events are what a Llama Stack 0.2.12 server streams for a RAG turn (shaped like its
agent_instance.py and rag memory tool produce them), parsed into llama-stack-client's own
pydantic types — the objects the script iterates over. Spans go to an in-memory exporter,
metrics to an in-memory reader; the agents backend's ask() and TurnObserver are real.
"""

from __future__ import annotations

import json

import pytest
from llama_stack_client.types.agents.agent_turn_response_stream_chunk import AgentTurnResponseStreamChunk
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llama_stack_otel import semconv as genai
from llama_stack_otel.backends import agents
from llama_stack_otel.console import Console
from llama_stack_otel.errors import UserError
from llama_stack_otel.telemetry import Telemetry

QUESTION = "QCANARY-7f3e: should I use npm to start a node.js application?"
CHUNK_TEXT = "DCANARY-91ab: start node directly so signals reach the process"
ANSWER = ["ACANARY-55c0: ", "no, run node ", "directly."]
VECTOR_DB = "test-vector-db-unit"
CANARIES = ("QCANARY-7f3e", "DCANARY-91ab", "ACANARY-55c0")
TURN = {"turn_id": "turn-1", "session_id": "session-1", "started_at": "2026-11-24T10:00:00Z",
        "input_messages": [{"role": "user", "content": QUESTION}], "steps": []}


def chunk(payload: dict) -> AgentTurnResponseStreamChunk:
    return AgentTurnResponseStreamChunk.model_validate({"event": {"payload": payload}})


def usage(prompt: int, completion: int) -> list[dict]:
    """The metrics Llama Stack's inference router attaches to responses."""
    return [{"metric": "prompt_tokens", "value": prompt}, {"metric": "completion_tokens", "value": completion},
            {"metric": "total_tokens", "value": prompt + completion}]


def rag_turn(*, inference_metrics: list[dict] | None = None) -> list[AgentTurnResponseStreamChunk]:
    """turn_start; inference that calls knowledge_search; the tool step; inference that answers."""
    tool_call = {"call_id": "call-1", "tool_name": "knowledge_search", "arguments": {"query": QUESTION}}
    tool_content = [
        {"type": "text", "text": "knowledge_search tool found 2 chunks:\nBEGIN of knowledge_search tool results.\n"},
        {"type": "text", "text": f"Result 1\nContent: {CHUNK_TEXT}\n"},
        {"type": "text", "text": "Result 2\nContent: use a process manager\n"},
        {"type": "text", "text": "END of knowledge_search tool results.\n"},
    ]
    step_extra = {"metrics": inference_metrics} if inference_metrics else {}
    events = [
        {"event_type": "turn_start", "turn_id": "turn-1"},
        {"event_type": "step_start", "step_type": "inference", "step_id": "s1"},
        {"event_type": "step_progress", "step_type": "inference", "step_id": "s1",
         "delta": {"type": "tool_call", "parse_status": "succeeded", "tool_call": tool_call}},
        {"event_type": "step_complete", "step_type": "inference", "step_id": "s1", "step_details": {
            "step_type": "inference", "step_id": "s1", "turn_id": "turn-1", **step_extra,
            "model_response": {"role": "assistant", "content": "", "stop_reason": "end_of_message",
                               "tool_calls": [tool_call]}}},
        {"event_type": "step_start", "step_type": "tool_execution", "step_id": "s2"},
        {"event_type": "step_progress", "step_type": "tool_execution", "step_id": "s2",
         "delta": {"type": "tool_call", "parse_status": "in_progress", "tool_call": tool_call}},
        {"event_type": "step_complete", "step_type": "tool_execution", "step_id": "s2", "step_details": {
            "step_type": "tool_execution", "step_id": "s2", "turn_id": "turn-1", "tool_calls": [tool_call],
            "tool_responses": [{"call_id": "call-1", "tool_name": "knowledge_search", "content": tool_content,
                                "metadata": {"document_ids": ["a.md", "b.md"], "chunks": [CHUNK_TEXT, "x"],
                                             "scores": [0.9, 0.5]}}]}},
        {"event_type": "step_start", "step_type": "inference", "step_id": "s3"},
        *({"event_type": "step_progress", "step_type": "inference", "step_id": "s3",
           "delta": {"type": "text", "text": text}} for text in ANSWER),
        {"event_type": "step_complete", "step_type": "inference", "step_id": "s3", "step_details": {
            "step_type": "inference", "step_id": "s3", "turn_id": "turn-1", **step_extra,
            "model_response": {"role": "assistant", "content": "".join(ANSWER), "stop_reason": "end_of_turn"}}},
        {"event_type": "turn_complete", "turn": {**TURN, "output_message": {
            "role": "assistant", "content": "".join(ANSWER), "stop_reason": "end_of_turn"}}},
    ]
    return [chunk(event) for event in events]


class ScriptedAgent:
    """Stands in for llama_stack_client.Agent: create_turn streams the given chunks."""

    def __init__(self, chunks: list) -> None:
        self.chunks = chunks

    def create_turn(self, **_: object):
        yield from self.chunks


@pytest.fixture
def observed():
    """Run ask() over a stream inside an invoke_agent phase; give back spans and metric points."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])

    def run(chunks: list, *, capture_content: bool = False):
        telemetry = Telemetry(tracer=tracer_provider.get_tracer("test"), meter=meter_provider.get_meter("test"),
                                    capture_content=capture_content)
        attributes = {genai.OPERATION_NAME: genai.INVOKE_AGENT, genai.REQUEST_MODEL: "m",
                      genai.PROVIDER_NAME: genai.PROVIDER}
        error = None
        try:
            with telemetry.phase("invoke_agent rag-agent", attributes, kind=SpanKind.CLIENT) as span:
                observer = agents.TurnObserver(telemetry, span, question=QUESTION, data_source_id=VECTOR_DB,
                                              metric_attributes=attributes)
                agents.ask(ScriptedAgent(chunks), session_id="session-1", question=QUESTION, show_rag_documents=False,
                        observer=observer, out=Console())
        except UserError as exc:
            error = exc
        spans = {s.name: s for s in exporter.get_finished_spans()}
        data = reader.get_metrics_data()
        points = [(m.name, dict(p.attributes), p) for rm in (data.resource_metrics if data else [])
                  for sm in rm.scope_metrics for m in sm.metrics for p in m.data.data_points]
        return spans, points, error

    return run


def everything_recorded(spans: dict) -> str:
    """Every name, attribute and event of the spans, as one string to search."""
    return json.dumps([[s.name, dict(s.attributes), [[e.name, dict(e.attributes)] for e in s.events],
                        s.status.description] for s in spans.values()], default=str)


def test_invoke_agent_span_gets_time_to_first_chunk_sizes_and_finish_reason(observed, capsys):
    spans, _, error = observed(rag_turn())
    assert error is None
    invoke = spans["invoke_agent rag-agent"]
    assert 0 < invoke.attributes[genai.TIME_TO_FIRST_CHUNK] < (invoke.end_time - invoke.start_time) / 1e9
    assert invoke.attributes[genai.QUESTION_CHARS] == len(QUESTION)
    assert invoke.attributes[genai.ANSWER_CHARS] == len("".join(ANSWER))
    assert invoke.attributes[genai.FINISH_REASONS] == ("end_of_turn",)
    assert "RESPONSE: " + "".join(ANSWER) in capsys.readouterr().out  # printing is unchanged


def test_knowledge_search_becomes_an_execute_tool_span_under_invoke_agent(observed):
    spans, _, _ = observed(rag_turn())
    tool = spans["execute_tool knowledge_search"]
    assert tool.parent.span_id == spans["invoke_agent rag-agent"].context.span_id
    assert dict(tool.attributes) == {
        genai.OPERATION_NAME: "execute_tool", genai.TOOL_NAME: "knowledge_search", genai.TOOL_CALL_ID: "call-1",
        genai.TOOL_TYPE: "datastore", genai.DATA_SOURCE_ID: VECTOR_DB, genai.RETRIEVED_CHUNKS: 2,
        genai.RETRIEVED_CHARS: len(agents.flatten_content(
            rag_turn()[6].event.payload.step_details.tool_responses[0].content)),
    }
    # It spans from the step_start event to the step_complete event.
    assert tool.start_time < tool.end_time


def test_no_content_in_any_span_by_default(observed):
    spans, _, _ = observed(rag_turn())
    recorded = everything_recorded(spans)
    for canary in CANARIES:
        assert canary not in recorded
    for name in (genai.INPUT_MESSAGES, genai.OUTPUT_MESSAGES, genai.TOOL_CALL_ARGUMENTS, genai.TOOL_CALL_RESULT):
        assert name not in recorded


def test_opted_in_content_uses_the_conventions_message_attributes(observed):
    spans, _, _ = observed(rag_turn(), capture_content=True)
    invoke, tool = spans["invoke_agent rag-agent"], spans["execute_tool knowledge_search"]
    assert json.loads(invoke.attributes[genai.INPUT_MESSAGES]) == [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
    assert json.loads(invoke.attributes[genai.OUTPUT_MESSAGES]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "".join(ANSWER)}]}]
    assert json.loads(tool.attributes[genai.TOOL_CALL_ARGUMENTS]) == {"query": QUESTION}
    assert CHUNK_TEXT in tool.attributes[genai.TOOL_CALL_RESULT]


def test_token_usage_when_the_server_reports_it(observed):
    spans, points, _ = observed(rag_turn(inference_metrics=usage(100, 7)))
    invoke = spans["invoke_agent rag-agent"]
    # Two inference steps in the turn: their usage adds up.
    assert (invoke.attributes[genai.INPUT_TOKENS], invoke.attributes[genai.OUTPUT_TOKENS]) == (200, 14)
    tokens = {attrs[genai.TOKEN_TYPE]: p.sum for name, attrs, p in points if name == "gen_ai.client.token.usage"}
    assert tokens == {"input": 200, "output": 14}


def test_no_token_usage_is_invented_when_the_server_reports_none(observed):
    spans, points, _ = observed(rag_turn())
    assert genai.INPUT_TOKENS not in spans["invoke_agent rag-agent"].attributes
    assert not [name for name, _, _ in points if name == "gen_ai.client.token.usage"]


def test_turn_metrics_duration_and_time_to_first_chunk(observed):
    _, points, _ = observed(rag_turn())
    by_name = {name: (attrs, p) for name, attrs, p in points}
    attrs, duration = by_name["gen_ai.client.operation.duration"]
    assert attrs == {genai.OPERATION_NAME: "invoke_agent", genai.REQUEST_MODEL: "m", genai.PROVIDER_NAME: "llama_stack"}
    assert duration.count == 1
    _, first_chunk = by_name["gen_ai.client.operation.time_to_first_chunk"]
    assert first_chunk.count == 1 and 0 < first_chunk.sum <= duration.sum


def test_a_failed_turn_marks_the_span_error_without_the_servers_text(observed):
    failing = [*rag_turn()[:2], AgentTurnResponseStreamChunk.construct(
        event=None, error={"message": f"400: Invalid value: {QUESTION}"})]
    spans, points, error = observed(failing)
    assert error is not None and QUESTION in str(error)  # the terminal still says what the server said
    invoke = spans["invoke_agent rag-agent"]
    assert invoke.status.status_code == StatusCode.ERROR
    [event] = invoke.events
    assert event.name == "exception" and event.attributes["exception.message"] == "the agent turn failed on the server"
    assert "QCANARY-7f3e" not in everything_recorded(spans)
    [(_, attrs, _)] = [pt for pt in points if pt[0] == "gen_ai.client.operation.duration"]
    assert attrs[genai.ERROR_TYPE] == "UserError"
