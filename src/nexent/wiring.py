"""Connects the domains where a lower one must not import a higher one (see `[tool.importlinter]` in
`pyproject.toml` and docs/architecture.md, "Layers").

- New tenants get the built-in models: `providers` registers into identity's tenant-created hook.
- API keys are limited only to agents that exist: `agents` provides identity the lookup of a tenant's agents.
- Models, knowledge bases and agents that a published agent version uses are not deleted: `agents` provides the
  lookup of those versions to `core.references`, which the deleting domains ask.
- Publishing an agent with `min_pass_rate` needs a good enough evaluation of its draft: `evaluation` provides its
  gate to `agents.versions`.
- Agents get the tenant's MCP servers' tools: `mcp_client` provides its tool source to `tools.sources`.
- Agents get the tools of the tenant's OpenAPI imports: `openapi_tools` provides its tool source to `tools.sources`.
- Agents get the tenant's remote (A2A) agents as sub-agents: `a2a_client` provides its tool source (kind `a2a`).
- Memory's extraction reports what it saved as the run's `memory.saved` event: `runtime` registers the recorder
  into `memory.jobs`.
- Agents get the `knowledge_base_search` tool: knowledge registers it into the tool registry when its module is
  imported, which this module does.

`wire()` is idempotent; the app factory and the command line call it before anything creates a tenant or runs an
agent.
"""

from __future__ import annotations

from nexent.a2a_client.service import remote_agent_source
from nexent.agents.service import existing_agent_ids
from nexent.agents.versions import provide_publish_gate, version_users
from nexent.core.references import provide_users_lookup
from nexent.evaluation.service import publish_gate
from nexent.identity.hooks import on_tenant_created, provide_existing_agents
from nexent.knowledge import tool as knowledge_tool
from nexent.mcp_client.service import McpToolSource
from nexent.memory.jobs import on_memory_saved
from nexent.openapi_tools.service import openapi_tool_source
from nexent.providers.builtin import register_builtin_models
from nexent.runtime.jobs import record_memory_saved
from nexent.tools.sources import provide_tool_source

__all__ = ["knowledge_tool", "wire"]


def wire() -> None:
    on_tenant_created(register_builtin_models)
    provide_existing_agents(existing_agent_ids)
    provide_users_lookup(version_users)
    provide_publish_gate(publish_gate)
    provide_tool_source(McpToolSource())
    provide_tool_source(openapi_tool_source)
    provide_tool_source(remote_agent_source)
    on_memory_saved(record_memory_saved)
