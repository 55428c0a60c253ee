"""The script as a user runs it: real subprocesses, real argv and environment.

Failures a user can expect must print one line on stderr that says what to do,
exit non-zero, and show no traceback unless --debug asks for it.
"""

from __future__ import annotations

import pytest

from local.stack import free_port
from tests.support.script import assert_one_line_error, run_script


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
    spans = otlp_receiver.wait_for(lambda ss: any(not s.parent_span_id for s in ss)
                                   and any(s.name == "check_server" for s in ss), trace_id=run.trace_id, timeout=10)
    [root] = [s for s in spans if not s.parent_span_id]
    assert root.status_code == 2
    assert any(name == "exception" and "cannot reach" in attrs.get("exception.message", "")
               for name, attrs in root.events)
    # ... and which phase failed: the first, whose span holds the connection error.
    assert root.attributes["rag_agent.failed_phase"] == "check_server"
    [check] = [s for s in spans if s.name == "check_server"]
    assert check.status_code == 2
    assert any(name == "exception" and attrs["exception.type"].endswith("APIConnectionError") for name, attrs in check.events)


@pytest.mark.parametrize("make_docs, says", [
    (lambda folder: folder / "nope", "does not exist"),
    (lambda folder: folder, "holds no .md files"),  # empty
    (lambda folder: (folder / "notes.txt").write_text("no markdown here") and folder, "holds no .md files"),
], ids=["missing", "empty", "no-markdown"])
def test_unusable_docs_folder(otlp_receiver, tmp_path, make_docs, says):
    run = run_script("--docs", str(make_docs(tmp_path)), "--otlp-endpoint", otlp_receiver.traces_url)
    assert_one_line_error(run, exit_code=2, says=says)


@pytest.mark.parametrize("args, env, says", [
    (["--llama-stack-url", "localhost:8321"], {}, "is not an http(s) URL"),
    (["--llama-stack-url", "ftp://localhost:8321"], {}, "is not an http(s) URL"),
    (["--llama-stack-url", "http://[::1"], {}, "is not an http(s) URL"),
    (["--llama-stack-url", "http://localhost:99999"], {}, "is not an http(s) URL"),
    (["--otlp-endpoint", "localhost:4318/v1/traces"], {}, "the OTLP traces endpoint"),
    (["--chunk-size", "-1"], {}, "must be a positive integer"),
    (["--max-file-size", "-1"], {}, "must be a positive size"),
    (["--export-timeout", "nan"], {}, "must be a positive number"),
    ([], {"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER='sometimes' is not a sampler"),
    ([], {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "not a ratio between 0 and 1"),
    ([], {"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, "OTEL_EXPORTER_OTLP_TIMEOUT='10s' is not a positive number"),
    # Variables with a fixed set of values refuse any other, as their flags do.
    ([], {"TRACE_BACKEND": "zipkin"}, "TRACE_BACKEND='zipkin' is not one of auto, jaeger, phoenix"),
    ([], {"LLAMA_STACK_API": "chat"}, "LLAMA_STACK_API='chat' is not one of auto, agents, responses"),
    # Switches read yes/no words alike everywhere; anything else is refused, not taken as "no".
    ([], {"VERIFY_TRACE": "maybe"}, "VERIFY_TRACE='maybe' is not a yes/no value"),
    ([], {"RAG_AGENT_DEBUG": "sure"}, "RAG_AGENT_DEBUG='sure' is not a yes/no value"),
    ([], {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "all"}, "is not a value it takes — use true or false"),
    (["--timeout", "0"], {}, "must be a positive number of seconds"),
    (["--stall-timeout", "-3"], {}, "must be a positive number of seconds"),
    (["--verify-wait", "-1"], {}, "must be a number of seconds (0 or more)"),
], ids=["no-scheme", "ftp", "malformed", "bad-port", "otlp-endpoint", "chunk-size", "max-file-size",
        "export-timeout", "sampler", "sampler-arg", "otlp-timeout", "trace-backend-env", "api-env", "verify-env",
        "debug-env", "capture-env", "timeout", "stall-timeout", "verify-wait"])
def test_invalid_configuration_stops_before_anything_is_sent(recording_server, args, env, says):
    url, seen = recording_server  # stands in for Llama Stack and the collector alike
    run = run_script("--llama-stack-url", url, "--otlp-endpoint", f"{url}/v1/traces", *args, env=env)
    assert_one_line_error(run, exit_code=2, says=says)
    assert seen == [], "nothing may be sent before the configuration is known to be good"


def test_debug_shows_the_traceback(otlp_receiver, tmp_path):
    run = run_script("--docs", str(tmp_path / "nope"), "--otlp-endpoint", otlp_receiver.traces_url, "--debug")
    assert run.returncode == 2
    assert "Traceback" in run.stderr


def test_version_and_help_name_units_groups_and_exit_codes():
    from llama_stack_otel import __version__

    version = run_script("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"llama_stack_agent_rag_otel.py {__version__}")
    run = run_script("--help", env={"COLUMNS": "200"})
    for text in ("--timeout SECONDS", "--export-timeout MS", "--verify-wait SECONDS", "--stall-timeout SECONDS",
                 "Llama Stack and the model:", "documents and questions:", "tracing:", "examples:", "exit status:",
                 "130 Ctrl-C"):
        assert text in run.stdout, text


@pytest.mark.parametrize("value", ["0", "false", "No", "off", ""])
def test_a_no_word_turns_debug_off(otlp_receiver, tmp_path, value):
    """RAG_AGENT_DEBUG=0 used to turn debugging on (any non-empty value did)."""
    run = run_script("--docs", str(tmp_path / "nope"), "--otlp-endpoint", otlp_receiver.traces_url,
                     env={"RAG_AGENT_DEBUG": value})
    assert_one_line_error(run, exit_code=2, says="does not exist")


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_a_yes_word_turns_debug_on(otlp_receiver, tmp_path, value):
    run = run_script("--docs", str(tmp_path / "nope"), "--otlp-endpoint", otlp_receiver.traces_url,
                     env={"RAG_AGENT_DEBUG": value})
    assert run.returncode == 2 and "Traceback" in run.stderr
