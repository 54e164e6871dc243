"""Who may use the approval app, and as whom: the login layer of ``tradeassist ui``.

jupyter_server ≥ 2 (under Voilà) asks an *identity provider* who sent each request; this is
ours. A request is logged in by one of two things, and nothing else:

* the **one-time token** ``tradeassist ui`` prints (``http://127.0.0.1:PORT/?token=…``). It
  logs in the command's acting user (``--as``, else ``TRADEASSIST_USER``, else the bootstrap
  admin) and is then spent: the answer sets the login cookie and sends the browser to the same
  address without the token, so the token never reaches the page, the kernel, a log line or
  the browser's history, and a second use of it is refused;
* **email and password** on the login page (``/login``), checked against the stored argon2id
  hash by ``services.identity.authenticate`` (which audits the login as ``USER_LOGIN``).

Either way the login is a cookie signed with a secret the server draws when it starts (so a
restart logs everyone out) and marked ``HttpOnly`` and ``SameSite=Lax``. A request without one
is sent to the login page (a websocket or a POST is refused with 403): no page shows any
portfolio data. A request whose ``Origin`` is not the address it was sent to is refused with
403 (the foreign ``Host`` check is jupyter_server's, switched on in ``ui.server``).
"""

from __future__ import annotations

import asyncio
import hmac
import html
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httputil import HTTPServerRequest
from tornado.websocket import WebSocketHandler
from traitlets import default

from ..core.errors import AuthenticationError
from ..db.engine import get_engine, unit_of_work
from ..services import identity

TOKEN_ARGUMENT = "token"
WRONG_LOGIN = "Wrong email or password, or the user is disabled."


def without_token(uri: str) -> str:
    """``uri`` with its ``token`` query argument taken out (the others kept, in order)."""
    parts = urlsplit(uri)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != TOKEN_ARGUMENT]
    return urlunsplit(parts._replace(query=urlencode(kept)))


def foreign_origin(request: HTTPServerRequest) -> bool:
    """Whether the request has an ``Origin`` (browsers send one with every websocket and every
    cross-site POST) that is not the host and port the request was sent to."""
    origin = request.headers.get("Origin") or request.headers.get("Sec-Websocket-Origin")
    if origin is None:
        return False  # a script, or a browser's same-origin GET
    return urlsplit(origin.strip().lower()).netloc != request.host.lower()


def password_user(email: str, password: str) -> User | None:
    """The user with this email and password (the login audited), else None."""
    try:
        with unit_of_work(get_engine()) as session:
            return User(username=identity.authenticate(session, email, password).email)
    except AuthenticationError:
        return None


