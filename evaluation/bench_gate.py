"""Gate benchmark: offline decisions/s over N synthetic requests, and live reservations/s on a real Redis.

    .venv/bin/python evaluation/bench_gate.py                  # 1M offline, 100k reservations
    .venv/bin/python evaluation/bench_gate.py --n 2000 --reservations 500   # smoke size (used by the tests)

Offline figures: decide() on parsed requests (engine only), parse+decide from JSON-shaped dicts (what the CLI and
HTTP endpoint do), single process and across --procs processes. Live: LiveGate.reserve_many in batches, audit to
a JSONL file (one fsync per batch), against a redis-server started on a free port (or --redis-url)."""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from _machine import describe  # evaluation/ is the script's path

from duebot.policies import timezones
from duebot.policies.check import check_many, parse_input
from duebot.policies.gate import evaluate, parse_request
from duebot.policies.packs import load_pack

US_AREAS = ["212", "312", "415", "617", "702", "907", "305", "206", "303", "602"]
OUTCOMES = ["no_answer", "voicemail", "answered", "delivered", "failed"]


def synthetic(i: int, rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A realistic mix: us and cn, ~10k distinct numbers, 0-6 history entries, some opt-outs/disputes."""
    base = 1795500000 + rng.randrange(0, 30 * 86400)
    us = i % 2 == 0
    k = rng.randrange(10000)
    to = f"+1{US_AREAS[k % len(US_AREAS)]}555{k:04d}" if us else f"+86138{k:08d}"
    history = [{"at": _iso(base - rng.randrange(3600, 9 * 86400)), "channel": rng.choice(("voice", "sms")),
                "purpose": rng.choice(("collection", "reminder")), "debt_id": "D-1",
                "outcome": rng.choice(OUTCOMES)} for _ in range(rng.randrange(7))]
    req = {"now": _iso(base),
           "contact": {"channel": rng.choice(("voice", "sms")), "purpose": rng.choice(("collection", "reminder")),
                       "to": to, "debt_id": "D-1", "ai_voice": True},
           "subscriber": {"id": f"S-{i}", "line_type": rng.choice(("mobile", "landline", "unknown")),
                          "consent": {"ai_voice": rng.random() < 0.7, "sms": rng.random() < 0.9},
                          "opted_out": rng.random() < 0.03, "dispute_open": rng.random() < 0.03},
           "history": history}
    if rng.random() < 0.5:
        req["subscriber"]["timezone"] = "America/New_York" if us else "Asia/Shanghai"
    return ("us" if us else "cn"), req


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def make(n: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    return [synthetic(seed * 10_000_000 + i, rng) for i in range(n)]


def _warm(batch: list[tuple[str, dict[str, Any]]]) -> None:
    packs = {"us": load_pack("us"), "cn": load_pack("cn")}
    for name, raw in batch[:20000]:  # fill the number/zone caches, as a long-running gate would have
        evaluate(packs[name], parse_request(raw))


def _warm_numbers(reqs: list[dict[str, Any]], region: str | None) -> float:
    """Parse each distinct phone number once (~50 us each with phonenumbers) before the clock starts: a running
    gate has its subscribers' numbers cached. Returns the time it took, which the output reports."""
    t0 = time.perf_counter()
    for to in {r["contact"]["to"] for r in reqs}:
        timezones.number_info(to, region)
    return time.perf_counter() - t0


def _json_texts(batch: list[tuple[str, dict[str, Any]]]) -> dict[str, bytes]:
    """The batch as JSON Lines, one text per pack: the CLI's input."""
    lines: dict[str, list[bytes]] = {"us": [], "cn": []}
    for name, raw in batch:
        lines[name].append(json.dumps(raw).encode())
    return {name: b"\n".join(chunk) for name, chunk in lines.items()}


def _decide_text(texts: dict[str, bytes]) -> tuple[int, int]:
    """JSON text -> decisions, the CLI's path minus audit and printing: parse_input + check_many."""
    n = allowed = 0
    for name, text in texts.items():
        result = check_many(parse_input(text), load_pack(name), None)
        n += len(result.decisions)
        allowed += sum(d.allowed for d in result.decisions)
    return n, allowed


def run_offline(n: int, seed: int = 1) -> dict[str, float]:
    packs = {"us": load_pack("us"), "cn": load_pack("cn")}
    batch = make(n, seed)
    texts = _json_texts(batch)
    _warm(batch)
    gc.collect()
    gc.disable()  # a batch run holds millions of live objects; cyclic GC passes would dominate (no cycles are made)
    t0 = time.perf_counter()
    parsed = [(packs[name], parse_request(raw)) for name, raw in batch]
    t1 = time.perf_counter()
    allowed = 0
    for pack, req in parsed:
        allowed += evaluate(pack, req).allowed
    t2 = time.perf_counter()
    del parsed
    t3 = time.perf_counter()
    text_n, text_allowed = _decide_text(texts)
    t4 = time.perf_counter()
    gc.enable()
    assert text_n == n and text_allowed == allowed  # both paths decide the same
    return {"n": n, "parse_s": t1 - t0, "decide_s": t2 - t1, "text_s": t4 - t3, "allowed": allowed}


_SHARDS: list[dict[str, bytes]] = []  # set before forking: workers read their shard without any IPC


def _worker(shard: int) -> tuple[int, int, float]:
    gc.disable()
    t0 = time.perf_counter()
    n, allowed = _decide_text(_SHARDS[shard])
    return n, allowed, time.perf_counter() - t0


def run_parallel(n: int, procs: int) -> dict[str, float]:
    """JSON text -> decisions across `procs` forked processes, one large shard each (no per-request IPC; only
    per-shard counts come back). The rate is total / wall time of the whole map, slowest shard included."""
    global _SHARDS
    batch = make(n, 1)
    _warm(batch)  # in the parent: the forked workers inherit warm caches
    size = -(-n // procs)
    _SHARDS = [_json_texts(batch[i:i + size]) for i in range(0, n, size)]
    del batch
    gc.collect()
    with mp.get_context("fork").Pool(procs) as pool:
        pool.map(abs, range(procs))  # workers are up before the clock starts
        t0 = time.perf_counter()
        results = pool.map(_worker, range(len(_SHARDS)), chunksize=1)
        wall = time.perf_counter() - t0
    _SHARDS = []
    return {"n": sum(r[0] for r in results), "s": wall, "allowed": sum(r[1] for r in results),
            "slowest_shard_s": max(r[2] for r in results)}


_LIVE: dict[str, Any] = {}  # set before forking: the live workers' requests and Redis address


def _live_requests(n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    reqs = []
    for i in range(n):  # every request is allowed offline, so each one runs the Lua script
        reqs.append({"now": "2026-11-24T04:00:00Z",
                     "contact": {"channel": "voice", "purpose": "collection", "to": f"+86138{i % 9999:08d}",
                                 "debt_id": "D-1"},
                     "subscriber": {"id": f"B-{rng.randrange(n)}", "timezone": "Asia/Shanghai",
                                    "opted_out": False, "dispute_open": False},
                     "history": [{"at": "2026-11-20T02:00:00Z", "channel": "sms", "outcome": "delivered"}]})
    return reqs


def _live_gate(worker: int) -> Any:
    import redis

    from duebot.policies.audit import JsonlAuditSink
    from duebot.policies.reserve import LiveGate

    address = _LIVE["address"]
    client = redis.Redis(host=address.host, port=address.port, db=address.db, password=address.password or None)
    return LiveGate(client, "cn", JsonlAuditSink(Path(_LIVE["audit_dir"]) / f"gate-{worker}.jsonl"))


def _live_worker(worker: int) -> tuple[int, int]:
    """One dialer-like client process: its own connection and audit file, its share of the requests."""
    gate, batch, procs = _live_gate(worker), _LIVE["batch"], _LIVE["procs"]
    mine = _LIVE["reqs"][worker::procs]
    allowed = 0
    for i in range(0, len(mine), batch):
        allowed += sum(r.allowed for r in gate.reserve_many(mine[i:i + batch]))
    return len(mine), allowed


def run_live(n: int, redis_url: str | None, batch: int, procs: int = 1) -> dict[str, float]:
    """Reservations against one Redis from `procs` client processes (a campaign runs several dialer workers);
    subscribers overlap across processes, so the processes race on the same counters as workers do."""
    import redis

    from duebot.settings import RedisAddress

    service = None
    tmp = tempfile.TemporaryDirectory()
    if redis_url is None:
        from duebot.processes import free_port, start, stop, wait_ready
        from duebot.redis_server import embedded_redis_spec

        port = free_port()
        address = RedisAddress("127.0.0.1", port, 0, "")
        service = start(embedded_redis_spec(address, Path(tmp.name), Path(tmp.name) / "redis.log"))
        wait_ready(service)
    else:
        address = RedisAddress.parse(redis_url)
    try:
        _LIVE.update(address=address, audit_dir=str(Path(tmp.name) / "audit"), batch=batch, procs=procs,
                     reqs=_live_requests(n))
        gate = _live_gate(procs)
        warm_s = _warm_numbers(_LIVE["reqs"], gate.pack.default_region if gate.pack else None)
        gate.reserve_many(_LIVE["reqs"][:batch])  # loads the script into Redis
        client = redis.Redis(host=address.host, port=address.port, db=address.db, password=address.password or None)
        client.flushdb()
        if procs == 1:
            t0 = time.perf_counter()
            done, allowed = _live_worker(0)
            elapsed = time.perf_counter() - t0
        else:
            with mp.get_context("fork").Pool(procs) as pool:
                pool.map(abs, range(procs))  # workers are up before the clock starts
                t0 = time.perf_counter()
                results = pool.map(_live_worker, range(procs), chunksize=1)
                elapsed = time.perf_counter() - t0
            done, allowed = sum(r[0] for r in results), sum(r[1] for r in results)
        client.flushdb()
        return {"n": done, "s": elapsed, "allowed": allowed, "warm_s": warm_s}
    finally:
        _LIVE.clear()
        if service is not None:
            stop(service)
        tmp.cleanup()


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="offline synthetic requests")
    ap.add_argument("--reservations", type=int, default=100_000, help="live reservations (0 to skip)")
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch", type=int, default=500, help="reservations per pipelined round trip")
    ap.add_argument("--redis-url", default=None, help="use this Redis instead of starting redis-server")
    args = ap.parse_args(argv)

    print(describe())
    off = run_offline(args.n)
    engine = off["n"] / off["decide_s"]
    from_dicts = off["n"] / (off["parse_s"] + off["decide_s"])
    from_text = off["n"] / off["text_s"]
    print(f"offline, 1 process : {off['n']:,} requests ({off['allowed']:,} allowed): decide only {engine:,.0f}/s, "
          f"dicts->decisions {from_dicts:,.0f}/s, JSON text->decisions {from_text:,.0f}/s")
    figures = {"decide_per_s": engine, "parse_decide_per_s": from_dicts, "text_decide_per_s": from_text}
    if args.procs > 1:
        par = run_parallel(args.n, args.procs)
        rate = par["n"] / par["s"]
        print(f"offline, {args.procs} processes: {par['n']:,} requests, JSON text->decisions {rate:,.0f}/s "
              f"(wall {par['s']:.2f}s, slowest shard {par['slowest_shard_s']:.2f}s)")
        figures["parallel_per_s"] = rate
    if args.reservations:
        for procs in sorted({1, args.procs}):
            live = run_live(args.reservations, args.redis_url, args.batch, procs)
            rate = live["n"] / live["s"]
            print(f"live reservations, {procs} client process{'es' if procs > 1 else ''}: {live['n']:,} in "
                  f"{live['s']:.2f}s = {rate:,.0f}/s (batch {args.batch}, {live['allowed']:,} allowed, audited to "
                  f"JSONL; {live['warm_s']:.2f}s number-cache warm-up not included)")
            figures["reservations_per_s" if procs == 1 else "parallel_reservations_per_s"] = rate
    return figures


if __name__ == "__main__":
    main()
