"""What each role may do in its tenant. `docs/permissions.md` shows this table; a test keeps them in step."""

from __future__ import annotations

from enum import StrEnum

from nexent.identity.models import Role


class Permission(StrEnum):
    CHAT = "chat"  # use the agents shared with the caller and read its own conversations
    MANAGE_AGENTS = "agents.manage"
    MANAGE_KNOWLEDGE = "knowledge.manage"
    MANAGE_TOOLS = "tools.manage"
    RUN_LOCAL_TOOLS = "tools.run_local"  # add local (stdio) MCP servers: commands that run on the host
    MANAGE_MODELS = "models.manage"
    MANAGE_OWN_API_KEYS = "api_keys.manage"
    MANAGE_ALL_API_KEYS = "api_keys.manage_all"
    MANAGE_MEMBERS = "members.manage"
    MANAGE_INVITATIONS = "invitations.manage"
    MANAGE_GROUPS = "groups.manage"
    READ_AUDIT_LOG = "audit.read"
    MANAGE_MEMORY = "memory.manage"  # the tenant's and agents' memories, and agents' memory switches
    MANAGE_TENANT = "tenant.manage"
    SKILLS_NETWORK = "skills.network"  # let the scripts of the tenant's skills use the network (docs/skills.md)


_USER = {Permission.CHAT}
_DEVELOPER = _USER | {
    Permission.MANAGE_AGENTS,
    Permission.MANAGE_KNOWLEDGE,
    Permission.MANAGE_TOOLS,
    Permission.MANAGE_OWN_API_KEYS,
}
_ADMIN = _DEVELOPER | {
    Permission.RUN_LOCAL_TOOLS,
    Permission.MANAGE_MODELS,
    Permission.MANAGE_ALL_API_KEYS,
    Permission.MANAGE_MEMBERS,
    Permission.MANAGE_INVITATIONS,
    Permission.MANAGE_GROUPS,
    Permission.READ_AUDIT_LOG,
    Permission.MANAGE_MEMORY,
    Permission.SKILLS_NETWORK,
}
_OWNER = _ADMIN | {Permission.MANAGE_TENANT}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(_OWNER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.DEVELOPER: frozenset(_DEVELOPER),
    Role.USER: frozenset(_USER),
}

# API keys act for programs: they may use agents, never administer the tenant.
API_KEY_PERMISSIONS = frozenset({Permission.CHAT})

_RANK = {Role.USER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2, Role.OWNER: 3}


def outranks_or_equals(role: Role, other: Role) -> bool:
    """Whether `role` is at least as powerful as `other` (an admin may not promote anyone to owner)."""
    return _RANK[role] >= _RANK[other]
