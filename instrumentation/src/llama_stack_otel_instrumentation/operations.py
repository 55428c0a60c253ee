"""The shared recording layer: what every adapter hands a client call to.

An adapter (adapters/) sees a call where its client line makes it, names it with a ``Request``
— the operation, the request body as a dict, the path parameters, the server — and passes it
here with the call itself; ``Operations`` starts the operation's span, makes the call, and
either reads the whole answer or hands back the stream wrapped so that its chunks are read as
the app iterates them:

    RESPONSE             invoke_agent [<agent>]  a Responses API call (0.2.12+, 0.7, OGX)
    AGENT_TURN           invoke_agent <agent>    a 0.2.x agents-API turn (or its resume)
    CHAT                 chat <model>            an OpenAI-style chat completion
    INFERENCE_CHAT       chat <model>            0.2.x inference.chat_completion
    EMBEDDINGS           embeddings <model>      OpenAI-style embeddings, 0.2.x inference.embeddings
    SEARCH               retrieval <store>       a vector store search, 0.2.x vector_io / RAG tool query
    INVOKE_TOOL          execute_tool <tool>     0.2.x tool_runtime.invoke_tool
    CREATE_AGENT         create_agent <agent>    0.2.x agents.create
    CREATE_SESSION       create_session <agent>  0.2.x agent session (span name only)
    CREATE_CONVERSATION  create_conversation     conversations.create (span name only)

The library Agent's methods have entries of their own (``agent_initialize``,
``agent_turn``, ``responses_agent_turn``): their span holds the whole turn, and the calls the
Agent makes inside it pass through untraced (``scope.INSIDE_AGENT_CALL``): the Agent gets the
client's own objects, exactly as without the instrumentation.

Never harm: starting a span, reading an answer or a chunk, ending a span — each is ``guarded``;
if the span cannot be started the call is made as if uninstrumented; the app's call is made
exactly once, and its result or exception is the app's, unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from opentelemetry import context as otel_context

from llama_stack_otel_instrumentation import scope, semconv
from llama_stack_otel_instrumentation.agent_turns import AgentTurnEvents
from llama_stack_otel_instrumentation.calls import (
    AgentCall,
    AgentInfo,
    EmbeddingCall,
    ModelCall,
    Recorder,
    RetrievalCall,
    Server,
    SpanCall,
    ToolCall,
    guarded,
)
from llama_stack_otel_instrumentation.chat import ChatEvents, InferenceEvents
from llama_stack_otel_instrumentation.payloads import field as read
from llama_stack_otel_instrumentation.payloads import last_user_text, text_parts
from llama_stack_otel_instrumentation.responses import ResponseEvents
from llama_stack_otel_instrumentation.results import EmbeddingResult, SearchResult, ToolResult, Whole
from llama_stack_otel_instrumentation.streams import TracedAsyncStream, TracedStream
from llama_stack_otel_instrumentation.turns import TurnEvents, tool_type

RESPONSE = "response"
AGENT_TURN = "agent_turn"
CHAT = "chat"
INFERENCE_CHAT = "inference_chat"
EMBEDDINGS = "embeddings"
SEARCH = "search"
INVOKE_TOOL = "invoke_tool"
CREATE_AGENT = "create_agent"
CREATE_SESSION = "create_session"
CREATE_CONVERSATION = "create_conversation"

_T = TypeVar("_T")
Context = otel_context.Context | None


@dataclass(frozen=True)
class Request:
    """A client call an adapter recognised."""

    operation: str  # one of the names above
    body: Mapping[str, Any]  # the request body, as a dict
    server: Server
    params: Mapping[str, str] = field(default_factory=dict)  # path parameters: agent, session, vector_store
    read: bool = True  # False: a raw response the app reads itself; the span ends when the call returns


class Reader(Protocol):
    """What reads an answer into its call: a streamed chunk at a time, or whole."""

    def __call__(self, chunk: Any, /) -> None: ...

    def whole(self, result: Any, /) -> None: ...


class Traced(Protocol):
    def activate(self) -> Any: ...

    def suspend(self) -> None: ...

    def end(self, error: BaseException | None = None) -> None: ...


Start = Callable[[Context], tuple[Traced, Reader]]


class _LearnId(Whole):
    """Reads the id a creation answered with into its span (and remembers a created agent)."""

    def __init__(self, span: SpanCall, attribute: str, key: str, then: Callable[[str], None] | None = None) -> None:
        self.span, self.attribute, self.key, self.then = span, attribute, key, then

    def whole(self, result: Any) -> None:
        value = read(result, self.key)
        if value:
            self.span.learnt[self.attribute] = str(value)
            if self.then is not None:
                self.then(str(value))


def server_of(client: Any) -> Server:
    """Where the client sends its calls: the conventions' server.address and server.port."""
    try:
        url = urlsplit(str(client.base_url))
        return Server(url.hostname, url.port or (443 if url.scheme == "https" else 80))
    except Exception:  # noqa: BLE001 - attributes are a nicety
        return Server(None, None)


