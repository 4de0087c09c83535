"""Console hardening (issue 18) over the real web app (create_app) with a real Redis, the SQLite account store and
a real evidence log drained by its single writer: bundles need a logged unmask with a reason; lock-out is per user
name and client address with the same answers for names that do not exist; security headers on every console
response (HSTS under https); the Origin check follows DUEBOT_PUBLIC_URL, not a Host a proxy may rewrite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from duebot.console.context import Console, origin_of
from duebot.console.users import ADDRESS_MAX_FAILURES, MAX_FAILURES, Users
from duebot.evidence.bundle import verify_bundle
from duebot.evidence.log import EvidenceLog
from duebot.web import create_app
from tests.console.conftest import CONVERSATION, Site, csrf_of, login
from tests.console.test_api_tokens import concrete, routes


def error_of(response) -> str:  # noqa: ANN001 - an httpx.Response
    found = re.search(r'<p class="error" role="alert">(.*?)</p>', response.text)
    return found.group(1) if found else ""


def access_records(site: Site, purpose: str) -> list:
    with EvidenceLog.open(site.log.dir, readonly=True) as view:
        return [r for r in view.records_for(CONVERSATION) if r.kind == "access" and r.body["purpose"] == purpose]


# ------------------------------------------------------------------------------------ bundles need an unmask


def test_a_bundle_needs_the_same_logged_unmask_with_a_reason(site: Site, tmp_path: Path) -> None:
    q = site.client()
    assert login(q, "quinn").status_code == 303
    page = q.get(f"/console/transcript?c={CONVERSATION}")
    assert 'data-testid="bundle-needs-unmask"' in page.text and 'data-testid="bundle"' not in page.text
    # the old console handed the unmasked bundle to anyone of the role, with no reason on record
    refused = q.get(f"/console/export/bundle?c={CONVERSATION}")
    assert refused.status_code == 403 and "unmask" in refused.text
    assert access_records(site, "export bundle") == []

    csrf = csrf_of(page.text)
    assert q.post("/console/unmask", data={"c": CONVERSATION, "reason": "dispute DSP-12 review",
                                           "csrf_token": csrf}).status_code == 303
    assert 'data-testid="bundle"' in q.get(f"/console/transcript?c={CONVERSATION}").text
    bundle = q.get(f"/console/export/bundle?c={CONVERSATION}")
    assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/zip"
    (tmp_path / "b.zip").write_bytes(bundle.content)
    errors, summary = verify_bundle(tmp_path / "b.zip")
    assert errors == [] and summary["conversation_id"] == CONVERSATION
    unmask = access_records(site, "unmask")[-1]
    export = access_records(site, "export bundle")[-1]
    assert export.body["user"] == "quinn" and export.body["reason"] == "dispute DSP-12 review"
    assert export.body["unmask_record"] == unmask.index and unmask.body["reason"] == "dispute DSP-12 review"

    assert q.post("/console/mask", data={"c": CONVERSATION, "csrf_token": csrf}).status_code == 303
    assert q.get(f"/console/export/bundle?c={CONVERSATION}").status_code == 403  # masked again: no bundle


# ------------------------------------------------------------------------------------ lock-out


def test_nobody_can_lock_a_user_out_from_elsewhere(site: Site) -> None:
    attacker, victim = site.client("203.0.113.66"), site.client("198.51.100.20")
    answers = [error_of(login(attacker, "quinn", "wrong-password")) for _ in range(MAX_FAILURES + 1)]
    assert answers[-1].startswith("Too many failed logins")
    assert "locked" in error_of(login(attacker, "quinn"))  # the right password, from the attacker's address
    assert login(victim, "quinn").status_code == 303  # the user, from elsewhere, is not locked out
    assert site.console.users.get("quinn").locked_until is not None  # the admin sees the lock…
    Users(site.store).unlock("quinn")  # …and clears it at every address
    assert login(attacker, "quinn").status_code == 303


def test_the_answers_never_say_whether_a_user_exists(site: Site) -> None:
    def attempts(address: str, name: str) -> list[tuple[int, str]]:
        b = site.client(address)
        return [(r.status_code, error_of(r)) for r in (login(b, name, "wrong-password")
                                                      for _ in range(MAX_FAILURES + 2))]

    known, unknown = attempts("203.0.113.10", "quinn"), attempts("203.0.113.11", "nobody_here")
    assert known == unknown  # same statuses, same words, same lock, in the same order
    assert known[0] == (401, "Wrong user name or password.") and "locked" in known[-1][1]


def test_one_address_cannot_spray_every_name(site: Site) -> None:
    sprayer, user = site.client("203.0.113.99"), site.client("198.51.100.30")
    answers = [error_of(login(sprayer, f"name{n}", "Summer2026!")) for n in range(ADDRESS_MAX_FAILURES)]
    assert answers[0] == "Wrong user name or password." and "your address" in answers[-1]
    assert "your address" in error_of(login(sprayer, "audrey"))  # even a right password, from there
    assert login(user, "audrey").status_code == 303


# ------------------------------------------------------------------------------------ headers


def assert_console_headers(response, hsts: bool = False) -> None:  # noqa: ANN001 - an httpx.Response
    h = response.headers
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    assert "frame-ancestors 'none'" in h.get("content-security-policy", ""), where
    assert "default-src 'self'" in h["content-security-policy"] and "script-src 'self'" in h["content-security-policy"]
    assert h.get("x-frame-options") == "DENY" and h.get("referrer-policy") == "same-origin", where
    assert h.get("x-content-type-options") == "nosniff", where
    assert ("strict-transport-security" in h) is hsts, where


def test_every_console_response_carries_the_security_headers(site: Site) -> None:
    anonymous = site.client()
    for method, path in sorted(routes(site.app)):
        if path.startswith("/console") and method in ("GET", "POST"):
            assert_console_headers(anonymous.request(method, concrete(path, "C-1")))
    static = anonymous.get("/console/static/console.css")
    assert_console_headers(static)
    assert "no-store" not in static.headers.get("cache-control", "")  # the CSS may be cached, pages not
    assert_console_headers(anonymous.get("/console/no-such-page"))
    q = site.client()
    login(q, "quinn")
    for path in ("/console/transcripts", f"/console/transcript?c={CONVERSATION}", "/console/campaigns"):
        page = q.get(path)
        assert page.status_code == 200
        assert_console_headers(page)
        assert page.headers["cache-control"] == "no-store"  # pages may hold unmasked data
    assert site.client().get("/health").headers["x-content-type-options"] == "nosniff"


def test_hsts_when_the_public_url_is_https(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUEBOT_PUBLIC_URL", "https://duebot.example.com")
    secure = TestClient(create_app(), follow_redirects=False)
    assert_console_headers(secure.get("/console/login"), hsts=True)
    assert secure.get("/health").headers["strict-transport-security"].startswith("max-age=31536000")


# ------------------------------------------------------------------------------------ Origin


def test_origin_is_checked_against_the_public_url_not_the_host(site: Site) -> None:
    # Behind a proxy that rewrites Host (here the browser reached https://duebot.example.com and the service sees
    # Host: testserver), the old Host comparison refused every real login; a public URL fixes what is ours.
    site.console.public_origin = origin_of("https://duebot.example.com/duebot")
    b = site.client()
    assert login(b, "quinn", origin="https://duebot.example.com").status_code == 303
    csrf = csrf_of(b.get(f"/console/transcript?c={CONVERSATION}").text)
    for bad in ("http://testserver", "https://evil.example", "https://duebot.example.com.evil.example", "null",
                "http://duebot.example.com"):
        r = b.post("/console/mask", data={"c": CONVERSATION, "csrf_token": csrf}, headers={"Origin": bad})
        assert r.status_code == 403, bad
        assert login(site.client(), "audrey", origin=bad).status_code == 403, bad
    ok = b.post("/console/mask", data={"c": CONVERSATION, "csrf_token": csrf},
                headers={"Origin": "https://DUEBOT.example.com"})
    assert ok.status_code == 303
    # without a public URL the browser's Origin must name the Host it reached (the service is reached directly)
    site.console.public_origin = None
    assert login(site.client(), "audrey", origin="http://testserver").status_code == 303
    assert login(site.client(), "audrey", origin="https://evil.example").status_code == 403
    assert login(site.client(), "audrey", origin="null").status_code == 403


def test_the_public_origin_comes_from_the_settings(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    assert origin_of("https://Duebot.Example.com:443/base/") == "https://duebot.example.com"
    assert origin_of("http://10.0.0.5:8080/x") == "http://10.0.0.5:8080"
    assert origin_of("http://[::1]:8080") == "http://[::1]:8080"
    assert Console.from_env().public_origin is None  # DUEBOT_PUBLIC_URL unset
    monkeypatch.setenv("DUEBOT_PUBLIC_URL", "https://duebot.example.com/base")
    console = Console.from_env()
    assert console.public_origin == "https://duebot.example.com" and console.secure_cookies


def test_a_monitor_user_sees_progress_and_nothing_else(site: Site) -> None:
    Users(site.store).add("mona", "monitor", "monitor-pass-1")
    m = site.client()
    landed = login(m, "mona", "monitor-pass-1")
    assert landed.status_code == 303 and landed.headers["location"] == "/console/campaigns"
    assert m.get("/console/campaigns").status_code == 200
    for path in ("/console/transcripts", f"/console/transcript?c={CONVERSATION}", "/console/users",
                 "/console/access", "/console/campaigns/import"):
        assert m.get(path).status_code == 403, path
