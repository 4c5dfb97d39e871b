"""Tools that agents call: the registry (`nexent.tools.registry`) and the built-in tools, registered on import
(`knowledge_base_search` lives with the knowledge domain)."""

from nexent.knowledge import tool as knowledge_tool
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
    "knowledge_tool",
    "openai_spec",
    "register",
    "validate_settings",
]
