"""Encryption at rest (issue 18): the account store's personal columns and the evidence payloads are sealed
(duebot/crypto.py); lookups by phone number still work through the blind index; a pack picks its cipher (cn: SM4,
us: AES-GCM); keys rotate (`duebot accounts rekey`); an altered byte is detected, never opened to garbage; the
evidence log, `duebot evidence verify` and bundles keep working, and a store from before sealing is migrated."""

from __future__ import annotations

import datetime as dt
import sqlite3
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from typer.testing import CliRunner

from duebot.accounts.cli import app as accounts_cli
from duebot.accounts.importer import import_csv
from duebot.accounts.models import Account
from duebot.accounts.store import MIGRATIONS, AccountStore
from duebot.crypto import AES_GCM, SM4_GCM, CryptoError, Envelope, Keyring, new_secret
from duebot.evidence.bundle import export_conversation, verify_bundle
from duebot.evidence.cli import app as evidence_cli
from duebot.evidence.fsck import verify_directory
from duebot.evidence.log import EvidenceLog
from duebot.evidence.records import Turn
from duebot.evidence.store import PayloadError, PayloadStore
from duebot.policies.packs import PACK_DIR, PackError, parse_pack
from duebot.settings import SettingsError, load_settings

# distinctive values: none of them can occur by chance in a database file or a payload
US = {"id": "E-1", "name": "Zebediah Quartermaine", "phone": "+12125550187", "national": "2125550187",
      "id_last4": "7316", "birth": "1947-06-23"}
CN = {"id": "E-2", "name": "欧阳娜娜", "phone": "+8613912345678", "national": "13912345678",
      "id_last4": "582X", "birth": "1961-11-29"}
HEADER = "account_id,name,phone,amount,due_date,currency,id_last4,birth_date,segment,timezone,pack"
TEXT = "My name is Zebediah Quartermaine and I can pay on Friday"
AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 8  # a recording's bytes


def keyring(data: str | None = None, old: tuple[str, ...] = (), index: str | None = None,
            old_index: tuple[str, ...] = (), algorithm: str = AES_GCM) -> Keyring:
    return Keyring(data or new_secret(), old, index_key=index or "i" * 40, old_index_keys=old_index,
                   default_algorithm=algorithm)


