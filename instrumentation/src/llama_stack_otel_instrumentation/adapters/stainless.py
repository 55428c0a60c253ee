"""The adapter for Stainless-generated clients: llama-stack-client 0.2.x–0.7.x, ogx-client 1.0–1.1.x.

Every call such a client makes — its resource methods and its generic ``get``/``post`` alike —
goes through ``SyncAPIClient.request(cast_to, options, *, stream, stream_cls)`` (``AsyncAPIClient``
the same, awaited) in ``<package>._base_client``. The hook tells the GenAI calls by method and
route and hands them to the shared layer:

    POST /v1/responses, /v1/openai/v1/responses               RESPONSE
    POST /v1/chat/completions, /v1/openai/v1/chat/completions  CHAT
    POST /v1/inference/chat-completion                         INFERENCE_CHAT       (0.2.x)
    POST /v1/embeddings, /v1/openai/v1/embeddings,
         /v1/inference/embeddings                              EMBEDDINGS
    POST /v1[/openai/v1]/vector_stores/{id}/search,
         /v1/vector-io/query, /v1/tool-runtime/rag-tool/query  SEARCH
    POST /v1/tool-runtime/invoke                               INVOKE_TOOL          (0.2.x)
    POST /v1/agents                                            CREATE_AGENT         (0.2.x)
    POST /v1/agents/{agent}/session                            CREATE_SESSION       (0.2.x)
    POST /v1/agents/{agent}/session/{session}/turn[/{turn}/resume]  AGENT_TURN      (0.2.x)
    POST /v1/conversations, /v1/openai/v1/conversations        CREATE_CONVERSATION

Every other call passes straight through. A call made through ``with_raw_response`` or
``with_streaming_response`` (Stainless marks it with its raw-response header in the options) gets
its span but no reading: the app reads that body itself, when it wants.

The library's Agent: on 0.2.x ``Agent.initialize`` is its ``create_agent`` and
``Agent.create_turn`` its ``invoke_agent``; on 0.7+ and OGX (Responses API) ``Agent.create_turn``
and ``AsyncAgent.create_turn`` are one ``invoke_agent`` each, holding the whole turn. The
calls these make inside pass through untouched (the shared layer's INSIDE_AGENT_CALL), so the
Agent reads the client's own streams. ``create_session`` needs no hook: on 0.2.x its call is
CREATE_SESSION, on 0.7+ a conversations.create.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from llama_stack_otel_instrumentation.adapters import Hook
from llama_stack_otel_instrumentation.calls import guarded
from llama_stack_otel_instrumentation.operations import (
    AGENT_TURN,
    CHAT,
    CREATE_AGENT,
    CREATE_CONVERSATION,
    CREATE_SESSION,
    EMBEDDINGS,
    INFERENCE_CHAT,
    INVOKE_TOOL,
    RESPONSE,
    SEARCH,
    Operations,
    Request,
    server_of,
)

RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # "raw" or "stream" (older clients: "true")
OPENAI = r"/v1(?:/openai/v1)?"
ROUTES = [(re.compile(pattern), operation) for pattern, operation in (
    (rf"{OPENAI}/responses", RESPONSE),
    (rf"{OPENAI}/chat/completions", CHAT),
    (r"/v1/inference/chat-completion", INFERENCE_CHAT),
    (rf"{OPENAI}/embeddings|/v1/inference/embeddings", EMBEDDINGS),
    (rf"{OPENAI}/vector_stores/(?P<vector_store>[^/]+)/search|/v1/vector-io/query|/v1/tool-runtime/rag-tool/query",
     SEARCH),
    (r"/v1/tool-runtime/invoke", INVOKE_TOOL),
    (r"/v1/agents", CREATE_AGENT),
    (r"/v1/agents/(?P<agent>[^/]+)/session", CREATE_SESSION),
    (r"/v1/agents/(?P<agent>[^/]+)/session/(?P<session>[^/]+)/turn(?:/[^/]+/resume)?", AGENT_TURN),
    (rf"{OPENAI}/conversations", CREATE_CONVERSATION),
)]

Wrapped = Callable[..., Any]


def applies(package: str) -> bool:
    """A Stainless client has ``_base_client`` (ogx-client 1.2+ is OpenAPI-generated: none)."""
    try:
        return importlib.util.find_spec(f"{package}._base_client") is not None
    except (ImportError, ValueError):
        return False


def route(client: Any, args: tuple, kwargs: dict) -> tuple[Request, bool] | None:
    """The request a ``request(cast_to, options, *, stream, stream_cls)`` call makes, and whether
    it streams; None for a call with no GenAI span."""
    options = args[1] if len(args) > 1 else kwargs["options"]
    if str(options.method).lower() != "post":
        return None
    path = urlsplit(str(options.url)).path
    for pattern, operation in ROUTES:
        match = pattern.fullmatch(path)
        if match:
            body = options.json_data if isinstance(options.json_data, dict) else {}
            headers = options.headers if isinstance(options.headers, dict) else {}
            raw = bool(headers.get(RAW_RESPONSE_HEADER))
            params = {key: value for key, value in match.groupdict().items() if value is not None}
            request = Request(operation, body, server_of(client), params, read=not raw)
            return request, bool(kwargs.get("stream", False))
    return None


class Hooks:
    """The wrappers, each bound to the shared layer."""

    def __init__(self, operations: Operations) -> None:
        self.operations = operations

    def request(self, wrapped: Wrapped, client: Any, args: tuple, kwargs: dict) -> Any:
        routed = guarded("routing a call", route, client, args, kwargs)
        if routed is None:
            return wrapped(*args, **kwargs)
        request, stream = routed
        return self.operations.run(request, lambda: wrapped(*args, **kwargs), streamed=lambda _: stream)

    async def async_request(self, wrapped: Wrapped, client: Any, args: tuple, kwargs: dict) -> Any:
        routed = guarded("routing a call", route, client, args, kwargs)
        if routed is None:
            return await wrapped(*args, **kwargs)
        request, stream = routed
        return await self.operations.run_async(request, lambda: wrapped(*args, **kwargs), streamed=lambda _: stream)

    # --- The library's Agent

    def agent_initialize(self, wrapped: Wrapped, agent: Any, args: tuple, kwargs: dict) -> Any:
        return self.operations.agent_initialize(agent, lambda: wrapped(*args, **kwargs))

    def agent_create_turn(self, wrapped: Wrapped, agent: Any, args: tuple, kwargs: dict) -> Any:
        """``create_turn(messages, session_id, toolgroups=None, documents=None, stream=True)`` on
        0.2.x; ``create_turn(messages, session_id, stream=True, extra_headers=None)`` on 0.7+."""
        turn = guarded("reading a turn's arguments", self._turn, agent, args, kwargs)
        if turn is None:
            return wrapped(*args, **kwargs)
        start, stream = turn
        return self.operations.trace(start, lambda: wrapped(*args, **kwargs), streamed=lambda _: stream)

    async def async_agent_create_turn(self, wrapped: Wrapped, agent: Any, args: tuple, kwargs: dict) -> Any:
        turn = guarded("reading a turn's arguments", self._turn, agent, args, kwargs)
        if turn is None:
            return await wrapped(*args, **kwargs)
        start, stream = turn
        return await self.operations.trace_async(start, lambda: wrapped(*args, **kwargs), streamed=lambda _: stream)

    def _turn(self, agent: Any, args: tuple, kwargs: dict) -> tuple[Any, bool]:
        messages = kwargs.get("messages", args[0] if args else None)
        session_id = kwargs.get("session_id", args[1] if len(args) > 1 else None)
        if hasattr(agent, "agent_config"):  # 0.2.x: the agents API
            stream = kwargs.get("stream", args[4] if len(args) > 4 else True)
            session_id = session_id or getattr(agent, "session_id", None)
            return self.operations.agent_turn_start(agent, messages, session_id), bool(stream)
        stream = kwargs.get("stream", args[2] if len(args) > 2 else True)
        return self.operations.responses_agent_turn_start(agent, messages, session_id), bool(stream)


def hooks(package: str, operations: Operations) -> list[Hook]:
    wrappers = Hooks(operations)
    agent = f"{package}.lib.agents.agent"
    return [
        Hook(f"{package}._base_client", "SyncAPIClient.request", wrappers.request),
        Hook(f"{package}._base_client", "AsyncAPIClient.request", wrappers.async_request),
        Hook(agent, "Agent.initialize", wrappers.agent_initialize),  # 0.2.x only
        Hook(agent, "Agent.create_turn", wrappers.agent_create_turn),
        Hook(agent, "AsyncAgent.create_turn", wrappers.async_agent_create_turn),
    ]
