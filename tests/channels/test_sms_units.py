"""Pure parts of the SMS and chat channels: segments, keywords, signatures, chat tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal

import pytest

from duebot.channels.chat.webchat import InvalidToken, make_token, verify_token
from duebot.channels.sms.keywords import Keyword, KeywordMatcher
from duebot.channels.sms.segments import segment_info
from duebot.channels.twilio_signature import check, sign
from duebot.payments.links import PaymentLink
from duebot.policies.packs import load_pack
from tests.channels.conftest import AUTH_TOKEN, SHARED_KEY, sms_settings


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), [
    ("a" * 160, "GSM-7", 160, 1),
    ("a" * 161, "GSM-7", 161, 2),
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
    ("a" * 152 + "€" + "a" * 10, "GSM-7", 164, 2),  # € would straddle 153: it moves whole to segment 2
    ("é" * 160, "GSM-7", 160, 1),  # é is in the GSM alphabet...
    ("ê" + "a" * 69, "UCS-2", 70, 1),  # ...ê is not: the whole text becomes UCS-2
    ("ê" + "a" * 70, "UCS-2", 71, 2),
    ("回复TD退订" * 14, "UCS-2", 84, 2),
    ("😀" * 35, "UCS-2", 70, 1),  # a surrogate pair is two UTF-16 units
    ("😀" * 35 + "a", "UCS-2", 71, 2),
])
def test_segments(text: str, encoding: str, units: int, segments: int) -> None:
    info = segment_info(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_segment_boundary_with_pairs() -> None:
    assert segment_info("a" * 66 + "😀" + "a" * 10).segments == 2  # pair at units 67-68 starts segment 2


@pytest.mark.parametrize(("text", "expected"), [
    ("STOP", Keyword.OPT_OUT), ("stop", Keyword.OPT_OUT), (" Stop. ", Keyword.OPT_OUT), ("StopAll", Keyword.OPT_OUT),
    ("unsubscribe!", Keyword.OPT_OUT), ("CANCEL", Keyword.OPT_OUT), ("end", Keyword.OPT_OUT), ("Quit", Keyword.OPT_OUT),
    ("REVOKE", Keyword.OPT_OUT), ("optout", Keyword.OPT_OUT), ("Opt  Out", Keyword.OPT_OUT),
    ("ＳＴＯＰ", Keyword.OPT_OUT), ("退订", Keyword.OPT_OUT), ("td", Keyword.OPT_OUT), ("退订。", Keyword.OPT_OUT),
    ("START", Keyword.OPT_IN), ("unstop", Keyword.OPT_IN), ("Start!", Keyword.OPT_IN),
    ("HELP", Keyword.HELP), ("help?", Keyword.HELP), ("info", Keyword.HELP),
    ("please stop calling me", None), ("I can't stop worrying", None), ("hello", None), ("4472", None),
])
def test_keywords(text: str, expected: Keyword | None) -> None:
    assert KeywordMatcher().classify(text) is expected


def test_pack_keywords_are_data() -> None:
    cn = KeywordMatcher(load_pack("cn").opt_out_keywords)
    assert cn.classify("T") is Keyword.OPT_OUT  # only the cn pack lists the single letter
    assert KeywordMatcher().classify("T") is None


def _independent_sha1(url: str, params: dict[str, str], key: str) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(key.encode(), data.encode(), hashlib.sha1).digest()).decode()


def test_signature_matches_an_independent_hmac_sha1() -> None:
    params = {"Body": "STOP", "From": "+14155550101", "MessageSid": "SM1"}
    url = "https://duebot.example/twilio/sms"
    assert sign(url, params, AUTH_TOKEN) == _independent_sha1(url, params, AUTH_TOKEN)


def test_signature_check() -> None:
    settings = sms_settings("https://duebot.example", "http://127.0.0.1:1")
    url = "https://duebot.example/twilio/sms"
    params = {"Body": "hi", "From": "+14155550101", "MessageSid": "SM1"}
    good = {"X-Twilio-Signature": _independent_sha1(url, params, AUTH_TOKEN)}
    assert check(settings, url, params, good) is None
    assert check(settings, url, {**params, "Body": "hi!"}, good) == "bad signature"
    assert check(settings, "https://evil.example/twilio/sms", params, good) == "bad signature"
    assert check(settings, url, params, {}) == "unsigned"
    sha256 = {"X-Twilio-Signature": sign(url, params, SHARED_KEY[1], "HMAC_SHA256"),
              "X-Twilio-Webhooks-Signature-Settings": f"key={SHARED_KEY[0]},algorithm=HMAC_SHA256"}
    assert check(settings, url, params, sha256) is None
    other_key = {**sha256, "X-Twilio-Webhooks-Signature-Settings": "key=someone_else,algorithm=HMAC_SHA256"}
    assert check(settings, url, params, other_key) == "unknown signing key"


def test_chat_token() -> None:
    token = make_token("A-1", ttl_hours=1, now=1_000_000)
    assert verify_token(token, now=1_000_100) == "A-1"
    assert "A-1" not in token and "Jane" not in token
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(token, now=1_000_000 + 3601)
    payload, mac = token.split(".")
    forged = base64.urlsafe_b64encode(b'{"a":"A-2","e":9999999999,"p":"chat"}').rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        verify_token(f"{forged}.{mac}")
    payment = PaymentLink("A-1", Decimal("1.00"), 9999999999).url("x").split("?t=")[1]
    with pytest.raises(InvalidToken):
        verify_token(payment)  # a payment link's token does not open a chat
