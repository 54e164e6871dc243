"""Users, passwords, the bootstrap admin, access checks and their audit trail."""

from __future__ import annotations

import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import select

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tradeassist.core.errors import AccessDenied, AlreadyExists, AuthenticationError, ValidationError
from tradeassist.db.engine import unit_of_work
from tradeassist.db.models import AuditEvent, Portfolio, User
from tradeassist.services import identity, portfolios
from tradeassist.services.setup import init_database


def _add_user(engine: Engine, admin: User, email: str, password: str = "correct horse") -> None:
    with unit_of_work(engine) as s:
        identity.add_user(s, actor=s.get(User, admin.user_id), email=email, password=password)


def test_passwords_are_argon2id_and_login_records_the_time(engine: Engine, admin: User) -> None:
    _add_user(engine, admin, "ann@example.com")
    with unit_of_work(engine) as s:
        user = identity.get_user(s, "ann@example.com")
        assert user.password_hash.startswith("$argon2id$")
        assert user.last_login_at is None
        identity.authenticate(s, "ANN@example.com", "correct horse")
    with unit_of_work(engine, readonly=True) as s:
        assert identity.get_user(s, "ann@example.com").last_login_at is not None


def test_unknown_user_and_wrong_password_look_the_same(engine: Engine, admin: User) -> None:
    _add_user(engine, admin, "ann@example.com")
    messages, durations = [], []
    for email, password in [("ann@example.com", "wrong password"), ("nobody@example.com", "wrong password")]:
        start = time.perf_counter()
        with pytest.raises(AuthenticationError) as info, unit_of_work(engine) as s:
            identity.authenticate(s, email, password)
        durations.append(time.perf_counter() - start)
        messages.append(str(info.value))
    assert messages[0] == messages[1] == "Invalid email or password."
    # Both paths do one full argon2 verification; allow for a busy machine.
    assert max(durations) / min(durations) < 5


def test_malformed_stored_hash_is_a_failed_login(engine: Engine, admin: User) -> None:
    _add_user(engine, admin, "ann@example.com")
    with unit_of_work(engine) as s:
        user = identity.get_user(s, "ann@example.com")
        user.password_hash = "not-a-hash"
        s.add(user)
    with pytest.raises(AuthenticationError), unit_of_work(engine) as s:
        identity.authenticate(s, "ann@example.com", "correct horse")


def test_weak_parameters_are_rehashed_at_login(engine: Engine, admin: User) -> None:
    _add_user(engine, admin, "ann@example.com")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse")
    with unit_of_work(engine) as s:
        user = identity.get_user(s, "ann@example.com")
        user.password_hash = weak
        s.add(user)
    with unit_of_work(engine) as s:
        identity.authenticate(s, "ann@example.com", "correct horse")
    with unit_of_work(engine, readonly=True) as s:
        stored = identity.get_user(s, "ann@example.com").password_hash
    assert stored != weak
    assert not PasswordHasher().check_needs_rehash(stored)


def test_disabled_user_cannot_log_in(engine: Engine, admin: User) -> None:
    _add_user(engine, admin, "ann@example.com")
    with unit_of_work(engine) as s:
        identity.set_enabled(s, actor=s.get(User, admin.user_id), email="ann@example.com", enabled=False)
    with pytest.raises(AuthenticationError), unit_of_work(engine) as s:
        identity.authenticate(s, "ann@example.com", "correct horse")
    with unit_of_work(engine, readonly=True) as s:
        actions = s.exec(select(AuditEvent.action)).all()
    assert "USER_DISABLED" in actions


def test_duplicate_users_and_short_passwords_are_refused(engine: Engine, admin: User) -> None:
    _add_user(engine, admin, "ann@example.com")
    with pytest.raises(AlreadyExists), unit_of_work(engine) as s:
        identity.add_user(s, actor=None, email="Ann@Example.com", password="whatever123")
    with pytest.raises(ValidationError), unit_of_work(engine) as s:
        identity.add_user(s, actor=None, email="bob@example.com", password="short")


def test_init_creates_the_admin_once_and_never_changes_it(engine: Engine, monkeypatch) -> None:
    with unit_of_work(engine, readonly=True) as s:
        before = identity.bootstrap_admin(s)
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "USER_CREATED")).all()
    assert before.email == ADMIN_EMAIL and before.is_bootstrap_admin
    assert len(events) == 1  # init left an audit row
    monkeypatch.setenv("TRADEASSIST_ADMIN_EMAIL", "other@example.com")
    monkeypatch.setenv("TRADEASSIST_ADMIN_PASSWORD", "a-different-password")
    result = init_database(engine)
    assert not result.admin_created and result.admin_email == ADMIN_EMAIL
    with unit_of_work(engine) as s:
        after = identity.bootstrap_admin(s)
        assert after.password_hash == before.password_hash
        identity.authenticate(s, ADMIN_EMAIL, ADMIN_PASSWORD)
        assert identity.find_user(s, "other@example.com") is None


def test_access_owner_member_admin_and_a_stranger(engine: Engine, admin: User) -> None:
    _add_user(engine, admin, "owner@example.com")
    _add_user(engine, admin, "member@example.com")
    _add_user(engine, admin, "stranger@example.com")
    with unit_of_work(engine) as s:
        owner = identity.get_user(s, "owner@example.com")
        portfolios.add_portfolio(s, actor=owner, name="ISA", broker="AJBell", tax_treatment="ISA")
        portfolios.share_portfolio(s, actor=owner, name="ISA", email="member@example.com")
    with unit_of_work(engine, readonly=True) as s:
        for email, visible in [
            ("owner@example.com", True),
            ("member@example.com", True),
            (ADMIN_EMAIL, True),
            ("stranger@example.com", False),
        ]:
            rows = portfolios.list_portfolios(s, actor=identity.get_user(s, email))
            assert (len(rows) == 1) is visible, email
    with pytest.raises(AccessDenied), unit_of_work(engine) as s:
        stranger = identity.get_user(s, "stranger@example.com")
        portfolios.share_portfolio(s, actor=stranger, name="ISA", email="stranger@example.com")
    with unit_of_work(engine, readonly=True) as s:
        denial = s.exec(select(AuditEvent).where(AuditEvent.action == "ACCESS_DENIED")).one()
        stranger = identity.get_user(s, "stranger@example.com")
        portfolio = s.exec(select(Portfolio)).one()
        members = portfolios.list_portfolios(s, actor=stranger)
    # The denial is audited although the refused work was rolled back.
    assert denial.actor_user_id == stranger.user_id
    assert denial.entity_id == str(portfolio.portfolio_id)
    assert members == []


def test_every_state_change_is_audited_in_the_same_transaction(engine: Engine, admin: User) -> None:
    with pytest.raises(RuntimeError), unit_of_work(engine) as s:
        portfolios.add_portfolio(
            s, actor=s.get(User, admin.user_id), name="GIA", broker="X", tax_treatment="GIA"
        )
        raise RuntimeError("the caller fails after the service ran")
    with unit_of_work(engine, readonly=True) as s:
        assert s.exec(select(Portfolio)).all() == []
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "PORTFOLIO_CREATED")).all() == []
    with unit_of_work(engine) as s:
        portfolios.add_portfolio(
            s, actor=s.get(User, admin.user_id), name="GIA", broker="X", tax_treatment="GIA"
        )
    with unit_of_work(engine, readonly=True) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "PORTFOLIO_CREATED")).one()
        assert event.actor_user_id == admin.user_id and event.details["name"] == "GIA"
