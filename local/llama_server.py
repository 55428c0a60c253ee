#!/usr/bin/env python3
"""Build (once) and print the path of llama.cpp's `llama-server`.

    python3 -m local.llama_server

No wheel on PyPI carries llama-server, but the llama-cpp-python sdist vendors the full
llama.cpp sources; this compiles the server target from them with cmake and a C++
compiler (about 8 minutes on 2 cores, once per machine). The binary is linked
statically and cached under $LLAMA_STACK_OTEL_CACHE (default ~/.cache/llama-stack-otel)
/llama-server/<key>/, keyed by the sdist version and the build flags, so every clone
on the machine reuses it. Progress goes to stderr; stdout carries only the path.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from local.venvs import cache_dir, exclusive

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary to cache
    "-DLLAMA_CURL=OFF",  # models come from a local file, never a URL
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    # -march=native turns on ggml's AMX kernels where the CPU lists AMX; in VMs that list it
    # without letting a process use it, llama-server dies on its first matrix product
    # (ldtilecfg: general protection fault). GCC's explicit -mno-* flags outlast -march=native.
    "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
    "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16",
]


def log(message: str) -> None:
    print(f"[llama-server] {message}", file=sys.stderr, flush=True)


def build_key() -> str:
    digest = hashlib.sha256(LLAMA_CPP_PYTHON_VERSION.encode())
    digest.update(" ".join(CMAKE_FLAGS).encode())
    return f"{LLAMA_CPP_PYTHON_VERSION}-{digest.hexdigest()[:10]}"


def binary_path() -> Path:
    return cache_dir() / "llama-server" / build_key() / "llama-server"


PROGRESS = re.compile(r"^\[\s*(\d+)%\]")  # cmake's generated makefiles prefix lines with it
PROGRESS_STEP = 10  # percent between progress lines on stderr


def run_step(command: list[str], *, cwd: Path, log_file: Path) -> None:
    """Run one build step, its output to the log; say every PROGRESS_STEP % how far it got."""
    started = time.monotonic()
    reported = 0
    with log_file.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            out.write(line)
            match = PROGRESS.match(line)
            if match and int(match.group(1)) >= reported + PROGRESS_STEP:
                reported = int(match.group(1)) // PROGRESS_STEP * PROGRESS_STEP
                log(f"{reported:3d}% after {time.monotonic() - started:.0f} s")
        returncode = process.wait()
    if returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-25:])
        sys.exit(f"{tail}\n[llama-server] build step failed (exit {returncode}): {' '.join(command)}\n"
                 f"[llama-server] full log: {log_file}")


def build(target: Path) -> None:
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            sys.exit(f"[llama-server] '{tool}' not found: building llama-server needs cmake and a C++ compiler "
                     "(Debian/Ubuntu: apt install cmake g++)")
    jobs = str(os.cpu_count() or 2)
    log(f"compiling llama.cpp's server from the llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist "
        f"(first time only; about 8 min on 2 idle cores, up to 20 when they are busy; -j{jobs})")
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llama-server-build-", dir=target.parent) as tmp:
        work = Path(tmp)
        log_file = target.parent / "build.log"
        log_file.write_text("")
        run_step([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                  "--no-binary", ":all:", f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(work)],
                 cwd=work, log_file=log_file)
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = work / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}" / "vendor" / "llama.cpp"
        log(f"sources unpacked; configuring (log: {log_file})")
        run_step(["cmake", "-S", str(source), "-B", str(work / "build"), *CMAKE_FLAGS], cwd=work, log_file=log_file)
        log("compiling (the slow part)")
        run_step(["cmake", "--build", str(work / "build"), "--target", "llama-server", "-j", jobs],
                 cwd=work, log_file=log_file)
        built = work / "build" / "bin" / "llama-server"
        partial = target.with_name(target.name + ".partial")
        shutil.copy2(built, partial)
        partial.rename(target)  # atomic: a half-copied binary never looks finished
    log(f"built {target} in {time.monotonic() - started:.0f} s")


def ensure() -> Path:
    target = binary_path()
    if not target.exists():
        with exclusive(target.with_name("build.lock"), waiting="[llama-server] another process is compiling it; waiting"):
            if not target.exists():  # it may have finished while we waited
                build(target)
    return target


if __name__ == "__main__":
    print(ensure())
