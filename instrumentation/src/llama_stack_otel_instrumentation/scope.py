"""What an app tells the instrumentor through the context, and what its two layers tell each other.

Only the OpenTelemetry context API is imported here: the script's backends use ``agent_name``
whether the instrumentor is on or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context

_AGENT_NAME = context.create_key("llama_stack_otel.agent_name")
# Set while the Agent class's own call is traced: the HTTP calls it makes are not traced twice.
INSIDE_AGENT_CALL = context.create_key("llama_stack_otel.inside_agent_call")


@contextmanager
def agent_name(name: str) -> Iterator[None]:
    """Name the agent that the calls made in this block act for: their spans become
    ``create_agent <name>``, ``invoke_agent <name>``. A Responses API call names no agent of its
    own; on 0.2.x an agent whose config has a ``name`` keeps that one."""
    token = context.attach(context.set_value(_AGENT_NAME, name))
    try:
        yield
    finally:
        context.detach(token)


def current_agent_name() -> str | None:
    value = context.get_value(_AGENT_NAME)
    return value if isinstance(value, str) else None


def inside_agent_call() -> bool:
    return bool(context.get_value(INSIDE_AGENT_CALL))
