"""A loopback HTTP server that answers like Llama Stack, from canned JSON and server-sent events.

For the instrumentor's tests and its benchmark (the app's bench/instrumentor_cost.py): the real
llama-stack-client talks to it over real HTTP, so what the instrumentation sees is what it sees
against a server. It answers the calls of a RAG agent on 0.2.x (create an agent, list its tools,
open a session, a streamed or whole turn, delete the agent) and of the Responses API (a streamed or
whole response), and keeps every request it got. The events are shaped like Llama Stack 0.2.12's
agent turns and 0.7.3's responses (see ``rag_turn`` and ``rag_response``); a test swaps in its own.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

AGENT_ID = "agent-1"
SESSION_ID = "session-1"
CONVERSATION_ID = "conv_1"
CHAT_ID = "chatcmpl-1"
MODEL = "llama-cpp/gemma3-270m"
RESPONSE_ID = "resp_1"
VECTOR_STORE = "vs_1"
TOOL = {"identifier": "knowledge_search", "provider_id": "rag-runtime", "toolgroup_id": "builtin::rag",
        "description": "search the documents", "parameters": [], "type": "tool"}


def usage_metrics(prompt: int, completion: int) -> list[dict]:
    """The metrics Llama Stack's inference router attaches to responses."""
    return [{"metric": "prompt_tokens", "value": prompt}, {"metric": "completion_tokens", "value": completion},
            {"metric": "total_tokens", "value": prompt + completion}]


def rag_turn(*, question: str, chunk_text: str, answer: list[str],
             inference_metrics: list[dict] | None = None) -> list[dict]:
    """A turn's events: turn_start; inference that calls knowledge_search; the tool step;
    inference that answers in the given pieces; turn_complete."""
    tool_call = {"call_id": "call-1", "tool_name": "knowledge_search", "arguments": {"query": question}}
    tool_content = [
        {"type": "text", "text": "knowledge_search tool found 2 chunks:\nBEGIN of knowledge_search tool results.\n"},
        {"type": "text", "text": f"Result 1\nContent: {chunk_text}\n"},
        {"type": "text", "text": "Result 2\nContent: use a process manager\n"},
        {"type": "text", "text": "END of knowledge_search tool results.\n"},
    ]
    step_extra = {"metrics": inference_metrics} if inference_metrics else {}
    text = "".join(answer)
    turn = {"turn_id": "turn-1", "session_id": SESSION_ID, "started_at": "2026-11-24T10:00:00Z",
            "input_messages": [{"role": "user", "content": question}], "steps": []}
    payloads = [
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
                                "metadata": {"document_ids": ["a.md", "b.md"], "chunks": [chunk_text, "x"],
                                             "scores": [0.9, 0.5]}}]}},
        {"event_type": "step_start", "step_type": "inference", "step_id": "s3"},
        *({"event_type": "step_progress", "step_type": "inference", "step_id": "s3",
           "delta": {"type": "text", "text": piece}} for piece in answer),
        {"event_type": "step_complete", "step_type": "inference", "step_id": "s3", "step_details": {
            "step_type": "inference", "step_id": "s3", "turn_id": "turn-1", **step_extra,
            "model_response": {"role": "assistant", "content": text, "stop_reason": "end_of_turn"}}},
        {"event_type": "turn_complete", "turn": {**turn, "output_message": {
            "role": "assistant", "content": text, "stop_reason": "end_of_turn"}}},
    ]
    return [{"event": {"payload": payload}} for payload in payloads]


def whole_turn(events: list[dict]) -> dict:
    """The Turn a turn that is not streamed returns: the last event's, with its steps."""
    turn = dict(events[-1]["event"]["payload"]["turn"])
    turn["steps"] = [e["event"]["payload"]["step_details"] for e in events
                     if e["event"]["payload"]["event_type"] == "step_complete"]
    return turn


# Fields of a response OGX 1.5's client requires.
RESPONSE_FIELDS = {"created_at": 1764000000, "store": True}


