"""Users: argon2id password hashes, login, enable/disable, the bootstrap admin, and who acts.

Who acts (``acting_user``), on every face (CLI, notebooks, task runs):

* **PostgreSQL, a person's own login** (a role in the ``tradeassist_user`` group, mapped to
  its user by ``users.db_role``): that user, whatever ``--as`` or ``TRADEASSIST_USER`` say;
  naming another user is refused unless the login is the bootstrap admin's. Row-level
  security (``db.row_security``) holds the database to the same rule, for raw SQL too.
* **PostgreSQL as the owner (or a superuser), and SQLite**: the user named (``--as``, else
  ``TRADEASSIST_USER``), else the bootstrap admin. SQLite's boundary is the database file's
  permissions (0600, its directory 0700): whoever can open it is its owner.

``add_person`` adds a user and, on PostgreSQL, their login role (``add_login`` gives one to a
user who has none): created at once when the connection may create roles, otherwise the one
SQL command an administrator runs is returned. The password becomes the login's (PostgreSQL
keeps its SCRAM verifier); no hash of it is kept in ``users``, which every login can read.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from ..core.errors import (
    AccessDenied,
    AlreadyExists,
    AuthenticationError,
    ConfigError,
    NotFound,
    ValidationError,
)
from ..core.timeutil import utcnow
from ..db import row_security
from ..db.models import User
from . import access, audit

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2-cffi's defaults: the RFC 9106 "low memory" argon2id parameters. (Imported on
    first use: most commands never hash.)"""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user is unknown, so both failures cost the same time (made on
    first use: hashing costs a third of a second, too much for every command's start-up)."""
    return _hasher().hash("tradeassist-no-such-user")


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher().hash(password)


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise ValidationError(f"email: {email!r} is not an email address")
    return email


def find_user(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def get_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no user {email!r}")
    return user


def bootstrap_admin(session: Session) -> User | None:
    return session.exec(select(User).where(User.is_bootstrap_admin == True)).first()  # noqa: E712


def add_user(
    session: Session,
    *,
    actor: User | None,
    email: str,
    password: str,
    bootstrap_admin: bool = False,
    db_role: str | None = None,
) -> User:
    email = normalize_email(email)
    if actor is not None:
        access.require_admin(session, actor, "add users")
    if find_user(session, email) is not None:
        raise AlreadyExists(f"user {email!r} exists already")
    user = User(
        email=email,
        password_hash=hash_password(password),
        is_bootstrap_admin=bootstrap_admin,
        db_role=db_role,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor or (user if bootstrap_admin else None),
        action="USER_CREATED",
        entity_type="user",
        entity_id=user.user_id,
        details={"email": email, "bootstrap_admin": bootstrap_admin},
    )
    return user


def set_enabled(session: Session, *, actor: User | None, email: str, enabled: bool) -> User:
    user = get_user(session, email)
    if actor is not None and not actor.is_bootstrap_admin and actor.user_id != user.user_id:
        raise AccessDenied(
            "only the bootstrap admin may enable or disable other users",
            actor_user_id=actor.user_id,
            entity_type="user",
            entity_id=user.user_id,
            operation="user.enable" if enabled else "user.disable",
        )
    if user.is_enabled != enabled:
        user.is_enabled = enabled
        session.add(user)
        audit.record(
            session,
            actor=actor,
            action="USER_ENABLED" if enabled else "USER_DISABLED",
            entity_type="user",
            entity_id=user.user_id,
            details={"email": user.email},
        )
        _set_login_enabled(session, user, enabled)
    return user


def _set_login_enabled(session: Session, user: User, enabled: bool) -> None:
    """A disabled user's login role can no longer log in, where this connection may say so
    (row security ignores a disabled user's login anyway)."""
    login = database_login(session)
    if not user.db_role or login is None or not login.can_create_roles:
        return
    if row_security.role_exists(session.connection(), user.db_role):
        row_security.set_login_enabled(session.connection(), user.db_role, enabled)


def authenticate(session: Session, email: str, password: str) -> User:
    """Check a password. Unknown user, wrong password, disabled user and a malformed stored
    hash all give the same error, after the same amount of hashing work."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    user = find_user(session, email)
    stored = user.password_hash if user is not None else _dummy_hash()
    try:
        _hasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise AuthenticationError() from None
    if user is None or not user.is_enabled:
        raise AuthenticationError()
    if _hasher().check_needs_rehash(stored):
        user.password_hash = _hasher().hash(password)
    user.last_login_at = utcnow()
    session.add(user)
    audit.record(session, actor=user, action="USER_LOGIN", entity_type="user", entity_id=user.user_id)
    return user


def acting_user(session: Session, email: str | None = None, *, named_by: str | None = None) -> User:
    """Who acts: on a person's own PostgreSQL login, its user (naming another is refused but
    for the bootstrap admin's login); otherwise the user named by ``email`` (``--as``, else
    ``TRADEASSIST_USER``), else the bootstrap admin. A disabled user may not act. The CLI, the
    notebooks and task runs share this rule. ``named_by`` says where the email came from, for
    the error (default ``TRADEASSIST_USER=...``)."""
    login = database_login(session)
    if login is not None and login.personal:
        user = _login_user(login)
        if not email or email.strip().lower() == user.email:
            return user
        if not user.is_bootstrap_admin:
            raise AccessDenied(
                f"{named_by or f'TRADEASSIST_USER={email}'}: refused: you are connected as "
                f"{user.email} (database role {login.role}); only the administrator acts as another user",
                actor_user_id=user.user_id,
                entity_type="user",
                entity_id=user.user_id,
                operation="act as another user",
            )
    found = find_user(session, email) if email else bootstrap_admin(session)
    if found is None:
        if email:
            raise NotFound(f"{named_by or f'TRADEASSIST_USER={email}'}: no such user")
        raise ConfigError("no bootstrap admin: run `tradeassist init` first")
    if not found.is_enabled:
        raise ValidationError(f"user {found.email} is disabled")
    return found


def generate_password() -> str:
    return secrets.token_urlsafe(18)


# --------------------------------------------------------------------------------------------
# PostgreSQL logins
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DatabaseLogin:
    """The connection's PostgreSQL role: ``user`` is the user whose login it is (None: the
    owner, a superuser or a role no user has); ``personal`` means it acts only as that user."""

    role: str
    user: User | None
    personal: bool
    can_create_roles: bool


def database_login(session: Session) -> DatabaseLogin | None:
    """Who the connection is on PostgreSQL (None on SQLite, which has no roles)."""
    facts = row_security.current_login(session.connection())
    if facts is None:
        return None
    user = session.exec(select(User).where(User.db_role == facts.role)).first()
    return DatabaseLogin(
        role=facts.role,
        user=user,
        personal=user is not None or facts.personal,
        can_create_roles=facts.superuser or facts.can_create_roles,
    )


def _login_user(login: DatabaseLogin) -> User:
    if login.user is None:
        raise ConfigError(
            f"database role {login.role} is no tradeassist user's login: "
            "the administrator gives it to one (`tradeassist user add-login EMAIL --db-role ROLE`)"
        )
    if not login.user.is_enabled:
        raise ValidationError(f"user {login.user.email} is disabled")
    return login.user


@dataclass(frozen=True)
class NewLogin:
    """A user's login role: ``created`` by this connection, or the ``command`` (one SQL
    statement, the password as a SCRAM verifier) an administrator runs to create it."""

    role: str
    created: bool
    command: str | None


@dataclass(frozen=True)
class AddedPerson:
    user: User
    login: NewLogin | None  # None on SQLite


def _login_role(session: Session, email: str, role: str | None) -> str:
    """The login role for ``email`` (``role``, else ``ta_`` and the email's letters): valid,
    and nobody's yet, in this database or on the server."""
    role = (role or row_security.role_name_for(email)).strip()
    problem = row_security.check_role_name(role)
    if problem:
        raise ValidationError(problem)
    holder = session.exec(select(User).where(User.db_role == role)).first()
    if holder is not None:
        raise AlreadyExists(f"database role {role} is {holder.email}'s login already")
    if row_security.role_exists(session.connection(), role):
        raise AlreadyExists(
            f"database role {role} exists already on the server: choose another with --db-role"
        )
    return role


def _provision(session: Session, login: DatabaseLogin, role: str, password: str) -> NewLogin:
    connection = session.connection()
    if login.can_create_roles:
        row_security.create_login(connection, role, password)
        return NewLogin(role, True, None)
    return NewLogin(role, False, row_security.create_login_sql(connection, role, password) + ";")


def add_person(
    session: Session, *, actor: User | None, email: str, password: str, db_role: str | None = None
) -> AddedPerson:
    """Add a user; on PostgreSQL with their own login role (``db_role``, else derived from the
    email) whose password is ``password``. On SQLite ``db_role`` is refused (no roles there)."""
    login = database_login(session)
    if login is None:
        if db_role:
            raise ValidationError(
                "--db-role: SQLite has no database roles (its boundary is the file's permissions)"
            )
        return AddedPerson(add_user(session, actor=actor, email=email, password=password), None)
    if actor is not None:
        access.require_admin(session, actor, "add users")
    hash_password(password)  # the same rule for the login's password
    email = normalize_email(email)
    role = _login_role(session, email, db_role)
    # No hash of the login's password in ``users`` (readable by every login): a random one.
    user = add_user(session, actor=actor, email=email, password=generate_password(), db_role=role)
    new = _provision(session, login, role, password)
    _audit_login(session, actor, user, new)
    return AddedPerson(user, new)


def add_login(
    session: Session, *, actor: User | None, email: str, password: str, db_role: str | None = None
) -> NewLogin:
    """Give an existing user (the bootstrap admin, a user added before logins) a login role.
    Mapping a user to a role changes ``users.db_role``, which only the owner's connection may."""
    login = database_login(session)
    if login is None:
        raise ValidationError("database logins are PostgreSQL's: SQLite's boundary is the file's permissions")
    if actor is not None:
        access.require_admin(session, actor, "give users a database login")
    if login.personal:
        raise AccessDenied(
            "giving an existing user a login needs the database owner's connection (--db OWNER_URL)",
            actor_user_id=login.user.user_id if login.user else None,
            entity_type="user",
            operation="give users a database login",
        )
    user = get_user(session, email)
    if user.db_role is not None:
        raise AlreadyExists(f"{user.email} has the database login {user.db_role} already")
    hash_password(password)
    role = _login_role(session, user.email, db_role)
    user.db_role = role
    session.add(user)
    session.flush()
    new = _provision(session, login, role, password)
    _audit_login(session, actor, user, new)
    return new


def _audit_login(session: Session, actor: User | None, user: User, new: NewLogin) -> None:
    audit.record(
        session,
        actor=actor,
        action="USER_LOGIN_ADDED",
        entity_type="user",
        entity_id=user.user_id,
        details={"email": user.email, "db_role": new.role, "role_created": new.created},
    )
