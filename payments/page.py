"""GET /pay?t=<token>: duebot's own payment page, the default address of a payment link.

It shows the amount the signed link carries (trusted without calling back: the token is MAC'd) in the account's
conversation language, and a button, a plain form POST (no script: the page sends its own strict CSP), that hands
over to the payment provider (payments/provider.py): POST /pay creates the provider's checkout and sends the
subscriber there with a 303. A bad token is a 400 page and an expired one a 410 page, neither with any account data.
No provider configured (DUEBOT_PAYMENT_PROVIDER_URL unset): the page says online payment is not available and gives
the pack's callback number; it never pretends.
"""

from __future__ import annotations

import html
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from duebot import clients
from duebot.accounts.models import Account
from duebot.accounts.store import AccountStore
from duebot.channels.language_texts import LanguageTexts
from duebot.payments.links import InvalidLink, verify_token
from duebot.payments.provider import Checkout, ProviderError, configured_provider
from duebot.settings import DEFAULT_LANGUAGE, conversation_language, load_settings

router = APIRouter(tags=["payments"])
KINDS = ("pay_title", "pay_amount", "pay_button", "pay_unavailable", "pay_invalid", "pay_expired", "pay_failed")
TEXTS = LanguageTexts(Path(__file__).resolve().parent / "texts.yml", KINDS)
MAX_TOKEN = 2048
# No script, style, image or frame of any origin; forms post only here (and the provider's origin, where the 303
# after the post goes: browsers check a form's redirects against form-action too).
CSP = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'{extra}"


@lru_cache(maxsize=1)
def _store() -> AccountStore:
    return clients.account_store()


def _callback(account: Account | None, language: str) -> str:
    from duebot.campaigns.followup import callback_number

    return callback_number(account.pack if account is not None else "cn", language)


def _page(status: int, language: str, title: str, *paragraphs: str, form: str = "",
          provider_origin: str = "") -> HTMLResponse:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    lang = "zh-CN" if language == "zh" else "en"
    page = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title></head><body><main><h1>{html.escape(title)}</h1>{body}{form}"
            f"</main></body></html>")
    extra = f" {provider_origin}" if provider_origin else ""
    return HTMLResponse(page, status_code=status, headers={
        "Content-Security-Policy": CSP.format(extra=extra), "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"})


def _text(kind: str, language: str, **values: str) -> str:
    return TEXTS.render(kind, language, **values)


def _refusal(exc: InvalidLink) -> HTMLResponse:
    """A bad or expired link, in the default language (the token cannot be trusted to name an account)."""
    language = DEFAULT_LANGUAGE
    title = _text("pay_title", language)
    if str(exc) == "expired":
        return _page(410, language, title, _text("pay_expired", language))
    return _page(400, language, title, _text("pay_invalid", language, callback=_callback(None, language)))


def _verified(token: str) -> tuple[Account | None, Decimal, str]:
    if not token or len(token) > MAX_TOKEN or not token.isascii():
        raise InvalidLink("malformed token")
    try:
        link = verify_token(token)
    except (ValueError, KeyError, TypeError) as exc:  # a MAC'd payload that is not a link's: still just invalid
        if isinstance(exc, InvalidLink):
            raise
        raise InvalidLink("malformed token") from exc
    account = _store().get_account(link.account_id)
    language = conversation_language(account.language if account else None, load_settings().served_languages)
    return account, link.amount, language


def _amount(account: Account | None, amount: Decimal) -> str:
    return f"{amount:.2f} {account.currency}" if account is not None else f"{amount:.2f}"


@router.get("/pay", response_class=HTMLResponse)
def payment_page(t: str = Query("", max_length=MAX_TOKEN)) -> Response:
    try:
        account, amount, language = _verified(t)
    except InvalidLink as exc:
        return _refusal(exc)
    title = _text("pay_title", language)
    shown = _text("pay_amount", language, amount=_amount(account, amount))
    provider = configured_provider(load_settings().payments.provider_url)
    if provider is None or account is None:
        return _page(200, language, title, shown, _text("pay_unavailable", language,
                                                        callback=_callback(account, language)))
    form = (f'<form method="post" action="/pay"><input type="hidden" name="t" value="{html.escape(t)}">'
            f'<button type="submit">{html.escape(_text("pay_button", language))}</button></form>')
    return _page(200, language, title, shown, form=form, provider_origin=provider.origin())


@router.post("/pay")
def hand_over(t: str = Form("", max_length=MAX_TOKEN)) -> Response:
    try:
        account, amount, language = _verified(t)
    except InvalidLink as exc:
        return _refusal(exc)
    title = _text("pay_title", language)
    settings = load_settings()
    provider = configured_provider(settings.payments.provider_url)
    if provider is None or account is None:
        return _page(200, language, title, _text("pay_unavailable", language, callback=_callback(account, language)))
    page = f"{settings.payment_link_base_url}?t={t}"
    try:
        url = provider.create_checkout(Checkout(t, amount, account.currency, f"{settings.public_url}/payments/webhook",
                                                page))
    except ProviderError:
        return _page(502, language, title, _text("pay_failed", language, callback=_callback(account, language)))
    return RedirectResponse(url, status_code=303)
