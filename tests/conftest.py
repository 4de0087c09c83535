"""Shared fixtures (a real redis-server on a free loopback port, in its own process group) and the test tiers:
the `rasa`, `browser`, `sip` and `slow` markers, which tests carry them, and the skip of Rasa tests where Rasa is
missing. See docs/testing.md."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from secrets import token_urlsafe

import pytest
import redis

from duebot.processes import free_port, start, stop, wait_ready
from duebot.redis_server import embedded_redis_spec
from duebot.settings import RedisAddress, export, load_settings

# The stacks the tests start and the channels they build in this process sign accounts with one key, as the
# processes of one deployment do (duebot/secrets.py); generated per session, never a constant.
if load_settings().secrets.channel is None:
    export({"DUEBOT_CHANNEL_SECRET": token_urlsafe(32)})
# Likewise data at rest (duebot/crypto.py): a test fills a stack's store or evidence log from this process, whose
# data dir (and so whose generated keys) differ from the stack's; one data key and one blind-index key for all.
if load_settings().secrets.data_key is None:
    export({"DUEBOT_DATA_KEY": token_urlsafe(32)})
if load_settings().secrets.blind_index is None:
    export({"DUEBOT_BLIND_INDEX_KEY": token_urlsafe(32)})

__all__ = ["free_port"]  # tests/voice imports it from here; the one implementation is duebot.processes.free_port

# Fixtures whose use alone puts a test in a tier (the served stack's fixtures are recognised by their factory).
SIP_FIXTURES = {"kamailio"}  # tests/voice/test_sip_e2e.py: kamailio and baresip on loopback
CALL_FIXTURES = {"whisper", "piper", "scripted_rasa"}  # all three: a whole call, real ASR and TTS, in real time


@pytest.fixture(scope="session")
def redis_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisAddress]:
    """A real redis-server for the whole test session; tests isolate themselves by key prefix or flush."""
    data_dir: Path = tmp_path_factory.mktemp("redis")
    port = free_port()
    service = start(embedded_redis_spec(RedisAddress("127.0.0.1", port, 0, ""), data_dir, data_dir / "redis.log"))
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


# --- Rasa: one helper says whether Rasa tests can run here -----------------------------------------------------

@cache
def rasa_missing(languages: tuple[str, ...] = ()) -> str | None:
    """Why a test needing Rasa's environment (and the trained model of each of `languages`) cannot run here, or
    None when it can. `make setup` builds both; so CI, which runs `make test`, always has them."""
    from duebot.training.train import model_path

    settings = load_settings()
    if not settings.rasa_bin.exists():
        return f"no Rasa environment ({settings.rasa_bin} is missing): run `make setup`"
    for language in languages:
        model = model_path(settings, language)
        if not model.exists():
            train = "duebot train" + ("" if language == "en" else f" --lang {language}")
            return f"no trained {language} model for the current training data ({model.name}): run `{train}`"
    return None


def rasa_languages(item: pytest.Item) -> tuple[str, ...]:
    """The models a `rasa` test needs: the languages given to its markers, e.g. @pytest.mark.rasa("en", "zh")."""
    return tuple(sorted({language for marker in item.iter_markers("rasa") for language in marker.args}))


def _fixture_funcs(item: pytest.Item) -> Iterable[object]:
    """The function of every fixture the test uses, directly or through other fixtures."""
    info = getattr(item, "_fixtureinfo", None)
    for name in getattr(item, "fixturenames", ()):
        defs = info.name2fixturedefs.get(name) if info is not None else None
        if defs:
            yield defs[-1].func  # the definition this test sees (the closest override)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the fixtures they use: the served stack -> `rasa` with its languages; kamailio -> `sip`;
    Whisper, Piper and the scripted bot together (a call played in real time) -> `slow`."""
    for item in items:
        for func in _fixture_funcs(item):
            languages = getattr(func, "rasa_languages", None)  # set by tests.served.served_fixture
            if languages is not None:
                item.add_marker(pytest.mark.rasa(*languages))
        used = set(getattr(item, "fixturenames", ()))
        if SIP_FIXTURES & used:
            item.add_marker(pytest.mark.sip)
        if used >= CALL_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)  # before any fixture starts a stack for it
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a `rasa` test, with the reason, where Rasa's environment or a model it needs is missing; with
    DUEBOT_REQUIRE_RASA=1 (for a run that must exercise Rasa) the same reason fails the test instead."""
    if item.get_closest_marker("rasa") is None:
        return
    reason = rasa_missing(rasa_languages(item))
    if reason is None:
        return
    if os.environ.get("DUEBOT_REQUIRE_RASA") == "1":
        pytest.fail(f"DUEBOT_REQUIRE_RASA=1 but {reason}", pytrace=False)
    pytest.skip(reason)
