"""The telemetry of one traced call: its span, its metrics, and what content they may hold.

Each operation is one of opentelemetry-util-genai's invocations where it has the type — which
gives the CLIENT span and the GenAI client metrics (``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage``, ``gen_ai.client.operation.time_to_first_chunk``):

    AgentCall       invoke_agent <name>   a Responses API call, or an agent's turn (any generation)
    ModelCall       chat <model>          a chat completion
    EmbeddingCall   embeddings <model>    an embeddings call
    RetrievalCall   retrieval <store>     a vector store (0.2.x: vector DB, RAG tool) search
    ToolCall        execute_tool <tool>   a tool the app asks the server to run (0.2.x tool runtime)

and each tool run inside a turn is util-genai's tool invocation, under its ``invoke_agent``.
What has no invocation type — creating an agent, a 0.2.x session, a conversation — is a
``SpanCall``: a plain CLIENT span (``create_agent`` with its duration metric; the others
without a GenAI operation name, none in the registry fits them).

Every call has the same life: started before the client's call; ``activate()`` / ``suspend()``
around reads of a stream it is handed back in; ``end(error)`` once, when the answer is read,
the stream is over, or the call failed. What util-genai leaves open is done here: time to first
chunk of an agent means its first answer *text* (a turn's first events are bookkeeping);
failures are recorded without the server's text unless content is opted in (failures.py);
content attributes have the conventions' JSON form and are set only with the opt-in. Every
method is called through ``guarded`` by the layers above: a failure here is logged, never
raised into the app.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind
from opentelemetry.util.genai.handler import TelemetryHandler
from opentelemetry.util.genai.types import Error

from llama_stack_otel_instrumentation import scope, semconv
from llama_stack_otel_instrumentation.failures import record_failure, safe_error_message
from llama_stack_otel_instrumentation.payloads import as_json, text_parts
from llama_stack_otel_instrumentation.version import __version__

SCOPE = "llama_stack_otel_instrumentation"
_log = logging.getLogger(__name__)
_T = TypeVar("_T")
KNOWN_AGENTS = 256  # agent ids remembered, for the turns of agents this process created


def guarded(what: str, action: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
    """Run a piece of instrumentation; a failure in it is logged (debug) and forgotten."""
    try:
        return action(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the app's call must not fail because its telemetry did
        _log.debug("Llama Stack client instrumentation: %s failed", what, exc_info=True)
        return None


@dataclass(frozen=True)
class AgentInfo:
    """What an agent's creation told us, for its sessions and turns."""

    name: str | None
    model: str | None
    data_source_id: str | None


@dataclass(frozen=True)
class Server:
    address: str | None
    port: int | None


class Recorder:
    """The instrumentor's handle on the telemetry: tracer, util-genai handler, instruments, and
    the agents created so far."""

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None, capture: bool) -> None:
        # util-genai reads the content variable too, and calls "true" invalid; content is set
        # here, by capture, so its reading does not matter: keep its warning out of the app's log.
        genai_utils_log = logging.getLogger("opentelemetry.util.genai.utils")
        level = genai_utils_log.level
        genai_utils_log.setLevel(logging.ERROR)
        try:
            self.handler = TelemetryHandler(tracer_provider=tracer_provider, meter_provider=meter_provider,
                                            instrumentation_scope_name=SCOPE,
                                            instrumentation_scope_version=__version__)
        finally:
            genai_utils_log.setLevel(level)
        self.tracer = trace.get_tracer(SCOPE, __version__, tracer_provider)
        meter = metrics.get_meter(SCOPE, __version__, meter_provider)
        # The histogram util-genai records its invocations into (same name, unit and buckets).
        self.operation_duration = meter.create_histogram(
            semconv.OPERATION_DURATION, unit="s", description="Duration of GenAI client operation",
            explicit_bucket_boundaries_advisory=semconv.DURATION_BUCKETS_S)
        self.capture = capture
        self.agents: OrderedDict[str, AgentInfo] = OrderedDict()

    def remember(self, agent_id: str, info: AgentInfo) -> None:
        self.agents[agent_id] = info
        while len(self.agents) > KNOWN_AGENTS:
            self.agents.popitem(last=False)

    def content(self, attributes: dict[str, Any], name: str, value: Any) -> None:
        """A content attribute — only when the user opted in."""
        if self.capture:
            attributes[name] = as_json(value)

    def fail(self, invocation: Any, error: BaseException) -> None:
        """End a util-genai invocation with the app's failure, in words safe for the trace."""
        try:
            record_failure(invocation.span, error, capture_content=self.capture)
        finally:  # the span ends whatever the recording did
            invocation.fail(Error(message=safe_error_message(error, capture_content=self.capture),
                                  type=type(error).__qualname__, exception=error))


