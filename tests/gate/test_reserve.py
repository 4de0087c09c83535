"""Live reservations against a real redis-server: atomic caps, release, fail closed."""

from __future__ import annotations

import threading

import redis

from duebot.policies import codes
from duebot.policies.audit import MemoryAuditSink
from duebot.policies.reserve import LiveGate

from .conftest import entry, request

NOON_US = "2026-11-24T20:00:00Z"
NOON_CN = "2026-11-24T04:00:00Z"
SMS_FIRST = [entry("2026-11-20T02:00:00Z", channel="sms", outcome="delivered")]


def cn_call(**kw) -> dict:
    return request(NOON_CN, to="+8613800138000", timezone="Asia/Shanghai", history=SMS_FIRST, **kw)


def test_16_workers_never_exceed_the_daily_cap(redis_client: redis.Redis, redis_address) -> None:
    sink = MemoryAuditSink()
    barrier = threading.Barrier(16)
    results: list = []
    lock = threading.Lock()

    def worker() -> None:
        client = redis.Redis(host=redis_address.host, port=redis_address.port)
        gate = LiveGate(client, "cn", sink)
        barrier.wait()
        out = [gate.reserve(cn_call()) for _ in range(4)]
        with lock:
            results.extend(out)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allowed = [r for r in results if r.allowed]
    assert len(results) == 64 and len(allowed) == 2  # cn: 2 collection calls per local day
    assert all(r.decision.reasons == (codes.DAILY_CALL_CAP,) for r in results if not r.allowed)
    assert all(r.decision.next_allowed_at is not None for r in results if not r.allowed)
    assert len(sink.records) == 64 and sum(b["allowed"] for _, b in sink.records) == 2


def test_16_processes_worth_of_us_calls_respect_seven_in_seven(redis_client: redis.Redis, redis_address) -> None:
    sink = MemoryAuditSink()
    history = [entry("2026-11-20T19:00:00Z"), entry("2026-11-21T19:00:00Z")]  # 2 calls already
    req = request(NOON_US, history=history)
    barrier = threading.Barrier(16)
    allowed: list = []

    def worker() -> None:
        gate = LiveGate(redis.Redis(host=redis_address.host, port=redis_address.port), "us", sink)
        barrier.wait()
        for r in gate.reserve_many([req] * 3):
            if r.allowed:
                allowed.append(r.id)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(allowed) == 5  # 7 - 2 in history (calls made outside the gate add to the live count)


def test_release_gives_the_slot_back(redis_client: redis.Redis) -> None:
    sink = MemoryAuditSink()
    gate = LiveGate(redis_client, "cn", sink)
    first, second = gate.reserve(cn_call()), gate.reserve(cn_call())
    assert first.allowed and second.allowed
    third = gate.reserve(cn_call())
    assert third.decision.reasons == (codes.DAILY_CALL_CAP,)
    assert third.decision.next_allowed_at is not None
    assert gate.release(second.id, "call_failed_to_start") is True
    assert gate.release(second.id, "again") is False  # idempotent
    assert gate.release("nope@S-1", "unknown") is False
    assert gate.reserve(cn_call()).allowed
    releases = [b for k, b in sink.records if k == "gate.release"]
    assert [b["status"] for b in releases] == ["released", "already_released", "unknown"]
    assert releases[0]["reason"] == "call_failed_to_start"


def test_caps_are_per_subscriber_and_history_counts(redis_client: redis.Redis) -> None:
    gate = LiveGate(redis_client, "cn", MemoryAuditSink())
    assert gate.reserve(cn_call()).allowed
    assert gate.reserve(cn_call(subscriber_id="S-2")).allowed
    # History already shows 2 calls today: the live count cannot lower that.
    two = SMS_FIRST + [entry("2026-11-24T01:00:00Z"), entry("2026-11-24T02:00:00Z")]
    r = gate.reserve(request(NOON_CN, to="+8613800138000", timezone="Asia/Shanghai", history=two,
                             subscriber_id="S-3"))
    assert r.decision.reasons == (codes.DAILY_CALL_CAP,)


