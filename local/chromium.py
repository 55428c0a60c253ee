#!/usr/bin/env python3
"""Install (once) and print the path of Chromium, the browser the suite opens Phoenix's trace link in.

    python3 -m local.chromium

`make test` runs this through `python3 -m local.stack prepare --with-browser`. Chromium
is a system package, not a pip one: when it is already there (CHROMIUM, default
/usr/bin/chromium) nothing happens; otherwise, as root on Debian, `apt-get update` and
`apt-get install -y --no-install-recommends chromium` install it (~125 MB to fetch,
~415 MB on disk; 18 s here), their output going to
$LLAMA_STACK_OTEL_CACHE/chromium-install.log. When it cannot be installed (not root, no
apt-get, apt failing) one line says why and the exit status is 1.
Progress goes to stderr; stdout carries only the path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from local.venvs import cache_dir

DEFAULT_CHROMIUM = "/usr/bin/chromium"  # Debian's package puts its launcher here
PACKAGE = "chromium"


class InstallError(Exception):
    """Chromium is missing and could not be installed: one line saying why."""


def log(message: str) -> None:
    print(f"[chromium] {message}", file=sys.stderr, flush=True)


def chromium_path() -> Path:
    return Path(os.environ.get("CHROMIUM") or DEFAULT_CHROMIUM)


def last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def ensure() -> Path:
    """Chromium's path, installed with apt-get first if it is missing."""
    chromium = chromium_path()
    if chromium.exists():
        return chromium
    if chromium != Path(DEFAULT_CHROMIUM):
        raise InstallError(f"CHROMIUM={chromium} does not exist — point it at a Chromium binary or unset it")
    if shutil.which("apt-get") is None:
        raise InstallError(f"{chromium} is missing and there is no apt-get to install it — "
                           "install Chromium and set CHROMIUM to its path")
    if os.geteuid() != 0:
        raise InstallError(f"{chromium} is missing and installing it needs root — run "
                           f"`sudo apt-get install --no-install-recommends {PACKAGE}`, or set CHROMIUM to a Chromium binary")
    log_file = cache_dir() / "chromium-install.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log(f"{chromium} is missing: installing Debian's {PACKAGE} with apt-get (~125 MB; output in {log_file})")
    started = time.monotonic()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log_file.open("w") as output:
        for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]):
            output.write(f"$ {' '.join(command)}\n")
            output.flush()
            result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                raise InstallError(f"`{' '.join(command)}` failed (exit {result.returncode}): {last_line(log_file)} "
                                   f"— full output in {log_file}")
    if not chromium.exists():
        raise InstallError(f"apt-get installed {PACKAGE} but {chromium} is still missing — see {log_file}")
    log(f"installed {chromium} in {time.monotonic() - started:.0f} s")
    return chromium


def main() -> int:
    try:
        print(ensure())
    except InstallError as error:
        log(f"error: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
