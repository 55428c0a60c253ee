"""What pyproject.toml cannot say: where the client instrumentor comes from.

The app depends on llama-stack-otel-instrumentation, a distribution of its own that lives beside
it in instrumentation/ and is not on PyPI. A dependency names a local folder only by an absolute
``file:`` URL, which is known only when the package is built from the clone: this file gives it,
so that ``pip install .`` installs both. Everything else is in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup

INSTRUMENTATION = (Path(__file__).resolve().parent / "instrumentation").as_uri()

setup(install_requires=[
    "llama-stack-client>=0.2.12",
    "fire",  # llama-stack-client 0.2.12 imports it without declaring it
    "Markdown>=3.4",
    "opentelemetry-sdk>=1.45",
    "opentelemetry-exporter-otlp-proto-http>=1.45",
    "opentelemetry-instrumentation-httpx>=0.66b0",
    f"llama-stack-otel-instrumentation @ {INSTRUMENTATION}",
])
