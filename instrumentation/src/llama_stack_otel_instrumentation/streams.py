"""The app's stream, handed back with the instrumentation inside.

``TracedStream`` / ``TracedAsyncStream`` are opentelemetry-util-genai's ``SyncStreamWrapper`` /
``AsyncStreamWrapper`` (transparent proxies) around what the client returned: a stream of
server-sent events, or the generator of the Agent class's turn. The app iterates it as before
and gets the same objects — ``isinstance`` and attribute reads go to the stream itself; each
read runs with the call's span current (the HTTP calls a read makes nest under it), each chunk
is shown to the call's reader, and the span ends when the stream is consumed, closed, fails —
or is given up with a failure of the app's own, passed in by ``with stream:`` or a generator's
``throw()`` — or is garbage collected unfinished. Nothing the instrumentation does raises into
the app: only the stream's own exceptions reach it, as they did before.

Iterating the proxy iterates the stream as the stream itself would: each ``iter()`` asks the
stream for its iterator (ogx-client 1.2+'s ``Stream`` starts a fresh read every time, so a second
loop after a ``break`` fails as it does without the instrumentation; a Stainless stream resumes
its one iterator), and ``next()`` is the stream's own ``__next__`` where it has one. A stream's
``until_done()`` (ogx-client 1.2+'s) reads through the proxy too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.util.genai.stream import AsyncStreamWrapper, SyncStreamWrapper

from llama_stack_otel_instrumentation.calls import guarded


class StreamedCall(Protocol):
    def activate(self) -> AbstractContextManager[None]: ...

    def end(self, error: BaseException | None = None) -> None: ...


class _CallHooks:
    """The call's side of both proxies, the same for a sync and an async stream.

    The proxy's ``__init__``, the context each read runs in, the three hooks the stream wrapper
    calls (a chunk, the end, a failure) and the ``until_done`` lookup; first in each proxy's bases,
    so the stream wrapper's own methods are what ``super()`` reaches.
    """

    _self_call: StreamedCall
    _self_read_chunk: Callable[[Any], None]

    def __init__(self, stream: Any, call: StreamedCall, read_chunk: Callable[[Any], None]) -> None:
        # No invocation for the stream wrapper: it would time the first chunk of any kind; the call
        # times the first answer text itself.
        super().__init__(stream)  # type: ignore[call-arg]  # the stream wrapper's; mypy sees object's
        self._self_call = call
        self._self_read_chunk = read_chunk

    def _execution_context(self) -> AbstractContextManager[None]:
        return self._self_call.activate()

    if not TYPE_CHECKING:
        def __getattr__(self, name: str) -> Any:
            if name == "until_done" and hasattr(self.__wrapped__, name):
                return self._until_done
            return super().__getattr__(name)

    def _process_chunk(self, chunk: Any) -> None:
        guarded("reading a streamed event", self._self_read_chunk, chunk)

    def _on_stream_end(self) -> None:
        guarded("ending the span of a stream", self._self_call.end)

    def _on_stream_error(self, error: BaseException) -> None:
        guarded("ending the span of a failed stream", self._self_call.end, error)


class TracedStream(_CallHooks, SyncStreamWrapper[Any]):
    def __iter__(self) -> Any:
        inner = iter(self.__wrapped__)
        return self if inner is self.__wrapped__ else self._read(inner)

    def _read(self, inner: Iterator[Any]) -> Iterator[Any]:
        while True:
            try:
                chunk = self._advance(lambda: next(inner))
            except StopIteration:
                return
            yield chunk

    def __next__(self) -> Any:
        own = self.__wrapped__ if hasattr(type(self.__wrapped__), "__next__") else self._self_iterator
        return self._advance(lambda: next(own))

    def _until_done(self) -> None:
        for _ in self:
            pass


class TracedAsyncStream(_CallHooks, AsyncStreamWrapper[Any]):
    def __aiter__(self) -> Any:
        inner = aiter(self.__wrapped__)
        return self if inner is self.__wrapped__ else self._read(inner)

    async def _read(self, inner: AsyncIterator[Any]) -> AsyncIterator[Any]:
        while True:
            try:
                chunk = await self._advance(lambda: anext(inner))
            except StopAsyncIteration:
                return
            yield chunk

    async def __anext__(self) -> Any:
        own = self.__wrapped__ if hasattr(type(self.__wrapped__), "__anext__") else self._self_aiter
        return await self._advance(lambda: anext(own))

    async def _until_done(self) -> None:
        async for _ in self:
            pass
