"""OpenTelemetry instrumentation for llama-stack-client: GenAI spans and metrics for any app.

    from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor

    LlamaStackClientInstrumentor().instrument()  # after setting up the tracer provider

or, with no code change, ``opentelemetry-instrument python my_app.py`` once this package is
installed (``pip install ./instrumentation``): it registers under the ``opentelemetry_instrumentor`` entry point.

What an app does through the client becomes spans in the OpenTelemetry GenAI conventions, with
OpenInference span kinds so that Phoenix shows them as such (hooks.py lists the calls):

    create_agent <name>     CLIENT, AGENT       a 0.2.x agent: model, tool groups' vector DB, agent id
    create_session <name>   CLIENT, CHAIN       its session: gen_ai.conversation.id
    invoke_agent <name>     CLIENT, AGENT       a turn (0.2.x) or a Responses API call (0.4+, OGX):
                                                time to first chunk, finish reason, usage when reported
    execute_tool <tool>     INTERNAL, RETRIEVER or TOOL   each tool the server ran in it

with the metrics ``gen_ai.client.operation.duration``, ``gen_ai.client.operation.time_to_first_chunk``
and ``gen_ai.client.token.usage`` (and util-genai's ``gen_ai.execute_tool.duration``).

Private by default: sizes, counts and ids only. Messages, instructions, tool arguments and
results go in only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for span
content (true, SPAN_ONLY or SPAN_AND_EVENT; see content.py), or when
``instrument(capture_content=True)`` says so. A streamed answer's span ends when the stream is
consumed, closed or fails; the app gets the same objects as without the instrumentation, and a
failure inside the instrumentation is logged, never raised into the app's call.

``agent_name("rag-agent")`` names the agent of the calls made inside it (a Responses API call
names none). Not covered: the async client and AsyncAgent, tools the Agent class runs client-side.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from llama_stack_otel_instrumentation.content import capture_content_from_env
from llama_stack_otel_instrumentation.package import _instruments
from llama_stack_otel_instrumentation.scope import agent_name

__all__ = ["LlamaStackClientInstrumentor", "agent_name"]

_log = logging.getLogger(__name__)
CLIENT_MODULE = "llama_stack_client._base_client"
AGENT_MODULE = "llama_stack_client.lib.agents.agent"


class LlamaStackClientInstrumentor(BaseInstrumentor):
    """Traces what an app does through llama-stack-client (sync client and Agent class)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from llama_stack_otel_instrumentation.calls import Recorder
        from llama_stack_otel_instrumentation.hooks import Hooks

        capture = kwargs.get("capture_content")
        hooks = Hooks(Recorder(tracer_provider=kwargs.get("tracer_provider"),
                               meter_provider=kwargs.get("meter_provider"),
                               capture=capture_content_from_env() if capture is None else bool(capture)))
        wrap_function_wrapper(CLIENT_MODULE, "SyncAPIClient.request", hooks.request)
        if _agent_class() is not None:
            wrap_function_wrapper(AGENT_MODULE, "Agent.initialize", hooks.agent_initialize)
            wrap_function_wrapper(AGENT_MODULE, "Agent.create_turn", hooks.agent_create_turn)

    def _uninstrument(self, **kwargs: Any) -> None:
        from llama_stack_client._base_client import SyncAPIClient

        unwrap(SyncAPIClient, "request")
        agent = _agent_class()
        if agent is not None:
            unwrap(agent, "initialize")
            unwrap(agent, "create_turn")


def _agent_class() -> Any:
    """The client's Agent class; newer clients may not ship it."""
    try:
        from llama_stack_client.lib.agents.agent import Agent
    except ImportError:
        return None
    return Agent
