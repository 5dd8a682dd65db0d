"""Throwaway certificates for TLS tests: a CA, a server cert for 127.0.0.1/localhost,
client certs (store-1 and any others asked for) and an unrelated CA. Made with
``cryptography`` (dev extra), or the ``openssl`` command when that is missing.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Pki:
    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / name


def make_pki(folder: Path, clients: tuple[str, ...] = ()) -> Pki:
    """ca, server (SAN 127.0.0.1 and localhost), client store-1, and an unrelated CA.

    ``clients`` adds more client certificates signed by ``ca``: ``<cn>.crt``/``<cn>.key``
    with that common name (e.g. ``store-2``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = ("store-1", *(cn for cn in clients if cn != "store-1"))
    try:
        _pki_with_cryptography(folder, names)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is available")
        _pki_with_openssl(folder, names)
    return Pki(folder)


def _pki_with_cryptography(folder: Path, clients: tuple[str, ...]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def issue(
        name: str, cn: str, issuer: tuple[Any, x509.Name] | None, usage: Any
    ) -> tuple[Any, x509.Name]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        signer, issuer_name = issuer or (key, subject)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
        )
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
        if usage is ExtendedKeyUsageOID.SERVER_AUTH:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        cert = builder.sign(signer, hashes.SHA256())
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return key, subject

    ca = issue("ca", "kktmon test CA", None, None)
    issue("server", "localhost", ca, ExtendedKeyUsageOID.SERVER_AUTH)
    for cn in clients:
        issue(cn, cn, ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    issue("other-ca", "somebody else's CA", None, None)


def _pki_with_openssl(folder: Path, clients: tuple[str, ...]) -> None:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    for ca in ("ca", "other-ca"):
        run(
            "req", "-x509", *new_key, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-subj", "/CN=ca"
        )
    server = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    leaves = {"server": server, **dict.fromkeys(clients, "extendedKeyUsage=clientAuth\n")}
    for name, extensions in leaves.items():
        (folder / f"{name}.ext").write_text(extensions)
        cn = "localhost" if name == "server" else name
        run(
            "req",
            *new_key[:-2],
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={cn}",
        )
        sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            *sign,
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.crt",
        )
