"""Tools that agents call: the registry (`nexent.tools.registry`) and the built-in tools, registered on import.
Other domains register their own tools (`knowledge_base_search` lives with the knowledge domain, which registers it;
`nexent.wiring` imports it), so this package imports no domain."""

from nexent.tools import builtin as builtin
from nexent.tools.registry import (
    Citation,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolResult,
    ToolSpec,
    all_tools,
    execute,
    get,
    openai_spec,
    register,
    validate_settings,
)

__all__ = [
    "Citation",
    "ToolContext",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "ToolSpec",
    "all_tools",
    "builtin",
    "execute",
    "get",
    "openai_spec",
    "register",
    "validate_settings",
]
