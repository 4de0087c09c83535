"""Which business office (branch, 营业部) an account belongs to: a side table keyed by account id.

Seed 003 reports collection per business office (weekly progress per branch, monthly process checks, quarterly
targets). The import file's optional `branch` column fills this table; the money KPIs (campaigns/money.py) group
by it. It lives beside the accounts table rather than in it, so the account model and its personal columns stay
one concern; an account without a row has no branch ("", shown as "(no branch)").
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from sqlalchemy import Float, String, select
from sqlalchemy.orm import Mapped, mapped_column

from duebot.accounts.models import Base
from duebot.accounts.store import AccountStore

MAX_BRANCH = 64  # characters; the importer's default field limit


class AccountBranch(Base):
    __tablename__ = "account_branches"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    branch: Mapped[str] = mapped_column(String(MAX_BRANCH), index=True)
    updated_at: Mapped[float] = mapped_column(Float)


def normalise(value: str | None) -> str:
    """A branch name as stored: surrounding space removed, inner runs of space made one."""
    return " ".join((value or "").split())


def set_branches(store: AccountStore, branches: Mapping[str, str]) -> None:
    """Insert or replace the branch of each account (an empty name is kept: the file said "no branch")."""
    if not branches:
        return
    now = time.time()
    rows = [{"account_id": a, "branch": normalise(b), "updated_at": now} for a, b in branches.items()]
    dialect_name = store.engine.dialect.name
    with store.session() as s:
        if dialect_name in ("sqlite", "postgresql"):
            dialect = __import__(f"sqlalchemy.dialects.{dialect_name}", fromlist=["insert"])
            stmt = dialect.insert(AccountBranch)
            stmt = stmt.on_conflict_do_update(index_elements=[AccountBranch.account_id],
                                              set_={"branch": stmt.excluded.branch,
                                                    "updated_at": stmt.excluded.updated_at})
            for i in range(0, len(rows), 5000):
                s.execute(stmt, rows[i:i + 5000])
        else:  # any other database: the portable, slower path
            for row in rows:
                s.merge(AccountBranch(**row))


def branches(store: AccountStore, account_ids: Iterable[str] | None = None) -> dict[str, str]:
    """account id → branch, for the accounts given (all when None); accounts without a row are left out."""
    query = select(AccountBranch.account_id, AccountBranch.branch)
    with store.session() as s:
        if account_ids is None:
            return {a: b for a, b in s.execute(query).all()}
        ids = list(dict.fromkeys(account_ids))
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            out.update({a: b for a, b in s.execute(query.where(AccountBranch.account_id.in_(ids[i:i + 500]))).all()})
        return out


def branch_names(store: AccountStore) -> list[str]:
    """The branches accounts are in, sorted (for filters)."""
    with store.session() as s:
        return sorted(set(s.scalars(select(AccountBranch.branch).distinct())))