def vector_db_of(agent_config: Any) -> str | None:
    """The first vector DB an agent's tool groups search (builtin::rag's vector_db_ids)."""
    for group in read(agent_config, "toolgroups") or []:
        ids = read(read(group, "args"), "vector_db_ids") or []
        if ids:
            return str(ids[0])
    return None


def vector_store_of(tools: Any) -> str | None:
    """The first vector store a response's file_search tool searches."""
    for tool in tools or []:
        ids = read(tool, "vector_store_ids") or []
        if read(tool, "type") == "file_search" and ids:
            return str(ids[0])
    return None


def present(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}


class Operations:
    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    # --- Running a call: the same for every adapter

    def run(self, request: Request, call: Callable[[], _T], *, streamed: Callable[[_T], bool]) -> _T:
        """Make the call inside its operation's span (sync)."""
        if scope.inside_agent_call():
            return call()
        return self.trace(lambda context: self.start(request, context), call, streamed=streamed,
                          read_answer=request.read)

    async def run_async(self, request: Request, call: Callable[[], Awaitable[_T]], *,
                        streamed: Callable[[_T], bool]) -> _T:
        """Make the call inside its operation's span (async)."""
        if scope.inside_agent_call():
            return await call()
        return await self.trace_async(lambda context: self.start(request, context), call, streamed=streamed,
                                      read_answer=request.read)

    def trace(self, start: Start, call: Callable[[], _T], *, streamed: Callable[[_T], bool],
              read_answer: bool = True) -> _T:
        started = guarded("starting a span", start, otel_context.get_current())
        if started is None:
            return call()
        try:
            result = call()
        except BaseException as exc:
            guarded("ending a failed span", started[0].end, exc)
            raise
        return self._answer(started, result, streamed, read_answer, TracedStream)

    async def trace_async(self, start: Start, call: Callable[[], Awaitable[_T]], *,
                          streamed: Callable[[_T], bool], read_answer: bool = True) -> _T:
        started = guarded("starting a span", start, otel_context.get_current())
        if started is None:
            return await call()
        try:
            result = await call()
        except BaseException as exc:
            guarded("ending a failed span", started[0].end, exc)
            raise
        return self._answer(started, result, streamed, read_answer, TracedAsyncStream)

    @staticmethod
    def _answer(started: tuple[Traced, Reader], result: _T, streamed: Callable[[_T], bool], read_answer: bool,
                wrapper: type[TracedStream] | type[TracedAsyncStream]) -> _T:
        """A stream comes back traced (its span current only while it is read); a whole answer is
        read now. Either way the app gets the client's object, or a transparent proxy of it."""
        traced, reader = started
        if read_answer and guarded("recognising a stream", streamed, result):
            guarded("handing the stream back", traced.suspend)
            wrapped = guarded("tracing a stream", wrapper, result, traced, reader)
            if wrapped is not None:
                return wrapped  # type: ignore[return-value]
        elif read_answer:
            guarded("reading an answer", reader.whole, result)
        guarded("ending a span", traced.end)
        return result

    # --- The operations' spans

    def start(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        """The started span and the reader of its answer, for a request."""
        builder = {RESPONSE: self._response, AGENT_TURN: self._agent_turn, CHAT: self._chat,
                   INFERENCE_CHAT: self._chat, EMBEDDINGS: self._embeddings, SEARCH: self._search,
                   INVOKE_TOOL: self._invoke_tool, CREATE_AGENT: self._create_agent,
                   CREATE_SESSION: self._create_session, CREATE_CONVERSATION: self._create_conversation}
        return builder[request.operation](request, context)

    def _response(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        agent_call = self._response_call(request.body, request.server, context)
        return agent_call, ResponseEvents(agent_call)

    def _agent_turn(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        agent_call = self.turn_call(request.params.get("agent", ""), request.params.get("session"),
                                    read(request.body, "messages"), request.server, context)
        return agent_call, TurnEvents(agent_call)

    def _chat(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        body = request.body
        model_call = ModelCall(self.recorder, model=read(body, "model") or read(body, "model_id"),
                               server=request.server, messages=read(body, "messages"),
                               stream=bool(read(body, "stream", False)), context=context)
        return model_call, (ChatEvents(model_call) if request.operation == CHAT else InferenceEvents(model_call))

    def _embeddings(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        body = request.body
        embedding = EmbeddingCall(self.recorder, model=read(body, "model") or read(body, "model_id"),
                                  server=request.server, context=context)
        return embedding, EmbeddingResult(embedding)

    def _search(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        body = request.body
        store = (request.params.get("vector_store") or read(body, "vector_db_id")
                 or next(iter(read(body, "vector_db_ids") or []), None))
        retrieval = RetrievalCall(self.recorder, data_source_id=store, server=request.server, context=context,
                                  query=read(body, "query") or read(body, "content"))
        return retrieval, SearchResult(retrieval)

    def _invoke_tool(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        tool = str(read(request.body, "tool_name", "tool"))
        tool_call = ToolCall(self.recorder, tool=tool, tool_type=tool_type(tool),
                             arguments=read(request.body, "kwargs"), context=context)
        return tool_call, ToolResult(tool_call)

    def _create_agent(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        return self.create_agent(read(request.body, "agent_config") or {}, request.server, context,
                                 agent_id_of=lambda result: read(result, "agent_id"))

    def _create_session(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        return self.create_session(request.params.get("agent", ""), request.server, context)

    def _create_conversation(self, request: Request, context: Context) -> tuple[Traced, Reader]:
        server = request.server
        span = SpanCall(self.recorder, semconv.CREATE_CONVERSATION, context=context, attributes=present({
            semconv.PROVIDER_NAME: semconv.PROVIDER, semconv.OPENINFERENCE_SPAN_KIND: semconv.KIND_CHAIN,
            semconv.SERVER_ADDRESS: server.address, semconv.SERVER_PORT: server.port}))
        return span, _LearnId(span, semconv.CONVERSATION_ID, "id")

    def _response_call(self, body: Any, server: Server, context: Context) -> AgentCall:
        data_source = vector_store_of(read(body, "tools"))
        return AgentCall(self.recorder, agent_name=scope.current_agent_name(), model=read(body, "model"),
                         server=server, question=last_user_text(read(body, "input", "")),
                         attributes={semconv.DATA_SOURCE_ID: data_source} if data_source else {},
                         conversation_id=read(body, "conversation"), instructions=read(body, "instructions"),
                         context=context)

    def turn_call(self, agent_id: str, session_id: str | None, messages: Any, server: Server,
                  context: Context) -> AgentCall:
        """A 0.2.x agent's turn: its agent's name, model and vector DB, if this process created it."""
        info = self.recorder.agents.get(agent_id)
        attributes = {semconv.AGENT_ID: agent_id}
        if info and info.data_source_id:
            attributes[semconv.DATA_SOURCE_ID] = info.data_source_id
        return AgentCall(self.recorder, agent_name=(info.name if info else None) or scope.current_agent_name(),
                         model=info.model if info else None, server=server, question=last_user_text(messages),
                         attributes=attributes, conversation_id=session_id, context=context)

    def create_agent(self, agent_config: Any, server: Server, context: Context, *,
                     agent_id_of: Callable[[Any], Any]) -> tuple[SpanCall, Reader]:
        recorder = self.recorder
        name = read(agent_config, "name") or scope.current_agent_name()
        info = AgentInfo(name=name, model=read(agent_config, "model"), data_source_id=vector_db_of(agent_config))
        attributes = present({
            semconv.OPERATION_NAME: semconv.CREATE_AGENT, semconv.OPENINFERENCE_SPAN_KIND: semconv.KIND_AGENT,
            semconv.AGENT_NAME: name, semconv.REQUEST_MODEL: info.model, semconv.PROVIDER_NAME: semconv.PROVIDER,
            semconv.DATA_SOURCE_ID: info.data_source_id, semconv.SERVER_ADDRESS: server.address,
            semconv.SERVER_PORT: server.port})
        instructions = read(agent_config, "instructions")
        if instructions:
            recorder.content(attributes, semconv.SYSTEM_INSTRUCTIONS, text_parts(str(instructions)))
        span = SpanCall(recorder, f"{semconv.CREATE_AGENT} {name}" if name else semconv.CREATE_AGENT,
                        attributes=attributes, context=context, record_duration=True)

        class AgentId(Whole):
            def whole(self, result: Any) -> None:
                agent_id = agent_id_of(result)
                if agent_id:
                    span.learnt[semconv.AGENT_ID] = str(agent_id)
                    recorder.remember(str(agent_id), info)

        return span, AgentId()

    def create_session(self, agent_id: str, server: Server, context: Context) -> tuple[SpanCall, Reader]:
        info = self.recorder.agents.get(agent_id)
        name = (info.name if info else None) or scope.current_agent_name()
        span = SpanCall(self.recorder, f"{semconv.CREATE_SESSION} {name}" if name else semconv.CREATE_SESSION,
                        context=context, attributes=present({
                            semconv.OPENINFERENCE_SPAN_KIND: semconv.KIND_CHAIN, semconv.AGENT_NAME: name,
                            semconv.AGENT_ID: agent_id, semconv.PROVIDER_NAME: semconv.PROVIDER,
                            semconv.REQUEST_MODEL: info.model if info else None,
                            semconv.SERVER_ADDRESS: server.address, semconv.SERVER_PORT: server.port}))
        return span, _LearnId(span, semconv.CONVERSATION_ID, "session_id")

    # --- The client library's Agent (lib/agents/agent.py)

    def agent_initialize(self, agent: Any, call: Callable[[], _T]) -> _T:
        """0.2.x ``Agent.initialize``: its create_agent; the tool listing it makes nests under it."""
        inside = otel_context.set_value(scope.INSIDE_AGENT_CALL, True)
        return self.trace(lambda _: self.create_agent(getattr(agent, "agent_config", None) or {},
                                                      server_of(agent.client), inside,
                                                      agent_id_of=lambda _: getattr(agent, "agent_id", None)),
                          call, streamed=lambda _: False)

    def agent_turn_start(self, agent: Any, messages: Any, session_id: Any) -> Start:
        """0.2.x ``Agent.create_turn``: one invoke_agent for the turn, read from its events."""
        def start(context: Context) -> tuple[Traced, Reader]:
            agent_call = self.turn_call(str(getattr(agent, "agent_id", "")), session_id, messages,
                                        server_of(agent.client), otel_context.set_value(scope.INSIDE_AGENT_CALL, True,
                                                                                        context))
            return agent_call, TurnEvents(agent_call)
        return start

    def responses_agent_turn_start(self, agent: Any, messages: Any, session_id: Any) -> Start:
        """0.7+/OGX ``Agent.create_turn``: one invoke_agent for the whole turn — every
        responses.create of its loop and every tool run, on either side, inside it."""
        def start(context: Context) -> tuple[Traced, Reader]:
            data_source = vector_store_of(getattr(agent, "_tools", None))
            agent_call = AgentCall(
                self.recorder, agent_name=scope.current_agent_name(), model=getattr(agent, "_model", None),
                server=server_of(agent.client), question=last_user_text(messages),
                attributes={semconv.DATA_SOURCE_ID: data_source} if data_source else {},
                conversation_id=str(session_id) if session_id else None,
                instructions=getattr(agent, "_instructions", None),
                context=otel_context.set_value(scope.INSIDE_AGENT_CALL, True, context))
            return agent_call, AgentTurnEvents(agent_call)
        return start

