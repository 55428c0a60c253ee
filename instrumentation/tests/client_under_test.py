"""Which client this venv holds (make test-instrumentation runs the tests once per release),
and the instrumentor on in-memory providers over a canned server: what the tests share.

The client is ogx-client if it is installed, else llama-stack-client; ``AGENTS_API`` says
whether it still has 0.2.x's agents API (its Agent runs on it) or the Responses API's Agent.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from typing import Any

import pytest
from in_memory import InMemoryTraced
from opentelemetry.sdk.trace import SpanProcessor

from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor, OgxClientInstrumentor

PACKAGE = "ogx_client" if importlib.util.find_spec("ogx_client") else "llama_stack_client"
DISTRIBUTION = PACKAGE.replace("_", "-")
VERSION = importlib.metadata.version(DISTRIBUTION)
client_package: Any = importlib.import_module(PACKAGE)
agent_module: Any = importlib.import_module(f"{PACKAGE}.lib.agents.agent")
base_client: Any = importlib.import_module(f"{PACKAGE}._base_client")
AGENTS_API = hasattr(importlib.import_module(f"{PACKAGE}.resources"), "agents")  # 0.2.x
Instrumentor: Any = OgxClientInstrumentor if PACKAGE == "ogx_client" else LlamaStackClientInstrumentor
SyncClient: Any = getattr(client_package, "OgxClient", None) or client_package.LlamaStackClient
AsyncClient: Any = getattr(client_package, "AsyncOgxClient", None) or client_package.AsyncLlamaStackClient
Stream: Any = client_package.Stream
AsyncStream: Any = client_package.AsyncStream

only_agents_api = pytest.mark.skipif(not AGENTS_API, reason=f"{DISTRIBUTION} {VERSION} has no agents API")
only_responses_agent = pytest.mark.skipif(AGENTS_API, reason=f"{DISTRIBUTION} {VERSION}'s Agent is the agents API's")


class Traced(InMemoryTraced):
    """The instrumentor for this venv's client on in-memory providers, and a canned server."""

    def __init__(self, canned: Any, *, processor: SpanProcessor | None = None) -> None:
        super().__init__(canned, Instrumentor(), processor=processor)

    def client(self) -> Any:
        return SyncClient(base_url=self.canned.url, max_retries=0)

    def async_client(self) -> Any:
        return AsyncClient(base_url=self.canned.url, max_retries=0)
