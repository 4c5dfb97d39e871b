"""Every ORM model, imported in one place so migrations and tests see the whole schema."""

from nexent.core.db import Base
from nexent.identity.models import Membership, Tenant, User
from nexent.jobs.models import Job

__all__ = ["Base", "Job", "Membership", "Tenant", "User"]
