"""Where the instrumentor hooks into llama-stack-client, and what each hook traces.

Every call the client makes — its resource methods and its generic ``get``/``post``/``delete``
alike — goes through ``SyncAPIClient.request(cast_to, options, stream=..., stream_cls=...)``;
``Hooks.request`` tells the calls worth a GenAI span by method and route:

    POST /v1/agents                                       create_agent <name>
    POST /v1/agents/{agent}/session                       create_session <name>
    POST /v1/agents/{agent}/session/{session}/turn        invoke_agent <name>   (0.2.x)
    POST .../turn/{turn}/resume                           invoke_agent <name>
    POST /v1/responses, /v1/openai/v1/responses           invoke_agent <name>   (0.4+, OGX)

and passes every other call straight through. The Agent class of ``llama_stack_client.lib``
gets two hooks of its own: ``Agent.initialize`` is its ``create_agent`` (the tool listing it
makes nests under it), and ``Agent.create_turn`` its ``invoke_agent``, whose span holds the
whole turn, tool round trips included, and hears of a failure the app passes to the stream
the Agent returns. The HTTP calls they make are then not traced a second time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context

from llama_stack_otel_instrumentation import scope, semconv
from llama_stack_otel_instrumentation.calls import AgentCall, AgentInfo, Recorder, Server, guarded
from llama_stack_otel_instrumentation.payloads import field, last_user_text, text_parts
from llama_stack_otel_instrumentation.responses import ResponseEvents
from llama_stack_otel_instrumentation.streams import TracedStream
from llama_stack_otel_instrumentation.turns import TurnEvents

CREATE_AGENT = re.compile(r"/v1/agents")
CREATE_SESSION = re.compile(r"/v1/agents/(?P<agent>[^/]+)/session")
TURN = re.compile(r"/v1/agents/(?P<agent>[^/]+)/session/(?P<session>[^/]+)/turn(?:/[^/]+/resume)?")
RESPONSES = re.compile(r"/v1(?:/openai/v1)?/responses")

Wrapped = Callable[..., Any]


def server_of(client: Any) -> Server:
    """Where the client sends its calls: the conventions' server.address and server.port."""
    try:
        url = urlsplit(str(client.base_url))
        return Server(url.hostname, url.port or (443 if url.scheme == "https" else 80))
    except Exception:  # noqa: BLE001 - attributes are a nicety
        return Server(None, None)


def vector_db_of(agent_config: Any) -> str | None:
    """The first vector DB an agent's tool groups search (builtin::rag's vector_db_ids)."""
    for group in field(agent_config, "toolgroups") or []:
        ids = field(field(group, "args"), "vector_db_ids") or []
        if ids:
            return str(ids[0])
    return None


def vector_store_of(tools: Any) -> str | None:
    """The first vector store a response's file_search tool searches."""
    for tool in tools or []:
        ids = field(tool, "vector_store_ids") or []
        if field(tool, "type") == "file_search" and ids:
            return str(ids[0])
    return None