def write_csv(path: Path) -> Path:
    rows = [HEADER,
            f"{US['id']},{US['name']},{US['phone']},120.50,2026-10-01,USD,{US['id_last4']},{US['birth']},forgot,"
            "America/New_York,us",
            f"{CN['id']},{CN['name']},{CN['phone']},350.00,2026-10-01,CNY,{CN['id_last4']},{CN['birth']},forgot,"
            "Asia/Shanghai,cn"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def needles() -> dict[str, bytes]:
    out = {}
    for who in (US, CN):
        out |= {f"{who['id']} name": who["name"].encode(), f"{who['id']} phone": who["phone"].encode(),
                f"{who['id']} national number": who["national"].encode(),
                f"{who['id']} ID digits": who["id_last4"].encode(), f"{who['id']} birth date": who["birth"].encode(),
                f"{who['id']} birth date compact": who["birth"].replace("-", "").encode()}
    return out


def found_in(directory: Path, wanted: dict[str, bytes]) -> dict[str, list[str]]:
    hits: dict[str, list[str]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        for what, needle in wanted.items():
            if needle in data:
                hits.setdefault(what, []).append(path.name)
    return hits


def raw(db: Path, sql: str, *args: object) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    directory = tmp_path / "store"
    directory.mkdir()
    return directory / "duebot.sqlite3"


def imported(db: Path, ring: Keyring, *, free_text: bool = False) -> AccountStore:
    store = AccountStore(f"sqlite:///{db}", keyring=ring)
    report = import_csv(write_csv(db.parent.parent / "accounts.csv"), store, today=dt.date(2026, 11, 24))
    assert report.created == 2 and not report.errors, report.errors
    store.set_opt_out(CN["phone"], True, "sms", "TD")
    if free_text:
        store.add_event("payment_link", CN["id"], "c-2", {"to": CN["phone"], "amount": "350.00"})
        store.open_dispute(CN["id"], "already_paid", "paid at the branch", "c-2")
    return store


# ---------------------------------------------------------------- the account store


def test_the_store_file_holds_no_personal_plaintext_and_lookups_by_phone_work(db: Path) -> None:
    store = imported(db, keyring())
    store.add_promise(US["id"], Decimal("120.50"), dt.date(2026, 12, 1), "c-1")
    # what conversations leave beside the account (bot/actions/conversation.py `_record`, a dispute's details)
    store.add_event("payment_link", US["id"], "c-1", {"amount": "120.50", "to": US["phone"],
                                                      "url": f"https://pay.example/l?to={US['phone']}"})
    store.add_event("hardship", US["id"], "c-1", {"text": f"{US['name']} lost his job"})
    case = store.open_dispute(CN["id"], "wrong_amount", f"我是{CN['name']}，金额不对", "c-2")
    store.engine.dispose()  # whatever SQLite keeps in the WAL is a file of the directory too
    assert found_in(db.parent, needles()) == {}
    # ...which is not an empty test: the same values are in the CSV the store was filled from
    assert set(found_in(db.parent.parent, needles())) == {k for k in needles() if "compact" not in k}

    us, cn = store.get_account(US["id"]), store.get_account(CN["id"])
    assert (us.name, us.phone, us.id_last4, us.birth_date) == (US["name"], US["phone"], US["id_last4"],
                                                               dt.date.fromisoformat(US["birth"]))
    assert (cn.name, cn.phone, cn.id_last4) == (CN["name"], CN["phone"], CN["id_last4"])
    assert [a.id for a in store.accounts_by_phone(US["phone"])] == [US["id"]]
    assert [a.id for a in store.accounts_by_phone("+1 212-555-0187")] == [US["id"]]  # the index is normalised
    assert store.accounts_by_phone("+12125550188") == []
    assert store.is_opted_out(CN["phone"]) and not store.is_opted_out(US["phone"])
    assert store.gate_subscriber(CN["id"])["opted_out"] is True
    store.set_opt_out(CN["phone"], False, "sms", "START")
    assert not store.is_opted_out(CN["phone"])
    assert raw(db, "SELECT count(*) FROM opt_outs") == [(1,)]
    assert [e.detail for e in store.events(US["id"])] == [
        {"amount": "120.50", "to": US["phone"], "url": f"https://pay.example/l?to={US['phone']}"},
        {"text": f"{US['name']} lost his job"}]
    assert case.details == store.disputes(CN["id"])[0].details == f"我是{CN['name']}，金额不对"


def test_a_pack_picks_the_cipher_of_its_accounts(db: Path) -> None:
    store = imported(db, keyring())
    envelopes = {aid: [Envelope.parse_text(v) for v in values] for aid, *values in raw(
        db, "SELECT id, name_sealed, phone_sealed, id_last4_sealed, birth_date_sealed FROM accounts")}
    assert {e.algorithm for e in envelopes[CN["id"]]} == {SM4_GCM}  # policies/packs/cn.yml: encryption: sm4-gcm
    assert {e.algorithm for e in envelopes[US["id"]]} == {AES_GCM}
    assert {e.key_id for es in envelopes.values() for e in es} == {store.keyring.current_id}
    # a new pack seals the account's values again, with its cipher
    with store.session() as s:
        s.get(Account, US["id"]).pack = "cn"
    (name,) = raw(db, "SELECT name_sealed FROM accounts WHERE id = ?", US["id"])[0]
    assert Envelope.parse_text(name).algorithm == SM4_GCM and store.get_account(US["id"]).name == US["name"]


def test_orm_writes_are_sealed_at_flush(db: Path) -> None:
    ring = keyring()
    store = AccountStore(f"sqlite:///{db}", keyring=ring)
    with store.session() as s:
        s.add(Account(id="O-1", name="Ottoline Venn", phone="+14155550177", amount_due=Decimal("10.00"),
                      due_date=dt.date(2026, 10, 1), segment="forgot", birth_date="1958-02-14"))
    assert store.get_account("O-1").birth_date == dt.date(1958, 2, 14)
    with store.session() as s:
        s.get(Account, "O-1").name = "Ottoline Venn-Marsh"
    assert store.get_account("O-1").name == "Ottoline Venn-Marsh"
    assert [a.id for a in store.accounts_by_phone("+14155550177")] == ["O-1"]
    store.engine.dispose()
    assert found_in(db.parent, {"name": b"Ottoline", "phone": b"4155550177", "born": b"1958-02-14"}) == {}
    with pytest.raises(TypeError):
        Account(id="O-2", name=42)


def test_a_flipped_byte_or_a_moved_value_is_detected_not_opened(db: Path) -> None:
    store = imported(db, keyring())
    (name, phone), = raw(db, "SELECT name_sealed, phone_sealed FROM accounts WHERE id = ?", US["id"])
    body_at = len(name) - 10  # a character inside the ciphertext
    flipped = name[:body_at] + ("A" if name[body_at] != "A" else "B") + name[body_at + 1:]
    swapped_algorithm = name.replace(AES_GCM, SM4_GCM, 1)
    other_row = raw(db, "SELECT name_sealed FROM accounts WHERE id = ?", CN["id"])[0][0]
    for bad in (flipped, swapped_algorithm, other_row, phone, "xnc1" + name[4:], name[:-3]):
        con = sqlite3.connect(db)
        con.execute("UPDATE accounts SET name_sealed = ? WHERE id = ?", (bad, US["id"]))
        con.commit()
        con.close()
        with pytest.raises(CryptoError):
            _ = store.get_account(US["id"]).name
    assert store.get_account(CN["id"]).name == CN["name"]  # the others still open


# ---------------------------------------------------------------- rotation


def test_rotation_rekey_then_the_old_key_removed_everything_still_reads(db: Path, tmp_path: Path) -> None:
    old_data, old_index = new_secret(), new_secret()
    store = imported(db, keyring(old_data, index=old_index), free_text=True)
    evdir = tmp_path / "evidence"
    with EvidenceLog.open(evdir, keyring=keyring(old_data, index=old_index)) as log:
        record_call(log)

    # 1. new keys current, the old ones kept for reading: everything reads, before any rekey
    new_data, new_index = new_secret(), new_secret()
    rotating = keyring(new_data, (old_data,), new_index, (old_index,))
    store = AccountStore(f"sqlite:///{db}", keyring=rotating)
    assert store.get_account(CN["id"]).name == CN["name"]
    assert [a.id for a in store.accounts_by_phone(CN["phone"])] == [CN["id"]] and store.is_opted_out(CN["phone"])
    # 2. rekey: the account store and the evidence payloads
    report = store.rekey()
    assert (report.accounts, report.opt_outs, report.events, report.errors) == (2, 1, 2, [])
    done, problems = PayloadStore(evdir, rotating).rekey()
    assert done >= 3 and problems == []
    assert store.rekey().accounts == 0  # idempotent
    key_ids = {Envelope.parse_text(v).key_id for row in raw(
        db, "SELECT name_sealed, phone_sealed, id_last4_sealed, birth_date_sealed FROM accounts") for v in row}
    assert key_ids == {rotating.current_id}

    # 3. the old keys removed: everything still reads, the lookups still find, the evidence still verifies
    only_new = keyring(new_data, index=new_index)
    store = AccountStore(f"sqlite:///{db}", keyring=only_new)
    for who in (US, CN):
        account = store.get_account(who["id"])
        assert (account.name, account.phone, account.id_last4) == (who["name"], who["phone"], who["id_last4"])
        assert [a.id for a in store.accounts_by_phone(who["phone"])] == [who["id"]]
    assert store.is_opted_out(CN["phone"])
    assert store.events(CN["id"])[0].detail["to"] == CN["phone"]
    assert store.disputes(CN["id"])[0].details == "paid at the branch"
    rep = verify_directory(evdir, keyring=only_new)
    assert rep.ok, rep.errors
    with EvidenceLog.open(evdir, keyring=only_new) as log:
        bundle = export_conversation(log, "conv-e", tmp_path / "b.zip", user="auditor")
    assert verify_bundle(bundle)[0] == []
    # and with only the old key nothing opens any more: the data really was re-sealed
    stale = AccountStore(f"sqlite:///{db}", keyring=keyring(old_data, index=old_index))
    with pytest.raises(CryptoError, match="not configured"):
        _ = stale.get_account(US["id"]).name
    assert not verify_directory(evdir, keyring=keyring(old_data, index=old_index)).ok


def test_the_rekey_command_follows_the_documented_procedure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    runner = CliRunner()
    old = new_secret()
    monkeypatch.setenv("DUEBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("DUEBOT_DATA_KEY", old)
    assert runner.invoke(accounts_cli, ["import", str(write_csv(tmp_path / "a.csv"))]).exit_code == 0
    with EvidenceLog.open(tmp_path / "var" / "evidence") as log:
        record_call(log)
    new = runner.invoke(accounts_cli, ["keygen"]).output.strip()
    assert len(new) >= 32 and new != old
    monkeypatch.setenv("DUEBOT_DATA_KEY", new)
    monkeypatch.setenv("DUEBOT_DATA_OLD_KEYS", old)
    result = runner.invoke(accounts_cli, ["rekey"])
    assert result.exit_code == 0, result.output
    assert "2 accounts" in result.output and "payloads re-sealed" in result.output
    monkeypatch.delenv("DUEBOT_DATA_OLD_KEYS")
    assert AccountStore().get_account(CN["id"]).name == CN["name"]
    verified = runner.invoke(evidence_cli, ["verify", "--no-witness"])
    assert verified.exit_code == 0, verified.output


def test_rekey_of_the_evidence_waits_for_the_writer(tmp_path: Path) -> None:
    ring = keyring()
    with EvidenceLog.open(tmp_path / "ev", keyring=ring) as log:
        record_call(log)
        with pytest.raises(RuntimeError, match="open for writing"):
            log.payload_store.rekey()


# ---------------------------------------------------------------- the evidence log


def record_call(log: EvidenceLog, conversation: str = "conv-e") -> None:
    log.append("conversation", {"pack": "us", "channel": "voice"}, conversation_id=conversation)
    log.record(Turn(conversation, "debtor", "voice", "2026-01-01T10:00:00Z", "2026-01-01T10:00:04Z", text=TEXT,
                    audio=AUDIO, asr_confidence=0.9))
    log.record(Turn(conversation, "bot", "voice", "2026-01-01T10:00:05Z", "2026-01-01T10:00:07Z",
                    text="Thank you, Friday it is.", audio=AUDIO[::-1]))
    log.checkpoint()


def test_evidence_payloads_are_sealed_and_verify_and_bundles_still_work(tmp_path: Path) -> None:
    ring = keyring()
    evdir = tmp_path / "evidence"
    with EvidenceLog.open(evdir, keyring=ring) as log:
        record_call(log)
        turn = next(r for r in log.records_for("conv-e") if r.kind == "turn")
        assert log.payload(turn.payloads["text"]["sha256"]) == TEXT.encode()  # readers get the plaintext
        assert log.payload(turn.payloads["audio"]["sha256"]) == AUDIO
        bundle = export_conversation(log, "conv-e", tmp_path / "bundle.zip", user="auditor")
    files = [p for p in (evdir / "payloads").rglob("*") if p.is_file()]
    assert len(files) >= 4  # two texts, two recordings (and any sealed personal values)
    for path in files:
        data = path.read_bytes()
        assert Envelope.parse_blob(data).algorithm == AES_GCM
        assert TEXT.encode()[:16] not in data and AUDIO[64:96] not in data and AUDIO[::-1][64:96] not in data
    assert found_in(evdir, {"text": TEXT.encode(), "name": b"Quartermaine", "audio": AUDIO[40:80]}) == {}
    # the leaves commit to the plaintext's SHA-256: the bundle carries the payloads opened, and verifies offline
    assert verify_directory(evdir, keyring=ring).ok
    errors, summary = verify_bundle(bundle)
    assert errors == [] and summary["records"] == 4
    members = zipfile.ZipFile(bundle).namelist()
    assert any(zipfile.ZipFile(bundle).read(m) == AUDIO for m in members if m.startswith("payloads/"))
    assert TEXT in zipfile.ZipFile(bundle).read("transcript.txt").decode()


def test_sm4_for_the_evidence_when_the_deployment_asks(tmp_path: Path) -> None:
    ring = keyring(algorithm=SM4_GCM)
    with EvidenceLog.open(tmp_path / "ev", keyring=ring) as log:
        record_call(log)
    algorithms_used = {Envelope.parse_blob(p.read_bytes()).algorithm
                       for p in (tmp_path / "ev" / "payloads").rglob("*") if p.is_file()}
    assert algorithms_used == {SM4_GCM}
    assert verify_directory(tmp_path / "ev", keyring=ring).ok


def test_an_altered_or_moved_payload_is_detected(tmp_path: Path) -> None:
    ring = keyring()
    evdir = tmp_path / "evidence"
    with EvidenceLog.open(evdir, keyring=ring) as log:
        record_call(log)
        turn = next(r for r in log.records_for("conv-e") if r.kind == "turn")
    text_digest, audio_digest = turn.payloads["text"]["sha256"], turn.payloads["audio"]["sha256"]
    store = PayloadStore(evdir, ring)
    original = store.path(text_digest).read_bytes()
    for pos in (len(original) - 1, len(original) - 20, 40, 6):  # tag, ciphertext, nonce, header
        data = bytearray(original)
        data[pos] ^= 0x01
        store.path(text_digest).write_bytes(bytes(data))
        with pytest.raises(PayloadError):
            store.get(text_digest)
        rep = verify_directory(evdir, keyring=ring)
        assert not rep.ok and any(text_digest in e for e in rep.errors)
    store.path(text_digest).write_bytes(store.path(audio_digest).read_bytes())  # another address's envelope
    with pytest.raises(PayloadError):
        store.get(text_digest)
    store.path(text_digest).write_bytes(original)
    assert verify_directory(evdir, keyring=ring).ok


def test_a_payload_stored_before_sealing_still_reads_and_rekey_seals_it(tmp_path: Path) -> None:
    ring = keyring()
    evdir = tmp_path / "evidence"
    with EvidenceLog.open(evdir, keyring=ring) as log:
        record_call(log)
        turn = next(r for r in log.records_for("conv-e") if r.kind == "turn")
    digest = turn.payloads["text"]["sha256"]
    path = PayloadStore(evdir, ring).path(digest)
    path.write_bytes(TEXT.encode())  # as an evidence directory from before issue 18 holds it
    assert PayloadStore(evdir, ring).get(digest) == TEXT.encode()
    assert verify_directory(evdir, keyring=ring).ok
    path.write_bytes(b"x" + TEXT.encode()[1:])  # ...whose digest still proves it
    assert not verify_directory(evdir, keyring=ring).ok
    path.write_bytes(TEXT.encode())
    done, problems = PayloadStore(evdir, ring).rekey()
    assert (done, problems) == (1, [])
    assert Envelope.parse_blob(path.read_bytes()).key_id == ring.current_id
    assert verify_directory(evdir, keyring=ring).ok


# ---------------------------------------------------------------- migrating a store from before sealing


def test_a_plaintext_store_is_sealed_by_the_migration_and_can_go_back(db: Path) -> None:
    url = f"sqlite:///{db}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(sa.text(
            "INSERT INTO accounts (id, name, phone, id_last4, birth_date, amount_due, currency, due_date, segment, "
            "language, pack, line_type, consent_ai_voice, consent_sms, status, wrong_number, created_at, updated_at)"
            " VALUES (:id, :name, :phone, :l4, :born, 10, 'CNY', '2026-10-01', 'forgot', 'zh', :pack, 'mobile', "
            "1, 1, 'open', 0, '2026-01-01', '2026-01-01')"),
            [{"id": w["id"], "name": w["name"], "phone": w["phone"], "l4": w["id_last4"], "born": w["birth"],
              "pack": pack} for w, pack in ((US, "us"), (CN, "cn"))])
        connection.execute(sa.text("INSERT INTO promises (account_id, amount, due_date, kind, needs_review, status, "
                                   "created_at) VALUES (:a, 5, '2026-12-01', 'full', 0, 'open', '2026-01-01')"),
                           {"a": CN["id"]})
        connection.execute(sa.text("INSERT INTO account_events (account_id, conversation_id, kind, detail, at) "
                                   "VALUES (:a, 'c', 'payment_link', :d, '2026-01-01')"),
                           {"a": US["id"], "d": f'{{"to": "{US["phone"]}", "amount": "10.00"}}'})
        connection.execute(sa.text("INSERT INTO disputes VALUES ('D-1', :a, 'c', 'wrong_amount', :d, 'open', "
                                   "'2026-01-01', NULL)"), {"a": CN["id"], "d": f"I am {CN['name']}"})
        for phone, at in ((CN["phone"], "2026-01-01"), ("+86 139 1234 5678", "2026-02-01")):  # one number, twice
            connection.execute(sa.text("INSERT INTO opt_outs VALUES (:p, 1, 'sms', 'TD', :at)"),
                               {"p": phone, "at": at})
    engine.dispose()

    ring = keyring()
    store = AccountStore(url, keyring=ring)  # upgrades to head: 0006 seals the rows
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # vacuumed, the WAL truncated: no old page left anywhere
    store.engine.dispose()
    assert found_in(db.parent, needles()) == {}
    assert Envelope.parse_text(raw(db, "SELECT name_sealed FROM accounts WHERE id = ?", CN["id"])[0][0]
                               ).algorithm == SM4_GCM
    assert store.get_account(CN["id"]).birth_date == dt.date.fromisoformat(CN["birth"])
    assert [a.id for a in store.accounts_by_phone(US["phone"])] == [US["id"]]
    assert store.is_opted_out(CN["phone"]) and raw(db, "SELECT count(*) FROM opt_outs") == [(1,)]
    assert len(store.promises(CN["id"])) == 1  # the foreign keys survived: columns were renamed, not rebuilt
    assert store.events(US["id"])[0].detail == {"to": US["phone"], "amount": "10.00"}
    assert store.disputes(CN["id"])[0].details == f"I am {CN['name']}"

    with store.engine.begin() as connection:  # and back: 0005 with the values in the clear
        config.attributes["connection"] = connection
        config.attributes["keyring"] = ring
        command.downgrade(config, "0005")
    assert raw(db, "SELECT name, phone, birth_date FROM accounts WHERE id = ?", US["id"]) == [
        (US["name"], US["phone"], US["birth"])]
    assert raw(db, "SELECT phone FROM opt_outs") == [(CN["phone"],)]
    assert raw(db, "SELECT details FROM disputes") == [(f"I am {CN['name']}",)]


# ---------------------------------------------------------------- the pieces


def test_sm4_gcm_is_the_standard_one() -> None:
    """RFC 8998 appendix A.1: OpenSSL's SM4-GCM, which sealing uses, gives the published ciphertext and tag."""
    key, iv = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"), bytes.fromhex("00001234567800000000ABCD")
    plain = bytes.fromhex("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
                          "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
    enc = Cipher(algorithms.SM4(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2"))
    cipher = enc.update(plain) + enc.finalize()
    assert cipher.hex().upper() == ("17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
                                    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D")
    assert enc.tag.hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"


def test_envelopes_and_keys() -> None:
    ring = keyring()
    for algorithm in (AES_GCM, SM4_GCM):
        sealed = ring.seal_text("+8613912345678", "accounts.phone:E-2", algorithm)
        assert sealed.startswith(f"enc1:{algorithm}:{ring.current_id}:")
        assert ring.open_text(sealed, "accounts.phone:E-2") == "+8613912345678"
        with pytest.raises(CryptoError):
            ring.open_text(sealed, "accounts.phone:E-1")  # sealed for another row
        assert ring.seal_text("+8613912345678", "c", algorithm) != ring.seal_text("+8613912345678", "c", algorithm)
    # a key's id is derived from the key: the same key has the same id in every keyring
    assert Keyring("k" * 40, index_key="i" * 40).current_id == Keyring("k" * 40, index_key="j" * 40).current_id
    assert ring.index("+1 (212) 555-0187") == ring.index("+12125550187") != keyring(index="j" * 40).index(
        "+12125550187")
    with pytest.raises(CryptoError, match="32 characters"):
        Keyring("short", index_key="i" * 40)


def test_the_pack_field_and_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = yaml.safe_load((PACK_DIR / "us.yml").read_text(encoding="utf-8"))
    doc.pop("encryption")
    assert parse_pack(doc).encryption is None
    assert parse_pack({**doc, "encryption": "sm4-gcm"}).encryption == SM4_GCM
    with pytest.raises(PackError, match="encryption"):
        parse_pack({**doc, "encryption": "des"})
    monkeypatch.setenv("DUEBOT_DATA_KEY", "too short")
    with pytest.raises(SettingsError, match="32 characters"):
        load_settings()
    monkeypatch.setenv("DUEBOT_DATA_KEY", "k" * 40)
    monkeypatch.setenv("DUEBOT_ENCRYPTION", "rot13")
    with pytest.raises(SettingsError, match="aes-256-gcm"):
        load_settings()
