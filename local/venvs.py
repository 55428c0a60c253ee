#!/usr/bin/env python3
"""Create (once) and print the path of a cached virtual environment.

    python3 local/venvs.py [--python PYTHON] NAME REQUIREMENTS_FILE [MORE_FILES...]

The venv lives outside the clone, under $LLAMA_STACK_OTEL_CACHE (default
~/.cache/llama-stack-otel)/venvs/NAME-<key>, where the key hashes the requirement
files, the Python version and the sources of local packages they name (a line such as
``./instrumentation``, a path pip reads from the current folder): a changed requirement or
package builds a new venv, an unchanged one is reused by every clone on the machine. The venv's Python is the one running
this, unless --python (or ensure's python=) names another interpreter. A build goes to a temporary folder and
is marked complete only when pip succeeded, so an interrupted build is redone.
Progress goes to stderr; stdout carries only the path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "llama-stack-otel"
KEEP_OLD_VENVS = 2  # per name, besides the current one
# Never pruned younger than this: clones and worktrees share the cache, and a venv another one
# built today (its requirements or its local packages differ) may be in use right now.
KEEP_RECENT_S = 24 * 3600


def cache_dir() -> Path:
    return Path(os.environ.get("LLAMA_STACK_OTEL_CACHE") or DEFAULT_CACHE_DIR).expanduser()


def python_version(python: Path | None) -> str:
    """sys.version of python (None: this interpreter), which goes into the venv's key."""
    if python is None:
        return sys.version
    try:
        result = subprocess.run([str(python), "-c", "import sys; print(sys.version)"],
                                capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        sys.exit(f"[venv] cannot run the Python {python}: {error}")
    return result.stdout.rstrip("\n")


LOCAL_PACKAGE_LINE = re.compile(r"(?:-e\s+)?(\.{1,2}/\S*)")
NOT_BUILT_FROM = {"__pycache__", "tests", "build", ".pytest_cache"}


def local_packages(requirement_file: Path) -> list[Path]:
    """The folders a requirement file installs from (``./instrumentation``), relative to the
    current folder as pip reads them."""
    found = []
    for line in requirement_file.read_text().splitlines():
        match = LOCAL_PACKAGE_LINE.fullmatch(line.split(" #", 1)[0].strip())
        if match and Path(match[1]).is_dir():
            found.append(Path(match[1]))
    return found


def package_sources(folder: Path) -> Iterator[Path]:
    """The files a local package is built from: all but caches, build output and its tests."""
    for path in sorted(folder.rglob("*")):
        parts = set(path.relative_to(folder).parts)
        if path.is_file() and not parts & NOT_BUILT_FROM and not any(p.endswith(".egg-info") for p in parts):
            yield path


def venv_key(requirement_files: list[Path], python: Path | None = None) -> str:
    digest = hashlib.sha256(python_version(python).encode())
    for path in requirement_files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        for folder in local_packages(path):
            for source in package_sources(folder):
                digest.update(str(source.relative_to(folder)).encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def prune_old(venvs: Path, name: str, keep: Path) -> None:
    # Only NAME-<key>: a venv "server" must not prune "server-0.7-<key>".
    own = re.compile(rf"{re.escape(name)}-[0-9a-f]{{12}}")
    old = sorted(
        (p for p in venvs.glob(f"{name}-*") if p != keep and own.fullmatch(p.name) and p.is_dir()
         and (p / ".complete").exists()),  # one without a marker may be another process's build
        key=lambda p: p.stat().st_mtime,
    )
    for path in old[:-KEEP_OLD_VENVS] if KEEP_OLD_VENVS else old:
        try:
            built = (path / ".complete").stat().st_mtime
        except OSError:  # another process pruned it just now
            continue
        if time.time() - built > KEEP_RECENT_S:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def exclusive(lock_path: Path, *, waiting: str) -> Iterator[None]:
    """Hold an exclusive lock on lock_path: a second process building the same thing (two
    `make` commands, or a test starting a stack while the cache is still cold) waits for the
    first instead of building it again beside it, or deleting what the first is building."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(waiting, file=sys.stderr, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # the lock goes with the file's closing, also when the process dies


def ensure(name: str, requirement_files: list[Path], python: Path | None = None) -> Path:
    """The venv NAME with requirement_files installed, built with python (None: this one)."""
    venvs = cache_dir() / "venvs"
    target = venvs / f"{name}-{venv_key(requirement_files, python)}"
    if (target / ".complete").exists():
        return target
    with exclusive(venvs / f"{target.name}.lock", waiting=f"[venv] waiting for another process building {target}"):
        return build(name, requirement_files, target, python)


def build(name: str, requirement_files: list[Path], target: Path, python: Path | None = None) -> Path:
    marker = target / ".complete"
    if marker.exists():  # built while we waited for the lock
        return target
    venvs = target.parent
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)  # an interrupted build has no marker
    print(f"[venv] building the {name!r} environment in {target} (first time only; a few minutes)", file=sys.stderr)
    started = time.monotonic()
    # Built at its final path (venv scripts hard-code it); a failed one is moved aside for a look.
    subprocess.run([str(python or sys.executable), "-m", "venv", str(target)], check=True)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--quiet", "--disable-pip-version-check"]
    args = [arg for path in requirement_files for arg in ("-r", str(path))]
    result = subprocess.run(pip + args, stdout=sys.stderr)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        target.rename(partial)
        sys.exit(f"[venv] pip failed for {name!r} (exit {result.returncode}); left in {partial}")
    marker.write_text(" ".join(str(f) for f in requirement_files) + "\n")
    print(f"[venv] {name!r} ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    prune_old(venvs, name, target)
    return target


def main(argv: list[str]) -> int:
    python = None
    if argv[:1] == ["--python"] and len(argv) > 1:
        python, argv = Path(argv[1]), argv[2:]
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    name, files = argv[0], [Path(f) for f in argv[1:]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"[venv] no such requirements file: {', '.join(missing)}", file=sys.stderr)
        return 2
    print(ensure(name, files, python))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
