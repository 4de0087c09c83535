"""`duebot serve`: Redis, the action server, Rasa and the duebot web service, supervised together."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from duebot import secrets
from duebot.evidence.inbox import writer_running
from duebot.processes import RunningService, ServiceSpec, free_port, start, stop, wait_ready
from duebot.redis_server import embedded_redis_spec, ping
from duebot.settings import RedisAddress, Settings
from duebot.training.train import model_path, rasa_env


def _http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        return httpx.get(url, timeout=2.0).status_code == 200

    return probe


@dataclass
class Endpoint:
    name: str
    url: str
    log: Path


class Stack:
    """Starts the services in dependency order, restarts any that dies, stops them all on request."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say
        self.services: list[RunningService] = []
        self.endpoints: list[Endpoint] = []
        self.stopping = threading.Event()
        self.redis: RedisAddress | None = None
        self.endpoints_ready = False
        self.served_languages = "en"  # told to the web service, whose channels route by language

    def _log(self, name: str) -> Path:
        return self.settings.log_dir / f"{name}.log"

    def _launch(self, spec: ServiceSpec, url: str) -> RunningService:
        return self._launch_together([(spec, url)])[0]

    def _launch_together(self, specs: list[tuple[ServiceSpec, str]]) -> list[RunningService]:
        """Start the services at once, then wait for each: two Rasa servers load their models side by side."""
        started, t0 = [], time.monotonic()
        for spec, url in specs:
            service = start(spec)
            self.services.append(service)
            self.endpoints.append(Endpoint(spec.name, url, spec.log_path))
            started.append(service)
        for service, (spec, url) in zip(started, specs, strict=True):
            wait_ready(service)
            took = time.monotonic() - t0
            self.say(f"{spec.name:<8} ready in {took:5.1f}s  {url}  (pid {service.pid}, log {spec.log_path})")
        return started

    def start_all(self) -> None:
        s = self.settings
        model = model_path(s)
        if not model.exists():
            raise FileNotFoundError(f"no trained model for the current training data ({model.name}): "
                                    "run `duebot train`")
        if s.redis.url:
            self.redis = RedisAddress.parse(s.redis.url)
            if not ping(self.redis):
                raise ConnectionError(f"Redis at {self.redis.host}:{self.redis.port} does not answer")
            self.say(f"redis    external  {self.redis.host}:{self.redis.port}")
        else:
            # The embedded Redis asks for a password of its own (generated into the data dir): every port on
            # the machine is reachable by every local user, and Redis holds trackers, queues and evidence.
            self.redis = RedisAddress(s.host, s.redis.embedded_port, 0, secrets.secret("redis_password", s))
            spec = embedded_redis_spec(self.redis, s.data_dir / "redis", self._log("redis"))
            self._launch(spec, f"redis://{s.host}:{self.redis.port}/0")

        # The single writer of the evidence log; everything else submits records through Redis.
        assert self.redis is not None
        self._launch(ServiceSpec(
            name="evidence",
            argv=[sys.executable, "-m", "duebot.cli", "evidence", "writer"],
            log_path=self._log("evidence"),
            ready=lambda: writer_running(redis.Redis.from_url(self.redis.url)),
            env={"REDIS_URL": self.redis.url, "DUEBOT_DATA_DIR": str(s.data_dir)},
            ready_timeout=30,
        ), str(s.data_dir / "evidence"))

        actions_url = f"http://{s.host}:{s.actions_port}"
        self._launch(ServiceSpec(
            name="actions",
            argv=[sys.executable, "-m", "duebot.actions.server", "--host", s.host, "--port", str(s.actions_port)],
            log_path=self._log("actions"),
            ready=_http_ok(f"{actions_url}/health"),
            env={"RASA_TELEMETRY_ENABLED": "false", "REDIS_URL": self.redis.url, "DUEBOT_DATA_DIR": str(s.data_dir)},
        ), actions_url)

        # --- issue 11: the emotion service (torch lives here, not in Rasa's env); Rasa's NLU component calls it
        emotion_url = f"http://{s.host}:{self._emotion_port()}"
        self._launch(ServiceSpec(
            name="emotion",
            argv=[sys.executable, "-m", "duebot.emotion", "serve", "--host", s.host,
                  "--port", emotion_url.rsplit(":", 1)[1]],
            log_path=self._log("emotion"),
            ready=_http_ok(f"{emotion_url}/health"),
            env={"DUEBOT_DATA_DIR": str(s.data_dir), "HF_HUB_OFFLINE": "1"},
            ready_timeout=120,  # loads torch and MiniLM; trains the head first if `duebot train` has not
        ), emotion_url)

        # Rasa answers 200 with an empty reply when Redis is down, so Redis was checked above.
        # A second Rasa server holds Mandarin conversations, on the same Redis (trackers, locks, evidence broker)
        # and action server; the channels send each conversation to its account's language (channels/rasa_client.py).
        rasa = [(self._rasa_spec("rasa", model, s.rasa_port, actions_url, emotion_url), s.rasa_url)]
        zh_model = model_path(s, language="zh")
        if "zh" not in s.languages_to_serve:
            self.say("rasa-zh  not started: DUEBOT_LANGUAGES leaves Mandarin out; zh accounts are talked to in English")
        elif zh_model.exists():
            rasa.append((self._rasa_spec("rasa-zh", zh_model, s.rasa_zh_port, actions_url, emotion_url),
                         s.rasa_url_for("zh")))
        else:
            self.say(f"rasa-zh  skipped: no zh model for the current training data ({zh_model.name}); zh accounts "
                     "are talked to in English until `duebot train --lang zh` has run")
        self._launch_together(rasa)
        self.served_languages = ",".join(["en", *(["zh"] if len(rasa) > 1 else [])])

        web_url = f"http://{s.host}:{s.web_port}"
        self._launch(ServiceSpec(
            name="web",
            argv=[sys.executable, "-m", "uvicorn", "duebot.web:create_app", "--factory",
                  "--host", s.host, "--port", str(s.web_port)],
            log_path=self._log("web"),
            ready=_http_ok(f"{web_url}/health"),
            env={"REDIS_URL": self.redis.url, "DUEBOT_SERVED_LANGUAGES": self.served_languages,
                 "DUEBOT_DATA_DIR": str(s.data_dir)},
        ), web_url)

        # A campaign worker; run more of them (here or on other machines) against the same Redis to scale.
        self._launch(ServiceSpec(
            name="campaign",
            argv=[sys.executable, "-m", "duebot.cli", "campaign", "worker", "--concurrency", "8",
                  *(arg for item in s.campaigns.contactors for arg in ("--contactor", item))],
            log_path=self._log("campaign"),
            ready=lambda: bool(redis.Redis.from_url(self.redis.url).keys("duebot:campaign:worker:*")),
            env={"REDIS_URL": self.redis.url, "DUEBOT_DATA_DIR": str(s.data_dir)},
            ready_timeout=60,
        ), "campaign worker")

        # issue 20: account events to the operator's billing/CRM, signed (channels/billing/relay.py)
        if s.billing.webhook_url:
            from duebot.channels.billing.relay import relay_running
            from duebot.settings import mask

            self._launch(ServiceSpec(
                name="billing",
                argv=[sys.executable, "-m", "duebot.cli", "billing", "relay"],
                log_path=self._log("billing"),
                ready=lambda: relay_running(redis.Redis.from_url(self.redis.url)),
                env={"REDIS_URL": self.redis.url, "DUEBOT_DATA_DIR": str(s.data_dir)},
                ready_timeout=30,
            ), mask(s.billing.webhook_url, True))  # a URL's user and password are not printed
        else:
            self.say("billing  not started: DUEBOT_BILLING_WEBHOOK_URL is not set (no events go to billing/CRM)")
        self._write_state()

    def _rasa_spec(self, name: str, model: Path, port: int, actions_url: str, emotion_url: str) -> ServiceSpec:
        s = self.settings
        return ServiceSpec(
            name=name,
            # The HTTP API (trackers, model replacement, parse) answers only with the Rasa token.
            argv=[str(s.rasa_bin), "run", "--enable-api", f"--auth-token={secrets.secret('rasa_token', s)}",
                  "--model", str(model),
                  "--endpoints", str(s.bot_dir / "endpoints.yml"),
                  "--credentials", str(s.bot_dir / "credentials.yml"),
                  "--interface", s.host, "--port", str(port)],
            log_path=self._log(name),
            ready=_http_ok(f"http://{s.host}:{port}/status?token={secrets.secret('rasa_token', s)}"),
            env={**rasa_env(), **self._rasa_redis_env(actions_url), "DUEBOT_EMOTION_URL": emotion_url},
            cwd=s.bot_dir,
        )

    def _emotion_port(self) -> int:
        """DUEBOT_EMOTION_PORT, or a free loopback port: only Rasa needs to know it, and it is told."""
        return self.settings.emotion_port or free_port()

    def _rasa_redis_env(self, actions_url: str) -> dict[str, str]:
        assert self.redis is not None
        return {
            "PYTHONPATH": str(self.settings.bot_dir),  # bot/evidence_broker.py, named in endpoints.yml
            "DUEBOT_ACTIONS_URL": f"{actions_url}/webhook",
            "DUEBOT_ACTIONS_TOKEN": secrets.secret("actions_token", self.settings),
            "DUEBOT_REDIS_HOST": self.redis.host,
            "DUEBOT_REDIS_PORT_NUMBER": str(self.redis.port),
            "DUEBOT_REDIS_DB": str(self.redis.db),
            "DUEBOT_REDIS_PASSWORD": self.redis.password,
        }

    def _write_state(self) -> None:
        """Where each service runs, for operators and tests (e.g. to kill one and watch it come back)."""
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        state = {
            svc.spec.name: {"pid": svc.pid, "url": ep.url, "log": str(ep.log), "restarts": svc.restarts}
            for svc, ep in zip(self.services, self.endpoints, strict=True)
        }
        (self.settings.run_dir / "serve.json").write_text(json.dumps(state, indent=2))

    def supervise(self, poll: float = 0.5) -> None:
        """Restart any service that exits on its own until asked to stop."""
        while not self.stopping.wait(poll):
            for index, service in enumerate(self.services):
                code = service.process.poll()
                if code is None or self.stopping.is_set():
                    continue
                self.say(f"{service.spec.name} exited with code {code}; restarting")
                stop(service)  # reap anything its process group left behind
                replacement = start(service.spec)
                replacement.restarts = service.restarts + 1
                self.services[index] = replacement
                try:
                    took = wait_ready(replacement)
                    self.say(f"{service.spec.name} back in {took:.1f}s (pid {replacement.pid})")
                except Exception as exc:  # noqa: BLE001 - keep supervising the others
                    self.say(f"{service.spec.name} failed to restart: {exc}")
                self._write_state()

    def stop_all(self) -> None:
        self.stopping.set()
        for service in reversed(self.services):
            stop(service)
        state = self.settings.run_dir / "serve.json"
        state.unlink(missing_ok=True)


def run(settings: Settings) -> None:
    stack = Stack(settings)

    def on_signal(signum: int, _frame: object) -> None:
        if stack.stopping.is_set() or not stack.endpoints_ready:
            # Still starting: abort the start itself; the finally below stops what already runs.
            raise SystemExit(128 + signum)
        stack.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start_all()
        stack.endpoints_ready = True
        stack.say(f"duebot is up: REST webhook {settings.rasa_url}/webhooks/rest/webhook · "
                  f"parse {settings.rasa_url}/model/parse · Ctrl-C stops everything")
        stack.supervise()
    finally:
        stack.say("stopping all services")
        stack.stop_all()
