"""One profile per Llama Stack generation the local stack can run.

What differs between generations is data here, so that local/stack.py picks a profile once
(LLAMA_STACK_VERSION, or up(llama_stack_version=...), names it) and then starts whichever it
got the same way. Another generation is one more entry in PROFILES plus the files it names:
its requirements, its run config and, if its run config names any, its local providers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

LOCAL_DIR = Path(__file__).resolve().parent
MODEL_ID = "gemma3-270m"  # the alias llama-server serves Gemma 3 270M under; run configs refer to it
EMBEDDING_MODEL = "all-MiniLM-L6-v2"  # the alias of the embedding llama-server's model

# Where a generation's server spans come from.
Telemetry = Literal["telemetry-provider", "opentelemetry-instrument"]
TELEMETRY_PROVIDER: Telemetry = "telemetry-provider"  # its own telemetry API, set up in the run config
OPENTELEMETRY_INSTRUMENT: Telemetry = "opentelemetry-instrument"  # none of its own: auto-instrumentation

# An OpenTelemetry distro of the local stack's own (local/otel_distro): opentelemetry-distro's
# set-up, with FastAPI's server spans but not the ASGI `http send` / `http receive` span of
# every streamed chunk. The folder goes on the server's PYTHONPATH, the name into OTEL_PYTHON_DISTRO.
OTEL_DISTRO_DIR = LOCAL_DIR / "otel_distro"
LOCAL_STACK_DISTRO = "local_stack"


@dataclass(frozen=True)
class Profile:
    """How the local stack runs one Llama Stack version."""

    version: str  # as LLAMA_STACK_VERSION names it
    venv: str  # the server venv's name in the cache (local/venvs.py)
    requirements: tuple[Path, ...]  # what that venv is built from
    python: str | None  # the Python (major.minor) the venv needs; None: the one running local/stack.py
    run_config: Path
    # The server's command line; "{python}" is the venv's python, "{bin}" its bin folder,
    # "{config}" the run config and "{port}" the port (the server also gets LLAMA_STACK_PORT).
    command: tuple[str, ...]
    provider_paths: tuple[Path, ...]  # PYTHONPATH: the local provider modules the run config names
    providers_dir: Path | None  # LOCAL_PROVIDERS_DIR: the run config's external_providers_dir
    model_id: str  # the chat model's id on this server: what the script is given as INFERENCE_MODEL
    llama_server_slots: int  # llama-server --parallel: the slots share its 16384-token context
    # Embeddings from a second llama-server serving the MiniLM GGUF; else the server computes
    # them itself with sentence-transformers from the packaged model.
    embedding_server: bool
    tiktoken_cache: bool  # loads tiktoken's cl100k_base at start-up: give it a TIKTOKEN_CACHE_DIR
    telemetry: Telemetry
    service_name: str  # OTEL_SERVICE_NAME of the server's spans
    stop: tuple[str, ...] = ()  # stop sequences besides the chat template's block headers
    # OTEL_PYTHON_DISTRO for opentelemetry-instrument (LOCAL_STACK_DISTRO: no per-chunk ASGI
    # spans); None: whichever distro the venv has. Only with telemetry=OPENTELEMETRY_INSTRUMENT.
    otel_distro: str | None = None
    # Secure serving (LLAMA_STACK_SECURE=1): its run config takes a TLS certificate, its key and
    # an API key from LOCAL_STACK_TLS_CERTFILE, LOCAL_STACK_TLS_KEYFILE and LOCAL_STACK_API_KEY.
    secure_serving: bool = False
    # Added to the command when it serves plain HTTP (a server that otherwise refuses to).
    insecure_flags: tuple[str, ...] = ()
    # The server's environment when it serves securely, besides the three above.
    secure_env: tuple[tuple[str, str], ...] = ()


LLAMA_STACK_0_2 = Profile(
        version="0.2.12",
        venv="server",
        requirements=(LOCAL_DIR / "requirements-server.txt",),
        python=None,
        run_config=LOCAL_DIR / "run-local.yaml",
        command=("{python}", "-m", "llama_stack.distribution.server.server", "--config", "{config}",
                 "--port", "{port}"),
        provider_paths=(LOCAL_DIR / "providers",),
        providers_dir=LOCAL_DIR / "providers.d",
        model_id=MODEL_ID,
        llama_server_slots=4,  # four of 4096 tokens leave room for the RAG chunks and for concurrent runs
        embedding_server=False,
        tiktoken_cache=False,
        telemetry=TELEMETRY_PROVIDER,
        service_name="LlamaStack",
    )

LLAMA_STACK_0_7 = Profile(
        version="0.7.3",
        venv="server-0.7",
        requirements=(LOCAL_DIR / "requirements-server-0.7.txt",),
        python="3.12",
        run_config=LOCAL_DIR / "run-local-0.7.yaml",
        command=("{bin}/llama", "stack", "run", "{config}"),
        # remote::llama-cpp (module: llama_cpp_openai), and the grammar it shares with 0.2.12's
        provider_paths=(LOCAL_DIR / "providers_responses", LOCAL_DIR / "providers"),
        providers_dir=None,
        model_id=f"llama-cpp/{MODEL_ID}",  # <provider_id>/<provider_model_id> (ids in run-local-0.7.yaml)
        # The Responses API resends the previous answer's search results with the next
        # question: two slots of 8192 tokens.
        llama_server_slots=2,
        embedding_server=True,  # served as llama-cpp-embeddings/all-MiniLM-L6-v2
        tiktoken_cache=True,  # the faiss provider loads it; tiktoken would download it
        telemetry=OPENTELEMETRY_INSTRUMENT,
        service_name="llama-stack",
        # It hands the search results to the model as "[n] document_id: ..." lines, which a
        # 270M model copies out after its answer: stop there too.
        stop=("\n[",),
        otel_distro=LOCAL_STACK_DISTRO,
    )

# OGX: Llama Stack's current release, under its new name (renamed after 0.7.1). It runs like
# 0.7.3, through the same provider package (which imports ogx where llama_stack is not there).
OGX_1_5 = replace(
    LLAMA_STACK_0_7,
    version="1.5.0",
    venv="server-ogx",
    requirements=(LOCAL_DIR / "requirements-server-ogx.txt",),
    run_config=LOCAL_DIR / "run-local-ogx.yaml",
    # The server listens on 127.0.0.1 only (server.host in the run config), as the rest of the
    # stack. --insecure when it serves plain HTTP: 1.5.0 refuses to without it ("TLS required").
    command=("{bin}/ogx", "run", "--port", "{port}", "{config}"),
    insecure_flags=("--insecure",),
    secure_serving=True,
    # With local_api_key the API key is the user's principal, and 1.5.0 logs every resource's
    # owner principal at INFO ("Setting owner", category core::routing_tables): the key would be
    # in the server's log. Its core category logs from WARNING on when the key is in use.
    secure_env=(("OGX_LOGGING", "core=warning"),),
    service_name="ogx",
    # As 0.7.3, plus the markers OGX wraps file_search results in ("<untrusted_tool_output>
    # ... </untrusted_tool_output>"), which the 270M model otherwise copies into its answer
    # (the opening one too: a suite run's first answer ended in it).
    stop=("\n[", "<untrusted_tool_output>", "</untrusted_tool_output>"),
)

PROFILES = {profile.version: profile for profile in (LLAMA_STACK_0_2, LLAMA_STACK_0_7, OGX_1_5)}
DEFAULT_LLAMA_STACK_VERSION = "0.2.12"
