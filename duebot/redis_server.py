"""The embedded default: a real redis-server on loopback, persisting to the data directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from duebot.config import RedisAddress
from duebot.processes import ServiceSpec


def redis_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise FileNotFoundError("redis-server is not installed: run `make setup` (apt package redis-server)")
    return path


def ping(address: RedisAddress, timeout: float = 1.0) -> bool:
    client = redis.Redis(host=address.host, port=address.port, db=address.db,
                         password=address.password or None, socket_timeout=timeout,
                         socket_connect_timeout=timeout)
    try:
        return bool(client.ping())
    finally:
        client.close()


def embedded_redis_spec(port: int, data_dir: Path, log_path: Path, host: str = "127.0.0.1") -> ServiceSpec:
    data_dir.mkdir(parents=True, exist_ok=True)
    address = RedisAddress(host, port, 0, "")
    argv = [
        redis_server_binary(),
        "--bind", host,
        "--port", str(port),
        "--dir", str(data_dir),
        # Append-only file: conversation state and gate counters survive a restart.
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--protected-mode", "yes",
        "--daemonize", "no",
        "--logfile", "",
    ]
    return ServiceSpec(name="redis", argv=argv, log_path=log_path,
                       ready=lambda: ping(address), ready_timeout=20)
