"""Configuration: a flag beats its environment variable, which beats the default."""

from __future__ import annotations

from pathlib import Path

import pytest

from llama_stack_otel import cli, config, delivery
from llama_stack_otel.backends import agents
from llama_stack_otel.errors import EXIT_USAGE, UserError

ENV_OPTIONS = [
    # (env var, flag, attribute, default)
    ("LLAMA_STACK_URL", "--llama-stack-url", "llama_stack_url", config.DEFAULT_LLAMA_STACK_URL),
    ("INFERENCE_MODEL", "--model", "model", config.DEFAULT_MODEL),
    ("TRACE_UI_URL", "--trace-ui", "trace_ui", config.DEFAULT_TRACE_UI_URL),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("LLAMA_STACK_URL", "INFERENCE_MODEL", "TRACE_UI_URL", "RAG_DOCS_DIR", "RAG_AGENT_DEBUG",
                 "RAG_MAX_FILE_SIZE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("env_var, flag, attribute, default", ENV_OPTIONS)
def test_flag_beats_env_beats_default(monkeypatch, env_var, flag, attribute, default):
    assert getattr(cli.build_parser().parse_args([]), attribute) == default
    monkeypatch.setenv(env_var, "http://from-env:1")
    assert getattr(cli.build_parser().parse_args([]), attribute) == "http://from-env:1"
    assert getattr(cli.build_parser().parse_args([flag, "http://from-flag:2"]), attribute) == "http://from-flag:2"


def test_docs_dir_from_env_and_flag(monkeypatch, tmp_path):
    assert cli.build_parser().parse_args([]).docs == config.DEFAULT_DOCS_DIR
    monkeypatch.setenv("RAG_DOCS_DIR", str(tmp_path))
    assert cli.build_parser().parse_args([]).docs == tmp_path
    assert cli.build_parser().parse_args(["--docs", "/elsewhere"]).docs == Path("/elsewhere")


def test_default_question_is_asked_when_none_given():
    settings = cli.settings_from_args(cli.build_parser().parse_args([]))
    assert settings.questions == (config.DEFAULT_QUESTION,)


def test_questions_repeat_and_no_questions_means_ingest_only():
    args = cli.build_parser().parse_args(["--question", "a?", "--question", "b?"])
    assert cli.settings_from_args(args).questions == ("a?", "b?")
    assert cli.settings_from_args(cli.build_parser().parse_args(["--no-questions"])).questions == ()


def test_seed_defaults():
    settings = cli.settings_from_args(cli.build_parser().parse_args([]))
    assert (settings.embedding_model, settings.embedding_dimension, settings.chunk_size_in_tokens) == (
        "all-MiniLM-L6-v2", 384, 125)
    assert settings.llama_stack_url == "http://localhost:8321"


@pytest.mark.parametrize("url", ["localhost:8321", "ftp://host", "http://", "not a url", "http://[::1", "http://h:0x"])
def test_bad_url_is_a_usage_error(url):
    with pytest.raises(UserError) as caught:
        cli.settings_from_args(cli.build_parser().parse_args(["--llama-stack-url", url]))
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize("args", [["--chunk-size", "0"], ["--chunk-size", "-5"], ["--timeout", "0"],
                                  ["--embedding-dimension", "x"], ["--timeout", "nan"], ["--max-file-size", "0"],
                                  ["--max-file-size", "lots"], ["--export-timeout", "-1"]])
def test_bad_numbers_are_rejected_in_one_line(args, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args(args)
    assert caught.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: argument")


class _Models:
    """Just enough of client.models for check_model: a list of registered models."""

    def __init__(self, *models: tuple[str, str]) -> None:
        from types import SimpleNamespace

        self._models = [SimpleNamespace(identifier=i, model_type=t) for i, t in models]

    def list(self):
        return self._models


def test_unregistered_model_error_lists_the_llms_the_server_has():
    from types import SimpleNamespace

    client = SimpleNamespace(models=_Models(("zeta", "llm"), ("all-MiniLM-L6-v2", "embedding"), ("alpha", "llm")))
    agents.check_model(client, "alpha")  # registered: no error
    with pytest.raises(UserError) as caught:
        agents.check_model(client, "meta-llama/Llama-3.1-8B-Instruct")
    assert "(its LLMs: alpha, zeta)" in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_export_timeout_is_milliseconds_flag_beats_env_beats_default(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TIMEOUT", raising=False)
    assert cli.resolve_export_timeout_ms(None) == config.DEFAULT_EXPORT_TIMEOUT_MS == 1500
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")
    assert cli.resolve_export_timeout_ms(None) == 2500
    args = cli.build_parser().parse_args(["--export-timeout", "700"])
    assert cli.resolve_export_timeout_ms(args.export_timeout) == 700
    # The exporter is built with it in seconds, so the SDK never reads the variable itself.
    exporter = delivery.Delivery(traces_endpoint="http://127.0.0.1:4318/v1/traces", timeout_ms=2500)
    assert exporter.timeout_ms / 1000 == 2.5


@pytest.mark.parametrize("value", ["0", "-5", "abc", "10s", "inf"])
def test_bad_otlp_timeout_is_refused(monkeypatch, value):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", value)
    with pytest.raises(config.ConfigError, match="OTEL_EXPORTER_OTLP_TIMEOUT"):
        cli.resolve_export_timeout_ms(None)


@pytest.mark.parametrize("sampler, arg, ok", [
    ("always_on", "", True), ("parentbased_traceidratio", "0.25", True), ("TraceIdRatio", "1", True),
    ("always_sometimes", "", False), ("traceidratio", "1.5", False), ("traceidratio", "half", False),
])
def test_sampler_variables_are_checked(monkeypatch, sampler, arg, ok):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    if ok:
        cli.check_sampler_env()
    else:
        with pytest.raises(config.ConfigError):
            cli.check_sampler_env()


@pytest.mark.parametrize("text, size", [("1048576", 1048576), ("500K", 512000), ("2m", 2 * 1024 * 1024),
                                        ("1.5K", 1536)])
def test_max_file_size_takes_suffixes(text, size):
    assert cli.build_parser().parse_args(["--max-file-size", text]).max_file_size == size
    assert cli.build_parser().parse_args([]).max_file_size == config.DEFAULT_MAX_FILE_SIZE


def test_max_file_size_from_env(monkeypatch):
    monkeypatch.setenv("RAG_MAX_FILE_SIZE", "64K")
    assert cli.build_parser().parse_args([]).max_file_size == 65536


# --- The content variable, read as the client instrumentor reads it


@pytest.mark.parametrize("value, captured", [("SPAN_ONLY", True), ("true", True), ("On", True), ("event_only", False),
                                             ("NO_CONTENT", False), ("0", False), ("", False)])
def test_the_script_reads_the_variable_the_same_way(monkeypatch, value, captured):
    from llama_stack_otel.config import capture_content_setting
    from llama_stack_otel_instrumentation.content import capture_content_from_env

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    assert capture_content_setting() is captured
    assert capture_content_from_env() is captured  # the instrumentor says the same


def test_the_script_refuses_a_value_the_instrumentations_do_not_take(monkeypatch):
    from llama_stack_otel.config import ConfigError, capture_content_setting

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "all")
    with pytest.raises(ConfigError, match="SPAN_ONLY"):
        capture_content_setting()
