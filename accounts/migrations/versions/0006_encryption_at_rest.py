"""encryption at rest: the personal columns of accounts and opt_outs sealed, blind indexes for phone lookups

accounts: name, phone, id_last4, birth_date become name_sealed, phone_sealed, id_last4_sealed, birth_date_sealed
(text envelopes, duebot/crypto.py) and phone_index (blind index) replaces the index on the plaintext number.
opt_outs: keyed by phone_index, the number sealed in phone_sealed. account_events.detail and disputes.details: the
personal values (what was said, numbers, names, links) sealed inside them. Every existing row is sealed in place,
an account's with the cipher of its pack; columns are renamed (not rebuilt), so foreign keys and triggers stay.
Downgrade opens them again (it needs the keys).

Revision ID: 0006
Revises: 0005
"""

import datetime as dt

import sqlalchemy as sa
from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FIELDS = ("name", "phone", "id_last4", "birth_date")
BATCH = 2000


def _keyring():  # noqa: ANN202 - the store passes its own (accounts/store.py migrate), else the deployment's
    from duebot import crypto

    return context.config.attributes.get("keyring") or crypto.keyring()


def _rename(table: str, old: str, new: str, type_: sa.types.TypeEngine, existing: sa.types.TypeEngine,
            nullable: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":  # RENAME COLUMN (SQLite 3.25+): no table rebuild
        op.execute(f'ALTER TABLE {table} RENAME COLUMN "{old}" TO "{new}"')
    else:
        cast = "date" if isinstance(type_, sa.Date) else "text"
        using = {"postgresql_using": f'"{old}"::{cast}'} if op.get_bind().dialect.name == "postgresql" else {}
        op.alter_column(table, old, new_column_name=new, type_=type_, existing_type=existing,
                        existing_nullable=nullable, **using)


def _drop(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":  # DROP COLUMN (SQLite 3.35+): no table rebuild
        op.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    else:
        op.drop_column(table, column)


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def upgrade() -> None:
    from duebot import crypto
    from duebot.accounts.models import account_algorithm, seal_context

    keyring = _keyring()
    bind = op.get_bind()
    op.drop_index("ix_accounts_phone", table_name="accounts")
    for name, existing, nullable in (("name", sa.String(200), False), ("phone", sa.String(20), False),
                                     ("id_last4", sa.String(4), True), ("birth_date", sa.Date(), True)):
        _rename("accounts", name, f"{name}_sealed", sa.Text(), existing, nullable)
    op.add_column("accounts", sa.Column("phone_index", sa.String(32), nullable=False, server_default=""))
    accounts = sa.table("accounts", sa.column("id"), sa.column("pack"), sa.column("phone_index"),
                        *(sa.column(f"{f}_sealed") for f in FIELDS))
    rows = bind.execute(sa.select(accounts.c.id, accounts.c.pack, *(accounts.c[f"{f}_sealed"] for f in FIELDS)))
    update = accounts.update().where(accounts.c.id == sa.bindparam("_id")).values(
        phone_index=sa.bindparam("_index"), **{f"{f}_sealed": sa.bindparam(f"_{f}") for f in FIELDS})
    batch: list[dict] = []
    for account_id, pack, *values in rows.all():
        algorithm = account_algorithm(pack, keyring)
        row = {"_id": account_id, "_index": keyring.index(_text(values[1]))}
        for field, value in zip(FIELDS, values, strict=True):
            row[f"_{field}"] = None if value is None else keyring.seal_text(
                _text(value), seal_context(field, account_id), algorithm)
        batch.append(row)
        if len(batch) >= BATCH:
            bind.execute(update, batch)
            batch = []
    if batch:
        bind.execute(update, batch)
    op.create_index("ix_accounts_phone_index", "accounts", ["phone_index"])

    _seal_free_text(keyring, bind, opening=False)

    _rename("opt_outs", "phone", "phone_index", sa.String(32), sa.String(20), False)
    op.add_column("opt_outs", sa.Column("phone_sealed", sa.Text(), nullable=True))
    opt_outs = sa.table("opt_outs", sa.column("phone_index"), sa.column("phone_sealed"), sa.column("at"))
    seen: set[str] = set()
    # newest first: two spellings of one number (+1 415…, +1415…) become one index; the latest state is kept
    for phone, _at in bind.execute(sa.select(opt_outs.c.phone_index, opt_outs.c.at)
                                   .order_by(opt_outs.c.at.desc())).all():
        index = keyring.index(phone)
        if index in seen:
            bind.execute(opt_outs.delete().where(opt_outs.c.phone_index == phone))
            continue
        seen.add(index)
        bind.execute(opt_outs.update().where(opt_outs.c.phone_index == phone).values(
            phone_index=index, phone_sealed=keyring.seal_text(crypto.normalise_phone(phone), "opt_outs.phone")))


def _seal_free_text(keyring, bind, *, opening: bool) -> None:  # noqa: ANN001
    """Events' details and disputes' details: the personal values sealed (or, going back, opened)."""
    from duebot.accounts.models import EVENT_CONTEXT, dispute_context, open_values, seal_values

    events = sa.table("account_events", sa.column("id"), sa.column("detail", sa.JSON()))
    for event_id, detail in bind.execute(sa.select(events.c.id, events.c.detail)).all():
        if not detail:
            continue
        changed = (open_values if opening else seal_values)(detail, EVENT_CONTEXT, keyring)
        if changed != detail:
            bind.execute(events.update().where(events.c.id == event_id).values(detail=changed))
    disputes = sa.table("disputes", sa.column("case_number"), sa.column("details"))
    for case, details in bind.execute(sa.select(disputes.c.case_number, disputes.c.details)).all():
        if details:
            value = (keyring.open_text(details, dispute_context(case)) if opening
                     else keyring.seal_text(details, dispute_context(case)))
            bind.execute(disputes.update().where(disputes.c.case_number == case).values(details=value))


def downgrade() -> None:
    from duebot.accounts.models import seal_context

    keyring = _keyring()
    bind = op.get_bind()
    _seal_free_text(keyring, bind, opening=True)
    opt_outs = sa.table("opt_outs", sa.column("phone_index"), sa.column("phone_sealed"))
    for index, sealed in bind.execute(sa.select(opt_outs.c.phone_index, opt_outs.c.phone_sealed)).all():
        if sealed is None:  # no number to go back to
            bind.execute(opt_outs.delete().where(opt_outs.c.phone_index == index))
        else:
            bind.execute(opt_outs.update().where(opt_outs.c.phone_index == index).values(
                phone_index=keyring.open_text(sealed, "opt_outs.phone")))
    _drop("opt_outs", "phone_sealed")
    _rename("opt_outs", "phone_index", "phone", sa.String(20), sa.String(32), False)

    op.drop_index("ix_accounts_phone_index", table_name="accounts")
    accounts = sa.table("accounts", sa.column("id"), *(sa.column(f"{f}_sealed") for f in FIELDS))
    for account_id, *values in bind.execute(sa.select(accounts.c.id, *(accounts.c[f"{f}_sealed"] for f in FIELDS))
                                            ).all():
        opened = {f"{f}_sealed": None if v is None else keyring.open_text(v, seal_context(f, account_id))
                  for f, v in zip(FIELDS, values, strict=True)}
        bind.execute(accounts.update().where(accounts.c.id == account_id).values(**opened))
    _drop("accounts", "phone_index")
    for name, type_, nullable in (("name", sa.String(200), False), ("phone", sa.String(20), False),
                                  ("id_last4", sa.String(4), True), ("birth_date", sa.Date(), True)):
        _rename("accounts", f"{name}_sealed", name, type_, sa.Text(), nullable)
    op.create_index("ix_accounts_phone", "accounts", ["phone"])
