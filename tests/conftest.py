"""Shared fixtures: a real redis-server on a free loopback port, in its own process group."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from duebot.config import RedisAddress
from duebot.processes import start, stop, wait_ready
from duebot.redis_server import embedded_redis_spec


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisAddress]:
    """A real redis-server for the whole test session; tests isolate themselves by key prefix or flush."""
    data_dir: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    service = start(embedded_redis_spec(port, data_dir, data_dir / "redis.log"))
    try:
        wait_ready(service)
        yield RedisAddress("127.0.0.1", port, 0, "")
    finally:
        stop(service)


@pytest.fixture
def redis_client(redis_address: RedisAddress) -> Iterator[redis.Redis]:
    client = redis.Redis(host=redis_address.host, port=redis_address.port, decode_responses=False)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