def rag_response(*, question: str, chunk_text: str, answer: list[str], usage: tuple[int, int] | None = (120, 9),
                 status: str = "completed") -> list[dict]:
    """A response's events: created; a file_search call with its results; the answer in the
    given pieces; completed (with usage) or another ending."""
    base = {"id": RESPONSE_ID, "object": "response", "model": "llama-cpp/gemma3-270m", "status": "in_progress",
            "output": [], **RESPONSE_FIELDS}
    item = {"id": "fs_1", "type": "file_search_call", "status": "completed", "queries": [question],
            "results": [{"file_id": "file-1", "filename": "a.txt", "score": 0.9, "text": chunk_text, "attributes": {}},
                        {"file_id": "file-2", "filename": "b.txt", "score": 0.5, "text": "use a process manager",
                         "attributes": {}}]}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "".join(answer), "annotations": []}]}
    ended = {**base, "status": status, "output": [item, message]}
    if usage is not None:
        ended["usage"] = response_usage(*usage)
    if status == "incomplete":
        ended["incomplete_details"] = {"reason": "length"}
    return numbered([
        {"type": "response.created", "response": base},
        {"type": "response.in_progress", "response": base},
        {"type": "response.output_item.added", "item": {**item, "status": "in_progress", "results": None},
         "output_index": 0},
        {"type": "response.file_search_call.in_progress", "item_id": "fs_1", "output_index": 0},
        {"type": "response.file_search_call.searching", "item_id": "fs_1", "output_index": 0},
        {"type": "response.file_search_call.completed", "item_id": "fs_1", "output_index": 0},
        {"type": "response.output_item.done", "item": item, "output_index": 0},
        *({"type": "response.output_text.delta", "item_id": "msg_1", "delta": piece, "output_index": 1,
           "content_index": 0} for piece in answer),
        {"type": "response.output_item.done", "item": message, "output_index": 1},
        {"type": f"response.{status}", "response": ended},
    ], RESPONSE_ID)


def response_usage(input_tokens: int, output_tokens: int) -> dict:
    """A response's usage, with the token details OGX 1.5's client requires."""
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens,
            "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}}


def whole_response(events: list[dict]) -> dict:
    return events[-1]["response"]


def function_call_response(*, name: str, arguments: str, call_id: str = "call_fn_1",
                           response_id: str = "resp_fn") -> list[dict]:
    """A response that asks the client to run one of its functions (an Agent's client-side tool)."""
    base = {"id": response_id, "object": "response", "model": MODEL, "status": "in_progress", "output": [],
            **RESPONSE_FIELDS}
    item = {"id": "fc_1", "type": "function_call", "call_id": call_id, "name": name, "arguments": arguments,
            "status": "completed"}
    ended = {**base, "status": "completed", "output": [item],
             "usage": response_usage(30, 5)}
    return numbered([
        {"type": "response.created", "response": base},
        {"type": "response.in_progress", "response": base},
        {"type": "response.output_item.added", "item": {**item, "status": "in_progress"}, "output_index": 0},
        {"type": "response.output_item.done", "item": item, "output_index": 0},
        {"type": "response.completed", "response": ended},
    ], response_id)


def numbered(events: list[dict], response_id: str) -> list[dict]:
    """Events as a server sends them: a sequence number each, and the response id on item events
    (0.7's and OGX's typed events require them)."""
    return [{**event, "sequence_number": number, **({} if "response" in event else {"response_id": response_id})}
            for number, event in enumerate(events)]


