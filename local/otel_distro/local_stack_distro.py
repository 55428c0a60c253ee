"""An OpenTelemetry distro for the Llama Stack and OGX servers of the local stack:
opentelemetry-distro's, plus FastAPI's server spans without the per-message ASGI
`http send` / `http receive` children.

Why a distro: opentelemetry-instrumentation-fastapi (0.66b2, the newest) has the
`exclude_spans` parameter but no environment variable for it (upstream issue
open-telemetry/opentelemetry-python-contrib#3992 is open), and `opentelemetry-instrument`
passes instrumentors no arguments of its own. `BaseDistro.load_instrumentor` is the hook the
auto-instrumentation offers for exactly this ("passing additional arguments"). A streamed
Responses-API answer otherwise records one `http send` span per SSE chunk.

How it is found: the `*.dist-info` folder beside this module registers it under the entry
point `opentelemetry_distro` as `local_stack`; importlib.metadata reads a dist-info in any
folder on sys.path, so putting this folder on the server's PYTHONPATH installs it without
touching the venv. local/stack.py does that and sets OTEL_PYTHON_DISTRO=local_stack
(a profile's `otel_distro`), so this distro is the one loaded whatever else is installed.
"""

from __future__ import annotations

from opentelemetry.distro import OpenTelemetryDistro

EXCLUDED_ASGI_SPANS = ["receive", "send"]


class LocalStackDistro(OpenTelemetryDistro):
    def load_instrumentor(self, entry_point, **kwargs):
        if entry_point.name == "fastapi":
            kwargs.setdefault("exclude_spans", EXCLUDED_ASGI_SPANS)
        super().load_instrumentor(entry_point, **kwargs)
