"""An OpenTelemetry distro for the OGX server: opentelemetry-distro's, plus FastAPI's
server spans without the per-message ASGI `http send` / `http receive` children.

Why a distro: opentelemetry-instrumentation-fastapi (0.66b2, the newest) has the
`exclude_spans` parameter but no environment variable for it (upstream issue
open-telemetry/opentelemetry-python-contrib#3992 is open), and `opentelemetry-instrument`
passes instrumentors no arguments. `BaseDistro.load_instrumentor` is the hook the
auto-instrumentation offers for exactly this ("passing additional arguments"); the server
is started with OTEL_PYTHON_DISTRO=ogx_local so that this distro is the one loaded.
A streamed Responses-API answer otherwise records one `http send` span per SSE chunk.
"""

from __future__ import annotations

from opentelemetry.distro import OpenTelemetryDistro

EXCLUDED_ASGI_SPANS = ["receive", "send"]


class OgxLocalDistro(OpenTelemetryDistro):
    def load_instrumentor(self, entry_point, **kwargs):
        if entry_point.name == "fastapi":
            kwargs.setdefault("exclude_spans", EXCLUDED_ASGI_SPANS)
        super().load_instrumentor(entry_point, **kwargs)
