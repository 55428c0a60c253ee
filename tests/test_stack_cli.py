"""`python -m local.stack` (make stack-up/-down/-status/-logs) as a user runs it: the answers it
gives before it builds or starts anything. Starting the stack itself is tested end to end in
test_local_stack.py."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import PROJECT_ROOT, free_port


def stack_cli(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in ("TRACE_BACKEND", "OTEL_EXPORTER_OTLP_ENDPOINT", "LLAMA_STACK_PORT", "LLAMA_SERVER_PORT",
                         "LLAMA_STACK_VERSION", "EMBEDDING_SERVER_PORT")}
    return subprocess.run(
        [sys.executable, "-m", "local.stack", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
        env={**base, "LOCAL_STACK_DIR": str(tmp_path / "stack"), **env},
    )


def assert_one_line_error(result: subprocess.CompletedProcess, says: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[stack] error: "), result.stderr
    assert says in lines[0]


def test_status_and_logs_when_nothing_runs(tmp_path):
    for command in ("status", "logs"):
        result = stack_cli(command, tmp_path=tmp_path)
        assert result.returncode == 3 and "not running" in result.stdout, result


def test_down_when_nothing_runs_is_fine(tmp_path):
    result = stack_cli("down", tmp_path=tmp_path)
    assert result.returncode == 0 and "not running" in result.stderr


def test_unknown_trace_backend(tmp_path):
    assert_one_line_error(stack_cli("up", tmp_path=tmp_path, TRACE_BACKEND="zipkin"), "use jaeger, phoenix or external")


def test_external_backend_needs_an_endpoint(tmp_path):
    result = stack_cli("up", tmp_path=tmp_path, TRACE_BACKEND="external", OTEL_EXPORTER_OTLP_ENDPOINT="")
    assert_one_line_error(result, "needs OTEL_EXPORTER_OTLP_ENDPOINT")


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port something is listening on, for as long as the block runs."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("setting", ["LLAMA_STACK_PORT", "LLAMA_SERVER_PORT"])
def test_a_taken_port_is_named_with_its_setting(tmp_path, setting):
    with taken_port() as port:
        ports = {"LLAMA_STACK_PORT": str(free_port()), "LLAMA_SERVER_PORT": str(free_port()), setting: str(port)}
        result = stack_cli("up", tmp_path=tmp_path, TRACE_BACKEND="external",
                           OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", **ports)
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is taken")
    assert f"{setting}=<port>" in result.stderr


def test_a_port_that_is_not_a_number(tmp_path):
    result = stack_cli("up", tmp_path=tmp_path, TRACE_BACKEND="external",
                       OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", LLAMA_STACK_PORT="http")
    assert_one_line_error(result, "LLAMA_STACK_PORT='http' is not a port number")


def test_an_unknown_llama_stack_version(tmp_path):
    result = stack_cli("up", tmp_path=tmp_path, LLAMA_STACK_VERSION="0.5.0")
    assert_one_line_error(result, "LLAMA_STACK_VERSION='0.5.0': use 0.2.12, 0.7.3 or 1.5.0")


@pytest.mark.parametrize("version", ["0.7.3", "1.5.0"])
def test_a_taken_embedding_server_port_is_named(tmp_path, version):
    with taken_port() as port:
        result = stack_cli("up", tmp_path=tmp_path, TRACE_BACKEND="external", LLAMA_STACK_VERSION=version,
                           OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318", LLAMA_STACK_PORT=str(free_port()),
                           LLAMA_SERVER_PORT=str(free_port()), EMBEDDING_SERVER_PORT=str(port))
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is taken")
    assert "EMBEDDING_SERVER_PORT=<port>" in result.stderr


def test_unknown_command_prints_usage(tmp_path):
    result = stack_cli("sideways", tmp_path=tmp_path)
    assert result.returncode == 2 and "up | down | status" in result.stderr


def test_prepare_with_a_browser_that_is_not_there_fails_before_building(tmp_path):
    cache = tmp_path / "cache"
    result = stack_cli("prepare", "--with-browser", tmp_path=tmp_path, CHROMIUM=str(tmp_path / "no-chromium"),
                       LLAMA_STACK_OTEL_CACHE=str(cache))
    assert_one_line_error(result, f"CHROMIUM={tmp_path / 'no-chromium'} does not exist")
    assert not cache.exists()  # nothing was built or installed


def test_prepare_rejects_an_unknown_option(tmp_path):
    result = stack_cli("prepare", "--with-browsr", tmp_path=tmp_path, LLAMA_STACK_OTEL_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 2 and "prepare [--with-browser]" in result.stderr
    assert not (tmp_path / "cache").exists()


def engine_on_path(tmp_path, monkeypatch, name: str, info_exit: int) -> None:
    """A stand-in `podman`/`docker` whose `info` answers like a working engine (0) or like a
    docker client with no daemon behind it (1), as on these machines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / name
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = info ] && exit {info_exit}\nexit 125\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("CONTAINER_ENGINE", raising=False)
    monkeypatch.delenv("TRACE_BACKEND", raising=False)


