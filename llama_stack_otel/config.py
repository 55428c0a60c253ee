"""What one run is asked to do: the settings, their defaults, and how environment variables read.

Stdlib only, so that ``--help`` and a bad flag answer before any library loads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LLAMA_STACK_URL = "http://localhost:8321"
DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DEFAULT_DOCS_DIR = Path(__file__).resolve().parent.parent / "sample-docs"
DEFAULT_QUESTION = "Should I use npm to start a node.js application?"
DEFAULT_INSTRUCTIONS = (
    "You are a helpful assistant, answer questions only based on information in the documents provided"
)
DEFAULT_TOOL_CHOICE = "auto"
DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_EMBEDDING_DIMENSION = 384
DEFAULT_CHUNK_SIZE_IN_TOKENS = 125
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_MAX_FILE_SIZE = 1024 * 1024  # bytes; a larger .md is skipped (embedding it would take long)
DEFAULT_STALL_SECONDS = 120.0  # 0.4+: a file whose processing shows no progress this long fails the run
CLEANUP_TIMEOUT_SECONDS = 60.0  # clean-up calls get at least this, even under a short --timeout
DEFAULT_OTLP_TRACES_ENDPOINT = "http://localhost:4318/v1/traces"
DEFAULT_SERVICE_NAME = "PythonAgentRAG"
DEFAULT_TRACE_UI_URL = "http://localhost:16686"
DEFAULT_EXPORT_TIMEOUT_MS = 1500.0  # not the spec's 10 s: a CLI should not hang at exit for a dead collector
DEFAULT_CONCURRENCY = 1
MAX_CONCURRENCY = 64

API_AUTO = "auto"
API_AGENTS = "agents"  # Llama Stack 0.2.x / 0.3.x: Agents API, vector DBs, builtin::rag
API_RESPONSES = "responses"  # 0.4 and later, and OGX: files, vector stores, Responses API + file_search
APIS = (API_AUTO, API_AGENTS, API_RESPONSES)
TRACE_BACKENDS = ("auto", "jaeger", "phoenix")

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# OpenTelemetry's GenAI instrumentations read that variable two ways: true/false (the OpenAI
# instrumentation's boolean) and opentelemetry-util-genai's modes. Content goes on spans for
# true and the two SPAN_ modes; this project's yes/no words work as well.
SPAN_CONTENT_MODES = ("span_only", "span_and_event")
NO_SPAN_CONTENT_MODES = ("no_content", "event_only")


class ConfigError(ValueError):
    """A setting the run cannot use; the message names it and says what is expected."""


def env_flag(name: str) -> bool:
    """A boolean variable: 1/true/yes/on or 0/false/no/off (any case; unset is false)."""
    raw = os.environ.get(name, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise ConfigError(f"{name}={os.environ[name]!r} is not a yes/no value — use 1, true, yes or on; "
                      "0, false, no or off")


def capture_content_setting() -> bool:
    """Whether message content may go on spans, from OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT:
    true/1/yes/on, SPAN_ONLY or SPAN_AND_EVENT say yes; false/0/no/off, NO_CONTENT, EVENT_ONLY
    (no events are emitted here) or unset say no; anything else raises ConfigError."""
    raw = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower()
    if raw in TRUE_WORDS or raw in SPAN_CONTENT_MODES:
        return True
    if raw in FALSE_WORDS or raw in NO_SPAN_CONTENT_MODES:
        return False
    raise ConfigError(f"{CAPTURE_CONTENT_ENV}={os.environ[CAPTURE_CONTENT_ENV]!r} is not a value it takes — use true "
                      "or false (also 1/0, yes/no, on/off), or NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT")


def env_choice(name: str, choices: Sequence[str], default: str) -> str:
    """A variable that takes one of a fixed set of values (any case); unset or empty is the default."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw.lower()


@dataclass(frozen=True)
class Settings:
    """One run's settings, whichever Llama Stack generation serves it."""

    llama_stack_url: str = DEFAULT_LLAMA_STACK_URL
    model: str = DEFAULT_MODEL
    docs_dir: Path = DEFAULT_DOCS_DIR
    questions: tuple[str, ...] = (DEFAULT_QUESTION,)
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_dimension: int = DEFAULT_EMBEDDING_DIMENSION
    chunk_size_in_tokens: int = DEFAULT_CHUNK_SIZE_IN_TOKENS
    show_rag_documents: bool = False
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    tool_choice: str = DEFAULT_TOOL_CHOICE
    instructions: str = DEFAULT_INSTRUCTIONS
    api: str = API_AUTO  # auto: ask the server which generation it is
    stall_timeout: float = DEFAULT_STALL_SECONDS

    @property
    def clean_up_timeout(self) -> float:
        # A call that timed out may still run server-side and hold the server up: clean-up
        # calls get room even when --timeout is short.
        return max(self.timeout, CLEANUP_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class TelemetrySettings:
    traces_endpoint: str
    metrics_endpoint: str | None  # None: no metrics
    export_timeout_ms: float
