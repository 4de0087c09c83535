from decimal import Decimal

import pytest

from duebot.payments.links import InvalidLink, make_link, verify_token

KEY = b"test-secret"


def _token(url: str) -> str:
    return url.split("?t=", 1)[1]


def test_link_round_trip_carries_no_personal_data():
    link = make_link("A-1", Decimal("230.5"), ttl_hours=72, now=1_000_000)
    url = link.url("https://pay.example/x", KEY)
    assert "Jane" not in url and "+1415" not in url
    back = verify_token(_token(url), KEY, now=1_000_000)
    assert back.account_id == "A-1" and back.amount == Decimal("230.50")


@pytest.mark.parametrize("tamper", ["payload", "mac", "key", "expired"])
def test_tampered_or_expired_links_are_refused(tamper):
    url = make_link("A-1", Decimal("10"), ttl_hours=1, now=1_000_000).url("https://p/x", KEY)
    token, now, key = _token(url), 1_000_000, KEY
    payload, mac = token.rsplit(".", 1)
    if tamper == "payload":
        token = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    elif tamper == "mac":
        token = payload + "." + ("0" if mac[0] != "0" else "1") + mac[1:]
    elif tamper == "key":
        key = b"other"
    else:
        now = 1_000_000 + 3601
    with pytest.raises(InvalidLink):
        verify_token(token, key, now=now)
