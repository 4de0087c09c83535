"""The operator API behind API tokens tied to the console's roles (issue 18), over the real web app (create_app)
with a real Redis, the SQLite account store and the campaign service: every route of the app is either public by
name (with the reason) or refuses an anonymous request; each API route answers each role as the role matrix says;
the attacks the open API allowed (overwriting accounts by upload, launching, scraping) are refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import text
from starlette.routing import Mount

from duebot.accounts.store import AccountStore
from duebot.campaigns import http as campaign_http
from duebot.campaigns.service import Campaigns
from duebot.console.context import Console, set_console
from duebot.console.roles import Perm, Role, allowed
from duebot.console.tokens import ApiTokens
from duebot.console.users import ConsoleUser, Users
from duebot.policies import http as gate_http
from duebot.settings import RedisAddress
from duebot.web import create_app
from tests.campaigns.conftest import midday_zone

REDIS_DB = 7  # its own database: the browser tests' stack shares this Redis server (db 0)
NAMES = {Role.ADMIN: "ada", Role.CAMPAIGN_MANAGER: "manon", Role.QA_REVIEWER: "quinn", Role.AUDITOR: "audrey",
         Role.MONITOR: "mona", Role.AGENT: "gina"}
GATE_REQUEST = {"now": "2026-11-24T20:00:00Z",
                "contact": {"channel": "sms", "purpose": "reminder", "to": "+14155550101"},
                "subscriber": {"id": "S-1", "timezone": "America/Los_Angeles", "opted_out": False,
                               "dispute_open": False, "consent": {"sms": True, "ai_voice": True}}}

# Routes anyone may call, each with why. A new route that is not here must refuse an anonymous request.
PUBLIC = {
    ("GET", "/health"): "liveness probe of `duebot serve` and load balancers: status and version only",
    ("POST", "/twilio/sms"): "Twilio's webhook: refused without a valid X-Twilio-Signature",
    ("POST", "/twilio/sms/status"): "Twilio's delivery callbacks: refused without a valid X-Twilio-Signature",
    ("POST", "/twilio/voice/twiml"): "Twilio's call webhook (DUEBOT_TWILIO_VOICE=1): signature checked",
    ("WS", "/twilio/voice/stream"): "Twilio Media Streams (DUEBOT_TWILIO_VOICE=1): signature checked",
    ("GET", "/chat"): "the chat page: refused (403 page) without a signed, unexpired link",
    ("GET", "/chat/static/{name}"): "the chat page's fixed list of assets",
    ("POST", "/chat/api/message"): "chat messages: refused without the link's signed token",
    ("POST", "/payments/webhook"): "the payment provider's confirmation: HMAC-signed",
    ("GET", "/pay"): "the hosted payment page: shows nothing without a signed, unexpired link token (400/410)",
    ("POST", "/pay"): "hands a signed, unexpired link token over to the provider; nothing else is accepted",
    ("POST", "/billing/accounts/{account_id}"): "billing's inbound updates: HMAC-signed",
    ("GET", "/console/login"): "the login form (CSRF token in an anonymous session)",
    ("POST", "/console/login"): "the login itself: CSRF token, Origin, lock-out per user name and address",
    ("MOUNT", "/console/static"): "the console's CSS and JavaScript",
    ("GET", "/openapi.json"): "the API's description: what the open-source code says, no data",
    ("GET", "/docs"): "Swagger UI over /openapi.json (calls need a token)",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI's helper page",
    ("GET", "/redoc"): "ReDoc over /openapi.json",
}
ONLY_WITH_VOICE = {("POST", "/twilio/voice/twiml"), ("WS", "/twilio/voice/stream")}
# Every route of the operator API and the permission it needs (console/roles.py).
API = {
    ("POST", "/campaigns/import"): Perm.CAMPAIGN_IMPORT,
    ("GET", "/campaigns"): Perm.CAMPAIGN_VIEW,
    ("GET", "/campaigns/strategies"): Perm.CAMPAIGN_IMPORT,
    ("GET", "/campaigns/{campaign_id}/preview"): Perm.CAMPAIGN_PREVIEW,
    ("POST", "/campaigns/{campaign_id}/launch"): Perm.CAMPAIGN_CONTROL,
    ("POST", "/campaigns/{campaign_id}/pause"): Perm.CAMPAIGN_CONTROL,
    ("POST", "/campaigns/{campaign_id}/resume"): Perm.CAMPAIGN_CONTROL,
    ("POST", "/campaigns/{campaign_id}/cancel"): Perm.CAMPAIGN_CONTROL,
    ("GET", "/campaigns/{campaign_id}/status"): Perm.CAMPAIGN_VIEW,
    ("GET", "/campaigns/{campaign_id}/report"): Perm.CAMPAIGN_VIEW,
    ("GET", "/campaigns/{campaign_id}/report/{plot}.png"): Perm.CAMPAIGN_VIEW,
    ("GET", "/metrics"): Perm.METRICS,
    ("POST", "/gate/check"): Perm.GATE_CHECK,
}


def accounts_csv(path: Path, phone: str = "+14155550101", last4: str = "4472") -> Path:
    zone = midday_zone()
    path.write_text("account_id,name,phone,amount,due_date,segment,timezone,pack,line_type,consent_ai_voice,"
                    f"id_last4\nA-1,Maria Lopez,{phone},210.00,2026-10-01,cash_flow,{zone},us,mobile,true,{last4}\n"
                    f"A-2,Wei Zhang,+14155550102,580.00,2026-10-01,forgot,{zone},us,mobile,true,1188\n")
    return path


@dataclass
class Api:
    client: TestClient
    store: AccountStore
    tokens: dict[Role, str]
    campaign_id: str
    data_dir: Path
    tmp: Path

    def auth(self, role: Role | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


@pytest.fixture
def api(tmp_path: Path, redis_address: RedisAddress, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    client = redis.Redis(host=redis_address.host, port=redis_address.port, db=REDIS_DB)
    client.flushdb()
    url = f"sqlite:///{tmp_path / 'duebot.sqlite3'}"
    data_dir = tmp_path / "var"
    for name, value in {"REDIS_URL": f"redis://{redis_address.host}:{redis_address.port}/{REDIS_DB}",
                        "DUEBOT_DB_URL": url, "DUEBOT_DATA_DIR": str(data_dir)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DUEBOT_PUBLIC_URL", raising=False)
    store = AccountStore(url)
    users = Users(store)
    tokens = {}
    for role, name in NAMES.items():
        users.add(name, role.value, f"{name}-password-1")
        tokens[role] = ApiTokens(store).create(name, "tests").token
    campaigns = Campaigns(store, client)
    campaign_id = campaigns.import_file(accounts_csv(tmp_path / "first.csv"), "default", "October").campaign_id
    saved_sink = gate_http._sink
    campaign_http.set_campaigns(campaigns)
    set_console(Console(store, client, data_dir, secure_cookies=False))
    try:
        with TestClient(create_app()) as http:
            yield Api(http, store, tokens, campaign_id, data_dir, tmp_path)
    finally:
        set_console(None)
        campaign_http.set_campaigns(None)  # type: ignore[arg-type] - back to "from the environment"
        gate_http._sink = saved_sink
        client.flushdb()
        client.close()


def routes(app) -> Iterator[tuple[str, str]]:  # noqa: ANN001
    """(method, path) of every route the app serves, through the routers it includes ("WS", "MOUNT" for those)."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIWebSocketRoute):
            yield "WS", context.path
        elif isinstance(route, Mount):
            yield "MOUNT", context.path
        else:  # APIRoute, and the Starlette routes FastAPI adds itself (docs, openapi.json)
            methods = set(getattr(route, "methods", None) or {"GET"})
            for method in sorted(methods - {"HEAD"} if "GET" in methods else methods):
                yield method, context.path