def test_jaeger_when_a_container_engine_answers(tmp_path, monkeypatch):
    from local import stack

    engine_on_path(tmp_path, monkeypatch, "podman", info_exit=0)
    assert stack.choose_trace_backend() == "jaeger"


def test_phoenix_when_the_engine_does_not_answer(tmp_path, monkeypatch):
    from local import stack

    engine_on_path(tmp_path, monkeypatch, "docker", info_exit=1)
    assert stack.choose_trace_backend() == "phoenix"
    monkeypatch.setenv("TRACE_BACKEND", "Jaeger")  # the user's word beats detection
    assert stack.choose_trace_backend() == "jaeger"


def test_the_llama_server_build_reports_its_progress(tmp_path, capsys):
    """A build step's output goes to the log; stderr gets a line per 10 % that cmake reports."""
    from local import llama_server

    output = tmp_path / "make-output.txt"
    output.write_text("".join(f"[{p:3d}%] Building CXX object part{p}.o\n" for p in (2, 9, 14, 35, 36, 71, 100)))
    log_file = tmp_path / "build.log"
    llama_server.run_step(["cat", str(output)], cwd=tmp_path, log_file=log_file)
    reported = [line.split("]")[1].split("%")[0].strip() for line in capsys.readouterr().err.splitlines()]
    assert reported == ["10", "30", "70", "100"]
    assert "part36.o" in log_file.read_text()
    with pytest.raises(SystemExit) as failed:
        llama_server.run_step(["sh", "-c", "echo broken; exit 3"], cwd=tmp_path, log_file=log_file)
    assert "broken" in str(failed.value) and "exit 3" in str(failed.value)


def test_jaeger_without_a_container_engine_fails_in_one_line_and_leaves_nothing(tmp_path):
    """Asked for Jaeger where no engine runs (as on these machines): start-jaeger.sh says why,
    the stack adds one line, and the llama-server it had started is stopped again."""
    result = stack_cli("up", tmp_path=tmp_path, TRACE_BACKEND="jaeger", CONTAINER_ENGINE="no-such-engine",
                       LLAMA_STACK_PORT=str(free_port()), LLAMA_SERVER_PORT=str(free_port()))
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("[stack] error: ./start-jaeger.sh start failed"), result.stderr
    assert "Traceback" not in result.stderr
    assert sum("no-such-engine" in line for line in lines) == 1  # said once, by start-jaeger.sh
    assert stack_cli("status", tmp_path=tmp_path).returncode == 3  # nothing left running


def test_old_venvs_are_pruned_but_not_one_in_use(tmp_path):
    """local/venvs.py keeps KEEP_OLD_VENVS of a name besides the current one, by last use; one
    used within IN_USE_S stays whatever its rank (another clone's suite may be running in it)."""
    from local import venvs

    def venv(key: str, *, used_s_ago: float) -> Path:
        path = tmp_path / f"client-{key * 12}"
        (path / "bin").mkdir(parents=True)
        (path / ".complete").write_text("")
        used = time.time() - used_s_ago
        os.utime(path / ".complete", (used, used))
        return path

    current = venv("a", used_s_ago=0)
    # Three other clones' suites ran lately: the third is past KEEP_OLD_VENVS by rank, and in use.
    in_use = [venv(key, used_s_ago=minutes * 60) for key, minutes in (("b", 1), ("c", 5), ("d", 30))]
    unused = venv("e", used_s_ago=3 * 24 * 3600)
    other_name = venv("f", used_s_ago=5 * 24 * 3600).rename(tmp_path / f"client-0.7-{'f' * 12}")
    venvs.prune_old(tmp_path, "client", current)
    assert not unused.exists()
    assert all(p.exists() for p in (current, *in_use, other_name))


def test_a_second_builder_waits_for_the_first_instead_of_building_beside_it(tmp_path):
    """The cache's lock (local/venvs.py `exclusive`): while one process holds it, another that
    needs the same venv, binary or model says it waits, and goes on only once the first is done."""
    lock = tmp_path / "thing.lock"
    # Each holder prints when it got the lock and, still holding it, when it lets go (the
    # monotonic clock is one for all processes): the order is judged by those times, not by
    # whether the first process has exited, which it may still be doing when the second is done.
    hold = ("import sys, time; from local.venvs import exclusive\n"
            "with exclusive(__import__('pathlib').Path(sys.argv[1]), waiting='waiting'):\n"
            "    print('held', time.monotonic(), flush=True); time.sleep(float(sys.argv[2]))\n"
            "    print('releasing', time.monotonic(), flush=True)\n")
    first = subprocess.Popen([sys.executable, "-c", hold, str(lock), "2"], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().startswith("held ")
        second = subprocess.run([sys.executable, "-c", hold, str(lock), "0"],
                                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)
        assert second.returncode == 0 and second.stderr.strip() == "waiting", second
        first_released = float(first.stdout.readline().split()[1])
        second_held = float(second.stdout.split()[1])
        assert second_held >= first_released, "the second got the lock while the first still held it"
    finally:
        first.kill()
        first.wait()