class Call:
    """A started util-genai invocation and what its answer adds to it before it ends."""

    def __init__(self, recorder: Recorder, invocation: Any) -> None:
        self.recorder = recorder
        self.invocation = invocation
        self.attributes: dict[str, Any] = invocation.attributes  # set on the span when it ends
        self.server_error: str | None = None
        self.ended = False

    def activate(self) -> AbstractContextManager[None]:
        """The span current inside the block (a read of the stream, where the HTTP calls the
        client makes for it nest under it)."""
        return self.invocation.activate()

    def suspend(self) -> None:
        """Hand a stream back to the app: its own work does not nest under this span."""
        self.invocation.suspend()

    def failed_on_server(self, message: str) -> None:
        """The server reported a failure in its answer; the span says so when it ends, unless the
        app ends it with a failure of its own (the one it then raises)."""
        self.server_error = message

    def end(self, error: BaseException | None = None) -> None:
        """End the span, once, with what the answer said and the failure, if any: the app's or its
        reading's (error), or the server's."""
        if self.ended:
            return
        self.ended = True
        try:
            self.before_end(error)
        finally:  # whatever failed above, the span ends and the context is given back
            if error is not None:
                self.recorder.fail(self.invocation, error)
            elif self.server_error is not None:
                message = self.server_error if self.recorder.capture else "the server reported a failure"
                self.invocation.fail(Error(message=message, type=semconv.STREAM_ERROR))
            else:
                self.invocation.stop()

    def before_end(self, error: BaseException | None) -> None:
        """What a kind of call sets on its span at the end."""


class AgentCall(Call):
    """One ``invoke_agent``, while the server answers: util-genai's remote-agent invocation plus
    the answer text, the tools run in it, usage and the finish reason."""

    def __init__(self, recorder: Recorder, *, agent_name: str | None, model: str | None, server: Server,
                 question: str, attributes: Mapping[str, Any], conversation_id: str | None = None,
                 instructions: str | None = None, context: otel_context.Context | None = None) -> None:
        super().__init__(recorder, recorder.handler.invoke_remote_agent(
            semconv.PROVIDER, request_model=model, server_address=server.address, server_port=server.port,
            agent_name=agent_name, conversation_id=conversation_id, context=context))
        self.attributes.update({semconv.OPENINFERENCE_SPAN_KIND: semconv.KIND_AGENT,
                                semconv.QUESTION_CHARS: len(question), **attributes})
        recorder.content(self.attributes, semconv.INPUT_MESSAGES, [{"role": "user", "parts": text_parts(question)}])
        recorder.content(self.attributes, semconv.INPUT_VALUE, question)
        if instructions:
            recorder.content(self.attributes, semconv.SYSTEM_INSTRUCTIONS, text_parts(instructions))
        self.data_source_id = attributes.get(semconv.DATA_SOURCE_ID)
        self.started = time.perf_counter()
        self.text: list[str] = []
        self.tools: dict[str, Any] = {}  # open execute_tool invocations, by call id
        self.client_tools: list[str] = []  # the open ones the Agent runs in this process, by call id
        self.usage: tuple[int, int] | None = None

    def activate(self) -> AbstractContextManager[None]:
        """The span current inside the block (a read of the stream). While the Agent runs a
        client-side tool, that is the tool's execute_tool, with the app's calls traced again: the
        tool is the app's code, and what it does through the client (and its own spans) belongs
        under the tool, not hidden in the turn. Otherwise the invoke_agent span."""
        if self.client_tools and self.client_tools[-1] in self.tools:
            tool_context = self.tools[self.client_tools[-1]].context
            return _attached(otel_context.set_value(scope.INSIDE_AGENT_CALL, False, tool_context))
        return self.invocation.activate()

    # --- What the answer says, as it arrives

    def text_arrived(self, text: str) -> None:
        if not text:
            return
        if not self.text:
            self.attributes[semconv.TIME_TO_FIRST_CHUNK] = time.perf_counter() - self.started
        self.text.append(text)
        self.invocation.record_stream_chunk()  # the time to first chunk metric at the first

    def answered(self, text: str) -> None:
        """The whole answer at once (a call that was not streamed)."""
        self.text = [text]

    def tool_started(self, call_id: str, *, tool: str, tool_type: str | None) -> None:
        if call_id in self.tools:
            return
        invocation = self.recorder.handler.tool(tool, tool_type=tool_type, context=self.invocation.context,
                                                _attach_to_context=False)
        invocation.tool_call_id = call_id
        kind = semconv.KIND_RETRIEVER if tool_type == "datastore" else semconv.KIND_TOOL
        invocation.attributes[semconv.OPENINFERENCE_SPAN_KIND] = kind
        self.tools[call_id] = invocation
        if tool_type == "function":
            self.client_tools.append(call_id)

    def tool_done(self, call_id: str, *, tool: str, tool_type: str | None, attributes: Mapping[str, Any],
                  arguments: Any, result: Any) -> None:
        """The result of one tool call: its execute_tool span ends (it starts now if nobody
        announced the call)."""
        self.tool_started(call_id, tool=tool, tool_type=tool_type)
        invocation = self.tools.pop(call_id)
        if call_id in self.client_tools:
            self.client_tools.remove(call_id)
        invocation.attributes.update(attributes)
        if arguments is not None:
            self.recorder.content(invocation.attributes, semconv.TOOL_CALL_ARGUMENTS, arguments)
        self.recorder.content(invocation.attributes, semconv.TOOL_CALL_RESULT, result)
        invocation.stop()

    def add_usage(self, input_tokens: int, output_tokens: int) -> None:
        before = self.usage or (0, 0)
        self.usage = (before[0] + input_tokens, before[1] + output_tokens)

    def finish_reason(self, reason: str) -> None:
        self.invocation.finish_reasons = [reason]

    def response_id(self, response_id: str) -> None:
        self.attributes[semconv.RESPONSE_ID] = response_id

    # --- The end

    def before_end(self, error: BaseException | None) -> None:
        """Answer size (and text, with the opt-in), usage; tools still open end with the call,
        failed if it failed."""
        for invocation in self.tools.values():
            if error is not None:
                guarded("ending a failed tool span", self.recorder.fail, invocation, error)
            else:
                guarded("ending a tool span", invocation.stop)
        self.client_tools.clear()
        answer = "".join(self.text).strip()
        self.attributes[semconv.ANSWER_CHARS] = len(answer)
        if self.text:
            self.recorder.content(self.attributes, semconv.OUTPUT_MESSAGES,
                                  [{"role": "assistant", "parts": text_parts(answer)}])
            self.recorder.content(self.attributes, semconv.OUTPUT_VALUE, answer)
        if self.usage is not None:
            self.invocation.input_tokens, self.invocation.output_tokens = self.usage


