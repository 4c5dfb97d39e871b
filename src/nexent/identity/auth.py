"""Who may call identity routes. The operator is whoever holds `NEXENT_ADMIN_TOKEN`; user sign-in, roles and
API keys extend this module."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nexent.core.deps import SettingsDep
from nexent.core.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


class Operator:
    """The platform operator (holder of the admin token)."""


def require_operator(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    if credentials is None:
        raise Unauthorized("Send the operator token as 'Authorization: Bearer <token>'.", headers=_CHALLENGE)
    if settings.admin_token is None:
        raise Forbidden("The operator API is disabled: set NEXENT_ADMIN_TOKEN to enable it.", code="operator_disabled")
    expected = settings.admin_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise Unauthorized("The operator token is not valid.", code="invalid_token", headers=_CHALLENGE)
    return Operator()


RequireOperator = Annotated[Operator, Depends(require_operator)]
