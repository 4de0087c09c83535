"""The embedded default: a real redis-server on loopback, persisting to the data directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from duebot.processes import ServiceSpec
from duebot.settings import RedisAddress


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


def embedded_redis_spec(address: RedisAddress, data_dir: Path, log_path: Path) -> ServiceSpec:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(),
        "--bind", address.host,
        "--port", str(address.port),
        # read from a config on stdin would hide it from `ps`; the data dir's secret file is as private (0600),
        # and the command line is readable only through /proc by the same user
        *(["--requirepass", address.password] if address.password else []),
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
