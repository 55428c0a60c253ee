"""What a secured server on 127.0.0.1 needs: a private CA, a certificate it signed for the
host, and an API key — made once with the openssl command and kept in a folder of the cache.

The local stack serves OGX 1.5 the way it runs in production with these (LLAMA_STACK_SECURE=1),
and the tests make a second CA with them, one the client does not trust. Private keys and the
API key are files of mode 0600; the key's value is only ever read from its file, never printed.
(The `cryptography` package is not in the client venv; openssl is on every machine this runs on.)
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from local import venvs

DEFAULT_HOST = "127.0.0.1"
VALID_DAYS = 825  # the longest a server certificate may be valid for clients that check
RENEW_BEFORE_S = 30 * 24 * 3600  # made again when the certificate ends within 30 days


class CredentialsError(Exception):
    """openssl is missing or failed: one line saying which."""


@dataclass(frozen=True)
class Credentials:
    """The files of one set: ``ca_file`` is what a client trusts (SSL_CERT_FILE),
    ``certfile``/``keyfile`` what the server serves, ``api_key_file`` the key it accepts."""

    folder: Path
    host: str = DEFAULT_HOST

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def certfile(self) -> Path:
        return self.folder / "server.crt"

    @property
    def keyfile(self) -> Path:
        return self.folder / "server.key"

    @property
    def api_key_file(self) -> Path:
        return self.folder / "api-key"

    def api_key(self) -> str:
        return self.api_key_file.read_text().strip()


def default_folder() -> Path:
    return venvs.cache_dir() / "secure"


def openssl(*args: str) -> None:
    if shutil.which("openssl") is None:
        raise CredentialsError("the openssl command is not on PATH (apt-get install openssl)")
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise CredentialsError(f"openssl {args[0]} failed: {' '.join(result.stderr.split())[:300]}")


def private(path: Path) -> None:
    path.chmod(0o600)


def make_ca(folder: Path, *, name: str) -> tuple[Path, Path]:
    """A CA certificate and its key in folder: (ca.crt, ca.key)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, ca_key = folder / "ca.crt", folder / "ca.key"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(ca_key), "-out", str(ca_file), "-days", str(VALID_DAYS), "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-addext", "subjectKeyIdentifier=hash")
    private(ca_key)
    return ca_file, ca_key


def sign_server_certificate(*, ca_file: Path, ca_key: Path, certfile: Path, keyfile: Path, host: str) -> None:
    """A server certificate for host (an IP address or a DNS name), signed by the CA."""
    san = f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}"
    with tempfile.TemporaryDirectory() as scratch:
        request, extensions = Path(scratch) / "server.csr", Path(scratch) / "server.ext"
        extensions.write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                              "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
                              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(keyfile),
                "-out", str(request), "-subj", f"/CN={host}")
        private(keyfile)
        openssl("x509", "-req", "-in", str(request), "-CA", str(ca_file), "-CAkey", str(ca_key), "-set_serial",
                str(secrets.randbits(63)), "-days", str(VALID_DAYS), "-out", str(certfile), "-extfile", str(extensions))


def write_private(path: Path, text: str) -> None:
    """Write a file that only its owner can read, from its first byte on."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    private(path)  # an older file keeps its mode through O_CREAT


def still_valid(certfile: Path) -> bool:
    if not certfile.exists():
        return False
    try:
        openssl("x509", "-checkend", str(RENEW_BEFORE_S), "-noout", "-in", str(certfile))
    except CredentialsError as problem:
        if "not on PATH" in str(problem):
            raise
        return False  # expires within RENEW_BEFORE_S, or unreadable: make it again
    return True


def make(folder: Path, *, host: str = DEFAULT_HOST, ca_name: str = "llama-stack-otel local CA",
         api_key: str | None = None) -> Credentials:
    """A new set in folder: CA, server certificate for host, and the API key (a new one unless given)."""
    made = Credentials(folder, host)
    make_ca(folder, name=ca_name)
    sign_server_certificate(ca_file=made.ca_file, ca_key=made.ca_key, certfile=made.certfile, keyfile=made.keyfile,
                            host=host)
    write_private(made.api_key_file, (api_key or secrets.token_urlsafe(32)) + "\n")
    return made


def ensure(folder: Path | None = None, *, host: str = DEFAULT_HOST) -> Credentials:
    """The set in folder (default: the cache's), made when missing or about to expire; the
    API key is kept as long as its file is there."""
    folder = folder or default_folder()
    wanted = Credentials(folder, host)
    with venvs.exclusive(folder.parent / f".{folder.name}.lock", waiting="[stack] waiting for another process "
                                                                          "making the TLS certificates"):
        if still_valid(wanted.certfile) and wanted.ca_file.exists() and wanted.api_key_file.exists():
            return wanted
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        # A client keeps working with the key it was given: only the certificates are made anew.
        return make(folder, host=host, api_key=wanted.api_key() if wanted.api_key_file.exists() else None)
