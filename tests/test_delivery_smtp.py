"""SMTP backend against a real aiosmtpd server: STARTTLS with a test certificate, TLS, plain."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from newsletter.delivery.backends import make_backend
from newsletter.delivery.backends.smtp import SMTPBackend
from newsletter.delivery.send import send_issue
from tests.fixtures_delivery import delivery_settings, recorded_view, seed_issue, seed_subscribers
from tests.fixtures_email import RECORDED_DAY
from tests.independent_parsers import mailparser, raw_header_lines
from tests.live_server import free_port
from tests.test_delivery_sendgrid import batch

USER, PASSWORD = "digest", "s3cret-pass"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("smtp-cert")
    (d / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return d / "cert.pem", d / "key.pem"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.connections: set[int] = set()

    async def handle_RCPT(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("r1@"):
            return "550 no such mailbox"
        if address.startswith("r2@"):
            return "451 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.connections.add(id(session))  # aiosmtpd keeps one session object per connection
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


def _server(cert: tuple[Path, Path], security: str) -> tuple[Controller, Inbox]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    inbox = Inbox()
    # Implicit TLS: aiosmtpd only knows of STARTTLS, so it must not demand it before AUTH.
    kw: dict[str, Any] = {"authenticator": _auth, "auth_require_tls": security == "starttls"}
    if security == "starttls":
        kw.update(tls_context=ctx, require_starttls=True)
    elif security == "tls":
        kw.update(ssl_context=ctx)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kw)
    controller.start()
    return controller, inbox


@pytest.fixture(params=["starttls", "tls", "none"])
def smtp(
    request: pytest.FixtureRequest, cert: tuple[Path, Path]
) -> Iterator[tuple[str, int, Inbox]]:
    controller, inbox = _server(cert, request.param)
    yield request.param, controller.port, inbox
    controller.stop()


def test_issue_over_smtp_one_connection_per_batch(
    smtp: tuple[str, int, Inbox], cert: tuple[Path, Path], engine: Engine, database_url: str
) -> None:
    security, port, inbox = smtp
    seed_issue(engine)
    seed_subscribers(engine, 4)
    settings = delivery_settings(
        database_url,
        backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security=security,
        smtp_user=USER,
    ).model_copy(update={"smtp_password": SecretStr(PASSWORD)})
    backend = make_backend(settings, ssl_context=ssl.create_default_context(cafile=str(cert[0])))
    report = send_issue(engine, settings, RECORDED_DAY, view=recorded_view(), backend=backend)
    assert report.sent == 4 and report.batches == 1
    assert len(inbox.connections) == 1
    assert sorted(r[0] for _, r, _ in inbox.messages) == [
        f"reader{i}@example.com" for i in range(4)
    ]
    msg = email.message_from_bytes(inbox.messages[0][2], policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["List-Unsubscribe"].startswith("<https://digest.example.org/unsubscribe/")
    raw = inbox.messages[0][2]
    (line,) = raw_header_lines(raw, "List-Unsubscribe")
    assert line == f"List-Unsubscribe: {msg['List-Unsubscribe']}".encode()
    assert mailparser(raw)["unsubscribe_url"] == str(msg["List-Unsubscribe"])[1:-1]


def test_refused_recipients_fail_or_retry_by_reply_code(cert: tuple[Path, Path]) -> None:
    controller, inbox = _server(cert, "starttls")
    try:
        backend = SMTPBackend(
            "127.0.0.1",
            controller.port,
            user=USER,
            password=PASSWORD,
            ssl_context=ssl.create_default_context(cafile=str(cert[0])),
        )
        outcomes = backend.send_batch(batch(4))
    finally:
        controller.stop()
    assert [outcomes[f"<m{i}@example.org>"].status for i in range(4)] == [
        "sent",
        "failed",  # 550: final
        "retry",  # 451: passing
        "sent",
    ]
    assert [r for _, (r,), _ in inbox.messages] == ["r0@example.com", "r3@example.com"]
