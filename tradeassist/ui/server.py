"""The approval app's web server: Voilà, locked down. ``tradeassist ui`` runs it as
``python -m tradeassist.ui.server NOTEBOOK --port=N …`` and writes one line of JSON on its
stdin first, ``{"token": …, "email": …}``: the one-time token and the user it logs in (on
stdin, not in the arguments or the environment, where other processes and the kernels could
read it).

What it adds to Voilà (0.5, on jupyter_server 2):

* the logins of ``ui.auth`` (the one-time token, email and password), and a login for every
  page and websocket;
* jupyter_server's ``Host`` check, which Voilà switches off (``allow_remote_access``): only
  ``localhost`` and loopback addresses are served, so a DNS-rebound name gets 403; no CORS
  origin is allowed (``ui.auth`` refuses a foreign ``Origin`` with 403);
* one kernel per page, started with ``TRADEASSIST_USER`` set to the logged-in user's email:
  the kernel acts as that user and no one else (with no logged-in user no kernel starts; the
  browser cannot run code in it, Voilà passes only widget messages). The kernel's websocket
  is open only to the user it was started for;
* request logs with tokens masked (jupyter_server's ``log_request``);
* the notebooks of ``SIDE_PAGES`` beside the approval view, each at a path of its own
  (``/dashboard``: ``notebooks/dashboard.ipynb``, the approval view's sibling), behind the same
  login; everything else stays Voilà's single-notebook page at ``/``.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from typing import Any

import jinja2
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import User
from jupyter_server.base.call_context import CallContext
from jupyter_server.log import log_request
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import url_path_join
from tornado import web
from voila.app import Voila

from .auth import LoginIdentityProvider

ACTING_USER_VARIABLE = "TRADEASSIST_USER"

# Pages served beside the approval view: path -> notebook, in the approval notebook's directory.
SIDE_PAGES = {"dashboard": "dashboard.ipynb"}

# Settings of the tornado application (jupyter_server reads them), applied last.
LOCKED_DOWN: dict[str, Any] = {
    "allow_remote_access": False,  # check the Host header: loopback addresses and these names only
    "local_hostnames": ["localhost"],
    "allow_origin": "",
    "allow_origin_pat": None,
    "allow_credentials": False,
    "allow_unauthenticated_access": False,
    "disable_check_xsrf": False,
    "log_function": partial(log_request, record_prometheus_metrics=False),
}

# jupyter_server's own handlers (the kernel websocket, the login) render their errors with this
# (its stock template needs static files Voilà does not serve).
ERROR_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ status_code }} {{ status_message }}</title></head>
<body style="font-family: system-ui, sans-serif; margin: 12vh auto; max-width: 480px">
<h1 style="font-size: 20px">{{ status_code }} {{ status_message }}</h1>
<p>{{ message }}</p><p><a href="{{ base_url }}login">Log in</a></p>
</body></html>
"""


def logged_in_user() -> User | None:
    """The user logged in on the request being served (jupyter_server keeps its handler in a
    context variable for the length of the request), else None."""
    handler = CallContext.get(CallContext.JUPYTER_HANDLER)
    user = getattr(handler, "current_user", None) if handler is not None else None
    return user if isinstance(user, User) else None


class UserKernelManager(AsyncMappingKernelManager):
    """Starts each page's kernel as the user who asked for the page, and remembers whose it is."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owners: dict[str, str] = {}

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        user = logged_in_user()
        if user is None:  # never the server's own identity: no user, no kernel
            raise web.HTTPError(403, "no logged-in user to start a kernel for")
        env = dict(kwargs.get("env") or os.environ)
        env[ACTING_USER_VARIABLE] = user.username
        kwargs["env"] = env
        kernel_id: str = await super().start_kernel(*args, **kwargs)
        self.owners[kernel_id] = user.username
        return kernel_id

    def remove_kernel(self, kernel_id: str) -> Any:
        self.owners.pop(kernel_id, None)
        return super().remove_kernel(kernel_id)


class KernelOwnerAuthorizer(Authorizer):
    """A kernel (its websocket, its model) is for the user it was started for only."""

    def is_authorized(self, handler: Any, user: User, action: str, resource: str) -> bool:
        if resource != "kernels":
            return True
        kernel_id = handler.path_kwargs.get("kernel_id") or getattr(handler, "kernel_id", None)
        owners = getattr(handler.settings.get("kernel_manager"), "owners", {})
        return kernel_id is not None and owners.get(kernel_id) == user.username


class ApprovalServer(Voila):
    """Voilà with ``ui.auth``'s logins, the Host and Origin checks, and per-user kernels."""

    login_token: str | None = None
    login_email: str | None = None

    def initialize(self, argv: list[str] | None = None) -> None:
        super().initialize(argv)
        # set after the configuration is read, so no configuration file can swap them out
        self.identity_provider_class = LoginIdentityProvider
        self.authorizer_class = KernelOwnerAuthorizer
        self.voila_configuration.multi_kernel_manager_class = UserKernelManager
        self.voila_configuration.preheat_kernel = False  # a pre-heated kernel would have no user
        # last, over any configuration file: ``start`` applies these after the settings above
        self.tornado_settings = {**self.tornado_settings, **LOCKED_DOWN}  # type: ignore[has-type]

    def init_handlers(self) -> list[Any]:
        """Voilà's handlers with a page for each of ``SIDE_PAGES`` before its catch-all (``/(.*)``,
        the approval view, which would send ``/dashboard`` to a file download)."""
        handlers: list[Any] = super().init_handlers()
        if not self.notebook_path:
            return handlers
        folder = os.path.dirname(os.path.abspath(self.notebook_path))
        every_path = url_path_join(self.server_url, r"/(.*)")
        catch_all = next(i for i, h in enumerate(handlers) if h[0] == every_path)
        _pattern, handler, options = handlers[catch_all]
        pages = [
            (
                url_path_join(self.server_url, rf"/{path}/?"),
                handler,
                {**options, "notebook_path": os.path.relpath(os.path.join(folder, name), self.root_dir)},
            )
            for path, name in SIDE_PAGES.items()
            if os.path.isfile(os.path.join(folder, name))
        ]
        return handlers[:catch_all] + pages + handlers[catch_all:]

    def init_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {**super().init_settings(), **LOCKED_DOWN}
        settings["jinja2_env"] = jinja2.Environment(
            loader=jinja2.DictLoader({"error.html": ERROR_PAGE}), autoescape=True
        )
        if self.login_token and self.login_email:
            self.identity_provider.offer_token(self.login_token, self.login_email)
        return settings


def main(argv: list[str] | None = None) -> None:
    handshake = json.loads(sys.stdin.readline() or "{}")
    token, email = handshake.get("token"), handshake.get("email")
    if not token or not email:
        sys.exit("tradeassist.ui.server: start it with `tradeassist ui` (no token on stdin)")
    server = ApprovalServer.instance()
    server.login_token, server.login_email = token, email
    server.initialize(sys.argv[1:] if argv is None else argv)
    server.start()


if __name__ == "__main__":
    main()
