"""Where scores live: table `risk_scores` in the account store's database, one row per account (the latest score).

Kept beside the accounts table rather than in it (no migration while the account store is being reworked): the
columns `risk_score` and `risk_model` are the ones an `accounts` column pair would have, keyed by account id. The
table is created on first write with its own metadata (it is not in the Alembic chain; docs/risk.md).

`stored_score(account_id)` is what the campaign planner asks when a strategy has score bands: the score in the
database the settings name (`DUEBOT_DB_URL`, else the data dir's SQLite), or None for an unscored account.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

METADATA = MetaData()
SCORES = Table(
    "risk_scores", METADATA,
    Column("account_id", String(64), primary_key=True),
    Column("risk_score", Integer, nullable=False),  # 0–100, higher = more likely to pay
    Column("risk_model", String(96), nullable=False),  # VERSION/lr or VERSION/gb
    Column("probability", Float, nullable=False),
    Column("factors", JSON, nullable=False),  # [{feature, words, effect, direction}]
    Column("scored_at", DateTime(timezone=True), nullable=False),
)


_ONE = select(SCORES.c.risk_score).where(SCORES.c.account_id == bindparam("account_id"))


@dataclass(frozen=True)
class StoredScore:
    account_id: str
    risk_score: int
    risk_model: str
    probability: float
    factors: list[dict[str, Any]]
    scored_at: dt.datetime


def _busy_timeout(dbapi_connection, _record) -> None:  # noqa: ANN001 - DB-API types
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class ScoreStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def for_url(cls, url: str) -> ScoreStore:
        engine = create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _busy_timeout)
        return cls(engine)

    def ensure(self) -> None:
        try:
            METADATA.create_all(self.engine, checkfirst=True)
        except DBAPIError:
            if not inspect(self.engine).has_table(SCORES.name):  # another process created it meanwhile: fine
                raise

    def put_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert or replace each account's score; returns how many were written."""
        rows = [dict(r) for r in rows]
        if not rows:
            return 0
        self.ensure()
        now = dt.datetime.now(dt.UTC)
        for row in rows:
            row.setdefault("scored_at", now)
        with self.engine.begin() as conn:
            if self.engine.dialect.name in ("sqlite", "postgresql"):
                dialect = __import__(f"sqlalchemy.dialects.{self.engine.dialect.name}", fromlist=["insert"])
                stmt = dialect.insert(SCORES)
                stmt = stmt.on_conflict_do_update(index_elements=[SCORES.c.account_id], set_={
                    c: stmt.excluded[c] for c in ("risk_score", "risk_model", "probability", "factors", "scored_at")})
                conn.execute(stmt, rows)
            else:
                ids = [r["account_id"] for r in rows]
                conn.execute(SCORES.delete().where(SCORES.c.account_id.in_(ids)))
                conn.execute(SCORES.insert(), rows)
        return len(rows)

    def get_many(self, account_ids: Iterable[str]) -> dict[str, StoredScore]:
        ids = list(account_ids)
        if not ids:
            return {}
        try:
            with self.engine.connect() as conn:
                out: dict[str, StoredScore] = {}
                for start in range(0, len(ids), 500):
                    for row in conn.execute(select(SCORES).where(SCORES.c.account_id.in_(ids[start:start + 500]))):
                        out[row.account_id] = StoredScore(row.account_id, int(row.risk_score), row.risk_model,
                                                          float(row.probability), list(row.factors), row.scored_at)
                return out
        except DBAPIError:
            if inspect(self.engine).has_table(SCORES.name):
                raise
            return {}  # nothing was ever scored in this database

    def get(self, account_id: str) -> StoredScore | None:
        return self.get_many([account_id]).get(account_id)

    def score(self, account_id: str) -> int | None:
        """Just the score: the planner's lookup, once per campaign step."""
        try:
            with self.engine.connect() as conn:
                value = conn.execute(_ONE, {"account_id": account_id}).scalar()
        except DBAPIError:
            if inspect(self.engine).has_table(SCORES.name):
                raise
            return None
        return None if value is None else int(value)


_stores: dict[str, ScoreStore] = {}
_lock = threading.Lock()


def store_for(url: str) -> ScoreStore:
    with _lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = ScoreStore.for_url(url)
        return store


_urls: dict[tuple[str | None, str], str] = {}


def stored_score(account_id: str) -> int | None:
    """The account's latest risk score in the settings' account database, or None when it has none."""
    from duebot.accounts.store import default_url
    from duebot.settings import load_settings

    settings = load_settings()
    key = (settings.database.url, str(settings.data_dir))
    url = _urls.get(key)
    if url is None:
        url = _urls[key] = default_url(settings)
    return store_for(url).score(account_id)
