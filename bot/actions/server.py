"""The action server: rasa-sdk's app, bound where the settings say, refusing every caller but Rasa.

rasa-sdk serves its webhook to anyone on 0.0.0.0 with no authentication, and a hand-made tracker there can read
any account or write opt-outs and promises. Rasa presents a token with every action call (`action_endpoint.token`
in bot/endpoints.yml, sent as the `token` query parameter); this server compares it in constant time and answers
401 without running anything when it is missing or wrong. `/health` stays open for the supervisor.

Run: `python -m duebot.actions.server --port 5055` (`duebot serve` does).
"""

from __future__ import annotations

import argparse
import hmac
import logging
from functools import partial

from rasa_sdk.constants import DEFAULT_KEEP_ALIVE_TIMEOUT
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json
from sanic.worker.loader import AppLoader

from duebot import secrets
from duebot.settings import load_settings

logger = logging.getLogger(__name__)
OPEN_PATHS = frozenset({"/health"})


def authenticated_app(package: str) -> Sanic:
    """The rasa-sdk app for `package`'s actions, behind the actions token (module level: Sanic pickles it)."""
    executor = ActionExecutor()
    executor.register_package(package)
    app = create_app(executor, cors_origins=None)  # no browser ever calls the action server
    app.config.KEEP_ALIVE_TIMEOUT = DEFAULT_KEEP_ALIVE_TIMEOUT
    token = secrets.secret("actions_token")

    @app.on_request
    async def authenticate(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS:
            return None
        given = request.args.get("token") or ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            logger.warning("action server: refused a call without the actions token from %s", request.ip)
            return json({"error": "unauthorized"}, status=401)
        return None

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=load_settings().actions_port)
    parser.add_argument("--host", default=load_settings().host)
    parser.add_argument("--actions", default="duebot.actions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loader = AppLoader(factory=partial(authenticated_app, args.actions))
    app = loader.load()
    app.prepare(host=args.host, port=args.port, workers=1, access_log=False)
    logger.info("action server on http://%s:%s (token required)", args.host, args.port)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
