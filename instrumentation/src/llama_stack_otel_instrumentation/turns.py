"""What a 0.2.x agent turn tells the trace: the events of a streamed turn, or a whole ``Turn``.

A turn streams ``step_start`` / ``step_progress`` / ``step_complete`` events for each inference
and tool-execution step, then ``turn_complete`` (or an error chunk). The answer is the text
deltas of the inference steps; the tools are the calls an inference step asks for, which the
next tool-execution step runs on the server (one ``execute_tool`` span per call, from the step's
start to its completion); usage is the inference steps' ``metrics`` when the server reports
them (Llama Stack 0.2.12 reports none on turns); the finish reason is the turn's stop reason.
"""

from __future__ import annotations

from typing import Any

from llama_stack_otel_instrumentation import semconv
from llama_stack_otel_instrumentation.calls import AgentCall
from llama_stack_otel_instrumentation.failures import one_line
from llama_stack_otel_instrumentation.payloads import field, text_of

RAG_TOOL = "knowledge_search"  # builtin::rag's search: a datastore tool over the agent's vector DBs


def reported_usage(*sources: Any) -> tuple[int, int] | None:
    """Input and output tokens, if one of these objects carries the server's usage metrics
    (``metrics: [{metric: prompt_tokens | completion_tokens, value}]``)."""
    for source in sources:
        found = {}
        for item in field(source, "metrics") or []:
            name, value = field(item, "metric"), field(item, "value")
            if name in ("prompt_tokens", "completion_tokens") and isinstance(value, (int, float)):
                found[name] = int(value)
        if found:
            return found.get("prompt_tokens", 0), found.get("completion_tokens", 0)
    return None


def error_message(error: Any) -> str:
    message = field(error, "message", error)
    return one_line(message)


class TurnEvents:
    """Reads one turn's events into its ``AgentCall``."""

    def __init__(self, call: AgentCall) -> None:
        self.call = call
        self.requested: list[Any] = []  # the tool calls the last inference step asked for

    def whole(self, turn: Any) -> None:
        self.whole_turn(turn)

    def __call__(self, chunk: Any) -> None:
        """One streamed event."""
        error = field(chunk, "error")
        if error:
            self.call.failed_on_server(error_message(error))
            return
        payload = field(field(chunk, "event"), "payload")
        event_type, step_type = field(payload, "event_type"), field(payload, "step_type")
        if event_type == "step_progress":
            delta = field(payload, "delta")
            if step_type == "inference" and field(delta, "type") == "text":
                self.call.text_arrived(str(field(delta, "text", "")))
        elif event_type == "step_start" and step_type == "tool_execution":
            for tool_call in self.requested:
                self.call.tool_started(str(field(tool_call, "call_id")), tool=tool_name(tool_call),
                                       tool_type=tool_type(tool_name(tool_call)))
        elif event_type == "step_complete":
            self.step(field(payload, "step_details"), payload, chunk)
        elif event_type == "turn_complete":
            self.turn_complete(field(payload, "turn"), payload, chunk)

    def step(self, step: Any, *sources: Any) -> None:
        if field(step, "step_type") == "inference":
            self.requested = list(field(field(step, "model_response"), "tool_calls") or [])
            usage = reported_usage(step, *sources)
            if usage is not None:
                self.call.add_usage(*usage)
        elif field(step, "step_type") == "tool_execution":
            self.tool_step(step)

    def tool_step(self, step: Any) -> None:
        calls = {str(field(c, "call_id")): c for c in field(step, "tool_calls") or []}
        for response in field(step, "tool_responses") or []:
            tool = str(field(response, "tool_name"))
            call_id = str(field(response, "call_id"))
            result = text_of(field(response, "content", ""))
            attributes: dict[str, Any] = {}
            if tool == RAG_TOOL:
                attributes = {semconv.DATA_SOURCE_ID: self.call.data_source_id,
                              semconv.RETRIEVED_CHUNKS: len(field(field(response, "metadata"), "document_ids") or []),
                              semconv.RETRIEVED_CHARS: len(result)}
                attributes = {key: value for key, value in attributes.items() if value is not None}
            call = calls.get(call_id)
            self.call.tool_done(call_id, tool=tool, tool_type=tool_type(tool), attributes=attributes,
                                arguments=field(call, "arguments") if call is not None else None, result=result)
        self.requested = []

    def turn_complete(self, turn: Any, *sources: Any) -> None:
        if self.call.usage is None:  # a per-turn total, if the server gives one instead
            usage = reported_usage(turn, *sources)
            if usage is not None:
                self.call.add_usage(*usage)
        stop_reason = field(field(turn, "output_message"), "stop_reason")
        if stop_reason is not None:
            self.call.finish_reason(str(stop_reason))

    def whole_turn(self, turn: Any) -> None:
        """A turn that was not streamed: its steps, its answer, its stop reason."""
        for step in field(turn, "steps") or []:
            if field(step, "step_type") == "tool_execution":
                for tool_call in field(step, "tool_calls") or []:
                    self.call.tool_started(str(field(tool_call, "call_id")), tool=tool_name(tool_call),
                                           tool_type=tool_type(tool_name(tool_call)))
            self.step(step)
        self.call.answered(text_of(field(field(turn, "output_message"), "content", "")))
        self.turn_complete(turn)


def tool_name(tool_call: Any) -> str:
    return str(field(tool_call, "tool_name", "tool"))


def tool_type(tool: str) -> str:
    """The conventions' tool types: the RAG search reads a datastore; the server's other
    built-in tools extend the agent."""
    return "datastore" if tool == RAG_TOOL else "extension"
