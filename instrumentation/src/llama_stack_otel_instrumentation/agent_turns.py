"""What a turn of the client library's Agent on the Responses API tells the trace
(llama-stack-client 0.7+, ogx-client 1.x: ``lib/agents/agent.py``).

That Agent turns the Responses stream into its own events (``AgentStreamChunk``): step_started /
step_progress / step_completed for inference and tool-execution steps, then turn_completed with
the last response (or turn_failed). The answer is the inference steps' text deltas. A tool the
server runs (file_search, web_search, MCP) is a tool-execution step with ``server_side`` in its
metadata, its call announced by a ``tool_call_issued`` delta; a function the Agent runs itself
(a client-side tool) is a tool-execution step the Agent starts after the inference step that
asked for it (its ``function_calls``) and completes with the tools' responses once they ran —
between those two events the app's tool code runs, so the ``execute_tool`` span holds it. Usage
and the finish reason are the last response's (the one turn_completed carries).

A turn that is not streamed returns that last response: it is read as a whole response.
"""

from __future__ import annotations

from typing import Any

from llama_stack_otel_instrumentation import semconv
from llama_stack_otel_instrumentation.calls import AgentCall
from llama_stack_otel_instrumentation.payloads import field, text_of
from llama_stack_otel_instrumentation.responses import ResponseEvents
from llama_stack_otel_instrumentation.turns import error_message

# The Agent's tool types of the tools the server runs: -> (tool, the conventions' tool type).
SERVER_TOOLS = {"file_search": ("file_search", "datastore"), "web_search": ("web_search", "extension"),
                "mcp_call": ("mcp", "extension"), "mcp_list_tools": ("mcp_list_tools", "extension"),
                "memory_retrieval": ("memory_retrieval", "datastore")}


class AgentTurnEvents:
    """Reads one Agent turn's events into its ``AgentCall``."""

    def __init__(self, call: AgentCall) -> None:
        self.call = call
        self.requested: list[Any] = []  # the client-side function calls the last inference step asked for
        self.server_calls: dict[str, tuple[str, str]] = {}  # call id -> (tool, tool type), announced

    def whole(self, response: Any) -> None:
        ResponseEvents(self.call).whole_response(response)

    def __call__(self, chunk: Any) -> None:
        event = field(chunk, "event")
        kind, step_type = field(event, "event_type"), field(event, "step_type")
        if kind == "step_progress":
            self.progress(field(event, "delta"), step_type)
        elif kind == "step_started" and step_type == "tool_execution":
            if not (field(event, "metadata") or {}).get("server_side"):
                for call in self.requested:  # the Agent runs these now
                    self.call.tool_started(str(field(call, "call_id")), tool=str(field(call, "tool_name", "tool")),
                                           tool_type="function")
        elif kind == "step_completed":
            result = field(event, "result")
            if step_type == "inference":
                self.requested = list(field(result, "function_calls") or [])
            elif step_type == "tool_execution":
                self.tools_done(result)
        elif kind == "turn_completed":
            self.completed(field(chunk, "response"))
        elif kind == "turn_failed":
            self.call.failed_on_server(error_message(field(event, "error_message", "no reason given")))

    def progress(self, delta: Any, step_type: Any) -> None:
        delta_type = field(delta, "delta_type")
        if delta_type == "text" and step_type == "inference":
            self.call.text_arrived(str(field(delta, "text", "")))
        elif delta_type == "tool_call_issued" and step_type == "tool_execution":
            call_id = str(field(delta, "call_id"))
            tool, tool_type = self.server_tool(delta)
            self.server_calls[call_id] = (tool, tool_type)
            self.call.tool_started(call_id, tool=tool, tool_type=tool_type)

    @staticmethod
    def server_tool(delta: Any) -> tuple[str, str]:
        agent_type = str(field(delta, "tool_type", ""))
        tool, tool_type = SERVER_TOOLS.get(agent_type, (str(field(delta, "tool_name", agent_type)), "extension"))
        if agent_type == "mcp_call":
            tool = str(field(delta, "tool_name", tool))
        return tool, tool_type

    def tools_done(self, result: Any) -> None:
        responses = {str(field(r, "call_id")): r for r in field(result, "tool_responses") or []}
        for tool_call in field(result, "tool_calls") or []:
            call_id = str(field(tool_call, "call_id"))
            attributes: dict[str, Any] = {}
            if call_id in self.server_calls:
                tool, tool_type = self.server_calls.pop(call_id)
                if tool_type == "datastore" and self.call.data_source_id:
                    attributes[semconv.DATA_SOURCE_ID] = self.call.data_source_id
            else:
                tool, tool_type = str(field(tool_call, "tool_name", "tool")), "function"
            response = responses.get(call_id)
            self.call.tool_done(call_id, tool=tool, tool_type=tool_type, attributes=attributes,
                                arguments=field(tool_call, "arguments"),
                                result=text_of(field(response, "content", "")) if response is not None else None)
        self.requested = []

    def completed(self, response: Any) -> None:
        if response is None:
            return
        if field(response, "id"):
            self.call.response_id(str(field(response, "id")))
        ResponseEvents(self.call).ended(response)
