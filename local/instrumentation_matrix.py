"""Run the instrumentor's tests once per supported client release, each in its own cached venv.

    python -m local.instrumentation_matrix [ENV ...] [-- PYTEST_ARGS]   # make test-instrumentation

The way instrumentation packages test library versions (tox envs per release): the oldest and
the latest release of each client line the instrumentor supports, one after the other, each
announced before it runs. Each gets a cached venv from instrumentation/tests/requirements/
common.txt + <env>.txt: llama-stack-client 0.2.12 (the app's pinned client) on the Python
running this (3.11), the others on Python 3.12 (found as the local stack finds it). None of them
installs the instrumentor or the app: the tests import it from its source (instrumentation/src,
on pytest's path), so an edit is tested without a rebuild.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local.stack import PROJECT_ROOT, StackError, find_python
from local.venvs import ensure

INSTRUMENTATION = PROJECT_ROOT / "instrumentation"
REQUIREMENTS = INSTRUMENTATION / "tests" / "requirements"


@dataclass(frozen=True)
class Env:
    name: str  # the client release, as pip names it
    python: str | None  # major.minor; None: the Python running this (the client venv's)
    requirements: tuple[Path, ...]
    tests: tuple[str, ...] = ()  # what pytest runs (default: the testpaths, the Stainless-shaped clients' tests)


# The OpenAPI-generated clients (ogx-client 1.2+) have tests of their own, in tests/openapi_clients; its
# --confcutdir keeps the Stainless clients' conftest (which imports their _base_client) out.
OPENAPI_TESTS = ("--confcutdir=tests/openapi_clients", "tests/openapi_clients")
ENVS = tuple(Env(name, python, (REQUIREMENTS / "common.txt", REQUIREMENTS / f"{name}.txt"), tests)
             for name, python, tests in (
    ("llama-stack-client-0.2.12", None, ()), ("llama-stack-client-0.7.0", "3.12", ()),
    ("llama-stack-client-0.7.5", "3.12", ()), ("ogx-client-1.0.0", "3.12", ()), ("ogx-client-1.1.3", "3.12", ()),
    ("ogx-client-1.2.0", "3.12", OPENAPI_TESTS), ("ogx-client-1.5.0", "3.12", OPENAPI_TESTS)))


def venv_of(env: Env) -> Path:
    python = None if env.python is None else find_python(env.python, needed_by=f"the {env.name} tests")
    return ensure(f"instr-{env.name}", list(env.requirements), python)


def main(argv: list[str]) -> int:
    names, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    unknown = set(names) - {env.name for env in ENVS}
    if unknown:
        print(f"no such env: {', '.join(sorted(unknown))} (have: {', '.join(env.name for env in ENVS)})", file=sys.stderr)
        return 2
    results = []
    for env in [env for env in ENVS if not names or env.name in names]:
        try:
            venv = venv_of(env)
        except StackError as error:
            print(f"=== {env.name}: {error}", flush=True)
            results.append((env.name, "no python", 0.0))
            continue
        print(f"=== {env.name} ({venv.name})", flush=True)
        started = time.monotonic()
        done = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", *env.tests, *pytest_args], cwd=INSTRUMENTATION)
        results.append((env.name, "ok" if done.returncode == 0 else f"failed ({done.returncode})",
                        time.monotonic() - started))
    print("=== instrumentation matrix")
    for name, outcome, seconds in results:
        print(f"  {name:28} {outcome:12} {seconds:5.1f} s")
    return 0 if all(outcome == "ok" for _, outcome, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
