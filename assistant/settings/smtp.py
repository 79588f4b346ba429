"""The SMTP server e-mail alerts go through, from the environment, checked at start-up.

    SMTP_HOST       the server (required once clinic.yml sets notify_email or weekly_summary)
    SMTP_PORT       default 587 for starttls, 465 for tls, 25 for none
    SMTP_SECURITY   starttls (default) | tls (TLS from the first byte) | none
    SMTP_USERNAME   with SMTP_PASSWORD, or neither (a relay that needs no sign-in)
    SMTP_PASSWORD
    SMTP_FROM       the sender, e.g. "Clinic chat <bot@clinic.example>" (required)
    SMTP_CA_FILE    a PEM file of the certificate authorities to trust *instead of* the
                    system's: for a server with a private or self-signed certificate
    STAFF_BASE_URL  where staff open the console (links in the e-mails); default the
                    bot's own address, http://localhost:RASA_PORT

They come from the environment rather than clinic.yml because the password is
a secret and clinic.yml is committed. Every mistake stops start-up (the
launcher calls `email_settings_problem`) with the variable's name, rather than
surfacing hours later as alerts that never arrive. The certificate is always
verified: with starttls/tls there is no "accept any certificate" switch, only
SMTP_CA_FILE to trust a specific one. A password is never sent over an
unencrypted connection to another machine.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Mapping, Optional
from urllib.parse import urlparse

from email_validator import EmailNotValidError, validate_email

SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT_SECONDS = 15.0
STAFF_BASE_URL_ENV = "STAFF_BASE_URL"


class SmtpConfigError(ValueError):
    """An SMTP_* variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # one of SECURITY_MODES
    sender: Address
    username: Optional[str] = None
    password: Optional[str] = None
    ca_file: Optional[Path] = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def tls_context(self) -> Optional[ssl.SSLContext]:
        """The verifying context for starttls/tls (the CA file only, when one is given)."""
        if self.security == "none":
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    @property
    def sender_domain(self) -> str:
        return self.sender.domain or "localhost"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sender(value: str) -> Address:
    display, address = parseaddr(value)
    try:
        normalized = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise SmtpConfigError(f"SMTP_FROM {value!r} is not an e-mail address ({error})") from None
    local, _, domain = normalized.rpartition("@")
    return Address(display_name=display, username=local, domain=domain)


def smtp_settings(env: Mapping[str, str] = os.environ) -> SmtpSettings:
    """Read and check the SMTP_* variables; SmtpConfigError names the first problem."""
    def get(name: str) -> Optional[str]:
        value = env.get(name, "").strip()
        return value or None

    missing = [name for name in ("SMTP_HOST", "SMTP_FROM") if get(name) is None]
    if missing:
        raise SmtpConfigError(
            f"e-mail alerts are configured in clinic.yml but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set (the SMTP server to send them through "
            "and the sender address; see README, E-mail alerts)")
    host = get("SMTP_HOST") or ""
    security = (get("SMTP_SECURITY") or "starttls").lower()
    if security not in SECURITY_MODES:
        raise SmtpConfigError(f"SMTP_SECURITY {security!r} must be one of {', '.join(SECURITY_MODES)}")
    port_text = get("SMTP_PORT")
    port = DEFAULT_PORTS[security]
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise SmtpConfigError(f"SMTP_PORT {port_text!r} must be a port number (1-65535)")
        port = int(port_text)
    username, password = get("SMTP_USERNAME"), env.get("SMTP_PASSWORD") or None
    if (username is None) != (password is None):
        raise SmtpConfigError("SMTP_USERNAME and SMTP_PASSWORD must be set together (or neither)")
    if password is not None and security == "none" and not _is_loopback(host):
        raise SmtpConfigError(
            "SMTP_PASSWORD with SMTP_SECURITY=none would send the password unencrypted to "
            f"{host}; use starttls or tls")
    ca_file: Optional[Path] = None
    if get("SMTP_CA_FILE"):
        ca_file = Path(get("SMTP_CA_FILE") or "")
        if security == "none":
            raise SmtpConfigError("SMTP_CA_FILE is set but SMTP_SECURITY=none uses no TLS")
        try:
            ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as error:
            raise SmtpConfigError(f"SMTP_CA_FILE {str(ca_file)!r} is not a readable PEM certificate file "
                                  f"({type(error).__name__})") from None
    return SmtpSettings(host=host, port=port, security=security, sender=_sender(get("SMTP_FROM") or ""),
                        username=username, password=password, ca_file=ca_file)


def staff_base_url(env: Mapping[str, str] = os.environ) -> str:
    """Where the staff console is reached from the staff's computers (no trailing slash)."""
    value = env.get(STAFF_BASE_URL_ENV, "").strip()
    if not value:
        return f"http://localhost:{env.get('RASA_PORT') or 5005}"
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or " " in value:
        raise SmtpConfigError(f"{STAFF_BASE_URL_ENV} {value!r} must be a full URL like https://bot.clinic.example")
    return value.rstrip("/")


def email_settings_problem(notify_email: object, weekly_summary: object,
                           env: Mapping[str, str] = os.environ) -> Optional[str]:
    """For the launcher: what is wrong with the e-mail settings, or None (also when no e-mail is
    configured: the SMTP_* variables are then not needed and not read)."""
    if not notify_email and not weekly_summary:
        return None
    try:
        smtp_settings(env)
        staff_base_url(env)
    except SmtpConfigError as error:
        return f"e-mail settings: {error}"
    return None
