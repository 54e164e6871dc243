"""EMAIL: one message over SMTP (smtplib), with a deadline on the whole exchange.

Settings come from the environment (``SmtpSettings.from_env``):

* ``TRADEASSIST_SMTP_HOST`` (required), ``TRADEASSIST_SMTP_PORT`` (default 587 with STARTTLS,
  else 25), ``TRADEASSIST_SMTP_STARTTLS`` (1/0, true/false, yes/no; default true),
* ``TRADEASSIST_SMTP_USER`` and ``TRADEASSIST_SMTP_PASSWORD``: login only when a user is set,
* ``TRADEASSIST_SMTP_FROM``: the sender (default: the user, when it is an address).

``build_email`` makes the MIME structure (tested on its own)::

    multipart/mixed                      only when there are attachments
      multipart/alternative
        text/plain                       the text body
        multipart/related                only when there are inline images
          text/html                      <img src="cid:ID">
          image/png                      Content-ID: <ID>, inline
      application/... ; filename=...     each attachment

Nothing waits forever: every socket operation (connect, each read of a reply, each piece
sent, the TLS handshake) waits at most the channel's ``timeout`` (default 30 s) and at most
what is left of the exchange's ``deadline`` (default 120 s, or the timeout if longer; from
connecting to the last reply), so a server that drips its greeting or its replies one byte
at a time is dropped at the deadline. The password, and the base64 forms that AUTH
PLAIN/LOGIN put on the wire, never appear in a result or a log line.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING

from ...core.config import parse_bool, secret, settings
from ...core.errors import ConfigError, ValidationError
from ...core.redaction import redact
from .base import DeliveryResult, OutgoingMessage

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

NAME = "EMAIL"
DEFAULT_TIMEOUT = 30.0  # seconds per socket operation
DEFAULT_DEADLINE = 120.0  # seconds for the whole exchange
_SEND_PIECE = 64 * 1024  # the message is sent in pieces, each within the time left


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    sender: str
    port: int = 587
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True

    @classmethod
    def from_env(cls) -> SmtpSettings:
        """Read ``TRADEASSIST_SMTP_*``; ``ConfigError`` names the variable that is missing or wrong."""
        env = settings()
        host = (env.smtp_host or "").strip()
        if not host:
            raise ConfigError("EMAIL: TRADEASSIST_SMTP_HOST is not set (the SMTP server to send through)")
        starttls = parse_bool("TRADEASSIST_SMTP_STARTTLS", env.smtp_starttls, default=True)
        raw_port = (env.smtp_port or "").strip()
        if raw_port:
            if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
                raise ConfigError(f"EMAIL: TRADEASSIST_SMTP_PORT={raw_port!r} is not a port number")
            port = int(raw_port)
        else:
            port = 587 if starttls else 25
        user = (env.smtp_user or "").strip() or None
        password = secret(env.smtp_password) or None
        if user and password is None:
            raise ConfigError("EMAIL: TRADEASSIST_SMTP_USER is set but TRADEASSIST_SMTP_PASSWORD is not")
        sender = (env.smtp_from or "").strip() or (user if user and "@" in user else "")
        if not sender:
            raise ConfigError("EMAIL: TRADEASSIST_SMTP_FROM is not set (the sender's address)")
        if not _is_address(sender):
            raise ConfigError(f"EMAIL: TRADEASSIST_SMTP_FROM={sender!r} is not an email address")
        return cls(host=host, port=port, user=user, password=password, sender=sender, starttls=starttls)


def _is_address(text: str) -> bool:
    if "\r" in text or "\n" in text:
        return False
    _name, address = parseaddr(text)
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain and " " not in address)


_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)


def _image_subtype(data: bytes) -> str:
    for magic, subtype in _IMAGE_MAGIC:
        if data.startswith(magic):
            return subtype
    return "png"


# Names that never receive mail: what ``init`` calls the admin without TRADEASSIST_ADMIN_EMAIL
# (admin@localhost.localdomain), a host without a domain, and RFC 6761's special-use names.
PLACEHOLDER_DOMAINS = ("localhost", "localdomain", "invalid", "local")


def placeholder_problem(address: str) -> str | None:
    """Why mail to ``address`` can never be delivered, or None when it may be."""
    domain = parseaddr(address)[1].rpartition("@")[2].strip().lower().rstrip(".")
    if "." in domain and domain.rsplit(".", 1)[1] not in PLACEHOLDER_DOMAINS and domain != "localhost":
        return None
    return (
        f"{address} is a placeholder address that no mail reaches (the administrator's, when "
        "`tradeassist init` ran without TRADEASSIST_ADMIN_EMAIL): the portfolio's owner needs a real one"
    )


def build_email(message: OutgoingMessage, sender: str, to: str) -> EmailMessage:
    """The MIME message (see the module docstring for its structure)."""
    for role, address in (("sender", sender), ("recipient", to)):
        if not _is_address(address):
            raise ValidationError(f"EMAIL: the {role} {address!r} is not an email address")
    msg = EmailMessage()
    msg["Subject"] = message.subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2])
    msg.set_content(message.text)
    if message.html is not None:
        msg.add_alternative(message.html, subtype="html")
        html_part = list(msg.iter_parts())[-1]
        for content_id, data in message.inline_images:
            subtype = _image_subtype(data)
            html_part.add_related(
                data,
                maintype="image",
                subtype=subtype,
                cid=f"<{content_id}>",
                disposition="inline",
                filename=f"{content_id}.{subtype}",
            )
    for filename, mime_type, data in message.attachments:
        maintype, _, subtype = mime_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


class _DeadlineReader:
    """Reply lines read straight from the socket, each ``recv`` waiting at most ``wait()``.

    smtplib reads replies through ``sock.makefile()``, whose every ``recv`` gets the socket's
    timeout afresh: a server sending one byte just inside it holds the exchange forever.
    """

    def __init__(self, sock: socket.socket, wait: Callable[[], float]) -> None:
        self._sock = sock
        self._wait = wait
        self._buffer = b""

    def readline(self, limit: int = -1) -> bytes:
        while True:
            newline = self._buffer.find(b"\n")
            end = newline + 1 if newline >= 0 else 0
            if limit >= 0 and (end > limit or (not end and len(self._buffer) >= limit)):
                end = limit
            if end:
                line, self._buffer = self._buffer[:end], self._buffer[end:]
                # What comes next (the TLS handshake takes its timeout from the socket) gets
                # the time left, not what was left before this line.
                self._sock.settimeout(self._wait())
                return line
            self._sock.settimeout(self._wait())
            chunk = self._sock.recv(4096)
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk

    def close(self) -> None:
        self._buffer = b""


class _DeadlineSMTP(smtplib.SMTP):
    """smtplib with every socket operation bounded by ``min(timeout, time left)``: each
    connect (one address at a time), each ``recv`` of a reply (``_DeadlineReader``), each
    piece of what is sent and the TLS handshake. A server that drips its greeting or a reply
    cannot stretch the exchange past the deadline; once it has passed, the next operation
    raises ``TimeoutError`` at once."""

    def __init__(self, *, timeout: float, deadline: float, clock: Callable[[], float]) -> None:
        self._op_timeout = timeout
        self._deadline = deadline
        self._clock = clock
        super().__init__(timeout=timeout)  # no host: connect() is called explicitly

    def _remaining(self) -> float:
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise TimeoutError("the SMTP exchange did not finish within its deadline")
        return min(self._op_timeout, remaining)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # smtplib's hook is private (typeshed does not declare it); create_connection would
        # give each of the host's addresses the whole timeout.
        error = OSError(f"{host} has no address")
        for *_, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            try:
                return socket.create_connection(
                    (str(address[0]), port), self._remaining(), self.source_address
                )
            except OSError as exc:
                error = exc
        raise error

    def send(self, s: ReadableBuffer | str) -> None:
        if isinstance(s, str):  # a command line: short
            if self.sock is not None:
                self.sock.settimeout(self._remaining())
            super().send(s)
            return
        data = memoryview(s).cast("B")
        for start in range(0, max(len(data), 1), _SEND_PIECE):  # each piece within the time left
            if self.sock is not None:
                self.sock.settimeout(self._remaining())
            super().send(data[start : start + _SEND_PIECE])

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _DeadlineReader(self.sock, self._remaining)
        return super().getreply()


def _auth_secrets(user: str | None, password: str | None) -> list[str]:
    """The password as typed and as AUTH PLAIN / LOGIN encode it on the wire."""
    if not password:
        return []
    forms = [password, base64.b64encode(password.encode()).decode()]
    if user:
        forms.append(base64.b64encode(f"\0{user}\0{password}".encode()).decode())
    return forms


def _reply_text(code: int | None, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    text = " ".join(text.split())
    return f"{code} {text}".strip() if code is not None else text


def _code_result(code: int, what: str) -> tuple[bool, str]:
    # 4xx: the server says try again later; 5xx: it will refuse the same way.
    return (400 <= code < 500), what


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or (
        isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError)
    )


def _classify(
    exc: BaseException, settings: SmtpSettings, timeout: float, deadline: float | None = None
) -> tuple[bool, str]:
    """(retryable, reason) for an SMTP failure; ``deadline``: the exchange's, when it has passed."""
    if deadline is not None and _timed_out(exc):
        return (
            True,
            f"no complete exchange within the {deadline:g} s deadline (connect, greeting and replies)",
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = "; ".join(f"{rcpt}: {_reply_text(*answer)}" for rcpt, answer in exc.recipients.items())
        codes = [answer[0] for answer in exc.recipients.values()]
        return all(400 <= c < 500 for c in codes), f"the server refused the recipient ({refusals})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return _code_result(
            exc.smtp_code,
            f"the server refused the login for user {settings.user!r} "
            f"({_reply_text(exc.smtp_code, exc.smtp_error)}); check TRADEASSIST_SMTP_USER/PASSWORD",
        )
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return _code_result(
            exc.smtp_code,
            f"the server refused the sender {exc.sender!r} ({_reply_text(exc.smtp_code, exc.smtp_error)})",
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return _code_result(
            exc.smtp_code, f"the server answered {_reply_text(exc.smtp_code, exc.smtp_error)}"
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(exc.__context__, TimeoutError):
        return True, f"no answer within {timeout:g} s (the server accepted the connection, then went silent)"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True, f"the server closed the connection ({exc})"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return False, f"{exc} (check TRADEASSIST_SMTP_STARTTLS and the port)"
    if isinstance(exc, smtplib.SMTPException):
        return False, str(exc)
    if isinstance(exc, ssl.SSLError):
        return False, f"TLS failed ({exc})"
    if isinstance(exc, TimeoutError):
        return True, f"no answer within {timeout:g} s ({exc or 'timed out'})"
    if isinstance(exc, OSError):
        return True, f"could not reach the server ({type(exc).__name__}: {exc})"
    raise exc  # a programming error: let it surface


class EmailChannel:
    """Sends over SMTP. ``settings`` default to ``SmtpSettings.from_env()`` read at each send."""

    name = NAME

    def __init__(
        self,
        settings: SmtpSettings | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self._settings = settings
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else max(DEFAULT_DEADLINE, timeout)
        self._tls_context = tls_context
        self._clock = clock

    def send(self, message: OutgoingMessage, target: str) -> DeliveryResult:
        try:
            settings = self._settings or SmtpSettings.from_env()
        except ConfigError as exc:
            return DeliveryResult.permanent(NAME, str(exc))
        hidden = _auth_secrets(settings.user, settings.password)
        problem = placeholder_problem(target) if _is_address(target) else None
        if problem is not None:  # refused here: the server would only bounce it, or worse, accept it
            return DeliveryResult.permanent(NAME, f"EMAIL: {problem}")
        try:
            email_message = build_email(message, settings.sender, target)
        except ValidationError as exc:
            return DeliveryResult.permanent(NAME, redact(str(exc), hidden))
        where = f"SMTP {settings.host}:{settings.port}"
        deadline = self._clock() + self.deadline
        try:
            self._transmit(settings, email_message, target, deadline)
        except Exception as exc:
            expired = self.deadline if self._clock() >= deadline else None
            retryable, reason = _classify(exc, settings, self.timeout, expired)
            error = redact(f"{where}: {reason}", hidden)
        else:
            log.info("email %r sent to %s via %s", message.subject, target, where)
            return DeliveryResult.ok(NAME, provider_message_id=email_message["Message-ID"])
        # Logged and returned outside the except block: no traceback holding the SMTP session.
        log.warning("email to %s not sent: %s", target, error)
        if retryable:
            return DeliveryResult.retry(NAME, error)
        return DeliveryResult.permanent(NAME, error)

    def _transmit(
        self, settings: SmtpSettings, email_message: EmailMessage, target: str, deadline: float
    ) -> None:
        smtp = _DeadlineSMTP(timeout=self.timeout, deadline=deadline, clock=self._clock)
        try:
            smtp.connect(settings.host, settings.port)
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=self._tls_context or ssl.create_default_context())
                smtp.ehlo()
            if settings.user:
                if not settings.starttls:
                    log.warning(
                        "SMTP %s:%d: logging in without STARTTLS; the password crosses the network "
                        "unencrypted",
                        settings.host,
                        settings.port,
                    )
                smtp.login(settings.user, settings.password or "")
            sender_address = parseaddr(settings.sender)[1]
            smtp.send_message(email_message, from_addr=sender_address, to_addrs=[parseaddr(target)[1]])
            # The message was accepted: a lost goodbye does not unsend it.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
        finally:
            smtp.close()
