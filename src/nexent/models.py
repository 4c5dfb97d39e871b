"""Every ORM model, imported in one place so migrations and tests see the whole schema."""

from nexent.agents.models import Agent
from nexent.core.db import Base
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
from nexent.providers.models import ModelConfig, ModelEndpoint, UsageRecord

__all__ = [
    "Agent",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Group",
    "GroupMember",
    "Invitation",
    "Job",
    "Membership",
    "ModelConfig",
    "ModelEndpoint",
    "RefreshToken",
    "ResourceShare",
    "Tenant",
    "UsageRecord",
    "User",
]