def concrete(path: str, campaign_id: str) -> str:
    return (path.replace("{campaign_id}", campaign_id).replace("{plot}", "funnel").replace("{action}", "launch")
            .replace("{username}", "ada").replace("{name}", "x"))


def refused(response) -> bool:  # noqa: ANN001 - an httpx.Response
    if response.status_code in (401, 403):
        return True
    return response.status_code == 303 and response.headers["location"].startswith("/console/login")


def test_every_route_is_public_by_name_or_refuses_an_anonymous_request(api: Api) -> None:
    app = api.client.app
    seen = set(routes(app))
    assert not (set(PUBLIC) - ONLY_WITH_VOICE - seen), "an allow-listed route no longer exists"
    checked = []
    for method, path in sorted(seen):
        if (method, path) in PUBLIC:
            continue
        assert method in ("GET", "POST", "HEAD"), f"{method} {path}: add a check for this kind of route"
        url = concrete(path, api.campaign_id)
        anonymous = api.client.request(method, url, follow_redirects=False)
        assert refused(anonymous), f"{method} {path} answered an anonymous request with {anonymous.status_code}"
        # a made-up token and a made-up session cookie are no better
        forged = api.client.request(method, url, follow_redirects=False, headers={
            "Cookie": "duebot_console=forged", "Authorization": "Bearer dbt_" + "x" * 43})
        assert refused(forged), f"{method} {path} answered forged credentials with {forged.status_code}"
        checked.append((method, path))
    assert {k for k in API} <= set(checked)
    assert len(checked) >= 30  # the API and the console's pages