class ModelCall(Call):
    """One ``chat <model>``: util-genai's inference invocation, fed as the answer streams."""

    def __init__(self, recorder: Recorder, *, model: str | None, server: Server, messages: Any,
                 stream: bool, context: otel_context.Context | None = None) -> None:
        super().__init__(recorder, recorder.handler.inference(
            semconv.PROVIDER, request_model=model, server_address=server.address, server_port=server.port,
            operation_name=semconv.CHAT, context=context))
        self.invocation.request_stream = stream
        self.attributes[semconv.OPENINFERENCE_SPAN_KIND] = semconv.KIND_LLM
        recorder.content(self.attributes, semconv.INPUT_MESSAGES, messages)
        recorder.content(self.attributes, semconv.INPUT_VALUE, messages)
        self.text: list[str] = []
        self.finish_reasons: list[str] = []

    def text_arrived(self, text: str) -> None:
        if text:
            self.text.append(text)
            self.invocation.record_stream_chunk()  # time to first chunk: span attribute and metric

    def answered(self, text: str) -> None:
        self.text = [text]

    def finished(self, reason: str) -> None:
        self.finish_reasons.append(reason)

    def usage(self, input_tokens: int | None, output_tokens: int | None) -> None:
        self.invocation.input_tokens, self.invocation.output_tokens = input_tokens, output_tokens

    def response(self, *, model: str | None = None, response_id: str | None = None) -> None:
        if model:
            self.invocation.response_model_name = model
        if response_id:
            self.invocation.response_id = response_id

    def before_end(self, error: BaseException | None) -> None:
        if self.finish_reasons:
            self.invocation.finish_reasons = self.finish_reasons
        answer = "".join(self.text)
        self.attributes[semconv.ANSWER_CHARS] = len(answer)
        if self.text:
            self.recorder.content(self.attributes, semconv.OUTPUT_MESSAGES,
                                  [{"role": "assistant", "parts": text_parts(answer)}])
            self.recorder.content(self.attributes, semconv.OUTPUT_VALUE, answer)


