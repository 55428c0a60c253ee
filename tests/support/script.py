"""The script as a user runs it: a subprocess with real argv and a real environment, and what
the user then sees on stdout and stderr."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from local import stack
from local.stack import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "llama_stack_agent_rag_otel.py"
TRACE_ID_LINE = re.compile(r"^Trace ID: ([0-9a-f]{32})$", re.MULTILINE)
# Variables that would change how the script behaves if the developer's shell had them.
SCRIPT_ENV_VARS = (
    "LLAMA_STACK_URL", "LLAMA_STACK_API", "INFERENCE_MODEL", "RAG_DOCS_DIR", "TRACE_UI_URL", "TRACE_BACKEND", "TOOL_CHOICE",
    "RAG_AGENT_DEBUG", "RAG_MAX_FILE_SIZE", "VERIFY_TRACE", "OTEL_PROPAGATORS",
    "OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_METRICS_EXPORTER", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "AGENT_INSTRUCTIONS",
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE",
    "LLAMA_STACK_API_KEY", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_CERTIFICATE", "OTEL_EXPORTER_OTLP_COMPRESSION",
)



def pinned_client(requirements: Path) -> str:
    """The llama-stack-client version a requirements file pins."""
    return next(line.split("==", 1)[1].strip() for line in requirements.read_text().splitlines()
                if line.startswith("llama-stack-client=="))


# The client lines the script runs with: the suite's own venv (Python 3.11, requirements.txt),
# and today's client in a Python 3.12 venv (requirements-0.7.txt, built by local/stack.py).
PINNED_CLIENT = pinned_client(PROJECT_ROOT / "requirements.txt")
CURRENT_CLIENT = pinned_client(stack.CURRENT_CLIENT_REQS[0])


def client_python(client: str) -> str:
    """The python that runs the script with that llama-stack-client version."""
    if client == PINNED_CLIENT:
        return sys.executable
    assert client == CURRENT_CLIENT, client
    try:
        return str(stack.current_client_venv() / "bin" / "python")
    except stack.StackError as error:
        pytest.fail(f"no venv with llama-stack-client {client}: {error}", pytrace=False)


@dataclass
class ScriptRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def vector_db_id(self) -> str:
        """The vector DB the run reported ingesting into."""
        return self.stdout.split("into vector DB ")[1].split()[0]

    @property
    def trace_id(self) -> str:
        match = TRACE_ID_LINE.search(self.stdout)
        assert match, f"no 'Trace ID:' line in stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        return match.group(1)


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the script's own variables, plus env: what a run
    is told comes from the test, not from the developer's shell."""
    return {**{k: v for k, v in os.environ.items() if k not in SCRIPT_ENV_VARS}, **(env or {})}


def run_script(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
               python: str | Path = sys.executable) -> ScriptRun:
    """Run the script the way a user does: a subprocess with real argv and environment, with
    python (default: the suite's own; client_python() gives another client's)."""
    result = subprocess.run(
        [str(python), str(SCRIPT), *args],
        env=clean_env(env), capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT,
    )
    return ScriptRun(result.returncode, result.stdout, result.stderr)


def start_script(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The script as a user starts it, with its output readable while it runs."""
    return subprocess.Popen([sys.executable, str(SCRIPT), *args], env=clean_env(env), cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def assert_one_line_error(run: ScriptRun, *, exit_code: int, says: str) -> None:
    """An expected failure as the user sees it: the exit status, one `error: ` line on stderr
    that says what to do, and no traceback anywhere."""
    assert run.returncode == exit_code, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ") and says in lines[0], lines[0]
    assert "Traceback" not in run.stdout + run.stderr


def write_slow_corpus(folder: Path, sentence: str, *, files: int = 40) -> None:
    """Enough text (about 7 KB a file, 280 KB for 40) that embedding it takes well over a second here."""
    for i in range(files):
        (folder / f"doc{i:02}.md").write_text(f"# Part {i}\n\n" + sentence * 200)


def wait_for_ingestion(process: subprocess.Popen) -> str:
    """Read the script's stdout until it says it is ingesting (the vector DB is registered, the
    insert is on its way); give it a moment to be under way on the server; return the vector DB id."""
    line = process.stdout.readline()
    assert line.startswith("Ingesting "), (line, process.communicate())
    time.sleep(0.5)
    return line.split("into vector DB ")[1].split()[0]


def read_until(process: subprocess.Popen, marker: str, *, timeout: float) -> str:
    """stdout so far, read a character at a time until it holds marker (the answer's prefix
    is printed without a newline)."""
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set() and (char := process.stdout.read(1)):
            seen.append(char)
            if marker in "".join(seen[-len(marker):]):
                done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(timeout), f"no {marker!r} in stdout within {timeout} s:\n{''.join(seen)}"
    return "".join(seen)
