"""Who may call the operator API: `Authorization: Bearer <API token>` (console/tokens.py), checked against the
console's role matrix (console/roles.py) with the role of the token's user.

No route of the API is called by the console's own pages (they call the services in-process, and the session
cookie is scoped to `Path=/console`), so the API takes tokens only: a browser never attaches one by itself,
which also keeps cross-site request forgery out of the API. 401 without a valid token, 403 when the role lacks
the permission. Routes declare the dependency with `Security(...)`, so FastAPI's OpenAPI document names the
`apiToken` bearer scheme on each of them."""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from duebot.accounts.store import AccountStore, default_url
from duebot.console.roles import Perm, allowed
from duebot.console.tokens import ApiTokens, Caller
from duebot.settings import load_settings

log = logging.getLogger("duebot.api")
api_token_scheme = HTTPBearer(
    scheme_name="apiToken", bearerFormat="dbt_…", auto_error=False,
    description="An API token from `duebot console token create --user NAME`; it acts with that console "
                "user's role (the role matrix in docs/console.md).")
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No API token, or an unknown, revoked or expired one, or its user is disabled"},
    403: {"description": "The role of the token's user may not do this"},
}
_tokens: ApiTokens | None = None
_current: tuple[str, ApiTokens] | None = None  # the store of the DUEBOT_DB_URL in effect, built once
_lock = threading.Lock()


def set_api_tokens(tokens: ApiTokens | None) -> None:
    """Tests may wire their own store; None: the account store the settings name (DUEBOT_DB_URL), built anew."""
    global _tokens, _current
    with _lock:
        _tokens, _current = tokens, None


def get_api_tokens() -> ApiTokens:
    if _tokens is not None:
        return _tokens
    global _current
    url = default_url(load_settings())
    with _lock:
        if _current is None or _current[0] != url:
            _current = (url, ApiTokens(AccountStore(url)))
        return _current[1]


def _refuse(detail: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="duebot"' + (f', error="{error}"' if error else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def require_token(perm: Perm):  # noqa: ANN201 - returns a FastAPI dependency
    """A dependency: the caller of a valid token whose role may `perm`; 401 or 403 otherwise."""

    def dependency(request: Request,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Security(api_token_scheme)]) -> Caller:
        if credentials is None:
            raise _refuse("an API token is required: Authorization: Bearer <token> "
                          "(`duebot console token create --user NAME`)")
        caller = get_api_tokens().verify(credentials.credentials)
        if caller is None:
            log.warning("api: unknown, revoked or expired token refused on %s %s from %s", request.method,
                        request.url.path, request.client.host if request.client else "?")
            raise _refuse("this API token is not valid (unknown, revoked or expired, or its user is disabled)",
                          "invalid_token")
        if not allowed(caller.user.role, perm):
            log.warning("api: %s (token %s, %s) may not %s: %s %s refused", caller.user.username, caller.token_id,
                        caller.user.role.value, perm.value, request.method, request.url.path)
            raise HTTPException(403, f"the role of this token's user ({caller.user.role.value}) may not "
                                     f"{perm.value}")
        return caller

    return dependency
