"""The script as a user runs it: real subprocesses, real argv and environment.

Failures a user can expect must print one line on stderr that says what to do,
exit non-zero, and show no traceback unless --debug asks for it.
"""

from __future__ import annotations

import pytest

from conftest import run_script
from llama_stack_server import free_port


def assert_one_line_error(run, *, exit_code: int, says: str) -> None:
    assert run.returncode == exit_code, (run.returncode, run.stderr)
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: ") and says in lines[0], lines[0]
    assert "Traceback" not in run.stdout + run.stderr


def test_help_lists_defaults_and_env_vars():
    run = run_script("--help", env={"COLUMNS": "200"})
    assert run.returncode == 0
    for text in ("LLAMA_STACK_URL", "INFERENCE_MODEL", "RAG_DOCS_DIR", "TRACE_UI_URL", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "http://localhost:8321", "meta-llama/Llama-3.1-8B-Instruct", "http://localhost:16686",
                 "--no-questions", "--show-rag-documents", "--timeout", "--question"):
        assert text in run.stdout, text


def test_unreachable_llama_stack(otlp_receiver):
    url = f"http://127.0.0.1:{free_port()}"
    run = run_script("--llama-stack-url", url, "--otlp-endpoint", otlp_receiver.traces_url)
    assert_one_line_error(run, exit_code=3, says=f"cannot reach Llama Stack at {url}")
    # The failed run is still traced, and its root span says why.
    spans = otlp_receiver.wait_for(lambda ss: any(not s.parent_span_id for s in ss), trace_id=run.trace_id,
                                   timeout=10)
    [root] = [s for s in spans if not s.parent_span_id]
    assert root.status_code == 2
    assert any(name == "exception" and "cannot reach" in attrs.get("exception.message", "")
               for name, attrs in root.events)


def test_missing_docs_folder(otlp_receiver, tmp_path):
    run = run_script("--docs", str(tmp_path / "nope"), "--otlp-endpoint", otlp_receiver.traces_url)
    assert_one_line_error(run, exit_code=2, says="does not exist")


def test_docs_folder_without_markdown(otlp_receiver, tmp_path):
    (tmp_path / "notes.txt").write_text("no markdown here")
    run = run_script("--docs", str(tmp_path), "--otlp-endpoint", otlp_receiver.traces_url)
    assert_one_line_error(run, exit_code=2, says="holds no .md files")


@pytest.mark.parametrize("args, says", [
    (["--llama-stack-url", "localhost:8321"], "is not an http(s) URL"),
    (["--chunk-size", "-1"], "must be a positive integer"),
])
def test_invalid_configuration(args, says):
    assert_one_line_error(run_script(*args), exit_code=2, says=says)


def test_debug_shows_the_traceback(otlp_receiver, tmp_path):
    run = run_script("--docs", str(tmp_path / "nope"), "--otlp-endpoint", otlp_receiver.traces_url, "--debug")
    assert run.returncode == 2
    assert "Traceback" in run.stderr
