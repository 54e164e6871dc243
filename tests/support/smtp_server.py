"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the email tests: it logs in one canary user
and keeps every envelope it accepts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.ports import free_port

SMTP_USER = "bot@example.com"
SMTP_PASSWORD = "CANARY-smtp-pw-7f3a9e"


class SmtpRecorder:
    """aiosmtpd handler: keeps each envelope; RCPT answers can be scripted by address."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.rcpt_replies: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@contextmanager
def running_smtp_server() -> Iterator[tuple[Controller, SmtpRecorder]]:
    """A started server and its recorder; stopped on exit."""
    recorder = SmtpRecorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield controller, recorder
    finally:
        controller.stop()
