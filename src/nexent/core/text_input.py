"""Text no route stores: the NUL character.

PostgreSQL refuses NUL in text (and in JSON), so a name or a search term carrying one failed deep in a query. One
check before every route refuses it instead, in the path, the query string and JSON bodies, with a 422 problem.
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from nexent.core.openapi import answers

# In JSON text, a NUL can only be the escape `\u0000` (a raw control character is invalid JSON). An escape is a
# backslash preceded by an even number of backslashes: `\\u0000` is a backslash and the text "u0000".
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


@answers(422)
async def refuse_nul(request: Request) -> None:
    """A dependency of every route: 422 when the path, a query parameter or a JSON body holds a NUL character.

    The body is the one FastAPI has already read for the route (it is kept), so the check costs one scan of it."""
    location: tuple[str, ...] | None = None
    if "\x00" in request.scope["path"]:
        location = ("path",)
    elif any("\x00" in key or "\x00" in value for key, value in request.query_params.multi_items()):
        location = ("query",)
    elif _is_json(request.headers.get("content-type", "")) and _JSON_NUL.search(await request.body()):
        location = ("body",)
    if location is not None:
        raise RequestValidationError(
            [{"loc": location, "msg": "Text must not contain the NUL character (U+0000).", "type": "string_nul"}]
        )
