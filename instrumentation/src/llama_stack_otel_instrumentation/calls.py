"""The telemetry of one traced call: spans, metrics, and what content they may hold.

``invoke_agent`` — a turn of a 0.2.x agent, or a Responses API call on 0.4+ / OGX — is
opentelemetry-util-genai's remote-agent invocation (CLIENT span, ``gen_ai.client.operation.duration``,
``gen_ai.client.token.usage``, ``gen_ai.client.operation.time_to_first_chunk``), fed by
``AgentCall`` as the answer streams; each tool the server ran is util-genai's tool invocation
(``execute_tool <tool>``), from when the server announced it to when it reported the result.
``create_agent`` and ``create_session`` have no invocation type there: ``Recorder.operation``
makes their spans, and ``create_agent``'s duration goes to the same histogram.

What util-genai leaves open is done the project's way: time to first chunk means the first
answer *text* (a turn's first events are bookkeeping); failures are recorded without the
server's text unless content is opted in (telemetry.record_failure); content attributes have
the conventions' JSON form and are set only with the opt-in (``capture``), which reads the
variable as OpenTelemetry's GenAI instrumentations do. Every method is called through
``guarded`` by the layers above: a failure here is logged, never raised into the app.
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
from opentelemetry.trace import Span, SpanKind
from opentelemetry.util.genai.handler import TelemetryHandler
from opentelemetry.util.genai.types import Error

from llama_stack_otel_instrumentation import semconv
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
        _log.debug("llama-stack-client instrumentation: %s failed", what, exc_info=True)
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
        # The histogram util-genai records invoke_agent into (same name, unit and buckets).
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Duration of GenAI client operation",
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

    @contextmanager
    def operation(self, operation: str, *, agent_name: str | None, attributes: Mapping[str, Any],
                  kind: str, context: otel_context.Context | None = None,
                  record_duration: bool = False) -> Iterator[dict[str, Any]]:
        """A CLIENT span ``<operation> <agent name>`` around the block, current inside it; the block
        fills the dict with the attributes learnt from the answer. It ends on every way out; a
        failure inside is recorded on it and raised."""
        started = time.perf_counter()
        span_attributes = {semconv.OPERATION_NAME: operation, semconv.OPENINFERENCE_SPAN_KIND: kind,
                           **({semconv.AGENT_NAME: agent_name} if agent_name else {}), **attributes}
        span = guarded("starting a span", self.tracer.start_span,
                       f"{operation} {agent_name}" if agent_name else operation, kind=SpanKind.CLIENT,
                       attributes=span_attributes, context=context)
        learnt: dict[str, Any] = {}
        token = otel_context.attach(trace.set_span_in_context(span, context)) if span is not None else None
        error: BaseException | None = None
        try:
            yield learnt
        except BaseException as exc:
            error = exc
            raise
        finally:
            if token is not None:
                otel_context.detach(token)
            if span is not None:
                guarded("ending a span", self._end_operation, span, learnt, error)
            if record_duration:
                point = {key: span_attributes[key] for key in (semconv.OPERATION_NAME, semconv.PROVIDER_NAME,
                                                               semconv.REQUEST_MODEL) if key in span_attributes}
                if error is not None:
                    point[semconv.ERROR_TYPE] = type(error).__qualname__
                guarded("recording a duration", self.operation_duration.record, time.perf_counter() - started, point)

    def _end_operation(self, span: Span, learnt: Mapping[str, Any], error: BaseException | None) -> None:
        span.set_attributes(learnt)
        if error is not None:
            record_failure(span, error, capture_content=self.capture)
        span.end()


class AgentCall:
    """One ``invoke_agent``, while the server answers: util-genai's remote-agent invocation
    plus the answer text, the tools the server runs, usage and the finish reason."""

    def __init__(self, recorder: Recorder, *, agent_name: str | None, model: str | None, server: Server,
                 question: str, attributes: Mapping[str, Any], conversation_id: str | None = None,
                 instructions: str | None = None, context: otel_context.Context | None = None) -> None:
        self.recorder = recorder
        self.invocation = recorder.handler.invoke_remote_agent(
            semconv.PROVIDER, request_model=model, server_address=server.address, server_port=server.port,
            agent_name=agent_name, conversation_id=conversation_id, context=context)
        self.attributes = self.invocation.attributes  # set on the span when it ends
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
        self.usage: tuple[int, int] | None = None
        self.server_error: str | None = None
        self.ended = False

    def activate(self) -> AbstractContextManager[None]:
        """The invoke_agent span current inside the block (a read of the stream, where the HTTP
        calls the client makes for it nest under it)."""
        return self.invocation.activate()

    def suspend(self) -> None:
        """Hand the stream back to the app: its own work does not nest under this span."""
        self.invocation.suspend()

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

    def tool_done(self, call_id: str, *, tool: str, tool_type: str | None, attributes: Mapping[str, Any],
                  arguments: Any, result: Any) -> None:
        """The server's result of one tool call: its execute_tool span ends (it starts now if
        the server never announced the call)."""
        self.tool_started(call_id, tool=tool, tool_type=tool_type)
        invocation = self.tools.pop(call_id)
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

    def failed_on_server(self, message: str) -> None:
        """The server reported a failure in the stream; the span says so when it ends, unless the
        app ends it with a failure of its own (the one it then raises)."""
        self.server_error = message

    # --- The end

    def end(self, error: BaseException | None = None) -> None:
        """End the span, once: answer size (and text, with the opt-in), usage, and the failure —
        the app's or its reading's (error), or the server's."""
        if self.ended:
            return
        self.ended = True
        try:
            for invocation in self.tools.values():  # announced, never reported: they end with the call
                guarded("ending a tool span", invocation.stop)
            answer = "".join(self.text).strip()
            self.attributes[semconv.ANSWER_CHARS] = len(answer)
            if self.text:
                self.recorder.content(self.attributes, semconv.OUTPUT_MESSAGES,
                                      [{"role": "assistant", "parts": text_parts(answer)}])
                self.recorder.content(self.attributes, semconv.OUTPUT_VALUE, answer)
            if self.usage is not None:
                self.invocation.input_tokens, self.invocation.output_tokens = self.usage
            if error is not None:
                record_failure(self.invocation.span, error, capture_content=self.recorder.capture)
        finally:  # whatever failed above, the span ends and the context is given back
            self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        if error is not None:
            self.invocation.fail(Error(message=safe_error_message(error, capture_content=self.recorder.capture),
                                       type=type(error).__qualname__, exception=error))
        elif self.server_error is not None:
            message = self.server_error if self.recorder.capture else "the server reported a failure in the stream"
            self.invocation.fail(Error(message=message, type=semconv.STREAM_ERROR))
        else:
            self.invocation.stop()