class LoginIdentityProvider(IdentityProvider):
    """The approval app's logins: the one-time token, else the login cookie (set by the token
    or by the login page). ``offer_token`` arms the token; ``ui.server`` does it at start-up."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token: str | None = None  # never the ``token`` trait: jupyter_server shows that one
        self._token_email: str | None = None

    @default("cookie_options")
    def _cookie_options_default(self) -> dict[str, Any]:
        # a session cookie: gone when the browser closes (and void when the server restarts)
        return {"httponly": True, "samesite": "Lax", "expires_days": None}

    def offer_token(self, token: str, email: str) -> None:
        """Accept ``token`` once, as logging in ``email``."""
        self._token, self._token_email = token, email

    @property
    def token_spent(self) -> bool:
        return self._token is None

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        offered = self.get_token(handler)
        if not offered:
            return None
        if self._token is None or self._token_email is None:
            self.log.warning("a spent token was offered from %s", handler.request.remote_ip)
            return None
        if not hmac.compare_digest(offered.encode(), self._token.encode()):
            self.log.warning("a wrong token was offered from %s", handler.request.remote_ip)
            return None
        user = User(username=self._token_email)
        self._token = self._token_email = None  # one use only
        self.log.info("the one-time token logged %s in", user.username)
        return user

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        """The logged-in user, or None. A foreign ``Origin`` is refused first; a page address
        carrying a token (spent or not) is answered with the same address without it."""
        if foreign_origin(handler.request):
            handler.current_user = handler._jupyter_current_user = None  # type: ignore[attr-defined]
            raise web.HTTPError(403, "cross-origin request refused")
        user = await self._get_user(handler)
        request = handler.request
        if (
            TOKEN_ARGUMENT in request.query_arguments
            and request.method in ("GET", "HEAD")
            and not isinstance(handler, WebSocketHandler)
        ):
            target = without_token(request.uri or "/")
            if user is None:
                login = url_path_join(handler.base_url, "login")  # type: ignore[attr-defined]
                target = f"{login}?{urlencode({'next': target})}"
            handler.current_user = handler._jupyter_current_user = user  # type: ignore[attr-defined]
            handler.redirect(target)
            raise web.Finish()
        return user

    def should_check_origin(self, handler: web.RequestHandler) -> bool:
        return True  # a token does not exempt a request from the origin check

    def process_login_form(self, handler: web.RequestHandler) -> User | None:
        return None  # ``LoginHandler.post`` checks the password (off the event loop)

    def get_handlers(self) -> list[tuple[str, object]]:
        return [(r"/login", LoginHandler), (r"/logout", LogoutHandler)]


class LoginHandler(LoginFormHandler):
    """``/login``: email and password, checked against the stored argon2id hash."""

    def _render(self, message: dict[str, str] | None = None) -> None:
        self.write(
            login_page(
                next_url=self.get_argument("next", default=self.base_url),
                xsrf_field=self.xsrf_form_html(),
                email=self.get_argument("email", default=""),
                error=(message or {}).get("error"),
            )
        )

    @allow_unauthenticated
    async def post(self) -> None:
        email = self.get_argument("email", default="").strip()
        password = self.get_argument("password", default="")
        # argon2 takes a third of a second: not on the event loop, which serves everyone
        user = await asyncio.get_running_loop().run_in_executor(None, password_user, email, password)
        if user is None:
            self.log.warning("login refused for %r from %s", email, self.request.remote_ip)
            self.set_status(401)
            self._render(message={"error": WRONG_LOGIN})
            return
        self.current_user = user
        self.identity_provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))


class LogoutHandler(JupyterHandler):
    """``/logout``: forget the login cookie, back to the login page."""

    @allow_unauthenticated
    def get(self) -> None:
        self.identity_provider.clear_login_cookie(self)
        self.redirect(url_path_join(self.base_url, "login"))


def login_page(*, next_url: str, xsrf_field: str, email: str = "", error: str | None = None) -> str:
    """The login form: nothing on it but the form (it is what anyone who is not logged in sees)."""
    esc = html.escape
    problem = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tradeassist: log in</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f9; color: #1f2328; margin: 0; }}
main {{ max-width: 360px; margin: 12vh auto; background: #fff; padding: 28px 32px;
       border: 1px solid #d0d7de; border-radius: 8px; }}
h1 {{ font-size: 20px; margin: 0 0 18px; }}
label {{ display: block; font-size: 14px; margin: 12px 0 4px; }}
input[type=email], input[type=password] {{ width: 100%; box-sizing: border-box; padding: 7px 9px;
       font-size: 15px; border: 1px solid #8c959f; border-radius: 5px; }}
button {{ margin-top: 18px; padding: 8px 16px; font-size: 15px; border: 0; border-radius: 5px;
       background: #1f6feb; color: #fff; cursor: pointer; }}
.error {{ color: #b42318; font-size: 14px; }}
.hint {{ color: #57606a; font-size: 13px; margin-top: 18px; }}
</style>
</head>
<body>
<main class="ta-login">
<h1>tradeassist: approvals</h1>
{problem}
<form method="post" action="login" autocomplete="on">
{xsrf_field}
<input type="hidden" name="next" value="{esc(next_url)}">
<label for="email">Email</label>
<input id="email" name="email" type="email" value="{esc(email)}" required autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" required>
<button type="submit">Log in</button>
</form>
<p class="hint">Or open the one-time address <code>tradeassist ui</code> printed.</p>
</main>
</body>
</html>
"""
