"""A real SMTP server on loopback (aiosmtpd) standing in for the clinic's mail server,
and a self-signed certificate for its STARTTLS path."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME, PASSWORD = "bot@clinic.example", "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_signed_certificate(folder: Path) -> Tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1 and localhost, made with `cryptography`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test SMTP server")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class SmtpReceiver:
    """Keeps every message it accepts. `reply` set to e.g. "451 4.3.0 try later" plays a
    server that refuses for now. With `certificate`, it offers STARTTLS and requires it,
    and sign-in (USERNAME / PASSWORD) over it."""

    def __init__(self, port: Optional[int] = None, certificate: Optional[Tuple[Path, Path]] = None) -> None:
        self.port = port or free_port()
        self.reply: Optional[str] = None
        self.received: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                with receiver._lock:
                    if receiver.reply:
                        return receiver.reply
                    receiver.received.append({
                        "mail_from": envelope.mail_from,
                        "rcpt_tos": list(envelope.rcpt_tos),
                        "message": message_from_bytes(envelope.content, policy=policy.default),
                        "tls": session.ssl is not None,
                        "authenticated": bool(session.authenticated),
                    })
                return "250 OK"

        parameters: Dict[str, Any] = {}
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
            parameters = {"tls_context": context, "require_starttls": True,
                          "authenticator": self._authenticate, "auth_require_tls": True}
        # a generous ready_timeout: the machine may be busy with other test runs
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ready_timeout=30,
                                     **parameters)

    @staticmethod
    def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        good = (isinstance(auth_data, LoginPassword)
                and auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode())
        return AuthResult(success=good, handled=False)

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

    def messages(self) -> List[EmailMessage]:
        with self._lock:
            return [entry["message"] for entry in self.received]