def chat_answer(answer: list[str], *, usage: tuple[int, int] = (11, 4)) -> dict:
    """An OpenAI-style chat completion (/v1/chat/completions, 0.2.x: /v1/openai/v1/chat/completions)."""
    return {"id": CHAT_ID, "object": "chat.completion", "created": 1764000000, "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(answer)},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}


def chat_chunks(answer: list[str], *, usage: tuple[int, int] = (11, 4)) -> list[dict]:
    """The same answer streamed: a chunk per piece, the finish reason, then usage."""
    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {"id": CHAT_ID, "object": "chat.completion.chunk", "created": 1764000000, "model": MODEL,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return [chunk({"role": "assistant", "content": ""}), *(chunk({"content": piece}) for piece in answer),
            chunk({}, "stop"),
            {"id": CHAT_ID, "object": "chat.completion.chunk", "created": 1764000000, "model": MODEL, "choices": [],
             "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}}]


def inference_answer(answer: list[str], *, usage: tuple[int, int] = (11, 4)) -> dict:
    """Llama Stack 0.2.x's own chat completion (/v1/inference/chat-completion)."""
    return {"completion_message": {"role": "assistant", "content": "".join(answer), "stop_reason": "end_of_turn"},
            "metrics": usage_metrics(*usage)}


def inference_chunks(answer: list[str], *, usage: tuple[int, int] = (11, 4)) -> list[dict]:
    return [{"event": {"event_type": "start", "delta": {"type": "text", "text": ""}}},
            *({"event": {"event_type": "progress", "delta": {"type": "text", "text": piece}}} for piece in answer),
            {"event": {"event_type": "complete", "delta": {"type": "text", "text": ""}, "stop_reason": "end_of_turn"},
             "metrics": usage_metrics(*usage)}]


EMBEDDING = [0.125, -0.5, 0.25, 0.0625]


def search_results(chunk_text: str, *, query: str | list[str] = "q") -> dict:
    """A vector store search's page of results (0.2.x's query is a string, 0.7's a list)."""
    return {"object": "vector_store.search_results.page", "search_query": query, "has_more": False, "next_page": None,
            "data": [{"file_id": "file-1", "filename": "a.txt", "score": 0.9, "attributes": {},
                      "content": [{"type": "text", "text": chunk_text}]},
                     {"file_id": "file-2", "filename": "b.txt", "score": 0.5, "attributes": {},
                      "content": [{"type": "text", "text": "use a process manager"}]}]}


def query_chunk(text: str, document: str) -> dict:
    """A chunk a vector_io query finds (with the fields OGX 1.5's client requires)."""
    return {"content": text, "metadata": {"document_id": document}, "chunk_id": f"{document}-0",
            "chunk_metadata": {"document_id": document}, "embedding": EMBEDDING, "embedding_model": "e",
            "embedding_dimension": len(EMBEDDING)}


def reply(handler: BaseHTTPRequestHandler, body: bytes, *, content_type: str, status: int = 200) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


# The GenAI routes refuse_with refuses.
REFUSED = (r"/v1(/openai/v1)?/(responses|chat/completions|embeddings|vector_stores/[^/]+/search)"
           r"|/v1/agents/.+/turn|/v1/inference/.+|/v1/vector-io/query|/v1/tool-runtime/.+")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class CannedLlamaStack:
    """What the server answers (set them per test) and what it was asked."""

    turn: list[dict] = field(default_factory=list)
    response: list[dict] = field(default_factory=list)
    # Responses served before `response`, one per call, in order (an Agent's tool round trips).
    responses_first: list[list[dict]] = field(default_factory=list)
    answer: list[str] = field(default_factory=lambda: ["ACANARY-9e02: ", "send SIGTERM."])  # chat answers
    chunk_text: str = "DCANARY-4c7d: send SIGTERM and close the server"  # what searches find
    refuse_with: int | None = None  # an HTTP status for every GenAI call, quoting the request back
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def clear(self) -> None:
        self.seen.clear()


def _handler(canned: CannedLlamaStack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold each answer back ~40 ms.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def _read(self) -> Any:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return None

        def _json(self, value: Any, status: int = 200) -> bool:
            reply(self, json.dumps(value).encode(), content_type="application/json", status=status)
            return True

        def _events(self, events: list[dict]) -> bool:
            # One body, sent at once: the client's SSE decoder splits it into events.
            body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
            reply(self, body, content_type="text/event-stream")
            return True

        def _answer(self) -> None:
            body = self._read()
            path = self.path.split("?", 1)[0]
            canned.seen.append(Seen(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body))
            stream = bool((body or {}).get("stream"))
            if canned.refuse_with and re.fullmatch(REFUSED, path):
                return self._json({"detail": f"invalid request: {json.dumps(body)}"}, status=canned.refuse_with)
            if self._genai(path, body or {}, stream):
                return None
            if self.command == "POST" and path == "/v1/agents":
                return self._json({"agent_id": AGENT_ID})
            if self.command == "GET" and path == "/v1/tools":
                return self._json({"data": [TOOL]})
            if self.command == "POST" and re.fullmatch(r"/v1/agents/[^/]+/session", path):
                return self._json({"session_id": SESSION_ID})
            if self.command == "POST" and re.fullmatch(r"/v1/agents/[^/]+/session/[^/]+/turn", path):
                return self._events(canned.turn) if stream else self._json(whole_turn(canned.turn))
            if self.command == "POST" and re.fullmatch(r"/v1(/openai/v1)?/responses", path):
                events = canned.responses_first.pop(0) if canned.responses_first else canned.response
                return self._events(events) if stream else self._json(whole_response(events))
            if self.command == "POST" and re.fullmatch(r"/v1(/openai/v1)?/conversations", path):
                return self._json({"id": CONVERSATION_ID, "object": "conversation", "created_at": 1764000000,
                                   "metadata": (body or {}).get("metadata") or {}})
            if self.command == "DELETE":
                return self._json({})
            return self._json({"detail": f"no canned answer for {self.command} {path}"}, status=404)

        def _genai(self, path: str, body: dict, stream: bool) -> bool | None:
            """Chat, embeddings, searches and tools: True once answered; None for other routes."""
            if self.command != "POST":
                return None
            if re.fullmatch(r"/v1(/openai/v1)?/chat/completions", path):
                return self._events(chat_chunks(canned.answer)) if stream else self._json(chat_answer(canned.answer))
            if path == "/v1/inference/chat-completion":
                return (self._events(inference_chunks(canned.answer)) if stream
                        else self._json(inference_answer(canned.answer)))
            if re.fullmatch(r"/v1(/openai/v1)?/embeddings", path):
                inputs = body.get("input")
                count = len(inputs) if isinstance(inputs, list) else 1
                return self._json({"object": "list", "model": body.get("model", MODEL),
                                   "data": [{"object": "embedding", "index": i, "embedding": EMBEDDING}
                                            for i in range(count)],
                                   "usage": {"prompt_tokens": 5 * count, "total_tokens": 5 * count}})
            if path == "/v1/inference/embeddings":
                return self._json({"embeddings": [EMBEDDING for _ in body.get("contents") or [""]]})
            if re.fullmatch(r"/v1(/openai/v1)?/vector_stores/[^/]+/search", path):
                return self._json(search_results(canned.chunk_text,
                                                  query="q" if path.startswith("/v1/openai/v1/") else ["q"]))
            if path == "/v1/vector-io/query":
                return self._json({"chunks": [query_chunk(canned.chunk_text, "a.md"),
                                              query_chunk("use a process manager", "b")], "scores": [0.9, 0.5]})
            if path == "/v1/tool-runtime/rag-tool/query":
                return self._json({"content": [{"type": "text", "text": f"Result 1\nContent: {canned.chunk_text}\n"}],
                                   "metadata": {"document_ids": ["a.md", "b.md"]}})
            if path == "/v1/tool-runtime/invoke":
                return self._json({"content": f"{body.get('tool_name')} ran", "metadata": {}})
            return None

        do_GET = do_POST = do_DELETE = _answer

    return Handler


@contextmanager
def serving(canned: CannedLlamaStack | None = None) -> Iterator[CannedLlamaStack]:
    """Serve on a free loopback port in a thread; canned.url is the base URL."""
    canned = canned or CannedLlamaStack()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(canned))
    server.daemon_threads = True
    # A short poll: shutdown() waits for the loop to look, at every test's end.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    canned.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield canned
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