def test_offline_blocks_never_touch_redis(redis_client: redis.Redis) -> None:
    gate = LiveGate(redis_client, "cn", MemoryAuditSink())
    r = gate.reserve(cn_call(opted_out=True))
    assert r.id is None and r.decision.reasons == (codes.OPTED_OUT,)
    assert redis_client.dbsize() == 0


def test_redis_unreachable_fails_closed() -> None:
    sink = MemoryAuditSink()
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    gate = LiveGate(dead, "cn", sink)
    r = gate.reserve(cn_call())
    assert r.id is None and r.decision.reasons == (codes.GATE_UNAVAILABLE,)
    assert sink.records[0][1]["reasons"] == [codes.GATE_UNAVAILABLE]


def test_unknown_pack_and_invalid_request_fail_closed(redis_client: redis.Redis) -> None:
    assert LiveGate(redis_client, "zz", MemoryAuditSink()).reserve(cn_call()).decision.reasons == (
        codes.UNKNOWN_PACK,)
    bad = cn_call()
    bad["history"] = [{"at": "soon", "channel": "voice"}]
    r = LiveGate(redis_client, "cn", MemoryAuditSink()).reserve(bad)
    assert r.decision.reasons == (codes.INVALID_REQUEST,) and "history[0].at" in (r.decision.error or "")


class BrokenSink:
    def append(self, kind, body):
        raise OSError("disk full")


def test_unrecorded_reservation_is_released_and_refused(redis_client: redis.Redis) -> None:
    r = LiveGate(redis_client, "cn", BrokenSink()).reserve(cn_call())
    assert r.id is None and codes.AUDIT_UNAVAILABLE in r.decision.reasons
    assert LiveGate(redis_client, "cn", MemoryAuditSink()).reserve(cn_call()).allowed
    assert LiveGate(redis_client, "cn", MemoryAuditSink()).reserve(cn_call()).allowed  # slot was given back


def test_history_entries_with_reservation_ids_are_not_counted_twice(redis_client: redis.Redis) -> None:
    gate = LiveGate(redis_client, "cn", MemoryAuditSink())
    first = gate.reserve(cn_call())
    assert first.allowed
    # The dialer reports the call back in history with its reservation id: still one call, so one more fits.
    reported = SMS_FIRST + [{**entry("2026-11-24T03:00:00Z"), "reservation_id": first.id}]
    second = gate.reserve(request(NOON_CN, to="+8613800138000", timezone="Asia/Shanghai", history=reported))
    assert second.allowed
    # A call in history without an id (made outside the gate) is added to the live count.
    outside = reported + [entry("2026-11-24T03:30:00Z")]
    third = gate.reserve(request(NOON_CN, to="+8613800138000", timezone="Asia/Shanghai", history=outside,
                                 subscriber_id="S-9"))
    assert third.allowed is False  # 2 in history for S-9 already (offline cap)


def test_a_retry_with_the_same_key_reuses_its_reservation(redis_client):
    """A worker that reserved and died before recording it must not count the same contact twice on retry."""
    from duebot.policies.audit import MemoryAuditSink
    from duebot.policies.reserve import LiveGate

    gate = LiveGate(redis_client, "cn", sink=MemoryAuditSink(),
                    prefix="test:idem")
    request = {"now": "2026-11-24T03:00:00Z",  # 11:00 in Shanghai
               "contact": {"channel": "voice", "purpose": "collection", "to": "+8613910998888", "debt_id": "D"},
               "subscriber": {"id": "S-idem", "timezone": "Asia/Shanghai", "opted_out": False, "dispute_open": False},
               "history": [{"at": "2026-11-20T03:00:00Z", "channel": "sms", "purpose": "reminder", "debt_id": "D",
                            "outcome": "delivered"}]}
    first = gate.reserve(request, key="C-1:A:1")
    again = gate.reserve(request, key="C-1:A:1")
    assert first.allowed and again.allowed and again.id == first.id
    other = gate.reserve(request, key="C-1:A:2")
    assert other.allowed  # 2 distinct calls reach the cap of 2 …
    assert not gate.reserve(request, key="C-1:A:3").allowed  # … and the third is refused
    assert gate.release(first.id, "call failed to start")
    assert gate.reserve(request, key="C-1:A:1").allowed  # a released key may reserve again