def test_each_api_route_answers_each_role_as_the_matrix_says(api: Api) -> None:
    app_api = {(m, p) for m, p in routes(api.client.app) if not p.startswith("/console") and (m, p) not in PUBLIC}
    assert app_api == set(API), "every API route needs its permission in this table (and in the code)"
    for (method, path), perm in API.items():
        for role in Role:
            url = concrete(path, api.campaign_id)
            kwargs: dict = {}
            if path == "/campaigns/import":
                kwargs["files"] = {"file": ("b.csv", accounts_csv(api.tmp / "b.csv").read_bytes(), "text/csv")}
            if path == "/gate/check":
                kwargs["json"] = GATE_REQUEST
            r = api.client.request(method, url, headers=api.auth(role), **kwargs)
            if allowed(role, perm):
                assert r.status_code not in (401, 403), f"{role.value} {method} {path}: {r.status_code} {r.text}"
            else:
                assert r.status_code == 403, f"{role.value} {method} {path}: {r.status_code}"
                assert role.value in r.json()["detail"]


def test_an_anonymous_upload_cannot_overwrite_accounts(api: Api) -> None:
    # The open API let anyone re-import account A-1 with their own phone and ID digits (identity checks ask
    # for those digits, and texts go to that phone).
    attack = accounts_csv(api.tmp / "attack.csv", phone="+14155559999", last4="0000").read_bytes()

    def upload(headers: dict[str, str]):  # noqa: ANN202
        return api.client.post("/campaigns/import", files={"file": ("x.csv", attack, "text/csv")},
                               params={"strategy": "default"}, headers=headers)

    assert upload({}).status_code == 401
    assert upload({"Authorization": "Bearer dbt_" + "A" * 43}).status_code == 401
    assert upload({"Authorization": "Basic YWRtaW46YWRtaW4="}).status_code == 401
    for role in (Role.ADMIN, Role.QA_REVIEWER, Role.AUDITOR, Role.MONITOR):
        assert upload(api.auth(role)).status_code == 403
    account = api.store.get_account("A-1")
    assert (account.phone, account.id_last4) == ("+14155550101", "4472")
    assert not list((api.data_dir / "campaign_imports").glob("*"))  # the refused uploads were never stored
    assert len(api.client.get("/campaigns", headers=api.auth(Role.AUDITOR)).json()) == 1
    # the same upload with a campaign manager's token goes through: the refusals above were the token's doing
    assert upload(api.auth(Role.CAMPAIGN_MANAGER)).status_code == 200
    assert api.store.get_account("A-1").phone == "+14155559999"


