"""OpenTelemetry instrumentation for Llama Stack's Python clients: GenAI spans and metrics for any app.

    from llama_stack_otel_instrumentation import LlamaStackClientInstrumentor

    LlamaStackClientInstrumentor().instrument()  # after setting up the tracer provider

(``OgxClientInstrumentor`` for ogx-client), or, with no code change, ``opentelemetry-instrument
python my_app.py`` once this package is installed: it registers both under the
``opentelemetry_instrumentor`` entry point, and the one whose client is not installed does
nothing.

What an app does through the client — sync or async client, the library's Agent or AsyncAgent —
becomes spans in the OpenTelemetry GenAI conventions, with OpenInference span kinds so that
Phoenix shows them as such (operations.py lists them): ``invoke_agent`` for a Responses API
call or an agent's turn (with ``execute_tool`` for each tool run in it), ``chat <model>``,
``embeddings <model>``, ``retrieval <store>``, ``execute_tool <tool>``, ``create_agent``, and
spans for session and conversation creation; with the metrics ``gen_ai.client.operation.duration``,
``gen_ai.client.operation.time_to_first_chunk`` and ``gen_ai.client.token.usage``.

Private by default: sizes, counts and ids only. Messages, instructions, tool arguments and
results go in only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for span
content (true, SPAN_ONLY or SPAN_AND_EVENT; content.py), or when ``instrument(capture_content=True)``
says so.

It never harms the app: ``instrument()`` raises nothing on any client version and leaves nothing
half-applied (adapters/); with it on, every call and stream gives the app what it gives without
it — the same objects, exceptions, events and laziness; a failure inside the instrumentation is
logged, never raised into the app's call.

``agent_name("rag-agent")`` names the agent of the calls made inside it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Collection
from types import ModuleType
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from llama_stack_otel_instrumentation.package import LLAMA_STACK_CLIENT, OGX_CLIENT
from llama_stack_otel_instrumentation.scope import agent_name
from llama_stack_otel_instrumentation.version import __version__

__all__ = ["LlamaStackClientInstrumentor", "OgxClientInstrumentor", "__version__", "agent_name"]

_log = logging.getLogger(__name__)


def _adapters() -> list[ModuleType]:
    """The adapters, in the order they are tried (the first that applies is used)."""
    from llama_stack_otel_instrumentation.adapters import openapi, stainless

    return [stainless, openapi]


class _ClientInstrumentor(BaseInstrumentor):
    """Traces one client package; the subclasses name it. Everything else is shared."""

    package = ""  # the client's import name
    requirement = ""  # what instrumentation_dependencies() says it instruments

    def instrumentation_dependencies(self) -> Collection[str]:
        return (self.requirement,)

    def instrument(self, **kwargs: Any) -> None:
        """BaseInstrumentor's, but an absent client is one quiet line, not an error: both
        instrumentors load wherever one of the clients is installed."""
        try:
            installed = importlib.util.find_spec(self.package) is not None
        except (ImportError, ValueError):
            installed = False
        if not installed:
            _log.debug("%s is not installed; %s does nothing", self.package, type(self).__name__)
            return None
        try:
            return super().instrument(**kwargs)
        except Exception:  # noqa: BLE001 - an app is never failed by its telemetry
            _log.warning("%s: instrumenting %s failed; it is left uninstrumented", type(self).__name__,
                         self.package, exc_info=True)
            return None

    def _instrument(self, **kwargs: Any) -> None:
        from llama_stack_otel_instrumentation import adapters
        from llama_stack_otel_instrumentation.calls import Recorder
        from llama_stack_otel_instrumentation.content import capture_content_from_env
        from llama_stack_otel_instrumentation.operations import Operations

        self._applied: list[adapters.Applied] = []
        adapter = next((module for module in _adapters() if module.applies(self.package)), None)
        if adapter is None:
            _log.info("%s: no adapter for this version of %s yet; not traced", type(self).__name__, self.package)
            return
        capture = kwargs.get("capture_content")
        recorder = Recorder(tracer_provider=kwargs.get("tracer_provider"), meter_provider=kwargs.get("meter_provider"),
                            capture=capture_content_from_env() if capture is None else bool(capture))
        self._applied = adapters.apply(adapter.hooks(self.package, Operations(recorder)), client=self.package)

    def _uninstrument(self, **kwargs: Any) -> None:
        from llama_stack_otel_instrumentation import adapters

        adapters.remove(getattr(self, "_applied", []))
        self._applied = []


class LlamaStackClientInstrumentor(_ClientInstrumentor):
    """Traces what an app does through llama-stack-client (0.2.8+)."""

    package = "llama_stack_client"
    requirement = LLAMA_STACK_CLIENT


class OgxClientInstrumentor(_ClientInstrumentor):
    """Traces what an app does through ogx-client (1.x: 1.0–1.1 are Stainless-generated, 1.2+ OpenAPI-generated)."""

    package = "ogx_client"
    requirement = OGX_CLIENT
