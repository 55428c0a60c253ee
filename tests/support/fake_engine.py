"""Stand-in for podman/docker in tests (no container engine runs on these machines).

Appends each command line to $FAKE_ENGINE_STATE/calls.jsonl and keeps just enough
state (containers, networks) to answer the calls the start scripts make.

Not imported for its code: a test copies this file's text behind a `#!python` line into
an executable named `podman` on PATH (tests/test_setup_files.py, the `engine` fixture).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(args: list[str]) -> int:
    state_dir = Path(os.environ["FAKE_ENGINE_STATE"])
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / "state.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {"containers": [], "networks": []}
    with open(state_dir / "calls.jsonl", "a") as calls:
        calls.write(json.dumps(args) + "\n")

    code = 0
    if args[:1] == ["info"]:
        pass
    elif args[:1] == ["inspect"]:
        if args[-1] in state["containers"]:
            print("true")
        else:
            code = 1
    elif args[:2] == ["network", "inspect"]:
        code = 0 if args[2] in state["networks"] else 1
    elif args[:2] == ["network", "create"]:
        state["networks"].append(args[2])
    elif args[:1] == ["run"]:
        state["containers"].append(args[args.index("--name") + 1])
        print("0123456789ab")
    elif args[:1] == ["rm"]:
        state["containers"] = [c for c in state["containers"] if c != args[-1]]
    elif args[:1] == ["logs"]:
        print("fake engine log line")
    else:
        print(f"fake engine: unsupported {args}", file=sys.stderr)
        code = 125
    state_file.write_text(json.dumps(state))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
