"""What a Responses API call (Llama Stack 0.4+, OGX) tells the trace: its streamed events, or a
whole response.

The answer is the ``response.output_text.delta`` events; each tool the server runs is announced
by ``response.<tool>_call.in_progress`` and reported by ``response.output_item.done`` with the
call's item (for file_search: its queries and, when asked for with ``include``, its results);
``response.completed`` / ``response.incomplete`` carry usage and why the answer ended;
``response.failed`` and ``error`` say it failed on the server.
"""

from __future__ import annotations

from typing import Any

from llama_stack_otel_instrumentation import semconv
from llama_stack_otel_instrumentation.calls import AgentCall
from llama_stack_otel_instrumentation.payloads import field
from llama_stack_otel_instrumentation.turns import error_message

# Output items of the tools the server runs itself: item type -> (tool, conventions' tool type).
SERVER_TOOLS = {"file_search_call": ("file_search", "datastore"), "web_search_call": ("web_search", "extension"),
                "mcp_call": ("mcp", "extension")}
ANNOUNCED = {f"response.{item}.in_progress": item for item in SERVER_TOOLS}


class ResponseEvents:
    """Reads one response's events into its ``AgentCall``."""

    def __init__(self, call: AgentCall) -> None:
        self.call = call
        self.seen_id = False

    def whole(self, response: Any) -> None:
        self.whole_response(response)

    def __call__(self, event: Any) -> None:
        """One streamed event."""
        kind = field(event, "type")
        if kind == "response.output_text.delta":
            self.call.text_arrived(str(field(event, "delta", "")))
            return
        response = field(event, "response")
        if not self.seen_id and field(response, "id"):
            self.seen_id = True
            self.call.response_id(str(field(response, "id")))
        if kind in ANNOUNCED:
            tool, tool_type = SERVER_TOOLS[ANNOUNCED[kind]]
            self.call.tool_started(str(field(event, "item_id")), tool=tool, tool_type=tool_type)
        elif kind == "response.output_item.done":
            self.item_done(field(event, "item"))
        elif kind in ("response.completed", "response.incomplete"):
            self.ended(response)
        elif kind in ("response.failed", "error"):
            self.call.failed_on_server(error_message(field(response, "error") or field(event, "error")
                                                     or field(event, "message", "no reason given")))

    def item_done(self, item: Any) -> None:
        item_type = field(item, "type")
        if item_type not in SERVER_TOOLS:
            return
        tool, tool_type = SERVER_TOOLS[item_type]
        if item_type == "mcp_call":
            tool = str(field(item, "name", tool))
        attributes: dict[str, Any] = {}
        arguments: Any = field(item, "arguments")
        result: Any = field(item, "output")
        if item_type == "file_search_call":
            texts = [str(field(r, "text", "")) for r in field(item, "results") or []]
            attributes = {semconv.RETRIEVED_CHUNKS: len(texts), semconv.RETRIEVED_CHARS: sum(map(len, texts))}
            if self.call.data_source_id:
                attributes[semconv.DATA_SOURCE_ID] = self.call.data_source_id
            arguments, result = {"queries": list(field(item, "queries") or [])}, texts
        self.call.tool_done(str(field(item, "id")), tool=tool, tool_type=tool_type, attributes=attributes,
                            arguments=arguments, result=result)

    def ended(self, response: Any) -> None:
        usage = field(response, "usage")
        if field(usage, "input_tokens") is not None and field(usage, "output_tokens") is not None:
            self.call.add_usage(int(field(usage, "input_tokens")), int(field(usage, "output_tokens")))
        # incomplete: the answer hit a limit (max_output_tokens: the turn's out_of_tokens)
        reason = field(field(response, "incomplete_details"), "reason") or field(response, "status", "completed")
        self.call.finish_reason(str(reason))

    def whole_response(self, response: Any) -> None:
        """A response that was not streamed: its tool items, its text, usage and status."""
        if field(response, "id"):
            self.call.response_id(str(field(response, "id")))
        texts = []
        for item in field(response, "output") or []:
            if field(item, "type") == "message":
                texts += [str(field(part, "text", "")) for part in field(item, "content") or []
                          if field(part, "type") == "output_text"]
            else:
                self.item_done(item)
        self.call.answered("".join(texts))
        if field(response, "status") == "failed":
            self.call.failed_on_server(error_message(field(response, "error", "no reason given")))
        else:
            self.ended(response)
