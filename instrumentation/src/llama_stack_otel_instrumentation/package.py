"""The package this instrumentation instruments, as ``opentelemetry-instrument`` checks for it."""

_instruments = ("llama-stack-client >= 0.2.12",)
