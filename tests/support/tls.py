"""Self-signed certificates for tests and benchmarks that speak HTTPS (made with openssl)."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.procs import require_binary


@dataclass(frozen=True, slots=True)
class Cert:
    cert: Path  # PEM certificate; also the trust anchor a client verifies against
    key: Path  # PEM private key (P-256)


def self_signed(
    folder: Path, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), days: int = 2
) -> Cert:
    """A P-256 certificate valid for ``hosts`` (IP addresses or DNS names), its own CA."""
    openssl = require_binary("openssl", "/usr/bin")
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    names = ",".join(
        f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}" for h in hosts
    )
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-nodes",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-days",
            str(days),
            "-subj",
            f"/CN={hosts[0]}",
            "-addext",
            f"subjectAltName={names}",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o644)  # nginx workers (an unprivileged user) read it after the master
    return Cert(cert, key)


def spki_hash(cert: Path) -> str:
    """base64 SHA-256 of the certificate's public key: what Chromium's
    ``--ignore-certificate-errors-spki-list`` trusts (this certificate only)."""
    openssl = require_binary("openssl", "/usr/bin")
    pem = subprocess.run(
        [openssl, "x509", "-in", str(cert), "-pubkey", "-noout"], capture_output=True, check=True
    ).stdout
    spki = subprocess.run(
        [openssl, "pkey", "-pubin", "-outform", "der"], input=pem, capture_output=True, check=True
    ).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