class Hooks:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    # --- SyncAPIClient.request

    def request(self, wrapped: Wrapped, client: Any, args: tuple, kwargs: dict) -> Any:
        route = guarded("routing a call", self._route, args, kwargs)
        if route is None or scope.inside_agent_call():
            return wrapped(*args, **kwargs)
        kind, match, body = route
        stream = bool(kwargs.get("stream", False))
        call = lambda: wrapped(*args, **kwargs)  # noqa: E731 - the app's call, made once below
        if kind is CREATE_AGENT:
            return self.create_agent(call, client, field(body, "agent_config") or {},
                                     agent_id_of=lambda result: field(result, "agent_id"))
        if kind is CREATE_SESSION:
            return self.create_session(call, client, match["agent"])
        if kind is TURN:
            agent_id, session_id = match["agent"], match["session"]
            return self.invoke(call, lambda context: self._turn_call(client, agent_id, session_id, body, context),
                               stream=stream, events=TurnEvents,
                               whole=lambda events, turn: events.whole_turn(turn))
        return self.invoke(call, lambda context: self._response_call(client, body, context), stream=stream,
                           events=ResponseEvents, whole=lambda events, response: events.whole_response(response))

    @staticmethod
    def _route(args: tuple, kwargs: dict) -> tuple[re.Pattern, re.Match, Any] | None:
        options = args[1] if len(args) > 1 else kwargs["options"]
        if str(options.method).lower() != "post":
            return None
        path = urlsplit(str(options.url)).path
        for kind in (TURN, CREATE_SESSION, CREATE_AGENT, RESPONSES):
            match = kind.fullmatch(path)
            if match:
                return kind, match, options.json_data or {}
        return None

    # --- Agent.initialize and Agent.create_turn (llama_stack_client.lib.agents.agent)

    def agent_initialize(self, wrapped: Wrapped, agent: Any, args: tuple, kwargs: dict) -> Any:
        return self.create_agent(lambda: wrapped(*args, **kwargs), agent.client,
                                 getattr(agent, "agent_config", None) or {},
                                 agent_id_of=lambda _: getattr(agent, "agent_id", None), inner=True)

    def agent_create_turn(self, wrapped: Wrapped, agent: Any, args: tuple, kwargs: dict) -> Any:
        stream = kwargs.get("stream", args[4] if len(args) > 4 else True)
        body = {"messages": kwargs.get("messages", args[0] if args else None)}
        session_id = kwargs.get("session_id", args[1] if len(args) > 1 else None) or getattr(agent, "session_id", None)
        return self.invoke(lambda: wrapped(*args, **kwargs),
                           lambda context: self._turn_call(agent.client, str(getattr(agent, "agent_id", "")),
                                                           session_id, body,
                                                           otel_context.set_value(scope.INSIDE_AGENT_CALL, True,
                                                                                  context)),
                           stream=bool(stream), events=TurnEvents, whole=lambda events, turn: events.whole_turn(turn))

    # --- The operations

    def create_agent(self, call: Callable[[], Any], client: Any, agent_config: Any, *,
                     agent_id_of: Callable[[Any], Any], inner: bool = False) -> Any:
        recorder = self.recorder
        name = field(agent_config, "name") or scope.current_agent_name()
        info = AgentInfo(name=name, model=field(agent_config, "model"), data_source_id=vector_db_of(agent_config))
        server = server_of(client)
        attributes = {key: value for key, value in {
            semconv.REQUEST_MODEL: info.model, semconv.PROVIDER_NAME: semconv.PROVIDER,
            semconv.DATA_SOURCE_ID: info.data_source_id, "server.address": server.address,
            "server.port": server.port}.items() if value is not None}
        instructions = field(agent_config, "instructions")
        if instructions:
            recorder.content(attributes, semconv.SYSTEM_INSTRUCTIONS, text_parts(str(instructions)))
        context = otel_context.set_value(scope.INSIDE_AGENT_CALL, True) if inner else None
        with recorder.operation(semconv.CREATE_AGENT, agent_name=name, attributes=attributes,
                                kind=semconv.KIND_AGENT, context=context, record_duration=True) as learnt:
            result = call()
            agent_id = guarded("reading the agent id", agent_id_of, result)
            if agent_id:
                learnt[semconv.AGENT_ID] = str(agent_id)
                recorder.remember(str(agent_id), info)
        return result

    def create_session(self, call: Callable[[], Any], client: Any, agent_id: str) -> Any:
        info = self.recorder.agents.get(agent_id)
        name = (info.name if info else None) or scope.current_agent_name()
        server = server_of(client)
        attributes = {key: value for key, value in {
            semconv.AGENT_ID: agent_id, semconv.PROVIDER_NAME: semconv.PROVIDER,
            semconv.REQUEST_MODEL: info.model if info else None, "server.address": server.address,
            "server.port": server.port}.items() if value is not None}
        with self.recorder.operation(semconv.CREATE_SESSION, agent_name=name, attributes=attributes,
                                     kind=semconv.KIND_CHAIN) as learnt:
            result = call()
            session_id = field(result, "session_id")
            if session_id:
                learnt[semconv.CONVERSATION_ID] = str(session_id)
        return result

    def _turn_call(self, client: Any, agent_id: str, session_id: str | None, body: Any,
                   context: otel_context.Context | None) -> AgentCall:
        info = self.recorder.agents.get(agent_id)
        attributes = {semconv.AGENT_ID: agent_id}
        if info and info.data_source_id:
            attributes[semconv.DATA_SOURCE_ID] = info.data_source_id
        return AgentCall(self.recorder, agent_name=(info.name if info else None) or scope.current_agent_name(),
                         model=info.model if info else None, server=server_of(client),
                         question=last_user_text(field(body, "messages")), attributes=attributes,
                         conversation_id=session_id, context=context)

    def _response_call(self, client: Any, body: Any, context: otel_context.Context | None) -> AgentCall:
        data_source = vector_store_of(field(body, "tools"))
        attributes = {semconv.DATA_SOURCE_ID: data_source} if data_source else {}
        return AgentCall(self.recorder, agent_name=scope.current_agent_name(), model=field(body, "model"),
                         server=server_of(client), question=last_user_text(field(body, "input", "")),
                         attributes=attributes, conversation_id=field(body, "conversation"),
                         instructions=field(body, "instructions"), context=context)

    def invoke(self, call: Callable[[], Any], start: Callable[[otel_context.Context | None], AgentCall], *,
               stream: bool, events: Callable[[AgentCall], Any], whole: Callable[[Any, Any], None]) -> Any:
        """One invoke_agent around the app's call: a stream comes back traced, a whole answer is read."""
        agent_call = guarded("starting an invoke_agent span", start, otel_context.get_current())
        if agent_call is None:
            return call()
        try:
            result = call()
        except BaseException as exc:
            guarded("ending a failed invoke_agent span", agent_call.end, exc)
            raise
        if stream:
            guarded("handing the stream back", agent_call.suspend)
            reader = guarded("reading a stream", events, agent_call)
            traced = guarded("tracing a stream", TracedStream, result, agent_call, reader) if reader else None
            if traced is None:
                guarded("ending an invoke_agent span", agent_call.end)
                return result
            return traced
        guarded("reading an answer", lambda: whole(events(agent_call), result))
        guarded("ending an invoke_agent span", agent_call.end)
        return result
