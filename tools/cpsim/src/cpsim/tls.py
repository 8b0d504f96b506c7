"""A self-signed certificate generated at start, like the gateway's bundled keystore."""

from __future__ import annotations

import ipaddress
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path | None = None, host: str = "localhost") -> tuple[Path, Path]:
    """Write cert.pem and key.pem into `directory` (a new temp dir by default); returns their paths."""
    out = directory or Path(tempfile.mkdtemp(prefix="cpsim-tls-"))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, host),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cpsim (Client Portal simulator)"),
        ]
    )
    now = datetime.now(UTC)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if host not in ("localhost", "127.0.0.1", "0.0.0.0"):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class TemporaryCertificate:
    """A self-signed certificate in a private temporary folder, which `remove()` deletes.

    The server reads the files once, when it builds its TLS context at start; remove them as soon as it
    listens. Removing only at exit would leave the folder behind whenever the process dies by a signal
    (uvicorn re-raises SIGTERM after its shutdown, which ends the process before any `finally`).
    """

    def __init__(self, host: str = "localhost") -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="cpsim-tls-"))
        try:
            self.cert, self.key = self_signed(self.directory, host)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the folder and both files (again: nothing happens)."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TemporaryCertificate:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()
