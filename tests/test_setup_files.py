"""The files around the script: shell scripts, run configs, requirements.

No container engine runs on these machines, so the start scripts are driven through a
stand-in engine (tests/support/fake_engine.py) that records the podman/docker command lines it
is given — checked against the engines' documented `run` options — while the health
checks hit a real loopback HTTP server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.stack import PROJECT_ROOT, free_port
from tests.support import fake_engine
from tests.support.llama_stack_server import server_python

SHELL_SCRIPTS = ["start-jaeger.sh", "start-llamastack.sh", "scripts/container-lib.sh", ".ci/run"]

# What a 0.4+ server under opentelemetry-instrument is started with (the image's own config).
INSTRUMENTED_SERVER_ENV = {
    "INFERENCE_MODEL": "meta-llama/Llama-3.1-8B-Instruct",
    "OTEL_SERVICE_NAME": "LlamaStack",
    "OLLAMA_URL": "http://host.containers.internal:11434/v1",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}


def test_shellcheck_is_clean():
    shellcheck = Path(sys.executable).with_name("shellcheck")
    result = subprocess.run([str(shellcheck), "--external-sources", *SHELL_SCRIPTS], cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- start-jaeger.sh / start-llamastack.sh through a stand-in engine ----------------------------


@pytest.fixture
def health_server(recording_server) -> int:
    """The port of a real loopback HTTP server that answers every health check with 200."""
    url, _ = recording_server
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def engine(tmp_path):
    """A 'podman' on PATH that records its command lines in calls.jsonl."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "podman"
    fake.write_text(f"#!{sys.executable}\n" + Path(fake_engine.__file__).read_text())
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_ENGINE_STATE": str(tmp_path / "state")}
    env.pop("CONTAINER_ENGINE", None)

    def calls() -> list[list[str]]:
        path = tmp_path / "state" / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return env, calls


def run_sh(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(PROJECT_ROOT / script), *args], env=env, capture_output=True, text=True, timeout=60)


def run_call(calls) -> list[str]:
    [call] = [c for c in calls() if c[0] == "run"]
    return call


def test_jaeger_start_publishes_on_loopback_and_waits_for_the_ui(engine, health_server):
    env, calls = engine
    result = run_sh("start-jaeger.sh", "start", env={**env, "JAEGER_UI_PORT": str(health_server)})
    assert result.returncode == 0, result.stderr
    call = run_call(calls)
    assert "docker.io/jaegertracing/jaeger:2.1.0" in call
    published = [call[i + 1] for i, arg in enumerate(call) if arg == "--publish"]
    assert published == [f"127.0.0.1:{health_server}:16686", "127.0.0.1:4318:4318", "127.0.0.1:4317:4317"]
    assert call[call.index("--network") + 1] == "llama-otel"
    assert f"Jaeger UI: http://127.0.0.1:{health_server}" in result.stderr


