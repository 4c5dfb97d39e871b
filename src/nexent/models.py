"""Every ORM model, imported in one place so migrations and tests see the whole schema."""

from nexent.a2a_client.models import RemoteAgent
from nexent.a2a_server.models import A2aTask
from nexent.agents.models import Agent
from nexent.core.db import Base
from nexent.evaluation.models import Evaluation, EvaluationCase
from nexent.identity.models import (
    ApiKey,
    AuditEvent,
    Group,
    GroupMember,
    Invitation,
    Membership,
    RefreshToken,
    ResourceShare,
    Tenant,
    User,
)
from nexent.jobs.models import Job
from nexent.knowledge.models import KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from nexent.mcp_client.models import McpServer, McpServerLog
from nexent.memory.models import Memory, MemoryAgentSettings, MemoryIndex, MemoryUserSettings
from nexent.northbound.models import IdempotencyKey
from nexent.openapi_tools.models import OpenAPISource
from nexent.providers.models import ModelConfig, ModelEndpoint, UsageRecord
from nexent.runtime.models import Attachment, Conversation, Message, Run, RunEvent
from nexent.skills.models import Skill, SkillVersion

__all__ = [
    "A2aTask",
    "Agent",
    "ApiKey",
    "Attachment",
    "AuditEvent",
    "Base",
    "Conversation",
    "Evaluation",
    "EvaluationCase",
    "Group",
    "GroupMember",
    "IdempotencyKey",
    "Invitation",
    "Job",
    "KnowledgeBase",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "McpServer",
    "McpServerLog",
    "Membership",
    "Memory",
    "MemoryAgentSettings",
    "MemoryIndex",
    "MemoryUserSettings",
    "Message",
    "ModelConfig",
    "ModelEndpoint",
    "OpenAPISource",
    "RefreshToken",
    "RemoteAgent",
    "ResourceShare",
    "Run",
    "RunEvent",
    "Skill",
    "SkillVersion",
    "Tenant",
    "UsageRecord",
    "User",
]