def test_strategies_are_names_never_paths(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    manager = api.auth(Role.CAMPAIGN_MANAGER)
    body = {"file": ("c.csv", accounts_csv(api.tmp / "c.csv").read_bytes(), "text/csv")}
    canary = api.tmp / "canary.yml"
    canary.write_text("version: CANARY-STRATEGY-51\nsteps: {}\n")
    for given in (str(canary), "/etc/passwd", "../../../../etc/passwd", "/dev/zero"):
        r = api.client.post("/campaigns/import", files=body, params={"strategy": given}, headers=manager)
        assert r.status_code == 422 and "CANARY" not in r.text and given not in r.text
        assert r.json()["detail"].startswith("strategy must be one of ")
    monkeypatch.setenv("DUEBOT_STRATEGIES", f"mine={canary}")  # registered by the operator: by its name only
    assert "mine" in api.client.get("/campaigns/strategies", headers=manager).json()


def test_anonymous_and_unprivileged_callers_cannot_launch(api: Api) -> None:
    launch = f"/campaigns/{api.campaign_id}/launch"
    assert api.client.post(launch).status_code == 401
    assert api.client.post(launch, headers=api.auth(Role.AUDITOR)).status_code == 403
    status = api.client.get(f"/campaigns/{api.campaign_id}/status", headers=api.auth(Role.MONITOR)).json()
    assert status["status"] == "draft"
    assert api.client.post(launch, headers=api.auth(Role.CAMPAIGN_MANAGER)).status_code == 200


def test_metrics_need_a_token_whose_role_may_read_them(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=api.auth(Role.QA_REVIEWER)).status_code == 403
    scraped = api.client.get("/metrics", headers=api.auth(Role.MONITOR))
    assert scraped.status_code == 200 and "duebot_campaign" in scraped.text
    # the monitor role reads counters and progress, nothing else
    assert api.client.get(f"/campaigns/{api.campaign_id}/preview", headers=api.auth(Role.MONITOR)).status_code == 403


def test_tokens_are_stored_hashed_and_die_with_revocation_expiry_and_the_user(api: Api) -> None:
    tokens = ApiTokens(api.store)
    minted = tokens.create("manon", "ci")
    with api.store.session() as s:
        rows = s.execute(text("SELECT * FROM console_api_tokens")).all()
    assert minted.token not in repr(rows) and hashlib.sha256(minted.token.encode()).hexdigest() in repr(rows)
    headers = {"Authorization": f"Bearer {minted.token}"}
    assert api.client.get("/campaigns", headers=headers).status_code == 200
    assert tokens.all("manon")[-1].last_used_at is not None
    tokens.revoke(minted.info.id)
    assert api.client.get("/campaigns", headers=headers).status_code == 401

    past = ApiTokens(api.store, clock=lambda: time.time() - 3 * 86400).create("manon", "old", days=1)
    assert api.client.get("/campaigns", headers={"Authorization": f"Bearer {past.token}"}).status_code == 401

    manager = api.auth(Role.CAMPAIGN_MANAGER)
    Users(api.store).set_active("manon", False)  # a disabled user's tokens stop at once
    assert api.client.get("/campaigns", headers=manager).status_code == 401
    Users(api.store).set_active("manon", True)
    with api.store.session() as s:  # the token follows its user's role
        s.get(ConsoleUser, "manon").role = Role.AUDITOR.value
    assert api.client.post(f"/campaigns/{api.campaign_id}/launch", headers=manager).status_code == 403


def test_uploads_and_bodies_are_capped(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUEBOT_MAX_UPLOAD_BYTES", "4000")
    monkeypatch.setenv("DUEBOT_MAX_BODY_BYTES", "2000")
    client = TestClient(create_app())  # the limits are read when the app is built
    manager = api.auth(Role.CAMPAIGN_MANAGER)
    big = b"account_id,name,phone,amount,due_date\n" + b"Z-1,Zed,+14155550111,1.00,2026-10-01\n" * 200
    r = client.post("/campaigns/import", files={"file": ("big.csv", big, "text/csv")}, headers=manager)
    assert r.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.csv\"\r\n\r\n"
        for _ in range(10):
            yield big[:1000]
        yield b"\r\n--b--\r\n"

    r = client.post("/campaigns/import", content=chunks(), headers={
        **manager, "Content-Type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413
    assert api.store.get_account("Z-1") is None
    # the same sizes elsewhere: the webhooks and the console get the general limit
    assert client.post("/payments/webhook", content=b"x" * 3000).status_code == 413
    assert client.post("/console/login", data={"username": "x" * 3000, "password": "y"}).status_code == 413
    small = b"account_id,name,phone,amount,due_date\nZ-1,Zed,+14155550111,1.00,2026-10-01\n"
    r = client.post("/campaigns/import", files={"file": ("ok.csv", small, "text/csv")}, headers=manager)
    assert r.status_code == 200 and r.json()["imported"] == 1  # uploads get their own, larger limit


def test_openapi_declares_the_bearer_scheme_on_each_api_route(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["apiToken"] == {
        **spec["components"]["securitySchemes"]["apiToken"], "type": "http", "scheme": "bearer"}
    for (method, path) in API:
        operation = spec["paths"][path][method.lower()]
        assert operation["security"] == [{"apiToken": []}], path
        assert {"401", "403"} <= set(operation["responses"]), path
    for (method, path) in PUBLIC:
        operation = spec["paths"].get(path, {}).get(method.lower())
        assert operation is None or "security" not in operation, path
    upload = spec["paths"]["/campaigns/import"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert upload["schema"]["properties"]["file"]["format"] == "binary"
    assert "application/json" in spec["paths"]["/gate/check"]["post"]["requestBody"]["content"]


def test_token_commands(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DUEBOT_DB_URL", "REDIS_URL")}  # not another test's
    env["DUEBOT_DATA_DIR"] = str(tmp_path)

    def duebot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "duebot.cli", "console", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    assert duebot("user", "add", "prom", "--role", "monitor", "--password", "prometheus-pass-1").returncode == 0
    created = duebot("token", "create", "--user", "prom", "--label", "prometheus", "--days", "30")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()  # stdout holds the token alone, for `TOKEN=$(duebot console token create …)`
    assert token.startswith("dbt_") and len(token) > 40 and "shown this once" in created.stderr
    token_id = created.stderr.split()[1]
    store = AccountStore(f"sqlite:///{tmp_path / 'duebot.sqlite3'}")
    caller = ApiTokens(store).verify(token)
    assert caller is not None and caller.user.role is Role.MONITOR and caller.token_id == token_id
    listed = duebot("token", "list")
    assert token_id in listed.stdout and "prometheus" in listed.stdout and "active" in listed.stdout
    assert token not in listed.stdout  # never shown again
    assert duebot("token", "revoke", token_id).returncode == 0
    assert ApiTokens(store).verify(token) is None and "revoked" in duebot("token", "list").stdout
    unknown = duebot("token", "create", "--user", "nobody")
    assert unknown.returncode == 2 and "no user" in unknown.stderr
    assert duebot("token", "revoke", "feedfacecafe").returncode == 2