def test_jaeger_version_and_bind_are_configurable(engine, health_server):
    env, calls = engine
    result = run_sh("start-jaeger.sh", "start",
                    env={**env, "JAEGER_UI_PORT": str(health_server), "JAEGER_VERSION": "2.9.0", "JAEGER_BIND": "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    call = run_call(calls)
    assert "docker.io/jaegertracing/jaeger:2.9.0" in call
    assert f"0.0.0.0:{health_server}:16686" in call


def test_llamastack_start_mounts_the_run_config_and_sets_telemetry(engine, health_server):
    env, calls = engine
    result = run_sh("start-llamastack.sh", "start", env={**env, "LLAMA_STACK_PORT": str(health_server)})
    assert result.returncode == 0, result.stderr
    call = run_call(calls)
    image = "docker.io/llamastack/distribution-ollama:0.2.12"
    assert image in call
    assert call[call.index(image) + 1:] == ["--config", "/root/run-otel.yaml", "--port", str(health_server)]
    assert f"{PROJECT_ROOT}/run-otel.yaml:/root/run-otel.yaml:ro,Z" in call
    assert f"127.0.0.1:{health_server}:{health_server}" in call
    envs = dict(call[i + 1].split("=", 1) for i, arg in enumerate(call) if arg == "--env")
    assert envs == {
        "INFERENCE_MODEL": "meta-llama/Llama-3.1-8B-Instruct",
        "OLLAMA_URL": "http://host.containers.internal:11434",
        "OTEL_SERVICE_NAME": "LlamaStack",
        "TELEMETRY_SINKS": "otel_trace,otel_metric",
        "OTEL_TRACE_ENDPOINT": "http://jaeger:4318/v1/traces",
        "OTEL_METRIC_ENDPOINT": "http://jaeger:4318/v1/metrics",
    }


def start_instrumented_server(engine, health_server: int, *, version: str) -> list[str]:
    """start-llamastack.sh start for a 0.4+ version through the stand-in engine: it succeeds, the
    container gets the OTLP variables, and the script says where the spans go; the engine's call."""
    env, calls = engine
    result = run_sh("start-llamastack.sh", "start",
                    env={**env, "LLAMA_STACK_PORT": str(health_server), "LLAMA_STACK_VERSION": version})
    assert result.returncode == 0, result.stderr
    call = run_call(calls)
    envs = dict(call[i + 1].split("=", 1) for i, arg in enumerate(call) if arg == "--env")
    assert envs == INSTRUMENTED_SERVER_ENV
    assert "spans to http://jaeger:4318/v1/traces" in result.stderr
    return call


def test_llamastack_0_7_runs_the_starter_distribution_under_opentelemetry_instrument(engine, health_server):
    """LLAMA_STACK_VERSION=0.7.3: 0.4 and later have no telemetry provider and no Agents API, so the
    container runs the starter distribution's own config under opentelemetry-instrument, with
    the OTLP variables it reads. (Checked against the stand-in engine's command line: no
    container engine runs here, so the image itself is not exercised.)"""
    call = start_instrumented_server(engine, health_server, version="0.7.3")
    image = "docker.io/llamastack/distribution-starter:0.7.3"
    assert call[call.index(image) + 1:] == ["llama", "stack", "run", "starter", "--port", str(health_server)]
    assert call[call.index("--entrypoint") + 1] == "opentelemetry-instrument"
    assert "--volume" not in call  # the image's own config


def test_ogx_runs_its_starter_image_whose_entrypoint_adds_opentelemetry_instrument(engine, health_server):
    """LLAMA_STACK_VERSION=1.5.0: OGX, Llama Stack's current release under its new name. Its image's
    own entrypoint runs `ogx stack run starter <arguments>` under opentelemetry-instrument when an
    OTEL_* variable is set, so the script gives it the OTLP variables and the arguments only:
    the port, and --insecure, without which OGX will not serve plain HTTP."""
    env, _ = engine
    call = start_instrumented_server(engine, health_server, version="1.5.0")
    image = "docker.io/ogxai/distribution-starter:1.5.0"
    assert call[call.index(image) + 1:] == ["--port", str(health_server), "--insecure"]
    assert "--entrypoint" not in call and "--volume" not in call  # the image's entrypoint, the image's config
    assert f"127.0.0.1:{health_server}:{health_server}" in call
    assert "OGX's starter config" in run_sh("start-llamastack.sh", "--help",
                                            env={**env, "LLAMA_STACK_VERSION": "1.5.0"}).stdout


def test_with_docker_the_host_is_reached_through_host_gateway(engine, health_server, tmp_path):
    env, calls = engine
    (tmp_path / "bin" / "podman").rename(tmp_path / "bin" / "docker")
    result = run_sh("start-llamastack.sh", "start", env={**env, "LLAMA_STACK_PORT": str(health_server)})
    assert result.returncode == 0, result.stderr
    call = run_call(calls)
    assert call[call.index("--add-host") + 1] == "host.docker.internal:host-gateway"
    assert "OLLAMA_URL=http://host.docker.internal:11434" in call


def test_health_that_never_comes_fails_with_the_container_logs(engine):
    env, _ = engine
    result = run_sh("start-llamastack.sh", "start",
                    env={**env, "LLAMA_STACK_PORT": str(free_port()), "HEALTH_TIMEOUT": "2"})
    assert result.returncode != 0
    assert "fake engine log line" in result.stderr
    assert "did not answer at http://127.0.0.1:" in result.stderr


def test_start_twice_keeps_the_running_container_and_stop_removes_it(engine, health_server):
    env, calls = engine
    env = {**env, "JAEGER_UI_PORT": str(health_server)}
    assert run_sh("start-jaeger.sh", "start", env=env).returncode == 0
    assert "already running" in run_sh("start-jaeger.sh", "start", env=env).stderr
    assert len([c for c in calls() if c[0] == "run"]) == 1
    assert run_sh("start-jaeger.sh", "status", env=env).returncode == 0
    assert run_sh("start-jaeger.sh", "stop", env=env).returncode == 0
    status = run_sh("start-jaeger.sh", "status", env=env)
    assert status.returncode != 0 and "absent" in status.stdout


@pytest.mark.parametrize("script", ["start-jaeger.sh", "start-llamastack.sh"])
def test_no_engine_is_a_clear_one_line_error(engine, tmp_path, script):
    env, _ = engine
    if any(Path(d, e).exists() for d in ("/usr/bin", "/bin") for e in ("podman", "docker")):
        pytest.skip("this machine has a real engine client in /usr/bin")
    (tmp_path / "bin" / "podman").unlink()
    result = run_sh(script, "start", env={**env, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: no working container engine (podman or docker) found — install and start one, set "
        "CONTAINER_ENGINE, or run the container-free local stack instead"]


@pytest.mark.parametrize("script", ["start-jaeger.sh", "start-llamastack.sh"])
def test_usage_shows_current_settings(script):
    result = subprocess.run([str(PROJECT_ROOT / script), "--help"], capture_output=True, text=True,
                            env={**os.environ, "JAEGER_VERSION": "2.5.0", "LLAMA_STACK_PORT": "9999"})
    assert result.returncode == 0
    assert "start|stop|status|logs" in result.stdout
    assert ("2.5.0" if "jaeger" in script else "9999") in result.stdout
    assert subprocess.run([str(PROJECT_ROOT / script), "bogus"], capture_output=True).returncode == 2


# --- run configs, validated by Llama Stack 0.2.12 itself ---------------------------------------

VALIDATE = """
import json, sys, yaml
from llama_stack.distribution.datatypes import StackRunConfig
from llama_stack.distribution.stack import replace_env_vars
config = StackRunConfig(**replace_env_vars(yaml.safe_load(open(sys.argv[1]))))
[telemetry] = config.providers["telemetry"]
print(json.dumps({"telemetry": telemetry.config, "apis": sorted(config.apis),
                  "host": config.server.host, "vector_io": [p.provider_type for p in config.providers.get("vector_io", [])],
                  "inference": [p.provider_type for p in config.providers.get("inference", [])],
                  "external_providers_dir": str(config.external_providers_dir)}))
"""


def validate_run_config(path: Path, env: dict[str, str], *, unset: tuple[str, ...] = ()) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in unset} | env
    result = subprocess.run([server_python(), "-c", VALIDATE, str(path)], capture_output=True, text=True,
                            env=environment, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.mark.server
def test_run_otel_yaml_defaults_point_at_a_local_jaeger():
    telemetry = validate_run_config(PROJECT_ROOT / "run-otel.yaml", {"INFERENCE_MODEL": "m"}, unset=(
        "OTEL_SERVICE_NAME", "TELEMETRY_SINKS", "OTEL_TRACE_ENDPOINT", "OTEL_METRIC_ENDPOINT"))["telemetry"]
    assert telemetry["service_name"] == "LlamaStack"
    assert telemetry["sinks"] == "otel_trace,otel_metric"
    assert telemetry["otel_trace_endpoint"] == "http://localhost:4318/v1/traces"
    assert telemetry["otel_metric_endpoint"] == "http://localhost:4318/v1/metrics"


@pytest.mark.server
def test_run_otel_yaml_takes_its_endpoints_from_the_environment():
    telemetry = validate_run_config(PROJECT_ROOT / "run-otel.yaml", {
        "INFERENCE_MODEL": "m", "OTEL_TRACE_ENDPOINT": "http://jaeger:4318/v1/traces",
        "OTEL_SERVICE_NAME": "svc", "TELEMETRY_SINKS": "otel_trace"})["telemetry"]
    assert telemetry["otel_trace_endpoint"] == "http://jaeger:4318/v1/traces"
    assert (telemetry["service_name"], telemetry["sinks"]) == ("svc", "otel_trace")


def test_no_hard_coded_ip_address_in_the_set_up_files():
    import re

    for name in ("run-otel.yaml", "start-jaeger.sh", "start-llamastack.sh"):
        text = (PROJECT_ROOT / name).read_text()
        addresses = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text)) - {"127.0.0.1", "0.0.0.0"}
        assert not addresses, f"{name}: {addresses}"


@pytest.mark.server
def test_local_run_config_is_loopback_only_with_faiss_and_otel():
    providers_dir = PROJECT_ROOT / "local" / "providers.d"
    config = validate_run_config(PROJECT_ROOT / "local" / "run-local.yaml", {
        "LOCAL_STACK_STATE_DIR": "/tmp/x", "EMBEDDING_MODEL_PATH": "/tmp/m",
        "LLAMA_SERVER_URL": "http://127.0.0.1:1/v1", "LOCAL_PROVIDERS_DIR": str(providers_dir)})
    assert config["host"] == "127.0.0.1"
    assert config["vector_io"] == ["inline::faiss"]
    assert config["inference"] == ["remote::llama-cpp", "inline::sentence-transformers-off-loop"]
    assert config["external_providers_dir"] == str(providers_dir)
    assert (providers_dir / "remote" / "inference" / "llama-cpp.yaml").is_file()
    assert (providers_dir / "inline" / "inference" / "sentence-transformers-off-loop.yaml").is_file()
    assert "otel_trace" in config["telemetry"]["sinks"]


# --- requirements ------------------------------------------------------------------------------


def test_requirements_are_pinned():
    instrumentation_envs = sorted(str(p.relative_to(PROJECT_ROOT))
                                  for p in (PROJECT_ROOT / "instrumentation/tests/requirements").glob("*.txt"))
    assert len(instrumentation_envs) == 8  # common.txt and the seven client releases
    examples = sorted(str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "examples").glob("requirements-*.txt"))
    assert len(examples) == 2  # ogx-client and llama-stack-client 0.7
    for name in ("requirements.txt", "requirements-dev.txt", "local/requirements-server.txt",
                 "local/requirements-server-0.7.txt", "local/requirements-server-ogx.txt",
                 "local/requirements-phoenix.txt", "local/requirements-model.txt", *instrumentation_envs, *examples):
        for line in (PROJECT_ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line == "./instrumentation":  # this repository's own instrumentor, as it is in the clone
                continue
            if line and not line.startswith("-r"):
                assert "==" in line, f"{name}: {line} is not pinned"


def test_todays_client_requirements_keep_the_other_pins_in_step():
    """requirements-0.7.txt is requirements.txt with llama-stack-client 0.7.x (which declares fire)."""
    def pins(name: str) -> set[str]:
        lines = (PROJECT_ROOT / name).read_text().splitlines()
        return {line.split("#")[0].strip() for line in lines} - {""}

    assert "llama-stack-client==0.7.5" in pins("requirements-0.7.txt")
    assert pins("requirements-0.7.txt") - {"llama-stack-client==0.7.5"} == pins("requirements.txt") - {
        "llama-stack-client==0.2.12", "fire==0.7.1"}


def test_client_and_server_are_the_same_llama_stack_version():
    client = (PROJECT_ROOT / "requirements.txt").read_text()
    server = (PROJECT_ROOT / "local" / "requirements-server.txt").read_text()
    assert "llama-stack-client==0.2.12" in client and "llama-stack==0.2.12" in server
    assert "\nfire==" in client  # the client imports it without declaring it


@pytest.mark.timeout(900)
def test_requirements_txt_alone_runs_the_script(tmp_path):
    """A venv made from requirements.txt and nothing else (cached like the others) imports
    everything the script needs: --help works, and so does a real run up to the server."""
    venv = subprocess.run(["python3", str(PROJECT_ROOT / "local" / "venvs.py"),
                           "script-only", str(PROJECT_ROOT / "requirements.txt")],
                          capture_output=True, text=True, timeout=900, cwd=PROJECT_ROOT)
    assert venv.returncode == 0, venv.stderr[-2000:]
    python = Path(venv.stdout.strip()) / "bin" / "python"
    script = str(PROJECT_ROOT / "llama_stack_agent_rag_otel.py")
    assert subprocess.run([python, script, "--help"], capture_output=True).returncode == 0
    run = subprocess.run([python, script, "--llama-stack-url", f"http://127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, env={**os.environ, "OTEL_SDK_DISABLED": "true"})
    assert run.returncode == 3, run.stderr
    assert run.stderr.startswith("error: cannot reach Llama Stack")


@pytest.mark.timeout(900)
def test_pip_install_dot_on_python_312_gives_todays_client_and_the_instrumentor(tmp_path):
    """The README's `pip install .` on Python 3.12, in an empty venv: pip resolves today's client
    (llama-stack-client 0.7.x) and installs the instrumentor from the clone's instrumentation/
    (setup.py names it by its file: URL); the script runs up to the server, and the instrumentor
    registers both entry points opentelemetry-instrument looks for."""
    from local.stack import find_python

    python312 = find_python("3.12", needed_by="this test")
    venv = tmp_path / "venv"
    subprocess.run([str(python312), "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(PROJECT_ROOT)],
                             capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-2000:]
    python = venv / "bin" / "python"
    probe = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('llama-stack-client')); "
                            "print(sorted(e.name for e in m.entry_points(group='opentelemetry_instrumentor')))"],
                           capture_output=True, text=True, check=True)
    client_version, entry_points = probe.stdout.splitlines()
    assert client_version.startswith("0.7."), client_version
    assert "'llama_stack_client'" in entry_points and "'ogx_client'" in entry_points, entry_points
    script = str(PROJECT_ROOT / "llama_stack_agent_rag_otel.py")
    run = subprocess.run([python, script, "--llama-stack-url", f"http://127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, env={**os.environ, "OTEL_SDK_DISABLED": "true"})
    assert run.returncode == 3, run.stderr
    assert run.stderr.startswith("error: cannot reach Llama Stack")
