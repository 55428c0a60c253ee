"""The packages this instrumentation instruments, as ``opentelemetry-instrument`` checks for them.

The distribution's ``instruments-any`` extra (pyproject.toml) lists both: the auto-instrumentation
loader loads the two instrumentors when either client is installed, and the one whose client is
absent does nothing. Each instrumentor's ``instrumentation_dependencies()`` names its own client,
which a manual ``instrument()`` requires.
"""

LLAMA_STACK_CLIENT = "llama-stack-client >= 0.2.8"  # traceparent propagation works from 0.2.8
OGX_CLIENT = "ogx-client >= 1.0"

_instruments: tuple[str, ...] = ()
_instruments_any = (LLAMA_STACK_CLIENT, OGX_CLIENT)
