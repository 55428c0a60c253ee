"""Handles on real Llama Stack servers for the tests.

Most tests use the local stack's server (the `local_stack` fixture, started by local/stack.py
with an LLM behind it, through `stack_on_free_ports`); `start_server` runs one more, through
the same local/stack.py code, with a run config of a test's own. The server runs from its own
venv (LLAMA_STACK_PYTHON points at its python; `make test` sets it), on a free loopback port,
in its own process group, its telemetry exporting to the suite's OTLP receiver.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local import stack
from local.stack import free_port

# The Responses-API generations the suite runs, each on a local stack of its own (the
# `responses_stack` fixture): OGX 1.5.0, the current release, gets every end-to-end test;
# Llama Stack 0.7.3, the last under the old name, a smoke test (the two-question run and the
# server checks), since both in full took the warm suite past 10 minutes on 2 cores.
CURRENT_RESPONSES_VERSION = "1.5.0"
RESPONSES_VERSIONS = (CURRENT_RESPONSES_VERSION, "0.7.3")


def stack_id(version: str) -> str:
    return f"stack-{version}"


# For a test of the `responses_stack` that runs on the current generation only.
current_responses_version_only = pytest.mark.parametrize(
    "responses_stack", [CURRENT_RESPONSES_VERSION], indirect=True, ids=stack_id)


def vector_db_ids(url: str) -> list[str]:
    with urllib.request.urlopen(f"{url}/v1/vector-dbs", timeout=30) as response:
        return [db["identifier"] for db in json.load(response)["data"]]


@dataclass
class StackServer:
    """A running Llama Stack server: the local stack's (local/stack.py starts and stops it)."""

    url: str

    def vector_db_ids(self) -> list[str]:
        return vector_db_ids(self.url)

    def llm_ids(self) -> list[str]:
        with urllib.request.urlopen(f"{self.url}/v1/models", timeout=30) as response:
            return [m["identifier"] for m in json.load(response)["data"] if m.get("model_type") == "llm"]

    def call(self, method: str, path: str, body: dict | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60):
            pass


@contextlib.contextmanager
def stack_on_free_ports(state_dir: Path, **settings: Any) -> Iterator[stack.Stack]:
    """A local stack on free loopback ports, stopped afterwards; a failed start fails the test.
    Llama Stack 0.2.12 unless settings name another (not LLAMA_STACK_VERSION from the shell)."""
    settings.setdefault("llama_stack_version", stack.DEFAULT_LLAMA_STACK_VERSION)
    ports = {"llama_stack_port": free_port(), "llama_server_port": free_port()}
    if settings.get("trace_backend") == "phoenix":
        ports["phoenix_port"] = free_port()
    try:
        running = stack.up(state_dir=state_dir, **ports, **settings)
    except stack.StackError as error:
        pytest.fail(f"the local stack ({settings}) did not start: {error}", pytrace=False)
    try:
        yield running
    finally:
        stack.down(state_dir=state_dir, quiet=True)


@dataclass
class LlamaStackServer(StackServer):
    """A Llama Stack server of the tests' own, with a run config of their choosing."""

    component: stack.Component | None = None

    def stop(self) -> None:
        stack.stop_component(self.component)


def server_python() -> str:
    python = os.environ.get("LLAMA_STACK_PYTHON")
    if not python or not Path(python).exists():
        raise RuntimeError(
            "LLAMA_STACK_PYTHON must point at the python of a venv with llama-stack 0.2.12 "
            "(local/requirements-server.txt); `make test` builds one and sets it"
        )
    return python


def start_server(*, state_dir: Path, otlp_base_url: str, run_config: Path) -> LlamaStackServer:
    component = stack.start_llama_stack(stack.PROFILES["0.2.12"], Path(server_python()), port=free_port(),
                                        llama_server_url=None, otlp_endpoint=otlp_base_url, state_dir=state_dir,
                                        logs=state_dir / "logs", run_config=run_config)
    return LlamaStackServer(url=component.url, component=component)
