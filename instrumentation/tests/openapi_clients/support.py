"""What the OpenAPI-generated client's tests share: the client (ogx-client 1.2+), its canaries,
and the instrumentor on in-memory providers over the canned server.

ogx-client 1.2.0 has no ``Async<X>Api`` classes (its ``AsyncOgxClient`` hands the sync API classes
an async HTTP client, and every call fails): ``HAS_ASYNC_APIS`` says whether this release has them.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.metadata
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ogx_client
import pytest
from in_memory import InMemoryTraced
from ogx_client.async_stream import AsyncStream

from canned_llama_stack import CannedLlamaStack, rag_response, serving
from llama_stack_otel_instrumentation import OgxClientInstrumentor

VERSION = importlib.metadata.version("ogx-client")
HAS_ASYNC_APIS = hasattr(importlib.import_module("ogx_client.api.responses_api"), "AsyncResponsesApi")
agent_module: Any = importlib.import_module("ogx_client.lib.agents.agent")
needs_async_apis = pytest.mark.skipif(not HAS_ASYNC_APIS, reason=f"ogx-client {VERSION} has no Async<X>Api classes")

QUESTION = "QCANARY-7d31: how do I stop a node process?"
CHUNK_TEXT = "DCANARY-0b9e: send SIGTERM and close the server"
ANSWER = ["ACANARY-52c4: ", "send SIGTERM."]
INSTRUCTIONS = "ICANARY-e8f0: answer from the documents only"
CANARIES = ("QCANARY-7d31", "DCANARY-0b9e", "ACANARY-52c4", "ICANARY-e8f0")
FILE_SEARCH = {"type": "file_search", "vector_store_ids": ["vs_1"]}
MESSAGES = [{"role": "user", "content": QUESTION}]


def answer_async(t: Any, create: Callable[[Any], Awaitable[Any]], *, streamed: bool) -> Any:
    """What create(async client) gives the app: an answer, or a stream (the client's own
    ``AsyncStream``, checked) read whole into its chunks."""
    async def call() -> Any:
        answer = await create(t.async_client())
        if not streamed:
            return answer
        assert isinstance(answer, AsyncStream)
        return [chunk async for chunk in answer]

    return asyncio.run(call())


@contextmanager
def canned_server() -> Iterator[CannedLlamaStack]:
    with serving(CannedLlamaStack(answer=list(ANSWER), chunk_text=CHUNK_TEXT)) as canned:
        canned.response = rag_response(question=QUESTION, chunk_text=CHUNK_TEXT, answer=ANSWER)
        yield canned


class Traced(InMemoryTraced):
    """The ogx-client instrumentor on in-memory providers, and a canned server."""

    def __init__(self, canned: CannedLlamaStack) -> None:
        super().__init__(canned, OgxClientInstrumentor())

    def client(self) -> Any:
        return ogx_client.OgxClient(base_url=self.canned.url)

    def async_client(self) -> Any:
        return ogx_client.AsyncOgxClient(base_url=self.canned.url)
