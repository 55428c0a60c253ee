"""The app's stream, handed back with the instrumentation inside.

``TracedStream`` is opentelemetry-util-genai's ``SyncStreamWrapper`` (a transparent proxy) around
what the client returned: a ``Stream`` of server-sent events, or the generator of the Agent
class's turn. The app iterates it as before and gets the same objects; each read runs with the
``invoke_agent`` span current (the HTTP calls a read makes nest under it), each chunk is shown to
the call's event reader, and the span ends when the stream is consumed, closed, fails — or is
given up with a failure of the app's own, passed in by ``with stream:`` or a generator's
``throw()`` — or is garbage collected unfinished. Nothing the instrumentation does raises into
the app: only the stream's own exceptions reach it, as they did before.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry.util.genai.stream import SyncStreamWrapper

from llama_stack_otel_instrumentation.calls import AgentCall, guarded


class TracedStream(SyncStreamWrapper[Any]):
    def __init__(self, stream: Any, call: AgentCall, read_event: Callable[[Any], None]) -> None:
        # No invocation for the base class: it would time the first chunk of any kind; the call
        # times the first answer text itself.
        super().__init__(stream)
        self._self_call = call
        self._self_read_event = read_event

    def _execution_context(self) -> AbstractContextManager[None]:
        return self._self_call.activate()

    def _process_chunk(self, chunk: Any) -> None:
        guarded("reading a streamed event", self._self_read_event, chunk)

    def _on_stream_end(self) -> None:
        guarded("ending the span of a stream", self._self_call.end)

    def _on_stream_error(self, error: BaseException) -> None:
        guarded("ending the span of a failed stream", self._self_call.end, error)
