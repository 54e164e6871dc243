"""``init``: create or upgrade the schema and create the bootstrap admin once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from ..core.config import secret, settings
from ..db import migrate
from ..db.engine import unit_of_work
from . import identity


@dataclass(frozen=True)
class InitResult:
    revision: str | None
    admin_email: str
    admin_created: bool
    generated_password: str | None


DEFAULT_ADMIN_EMAIL = "admin@localhost.localdomain"


def init_database(engine: Engine) -> InitResult:
    """Idempotent: upgrading an up-to-date schema does nothing, and an existing bootstrap
    admin is never changed (not even its password, whatever the environment says)."""
    migrate.upgrade(engine)
    with unit_of_work(engine) as session:
        admin = identity.bootstrap_admin(session)
        if admin is not None:
            return InitResult(migrate.head_revision(), admin.email, False, None)
        chosen = settings()
        email = chosen.admin_email or DEFAULT_ADMIN_EMAIL
        password = secret(chosen.admin_password)
        generated = None
        if not password:
            password = generated = identity.generate_password()
        admin = identity.add_user(session, actor=None, email=email, password=password, bootstrap_admin=True)
        admin_email = admin.email
    return InitResult(migrate.head_revision(), admin_email, True, generated)