class EmbeddingCall(Call):
    """One ``embeddings <model>``: util-genai's embedding invocation."""

    def __init__(self, recorder: Recorder, *, model: str | None, server: Server,
                 context: otel_context.Context | None = None) -> None:
        super().__init__(recorder, recorder.handler.embedding(
            semconv.PROVIDER, request_model=model, server_address=server.address, server_port=server.port,
            context=context))
        self.attributes[semconv.OPENINFERENCE_SPAN_KIND] = semconv.KIND_EMBEDDING

    def answered(self, *, dimensions: int | None, input_tokens: int | None, model: str | None) -> None:
        if dimensions:
            self.invocation.dimension_count = dimensions
        if input_tokens is not None:
            self.invocation.input_tokens = input_tokens
        if model:
            self.invocation.response_model_name = model


class RetrievalCall(Call):
    """One ``retrieval <store>``: util-genai's retrieval invocation, with what was found."""

    def __init__(self, recorder: Recorder, *, data_source_id: str | None, query: Any, server: Server,
                 context: otel_context.Context | None = None) -> None:
        super().__init__(recorder, recorder.handler.retrieval(
            data_source_id=data_source_id, provider=semconv.PROVIDER, server_address=server.address,
            server_port=server.port, context=context))
        self.attributes[semconv.OPENINFERENCE_SPAN_KIND] = semconv.KIND_RETRIEVER
        if query is not None:
            recorder.content(self.attributes, semconv.RETRIEVAL_QUERY_TEXT, query)
            recorder.content(self.attributes, semconv.INPUT_VALUE, query)

    def found(self, texts: list[str], *, count: int | None = None) -> None:
        """The texts found; count: how many chunks they are, when not one text each."""
        self.attributes[semconv.RETRIEVED_CHUNKS] = len(texts) if count is None else count
        self.attributes[semconv.RETRIEVED_CHARS] = sum(map(len, texts))
        self.recorder.content(self.attributes, semconv.OUTPUT_VALUE, texts)


class ToolCall(Call):
    """One ``execute_tool <tool>`` the app asked the server to run: util-genai's tool invocation."""

    def __init__(self, recorder: Recorder, *, tool: str, tool_type: str, arguments: Any,
                 context: otel_context.Context | None = None) -> None:
        super().__init__(recorder, recorder.handler.tool(tool, tool_type=tool_type, context=context))
        kind = semconv.KIND_RETRIEVER if tool_type == "datastore" else semconv.KIND_TOOL
        self.attributes[semconv.OPENINFERENCE_SPAN_KIND] = kind
        if arguments is not None:
            recorder.content(self.attributes, semconv.TOOL_CALL_ARGUMENTS, arguments)

    def answered(self, result: Any) -> None:
        self.recorder.content(self.attributes, semconv.TOOL_CALL_RESULT, result)


class SpanCall:
    """A plain CLIENT span for what util-genai has no invocation for; current from its start
    to its end (or suspend), like the invocations. ``learnt`` gets what the answer says."""

    def __init__(self, recorder: Recorder, name: str, *, attributes: Mapping[str, Any],
                 context: otel_context.Context | None = None, record_duration: bool = False) -> None:
        self.recorder = recorder
        self.attributes = dict(attributes)
        self.span = recorder.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=self.attributes,
                                               context=context)
        self.context = trace.set_span_in_context(self.span, context)
        self.token: object | None = otel_context.attach(self.context)
        self.record_duration = record_duration
        self.started = time.perf_counter()
        self.learnt: dict[str, Any] = {}
        self.ended = False

    @contextmanager
    def activate(self) -> Iterator[None]:
        token = otel_context.attach(self.context)
        try:
            yield
        finally:
            otel_context.detach(token)

    def suspend(self) -> None:
        token, self.token = self.token, None
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]

    def end(self, error: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        self.suspend()
        try:
            self.span.set_attributes(self.learnt)
            if error is not None:
                record_failure(self.span, error, capture_content=self.recorder.capture)
        finally:
            self.span.end()
            if self.record_duration:
                point = {key: self.attributes[key] for key in (semconv.OPERATION_NAME, semconv.PROVIDER_NAME,
                                                               semconv.REQUEST_MODEL) if key in self.attributes}
                if error is not None:
                    point[semconv.ERROR_TYPE] = type(error).__qualname__
                self.recorder.operation_duration.record(time.perf_counter() - self.started, point)


@contextmanager
def _attached(context: otel_context.Context) -> Iterator[None]:
    """context current inside the block."""
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)
