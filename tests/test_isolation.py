"""Tenant isolation: no endpoint may leak another tenant's data.

The suite enumerates every route of the embedded app (`discover`), so a route added later is covered without
touching this file, as long as the tables below know how to call it. On a fresh database (SQLite and PostgreSQL;
one app per database, shared by the module) it sets up a throwaway first user (the platform administrator) and
three tenants: A (the victim: owner, a member invited into a group, a used and a pending invitation, an API key and
a revoked one), B (the attacker, same shape; its owner has every permission in B) and C (the positive control).

What is checked:

- every route is in the tables (unknown path parameter, body without example, unlisted `/api/admin/` route: FAIL);
- without valid credentials (none, Basic, garbage, unknown or revoked API key, refresh token, JWT signed with
  another key, unsigned, expired, B's user naming A's tenant) every non-public route answers a 401 problem document;
- public routes answer without credentials;
- B's owner and B's API key, calling every route that points at something (by path, or by an id in the example
  body) with A's ids, and every mix of A's and B's ids, get 404, or 403 `api_key_not_allowed`/`permission_denied`
  when refused before any lookup; routes in `BY_NAME` (agent import, whose documents name models and knowledge
  bases) answer without any of A's ids instead: A's names match nothing;
- B's lists (every GET without path parameters) show nothing of A, while A's owner sees all of A in them; those
  that search (`?q=`: agents, knowledge bases, conversations by title) find nothing of A by any of A's names or
  ids, while A's owner finds A's things with them;
- operator routes answer 403 to B's owner and B's API key;
- no answer to B (or to anyone without credentials) contains any of A's ids, names, emails, prefixes or secrets
  that the caller did not send itself, and everything A's owner can read of A is unchanged afterwards;
- the MCP server (`/mcp`, and a key's connection URL `/mcp/k/<key>`): bad credentials get 401; B's key is offered
  none of A's agents or knowledge bases, cannot call A's agent's tool, and its search finds nothing of A's;
- the control: C's owner (and the operator) calling every route with C's own ids and the example bodies gets past
  validation and reads succeed, so B's 404s mean "isolated", not "malformed request".

Adding a route? The tests fail with a message naming the table to extend:

- `PUBLIC`: routes that need no credentials at all (probes, sign-in). Everything else must answer 401 without them.
- `OPERATOR`: platform-operator routes (`/api/admin/...`); a tenant's owner must get 403 there.
- `PATH_PARAMS`: for each path parameter name, how to get a tenant's values of it (A's values when B attacks).
  A new kind of resource also needs an instance of it in `build_tenant`, a field in `TenantData` and an entry in
  `TenantData.visible_markers` (its id and name), so the leak check looks for it.
- `BODIES`: for each (method, path) that takes a JSON body, a VALID example body; point ids in it at
  `ctx.target` (the tenant under attack) so that the request is an attempt on that tenant's data.
- `QUERIES`: query strings for routes that need one to pass validation.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import fastapi.routing
import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from nexent.a2a_server.api import A2A_PATH
from nexent.identity.models import Role
from nexent.identity.tokens import AccessClaims, issue_access_token
from nexent.mcp_server.api import MCP_PATH
from nexent.providers.speech import silent_wav
from nexent.webui import UIRoute
from tests.conftest import PostgresDatabases, make_settings, serve_in_process, wait_until
from tests.knowledge.test_parsing import pdf_bytes, pdf_text
from tests.support.a2a_agents import SampleAgents, serve_sample_agents
from tests.support.identity import PASSWORD, bearer, register

THIS_FILE = "tests/test_isolation.py"
OPERATOR_HEADERS = {"Authorization": "Bearer operator-secret"}
PROBLEM_CONTENT_TYPE = "application/problem+json"
# A caller refused before any lookup may get 403 with one of these codes; every other refusal must be a 404.
REFUSED_BEFORE_LOOKUP = frozenset({"api_key_not_allowed", "permission_denied"})
# Fields that may change between two reads of unchanged data.
VOLATILE_FIELDS = frozenset({"request_id", "exported_at"})
# Well-formed secrets that match nothing.
UNKNOWN_REFRESH_TOKEN = "nxr_isolation-probe-matches-no-session"
UNKNOWN_INVITATION_CODE = "nxi_isolation-probe-matches-no-invitation"

Key = tuple[str, str]  # (method, path as declared, e.g. "/api/groups/{group_id}")


# --- The tenants ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    email: str
    display_name: str
    user_id: str
    access_token: str
    refresh_token: str


@dataclass(frozen=True)
class TenantData:
    """One tenant and everything in it that a route may point at."""

    label: str
    tenant_id: str
    name: str
    slug: str
    owner: Account
    member: Account  # invited into the tenant, in `group_id`
    group_id: str
    group_name: str
    group_description: str
    member_invitation_id: str  # used up by `member`
    member_invitation_code: str
    invitation_id: str  # pending
    invitation_code: str
    invitation_code_prefix: str
    invitee_email: str
    api_key_id: str  # the owner's
    api_key_name: str
    api_key_prefix: str
    api_key_secret: str
    revoked_key_id: str
    revoked_key_secret: str
    model_id: str
    model_name: str
    model_base_url: str
    model_api_key: str
    agent_id: str
    agent_name: str
    agent_description: str
    version_note: str  # of the agent's published version 1
    case_id: str  # a test case of the agent
    case_question: str
    evaluation_id: str  # a completed evaluation of the agent's draft
    run_id: str
    conversation_id: str
    conversation_title: str
    attachment_id: str  # a file sent with the run's message
    attachment_name: str
    kb_id: str
    kb_name: str
    kb_description: str
    document_id: str
    document_name: str
    document_phrase: str
    table_cell: str  # a cell of the document's table
    chunk_id: str
    pdf_document_id: str  # a PDF beside it, for the page images of previews
    pdf_phrase: str
    openapi_source_id: str  # an OpenAPI import, with an API key
    openapi_source_name: str
    openapi_base_url: str
    openapi_secret: str
    mcp_server_id: str
    mcp_server_name: str
    mcp_server_url: str
    mcp_token: str
    remote_agent_id: str  # a remote A2A agent (a sample agent's card), with a bearer token
    remote_agent_name: str
    remote_card_url: str
    remote_token: str
    skill_id: str  # a skill with a reference file
    skill_name: str
    skill_description: str
    skill_phrase: str  # in its instructions
    memory_id: str  # the owner's own memory
    memory_text: str
    agent_memory_id: str  # a memory of the agent (every member reads it)
    agent_memory_text: str

    def visible_markers(self) -> dict[str, str]:
        """What the tenant's owner sees of it; none of it may reach another tenant."""
        return {
            "tenant id": self.tenant_id,
            "tenant name": self.name,
            "tenant slug": self.slug,
            "owner user id": self.owner.user_id,
            "owner email": self.owner.email,
            "owner display name": self.owner.display_name,
            "member user id": self.member.user_id,
            "member email": self.member.email,
            "member display name": self.member.display_name,
            "group id": self.group_id,
            "group name": self.group_name,
            "group description": self.group_description,
            "used invitation id": self.member_invitation_id,
            "pending invitation id": self.invitation_id,
            "invitation code prefix": self.invitation_code_prefix,
            "invitee email": self.invitee_email,
            "api key id": self.api_key_id,
            "api key name": self.api_key_name,
            "api key prefix": self.api_key_prefix,
            "revoked api key id": self.revoked_key_id,
            "model id": self.model_id,
            "model name": self.model_name,
            "model base url": self.model_base_url,
            "agent id": self.agent_id,
            "agent name": self.agent_name,
            "agent description": self.agent_description,
            "run id": self.run_id,
            "conversation id": self.conversation_id,
            "conversation title": self.conversation_title,
            "attachment id": self.attachment_id,
            "attachment name": self.attachment_name,
            "knowledge base id": self.kb_id,
            "knowledge base name": self.kb_name,
            "knowledge base description": self.kb_description,
            "openapi import id": self.openapi_source_id,
            "openapi import name": self.openapi_source_name,
            "openapi base url": self.openapi_base_url,
            "mcp server id": self.mcp_server_id,
            "mcp server name": self.mcp_server_name,
            "mcp server url": self.mcp_server_url,
            "remote agent id": self.remote_agent_id,
            "remote agent name": self.remote_agent_name,
            "memory id": self.memory_id,
            "memory text": self.memory_text,
            "agent memory id": self.agent_memory_id,
            "agent memory text": self.agent_memory_text,
            "remote agent card url": self.remote_card_url,
            "skill id": self.skill_id,
            "skill name": self.skill_name,
            "skill description": self.skill_description,
        }

    def unlisted_markers(self) -> dict[str, str]:
        """What the owner reads only below a path parameter (a knowledge base's documents and chunks, an agent's
        versions)."""
        return {
            "agent version note": self.version_note,
            "document id": self.document_id,
            "document file name": self.document_name,
            "document text": self.document_phrase,
            "document table cell": self.table_cell,
            "chunk id": self.chunk_id,
            "pdf document id": self.pdf_document_id,
            "pdf document text": self.pdf_phrase,
            "test case id": self.case_id,
            "test case question": self.case_question,
            "evaluation id": self.evaluation_id,
            "skill instructions": self.skill_phrase,
        }

    def secret_markers(self) -> dict[str, str]:
        return {
            "owner access token": self.owner.access_token,
            "owner refresh token": self.owner.refresh_token,
            "member access token": self.member.access_token,
            "member refresh token": self.member.refresh_token,
            "used invitation code": self.member_invitation_code,
            "invitation code": self.invitation_code,
            "api key secret": self.api_key_secret,
            "revoked api key secret": self.revoked_key_secret,
            "model api key": self.model_api_key,
            "openapi import secret": self.openapi_secret,
            "mcp server token": self.mcp_token,
            "remote agent token": self.remote_token,
        }

    def markers(self) -> dict[str, str]:
        return {**self.visible_markers(), **self.unlisted_markers(), **self.secret_markers()}


@dataclass(frozen=True)
class Ctx:
    """For an example body: `target` is the tenant the request points at, `own` the caller's tenant."""

    target: TenantData
    own: TenantData


# --- The tables ----------------------------------------------------------------------------------------------------

PUBLIC: frozenset[Key] = frozenset(
    {
        ("GET", "/"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
        ("HEAD", "/openapi.json"),
        ("POST", "/api/auth/register"),
        ("POST", "/api/auth/login"),
        ("POST", "/api/auth/refresh"),
        ("POST", "/api/auth/logout"),
        ("GET", "/api/auth/oidc/login"),
        ("GET", "/api/auth/oidc/callback"),
        ("GET", "/api/ui/config"),
    }
)

OPERATOR_PREFIX = "/api/admin/"
OPERATOR: frozenset[Key] = frozenset(
    {
        ("GET", "/metrics"),
        ("POST", "/api/admin/tenants"),
        ("GET", "/api/admin/tenants"),
        ("GET", "/api/admin/tenants/{tenant_id}"),
        ("PATCH", "/api/admin/tenants/{tenant_id}"),
    }
)

# Path parameter name -> a tenant's values of it. Several values mean: try each.
PATH_PARAMS: dict[str, Callable[[TenantData], list[str]]] = {
    "tenant_id": lambda t: [t.tenant_id],
    "user_id": lambda t: [t.member.user_id, t.owner.user_id],
    "group_id": lambda t: [t.group_id],
    "invitation_id": lambda t: [t.invitation_id],
    "key_id": lambda t: [t.api_key_id],
    "model_id": lambda t: [t.model_id],
    "agent_id": lambda t: [t.agent_id],
    "number": lambda t: ["1"],  # an agent's version: every tenant's agent has a version 1
    "run_id": lambda t: [t.run_id],
    "conversation_id": lambda t: [t.conversation_id],
    "attachment_id": lambda t: [t.attachment_id],
    "kb_id": lambda t: [t.kb_id],
    "doc_id": lambda t: [t.document_id],
    "chunk_id": lambda t: [t.chunk_id],
    "case_id": lambda t: [t.case_id],
    "evaluation_id": lambda t: [t.evaluation_id],
    "source_id": lambda t: [t.openapi_source_id],
    "server_id": lambda t: [t.mcp_server_id],
    "remote_agent_id": lambda t: [t.remote_agent_id],
    "memory_id": lambda t: [t.memory_id, t.agent_memory_id],
    "model": lambda t: [t.agent_name],  # the OpenAI-compatible API's model: a published agent, by name
    "skill_id": lambda t: [t.skill_id],
    "path": lambda t: [SKILL_FILE],  # a file of a skill: every tenant's skill has it
    "page": lambda t: ["1"],  # a page of a document's preview: every tenant's PDF has a page 1
}

# (path, parameter) -> the values for that route only, where the route needs another instance than PATH_PARAMS
# gives (page images and thumbnails exist for PDFs and images only, not for the tenant's Markdown document).
ROUTE_PARAMS: dict[tuple[str, str], Callable[[TenantData], list[str]]] = {
    ("/api/knowledge-bases/{kb_id}/documents/{doc_id}/preview/pages/{page}", "doc_id"): lambda t: [t.pdf_document_id],
    ("/api/knowledge-bases/{kb_id}/documents/{doc_id}/preview/thumbnail", "doc_id"): lambda t: [t.pdf_document_id],
}

# Path parameters that are not ids: every tenant has the same values, so only the ids beside them can attack.
SHARED_PARAMS = frozenset({"number", "path", "page"})
SKILL_FILE = "reference/notes.md"


def skill_zip(name: str, description: str, body: str) -> bytes:
    """A skill's folder as a ZIP: SKILL.md and a reference file."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(f"{name}/SKILL.md", f"---\nname: {name}\ndescription: {description}\n---\n\n{body}\n")
        archive.writestr(f"{name}/{SKILL_FILE}", f"Notes of {name}.\n")
    return out.getvalue()


def openapi_document(label: str) -> dict[str, Any]:
    """A one-operation OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{label} inventory", "version": "1"},
        "paths": {
            "/items/{item_id}": {
                "get": {
                    "operationId": "getItem",
                    "summary": "One item.",
                    "parameters": [{"name": "item_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                }
            }
        },
    }


def agent_document(c: Ctx) -> dict[str, Any]:
    """An agent document naming the target's model and knowledge base: only the caller's own may be mapped."""
    agent = {
        "ref": "a1",
        "name": f"Probe import {uuid.uuid4().hex[:8]}",
        "model": {"name": c.target.model_name, "kind": "llm", "model": "probe"},
        "knowledge_bases": [{"name": c.target.kb_name}],
        "skills": [c.target.skill_name],
    }
    return {"format": "nexent.agent", "format_version": 1, "root": "a1", "agents": [agent]}


# (method, path) -> a valid JSON body. Bodies are attacks where they can be: they try to change the target.
BODIES: dict[Key, Callable[[Ctx], dict[str, Any]]] = {
    ("POST", "/api/auth/register"): lambda c: {
        "email": f"probe-{uuid.uuid4().hex[:12]}@probe-isolation.example.com",
        "password": PASSWORD,
    },
    ("POST", "/api/auth/login"): lambda c: {
        "email": c.own.owner.email,
        "password": PASSWORD,
        "tenant_id": c.target.tenant_id,
    },
    ("POST", "/api/auth/refresh"): lambda c: {"refresh_token": UNKNOWN_REFRESH_TOKEN},
    ("POST", "/api/auth/logout"): lambda c: {"refresh_token": UNKNOWN_REFRESH_TOKEN},
    ("POST", "/api/auth/switch-tenant"): lambda c: {
        "tenant_id": c.target.tenant_id,
        "refresh_token": c.own.owner.refresh_token,
    },
    ("PATCH", "/api/me"): lambda c: {"display_name": "Renamed By A Probe"},
    ("PATCH", "/api/tenant"): lambda c: {"skills_network": False},
    ("POST", "/api/me/password"): lambda c: {"current_password": PASSWORD, "new_password": PASSWORD},
    ("PATCH", "/api/members/{user_id}"): lambda c: {"role": "user", "status": "deactivated"},
    ("POST", "/api/groups"): lambda c: {"name": f"Probe group {uuid.uuid4().hex[:8]}"},
    ("PATCH", "/api/groups/{group_id}"): lambda c: {"name": "Renamed by a probe", "description": "probed"},
    ("POST", "/api/invitations"): lambda c: {"role": "user", "group_ids": [c.target.group_id]},
    ("POST", "/api/invitations/accept"): lambda c: {"code": UNKNOWN_INVITATION_CODE},
    ("POST", "/api/openapi-tools/preview"): lambda c: {"document": openapi_document(c.target.label)},
    ("POST", "/api/openapi-tools"): lambda c: {
        "name": f"probe_{uuid.uuid4().hex[:8]}",
        "document": openapi_document(c.target.label),
        "base_url": "http://127.0.0.1:9/probe",
    },
    ("PATCH", "/api/openapi-tools/{source_id}"): lambda c: {"description": "probed", "auth": {"kind": "none"}},
    ("POST", "/api/api-keys"): lambda c: {"name": "Probe key"},
    ("POST", "/api/models"): lambda c: {
        "name": f"Probe model {uuid.uuid4().hex[:8]}",
        "kind": "llm",
        "model": "probe",
        "base_url": "http://127.0.0.1:9/probe/v1",
    },
    ("POST", "/api/models/check"): lambda c: {
        "kind": "llm",
        "model": "probe",
        "base_url": "http://127.0.0.1:9/probe/v1",
        "timeout_seconds": 2,
    },
    ("PATCH", "/api/models/{model_id}"): lambda c: {"name": "Renamed by a probe", "is_default": True},
    ("POST", "/api/mcp-servers"): lambda c: {
        "name": f"probe_{uuid.uuid4().hex[:8]}",
        "transport": "http",
        "url": "http://127.0.0.1:9/probe/mcp",
    },
    ("PATCH", "/api/mcp-servers/{server_id}"): lambda c: {"description": "Changed by a probe", "token": "probe"},
    ("POST", "/api/remote-agents"): lambda c: {
        "card_url": c.own.remote_card_url,
        "name": f"probe_{uuid.uuid4().hex[:8]}",
        "token": "probe",
    },
    ("PATCH", "/api/remote-agents/{remote_agent_id}"): lambda c: {"timeout_seconds": 30, "token": "probe"},
    ("POST", "/api/memories"): lambda c: {"text": "Probe fact.", "level": "user_agent", "agent_id": c.target.agent_id},
    ("PATCH", "/api/memories/{memory_id}"): lambda c: {"text": "Changed by a probe."},
    ("PUT", "/api/memory/settings"): lambda c: {"disabled_agent_ids": [c.target.agent_id]},
    ("PUT", "/api/memory/agents/{agent_id}"): lambda c: {"enabled": True},
    ("POST", "/api/agents"): lambda c: {"name": f"Probe agent {uuid.uuid4().hex[:8]}"},
    ("PATCH", "/api/agents/{agent_id}"): lambda c: {"description": "Changed by a probe", "max_steps": 3},
    ("PUT", "/api/agents/{agent_id}/shares/{group_id}"): lambda c: {"permission": "edit"},
    ("POST", "/api/agents/{agent_id}/runs"): lambda c: {"message": "Probe question"},
    ("POST", "/api/agents/{agent_id}/publish"): lambda c: {"note": "Published by a probe"},
    ("PATCH", "/api/agents/{agent_id}/versions/{number}"): lambda c: {"disabled": False},
    ("POST", "/api/agents/import/preview"): agent_document,
    ("POST", "/api/agents/import"): agent_document,
    ("POST", "/api/agents/generate"): lambda c: {"description": "An agent that answers probe questions."},
    ("POST", "/api/agents/{agent_id}/improve"): lambda c: {
        "note": "It answered the probe badly.",
        "conversation_id": c.target.conversation_id,
    },
    ("POST", "/api/agents/{agent_id}/test-cases"): lambda c: {
        "question": "Probe question?",
        "checks": [{"type": "contains", "value": "probe"}],
    },
    ("PATCH", "/api/agents/{agent_id}/test-cases/{case_id}"): lambda c: {"question": "Changed by a probe?"},
    ("POST", "/api/agents/{agent_id}/evaluations"): lambda c: {"target": "draft"},
    ("PATCH", "/api/conversations/{conversation_id}"): lambda c: {"title": "Renamed by a probe"},
    ("POST", "/api/knowledge-bases"): lambda c: {"name": f"Probe knowledge {uuid.uuid4().hex[:8]}"},
    ("PATCH", "/api/knowledge-bases/{kb_id}"): lambda c: {"description": "Changed by a probe"},
    ("PUT", "/api/knowledge-bases/{kb_id}/shares/{group_id}"): lambda c: {"permission": "edit"},
    ("POST", "/api/knowledge-bases/{kb_id}/search"): lambda c: {"query": c.target.document_phrase},
    ("PATCH", "/api/knowledge-bases/{kb_id}/chunks/{chunk_id}"): lambda c: {"text": "Changed by a probe"},
    # Streamed: the isolation tenants' models do not answer, and a failed run is a 500 of a whole answer.
    ("POST", "/v1/chat/completions"): lambda c: {
        "model": c.target.agent_name,
        "messages": [{"role": "user", "content": "Probe question"}],
        "stream": True,
    },
    ("PATCH", "/api/skills/{skill_id}"): lambda c: {"description": "Changed by a probe", "note": "probed"},
    ("PUT", "/api/skills/{skill_id}/files/{path:path}"): lambda c: {"content": "Changed by a probe"},
    ("PUT", "/api/skills/{skill_id}/shares/{group_id}"): lambda c: {"permission": "edit"},
    ("POST", "/api/skills/generate"): lambda c: {"description": "A skill that answers probe questions."},
    ("POST", "/api/admin/tenants"): lambda c: {"name": f"Probe tenant {uuid.uuid4().hex[:8]}"},
    ("PATCH", "/api/admin/tenants/{tenant_id}"): lambda c: {"name": "Renamed by a probe", "status": "disabled"},
}

# (method, path) -> multipart files for routes that take uploads instead of a JSON body.
UPLOADS: dict[Key, Callable[[Ctx], list[tuple[str, tuple[str, bytes, str]]]]] = {
    ("POST", "/api/attachments"): lambda c: [("file", ("probe.txt", b"Probe attachment.", "text/plain"))],
    ("POST", "/api/knowledge-bases/{kb_id}/documents"): lambda c: [
        ("file", ("probe.txt", f"Probe upload into {c.target.label}.".encode(), "text/plain"))
    ],
    ("POST", "/api/skills"): lambda c: [
        ("archive", ("probe.zip", skill_zip(f"probe-{uuid.uuid4().hex[:8]}", "Probe.", "Probe."), "application/zip"))
    ],
    # A recording: the caller's tenant's speech-to-text model (none in these tenants: a typed 404), nothing of A's.
    ("POST", "/api/speech/transcriptions"): lambda c: [("file", ("probe.wav", silent_wav(0.05), "audio/wav"))],
    # The caller's own skill's name: a new version of the target's skill, were it reachable.
    ("POST", "/api/skills/{skill_id}/versions"): lambda c: [
        ("archive", ("probe.zip", skill_zip(c.own.skill_name, "Changed by a probe.", "Probe."), "application/zip"))
    ],
}

# A fixed window around today (the series' default window ends "now", which moves between snapshots).
_TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

# (method, path) -> query parameters a route needs to pass validation.
QUERIES: dict[Key, dict[str, str]] = {
    ("GET", "/api/agents/{agent_id}/compare"): {"base": "1", "target": "draft"},
    # The progress stream would follow forever; until_idle ends it once nothing is in processing.
    ("GET", "/api/knowledge-bases/{kb_id}/events"): {"until_idle": "true"},
    ("GET", "/api/agents/{agent_id}/evaluations/compare"): {"base": "draft", "target": "draft"},
    ("GET", "/api/usage/series"): {
        "interval": "day",
        "from": (_TODAY - timedelta(days=7)).isoformat(),
        "to": (_TODAY + timedelta(days=7)).isoformat(),
    },
}


# --- Routes --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    path_format: str
    params: tuple[str, ...]
    has_body: bool
    query: tuple[str, ...] = ()  # the query parameters it takes

    @property
    def key(self) -> Key:
        return (self.method, self.path)

    @property
    def kind(self) -> str:
        if self.key in PUBLIC:
            return "public"
        if self.key in OPERATOR or self.path.startswith(OPERATOR_PREFIX):
            return "operator"
        return "tenant"

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def discover(app: FastAPI) -> tuple[list[Endpoint], list[str]]:
    """Every (method, path) the app serves, and the routes the suite cannot call."""
    # Newer FastAPI keeps included routers as `_IncludedRouter` entries in `app.routes`; `iter_route_contexts`
    # flattens them into the effective routes (with prefixes applied). Older versions list the routes directly.
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: list[Any] = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    endpoints: list[Endpoint] = []
    problems: list[str] = []
    for route in routes:
        original = getattr(route, "original_route", route)
        if isinstance(original, UIRoute):
            continue  # the web UI's static files: no tenant's data, never an API path (tests/test_webui.py)
        if getattr(route, "path", None) == MCP_PATH:
            continue  # the MCP server (JSON-RPC, not REST): `test_mcp_*` below
        if getattr(route, "path", None) == A2A_PATH:
            continue  # the A2A server (a2a-sdk's JSON-RPC and HTTP+JSON bindings): `test_a2a_*` below
        path: str | None = getattr(route, "path", None)
        methods: set[str] | None = getattr(route, "methods", None)
        if not path or not methods:
            problems.append(
                f"{original!r} is not a plain HTTP route; the isolation suite cannot call it: extend {THIS_FILE}."
            )
            continue
        has_body = isinstance(original, APIRoute) and getattr(route, "body_field", None) is not None
        params = tuple(getattr(route, "param_convertors", {}))
        path_format: str = getattr(route, "path_format", path)
        query = query_params(original.dependant) if isinstance(original, APIRoute) else ()
        endpoints.extend(Endpoint(m, path, path_format, params, has_body, query) for m in sorted(methods))
    return endpoints, problems


def query_params(dependant: Any) -> tuple[str, ...]:
    """The names of the query parameters a route takes, its dependencies' included."""
    names = [field.alias for field in dependant.query_params]
    for dependency in dependant.dependencies:
        names.extend(query_params(dependency))
    return tuple(names)


def table_problems(endpoints: Iterable[Endpoint]) -> list[str]:
    problems = []
    for endpoint in endpoints:
        for name in endpoint.params:
            if name not in PATH_PARAMS:
                problems.append(
                    f"{endpoint}: unknown path parameter {{{name}}}; add to PATH_PARAMS in {THIS_FILE} how to get "
                    "a tenant's value of it."
                )
        if endpoint.has_body and endpoint.key not in BODIES and endpoint.key not in UPLOADS:
            problems.append(f"{endpoint}: takes a JSON body; add a VALID example body to BODIES in {THIS_FILE}.")
        if endpoint.path.startswith(OPERATOR_PREFIX) and endpoint.key not in OPERATOR:
            problems.append(f"{endpoint}: an operator route; add it to OPERATOR in {THIS_FILE}.")
    return problems


def fail_with_table_problem(problem: str) -> NoReturn:
    pytest.fail(problem, pytrace=False)


def param_values(endpoint: Endpoint, name: str, tenant: TenantData) -> list[str]:
    getter = ROUTE_PARAMS.get((endpoint.path, name)) or PATH_PARAMS.get(name)
    if getter is None:
        fail_with_table_problem(
            f"{endpoint}: unknown path parameter {{{name}}}; add to PATH_PARAMS in {THIS_FILE} how to get a "
            "tenant's value of it."
        )
    return getter(tenant)


def assignments(endpoint: Endpoint, target: TenantData, own: TenantData | None = None) -> list[dict[str, str]]:
    """Path parameter values pointing at `target`; with `own`, also every mix of `target`'s and `own`'s values
    in which at least one points at `target` (e.g. B's group with A's member)."""
    choices: list[list[tuple[str, bool]]] = []
    for name in endpoint.params:
        if name in SHARED_PARAMS:  # the same value in every tenant: it points at nobody's data by itself
            options = [(value, False) for value in param_values(endpoint, name, target)]
            choices.append(options)
            continue
        options = [(value, True) for value in param_values(endpoint, name, target)]
        if own is not None:
            options += [(value, False) for value in param_values(endpoint, name, own)]
        choices.append(options)
    return [
        {name: value for name, (value, _) in zip(endpoint.params, combination, strict=True)}
        for combination in itertools.product(*choices)
        if not endpoint.params or any(is_target for _, is_target in combination)
    ]


def body_for(endpoint: Endpoint, ctx: Ctx) -> dict[str, Any] | None:
    if not endpoint.has_body or endpoint.key in UPLOADS:
        return None
    factory = BODIES.get(endpoint.key)
    if factory is None:
        fail_with_table_problem(f"{endpoint}: takes a JSON body; add a VALID example body to BODIES in {THIS_FILE}.")
    return factory(ctx)


# --- Requests and checks -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    endpoint: Endpoint
    caller: str
    url: str
    body: dict[str, Any] | None
    headers: dict[str, str]
    response: httpx.Response

    def describe(self) -> str:
        body = f" {json.dumps(self.body)}" if self.body is not None else ""
        text = self.response.text if len(self.response.text) < 600 else self.response.text[:600] + "..."
        return f"{self.endpoint.method} {self.url}{body} as {self.caller} -> {self.response.status_code} {text}"


async def call(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    values: dict[str, str],
    *,
    caller: str,
    headers: dict[str, str],
    ctx: Ctx,
    query: dict[str, str] | None = None,
) -> Exchange:
    """`query`: parameters besides those the route needs (`QUERIES`); the exchange's URL shows them as sent."""
    url = endpoint.path_format.format(**values)
    body = body_for(endpoint, ctx)
    upload = UPLOADS.get(endpoint.key)
    response = await client.request(
        endpoint.method,
        url,
        headers=headers,
        json=body,
        files=upload(ctx) if upload else None,
        params={**QUERIES.get(endpoint.key, {}), **(query or {})},
    )
    shown = url + "".join(f"{'&' if i else '?'}{k}={v}" for i, (k, v) in enumerate((query or {}).items()))
    return Exchange(endpoint, caller, shown, body, headers, response)


def problem_code(response: httpx.Response) -> str | None:
    """The problem document's `code` (under `/v1`, the OpenAI error's: that API answers in OpenAI's shape), or
    None when the answer is not one."""
    openai_shape = response.request.url.path.startswith("/v1/")
    expected = "application/json" if openai_shape else PROBLEM_CONTENT_TYPE
    if response.headers.get("content-type") != expected:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if openai_shape:
        body = body.get("error") if isinstance(body, dict) else None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code else None


def leaks(exchange: Exchange, markers: dict[str, str]) -> list[str]:
    """Markers of another tenant in the answer that the caller did not send itself."""
    sent = exchange.url + json.dumps(exchange.body) + json.dumps(exchange.headers)
    received = exchange.response.text + json.dumps(dict(exchange.response.headers))
    return [f"{label} ({value})" for label, value in markers.items() if value not in sent and value in received]


def check_leaks(exchange: Exchange, markers: dict[str, str], failures: list[str]) -> None:
    leaked = leaks(exchange, markers)
    if leaked:
        failures.append(f"LEAK of {', '.join(leaked)}: {exchange.describe()}")


def check_not_found(exchange: Exchange, failures: list[str]) -> None:
    """404, or 403 when the caller is refused before any lookup; a problem document either way."""
    status, code = exchange.response.status_code, problem_code(exchange.response)
    if status == 404 and code is not None:
        return
    if status == 403 and code in REFUSED_BEFORE_LOOKUP:
        return
    hint = ""
    if status == 422:
        hint = f" (a 422 proves nothing: fix the example in BODIES/QUERIES/PATH_PARAMS of {THIS_FILE}, or the route)"
    failures.append(f"expected 404 (or 403 {sorted(REFUSED_BEFORE_LOOKUP)}){hint}: {exchange.describe()}")


def report(failures: list[str], what: str) -> None:
    assert not failures, f"{len(failures)} {what}:\n" + "\n".join(failures)


def normalized(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items() if k not in VOLATILE_FIELDS}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


# --- The world -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    backend: str
    app: FastAPI
    client: httpx.AsyncClient
    endpoints: list[Endpoint]
    route_problems: list[str]
    a: TenantData  # the victim
    b: TenantData  # the attacker
    c: TenantData  # the positive control

    def of_kind(self, *kinds: str) -> list[Endpoint]:
        return [e for e in self.endpoints if e.kind in kinds]

    @property
    def jwt_secret(self) -> bytes:
        secret: bytes = self.app.state.engines.keys.jwt_secret
        return secret


async def expect(response_coroutine: Any, status: int) -> dict[str, Any]:
    response: httpx.Response = await response_coroutine
    assert response.status_code == status, response.text
    if status == 204:
        return {}
    data: dict[str, Any] = response.json()
    return data


def account(pair: dict[str, Any]) -> Account:
    return Account(
        email=pair["user"]["email"],
        display_name=pair["user"]["display_name"],
        user_id=pair["user"]["id"],
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
    )


async def build_tenant(client: httpx.AsyncClient, label: str, samples: SampleAgents) -> TenantData:
    """A tenant with an owner, a member invited into a group, a pending invitation, an API key and a revoked one;
    its agent has a published version, a test case and an evaluation."""
    title = label.capitalize()
    domain = f"{label}-isolation.example.com"
    pair = await register(
        client,
        f"{label}.owner@{domain}",
        display_name=f"{title} Owner Person",
        tenant_name=f"{title} Isolation Tenant",
    )
    assert pair["user"]["is_platform_admin"] is False
    owner = account(pair)
    tenant = pair["tenant"]
    headers = bearer(owner.access_token)

    group_body = {"name": f"{title} Secret Group", "description": f"{title} group description"}
    group = await expect(client.post("/api/groups", json=group_body, headers=headers), 201)
    member_email = f"{label}.member@{domain}"
    member_invitation = await expect(
        client.post(
            "/api/invitations",
            json={"role": "developer", "group_ids": [group["id"]], "email": member_email},
            headers=headers,
        ),
        201,
    )
    member_pair = await register(
        client, member_email, display_name=f"{title} Member Person", invitation_code=member_invitation["code"]
    )
    assert member_pair["tenant"]["id"] == tenant["id"]
    member = account(member_pair)
    group = await expect(client.get(f"/api/groups/{group['id']}", headers=headers), 200)
    assert group["member_ids"] == [member.user_id]

    invitee_email = f"{label}.invitee@{domain}"
    invitation = await expect(
        client.post(
            "/api/invitations",
            json={"role": "user", "group_ids": [group["id"]], "email": invitee_email},
            headers=headers,
        ),
        201,
    )
    key = await expect(client.post("/api/api-keys", json={"name": f"{title} Robot Key"}, headers=headers), 201)
    revoked = await expect(client.post("/api/api-keys", json={"name": f"{title} Retired Key"}, headers=headers), 201)
    await expect(client.delete(f"/api/api-keys/{revoked['id']}", headers=headers), 204)
    model_body = {
        "name": f"{title} Private Model",
        "kind": "llm",
        "model": f"{label}-secret-model-name",
        "base_url": f"http://127.0.0.1:9/{label}-isolation-models/v1",
        "api_key": f"sk-{label}-model-secret-{uuid.uuid4().hex}",
        "timeout_seconds": 2,
        # The default LLM: background writers (titles, knowledge summaries) fail fast instead of changing data.
        "is_default": True,
    }
    model = await expect(client.post("/api/models", json=model_body, headers=headers), 201)
    agent_body = {
        "name": f"{title} Secret Agent",
        "description": f"{title} agent description",
        "model_id": model["id"],
        "tools": [{"name": "calculator"}],
        "max_steps": 1,
    }
    agent = await expect(client.post("/api/agents", json=agent_body, headers=headers), 201)
    await expect(
        client.put(f"/api/agents/{agent['id']}/shares/{group['id']}", json={"permission": "read"}, headers=headers), 200
    )
    note = f"{title} release note of the secret agent"
    await expect(client.post(f"/api/agents/{agent['id']}/publish", json={"note": note}, headers=headers), 201)
    exposed = {"a2a_exposure": "api_key"}  # served over A2A to its tenant's keys (`test_a2a_*`)
    await expect(client.patch(f"/api/agents/{agent['id']}", json=exposed, headers=headers), 200)
    question = f"{title} secret question about the merger"
    attachment_name = f"{title} secret attachment.txt"
    attachment = await expect(
        client.post(
            "/api/attachments",
            files=[("file", (attachment_name, f"{title} attached secret".encode(), "text/plain"))],
            headers=headers,
        ),
        201,
    )
    started = await client.post(
        f"/api/agents/{agent['id']}/runs",
        json={"message": question, "attachment_ids": [attachment["id"]]},
        headers=headers,
    )
    assert started.status_code == 200, started.text

    # A skill (its name in the format's lowercase form).
    skill_phrase = f"{title} secret skill instructions"
    skill = await expect(
        client.post(
            "/api/skills",
            files=[
                (
                    "archive",
                    (
                        "skill.zip",
                        skill_zip(f"{label}-secret-skill", f"{title} skill description", skill_phrase),
                        "application/zip",
                    ),
                )
            ],
            headers=headers,
        ),
        201,
    )

    # A knowledge base on the tenant's built-in embedding model, with one indexed document that holds a table.
    kb_body = {"name": f"{title} Secret Knowledge", "description": f"{title} knowledge description"}
    kb = await expect(client.post("/api/knowledge-bases", json=kb_body, headers=headers), 201)
    phrase = f"{title} confidential acquisition memo"
    cell = f"{title} secret ledger entry"
    memo = f"{phrase}: the board approved it.\n\n| Item | Amount |\n| --- | --- |\n| {cell} | 40 |\n"
    pdf_phrase = f"{title} blueprint of the vault"
    blueprint = pdf_bytes([pdf_text(72, 700, 12, pdf_phrase)])
    uploaded = await expect(
        client.post(
            f"/api/knowledge-bases/{kb['id']}/documents",
            files=[
                ("file", (f"{label}-board-memo.md", memo.encode(), "text/markdown")),
                ("file", (f"{label}-blueprint.pdf", blueprint, "application/pdf")),
            ],
            headers=headers,
        ),
        201,
    )
    document = uploaded["documents"][0]["document"]
    pdf_document = uploaded["documents"][1]["document"]

    async def indexed() -> bool:
        for doc in (document, pdf_document):
            current = await expect(
                client.get(f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}", headers=headers), 200
            )
            assert current["status"] != "failed", current
            if current["status"] != "indexed":
                return False
        return True

    await wait_until(indexed, timeout=60)
    chunks = await expect(
        client.get(f"/api/knowledge-bases/{kb['id']}/documents/{document['id']}/chunks", headers=headers), 200
    )
    tables = await client.get(f"/api/knowledge-bases/{kb['id']}/documents/{document['id']}/tables", headers=headers)
    assert tables.status_code == 200 and [t["rows"] for t in tables.json()] == [[[cell, "40"]]], tables.text

    async def background_done() -> bool:
        # The conversation's title and the knowledge base's summary each try the unreachable default LLM once;
        # wait for both so that nothing changes A's data (its usage) while the checks run.
        usage: list[dict[str, Any]] = (await client.get("/api/usage", headers=headers)).json()
        return any(row["key"] == model["id"] and row["calls"] >= 2 for row in usage)

    await wait_until(background_done, timeout=60)

    # A test case and a completed evaluation of the draft (its run fails on the unreachable model; the failure is
    # stored, usage included, before the evaluation completes: nothing changes afterwards).
    case_question = f"{title} secret test question about the audit"
    case = await expect(
        client.post(
            f"/api/agents/{agent['id']}/test-cases",
            json={"question": case_question, "checks": [{"type": "contains", "value": "approved"}]},
            headers=headers,
        ),
        201,
    )
    evaluation = await expect(
        client.post(f"/api/agents/{agent['id']}/evaluations", json={"target": "draft"}, headers=headers), 202
    )

    async def evaluated() -> bool:
        current = await expect(
            client.get(f"/api/agents/{agent['id']}/evaluations/{evaluation['id']}", headers=headers), 200
        )
        return bool(current["status"] == "completed")

    await wait_until(evaluated, timeout=60)

    memory_text = f"{title} owner remembers secret fact {uuid.uuid4().hex}"
    memory = await expect(client.post("/api/memories", json={"text": memory_text}, headers=headers), 201)
    agent_memory_text = f"{title} agent remembers secret fact {uuid.uuid4().hex}"
    agent_memory = await expect(
        client.post(
            "/api/memories",
            json={"text": agent_memory_text, "level": "agent", "agent_id": agent["id"]},
            headers=headers,
        ),
        201,
    )

    openapi_secret = f"{label}-openapi-secret-{uuid.uuid4().hex}"
    openapi_source = await expect(
        client.post(
            "/api/openapi-tools",
            json={
                "name": f"{label.lower()}_inventory",
                "description": f"{title} inventory import",
                "document": openapi_document(label),
                "base_url": f"http://127.0.0.1:9/{label}-isolation-inventory",
                "auth": {"kind": "api_key", "location": "header", "name": "X-Api-Key", "secret": openapi_secret},
            },
            headers=headers,
        ),
        201,
    )
    mcp_token = f"{label}-mcp-token-{uuid.uuid4().hex}"
    mcp_body = {
        "name": f"{label}_secret_tools",
        "description": f"{title} MCP server description",
        "transport": "http",
        "url": f"http://127.0.0.1:9/{label}-isolation-mcp",
        "token": mcp_token,
    }
    mcp_server = await expect(client.post("/api/mcp-servers", json=mcp_body, headers=headers), 201)
    remote_token = f"{label}-remote-token-{uuid.uuid4().hex}"
    remote_body = {
        "card_url": f"{samples.card_url('echo')}?tenant={label}-isolation-remote",
        "name": f"{label}_remote_agent",
        "token": remote_token,
    }
    remote = await expect(client.post("/api/remote-agents", json=remote_body, headers=headers), 201)

    return TenantData(
        label=label,
        tenant_id=tenant["id"],
        name=tenant["name"],
        slug=tenant["slug"],
        owner=owner,
        member=member,
        group_id=group["id"],
        group_name=group["name"],
        group_description=group["description"],
        member_invitation_id=member_invitation["id"],
        member_invitation_code=member_invitation["code"],
        invitation_id=invitation["id"],
        invitation_code=invitation["code"],
        invitation_code_prefix=invitation["code_prefix"],
        invitee_email=invitee_email,
        api_key_id=key["id"],
        api_key_name=key["name"],
        api_key_prefix=key["prefix"],
        api_key_secret=key["secret"],
        revoked_key_id=revoked["id"],
        revoked_key_secret=revoked["secret"],
        model_id=model["id"],
        model_name=model["name"],
        model_base_url=model["endpoints"][0]["base_url"],
        model_api_key=str(model_body["api_key"]),
        agent_id=agent["id"],
        agent_name=agent["name"],
        agent_description=agent["description"],
        version_note=note,
        case_id=case["id"],
        case_question=case_question,
        evaluation_id=evaluation["id"],
        run_id=started.headers["x-run-id"],
        conversation_id=started.headers["x-conversation-id"],
        conversation_title=question,
        attachment_id=attachment["id"],
        attachment_name=attachment_name,
        kb_id=kb["id"],
        kb_name=kb["name"],
        kb_description=kb["description"],
        document_id=document["id"],
        document_name=document["file_name"],
        document_phrase=phrase,
        table_cell=cell,
        chunk_id=chunks["items"][0]["id"],
        pdf_document_id=pdf_document["id"],
        pdf_phrase=pdf_phrase,
        openapi_source_id=openapi_source["id"],
        openapi_source_name=openapi_source["name"],
        openapi_base_url=openapi_source["base_url"],
        openapi_secret=openapi_secret,
        mcp_server_id=mcp_server["id"],
        mcp_server_name=mcp_server["name"],
        mcp_server_url=mcp_server["url"],
        mcp_token=mcp_token,
        remote_agent_id=remote["id"],
        memory_id=memory["id"],
        memory_text=memory_text,
        agent_memory_id=agent_memory["id"],
        agent_memory_text=agent_memory_text,
        remote_agent_name=remote["name"],
        remote_card_url=remote["card_url"],
        remote_token=remote_token,
        skill_id=skill["id"],
        skill_name=skill["name"],
        skill_description=skill["description"],
        skill_phrase=skill_phrase,
    )


@pytest.fixture(scope="module")
def a2a_samples() -> Iterator[SampleAgents]:
    with serve_sample_agents() as served:
        yield served


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pg_databases: PostgresDatabases,
    a2a_samples: SampleAgents,
) -> AsyncIterator[World]:
    """One app on a fresh database with tenants A, B and C, shared by the tests of this module."""
    backend: str = request.param
    overrides: dict[str, Any] = {"database_url": await pg_databases.create()} if backend == "postgres" else {}
    server = serve_in_process(make_settings(tmp_path_factory.mktemp(f"isolation-{backend}"), **overrides))
    async with server as client:
        # The platform's first user becomes its administrator: let that be someone outside A and B.
        first = await register(client, "root@platform-isolation.example.com")
        assert first["user"]["is_platform_admin"] is True
        # Built at once: most of a tenant's setup is waiting (for its document's indexing, for its background
        # writers), which the three tenants' setups overlap.
        a, b, c = await asyncio.gather(
            build_tenant(client, "alpha", a2a_samples),
            build_tenant(client, "bravo", a2a_samples),
            build_tenant(client, "charlie", a2a_samples),
        )
        endpoints, problems = discover(server.app)
        yield World(backend, server.app, client, endpoints, problems, a, b, c)


async def snapshot(world: World) -> dict[str, Any]:
    """Everything A's owner (and the operator, for A's tenant) can read of A; every read must succeed."""
    a, state = world.a, {}
    ctx = Ctx(target=a, own=a)
    for endpoint in world.of_kind("tenant", "operator"):
        if endpoint.method != "GET":
            continue
        if endpoint.kind == "operator":
            if not endpoint.params:
                continue  # platform-wide lists: other tests add tenants
            caller, headers = "operator", OPERATOR_HEADERS
        else:
            caller, headers = "A's owner", bearer(a.owner.access_token)
        for values in assignments(endpoint, a):
            exchange = await call(world.client, endpoint, values, caller=caller, headers=headers, ctx=ctx)
            assert exchange.response.status_code == 200, f"A's own data must be readable: {exchange.describe()}"
            is_json = "json" in exchange.response.headers.get("content-type", "")
            state[f"GET {exchange.url}"] = normalized(exchange.response.json()) if is_json else exchange.response.text
    return state


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    changed = [url for url in before if before[url] != after.get(url)]
    assert not changed, "A's data changed:\n" + "\n".join(
        f"{url}\n  before: {before[url]}\n  after:  {after.get(url)}" for url in changed
    )


# --- Tests ---------------------------------------------------------------------------------------------------------


async def test_every_route_is_covered_by_the_tables(world: World) -> None:
    keys = {e.key for e in world.endpoints}
    # Guard against a discovery that silently finds nothing (e.g. FastAPI changing how it stores routes).
    assert {("GET", "/api/members/{user_id}"), ("POST", "/api/groups"), ("GET", "/healthz")} <= keys, keys
    problems = world.route_problems + table_problems(world.endpoints)
    assert not problems, "Routes the isolation suite cannot check yet:\n" + "\n".join(problems)


def claims_of_a_owner(world: World) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "iss": "nexent",
        "typ": "access",
        "sub": world.a.owner.user_id,
        "tid": world.a.tenant_id,
        "role": "owner",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=15)).timestamp()),
    }


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def b64(part: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def platform_jwt(world: World, user_id: str, tenant_id: str, ttl: timedelta) -> str:
    """An access token signed with the platform's own key."""
    claims = AccessClaims(uuid.UUID(user_id), uuid.UUID(tenant_id), Role.OWNER)
    return issue_access_token(world.jwt_secret, claims, ttl)


# Credentials that must not get anyone in (name -> Authorization header).
BAD_CREDENTIALS: dict[str, Callable[[World], dict[str, str]]] = {
    "none": lambda w: {},
    "basic-auth": lambda w: {"Authorization": "Basic b3BlcmF0b3I6c2VjcmV0"},
    "garbage": lambda w: bearer("garbage"),
    "garbage-api-key": lambda w: bearer("nxk_garbage"),
    "revoked-api-key": lambda w: bearer(w.a.revoked_key_secret),
    "refresh-token-as-access-token": lambda w: bearer(w.a.owner.refresh_token),
    "jwt-signed-with-another-key": lambda w: bearer(
        jwt.encode(claims_of_a_owner(w), "not-the-platform-key-but-long-enough-for-hs256", algorithm="HS256")
    ),
    "unsigned-jwt": lambda w: bearer(unsigned_jwt(claims_of_a_owner(w))),
    "expired-jwt": lambda w: bearer(platform_jwt(w, w.a.owner.user_id, w.a.tenant_id, -timedelta(minutes=1))),
    "jwt-of-b-user-for-a-tenant": lambda w: bearer(
        platform_jwt(w, w.b.owner.user_id, w.a.tenant_id, timedelta(minutes=15))
    ),
}


@pytest.mark.parametrize("variant", list(BAD_CREDENTIALS))
async def test_without_valid_credentials_every_route_answers_401(world: World, variant: str) -> None:
    headers = BAD_CREDENTIALS[variant](world)
    before = await snapshot(world)
    failures: list[str] = []
    ctx = Ctx(target=world.a, own=world.b)
    markers = world.a.markers()
    endpoints = world.of_kind("tenant", "operator")
    assert endpoints
    for endpoint in endpoints:
        for values in assignments(endpoint, world.a):
            exchange = await call(world.client, endpoint, values, caller=variant, headers=headers, ctx=ctx)
            check_leaks(exchange, markers, failures)
            response = exchange.response
            if response.status_code != 401 or problem_code(response) is None:
                failures.append(f"expected a 401 problem document: {exchange.describe()}")
            elif not response.headers.get("www-authenticate", "").startswith("Bearer"):
                failures.append(f"a 401 without 'WWW-Authenticate: Bearer': {exchange.describe()}")
    report(failures, f"routes that do not refuse '{variant}'")
    assert_unchanged(before, await snapshot(world))


async def test_public_routes_need_no_credentials(world: World) -> None:
    failures: list[str] = []
    ctx = Ctx(target=world.a, own=world.b)
    markers = world.a.markers()
    for endpoint in world.of_kind("public"):
        for values in assignments(endpoint, world.a):
            exchange = await call(world.client, endpoint, values, caller="nobody", headers={}, ctx=ctx)
            check_leaks(exchange, markers, failures)
            response = exchange.response
            if response.status_code >= 500 or (
                response.status_code == 401 and problem_code(response) == "unauthorized"
            ):
                failures.append(f"a PUBLIC route that does not answer without credentials: {exchange.describe()}")
    report(failures, "public routes that fail")


# B's credentials, which have every permission in B.
ATTACKERS: dict[str, Callable[[World], dict[str, str]]] = {
    "b-owner": lambda w: bearer(w.b.owner.access_token),
    "b-api-key": lambda w: bearer(w.b.api_key_secret),
}


# Routes whose bodies name things instead of pointing at them by id (an agent document names models and knowledge
# bases): another tenant's names must match nothing there, which the leak check proves (a match would answer with
# the target's ids), rather than answer 404.
BY_NAME: frozenset[Key] = frozenset({("POST", "/api/agents/import/preview"), ("POST", "/api/agents/import")})


def references_target(body: dict[str, Any] | None, target: TenantData) -> bool:
    text = json.dumps(body)
    return body is not None and any(value in text for value in target.visible_markers().values())


@pytest.mark.parametrize("caller", list(ATTACKERS))
async def test_another_tenants_ids_are_not_found(world: World, caller: str) -> None:
    """Every route that points at something (by path, or by an id in its body) answers 404 for A's ids."""
    headers = ATTACKERS[caller](world)
    ctx = Ctx(target=world.a, own=world.b)
    markers = world.a.markers()
    before = await snapshot(world)
    failures: list[str] = []
    probed = 0
    for endpoint in world.of_kind("tenant", "public"):
        if endpoint.params:
            combinations = assignments(endpoint, world.a, world.b)
        elif references_target(body_for(endpoint, ctx), world.a):
            combinations = [{}]
        else:
            continue
        for values in combinations:
            exchange = await call(world.client, endpoint, values, caller=caller, headers=headers, ctx=ctx)
            probed += 1
            check_leaks(exchange, markers, failures)
            if endpoint.key not in BY_NAME:
                check_not_found(exchange, failures)
    assert probed > 0
    report(failures, f"answers to {caller} about A's data that are not 404")
    assert_unchanged(before, await snapshot(world))


@pytest.mark.parametrize("caller", list(ATTACKERS))
async def test_lists_show_nothing_of_another_tenant(world: World, caller: str) -> None:
    headers = ATTACKERS[caller](world)
    ctx = Ctx(target=world.a, own=world.b)
    markers = world.a.markers()
    failures: list[str] = []
    lists = [e for e in world.of_kind("tenant") if e.method == "GET" and not e.params]
    assert lists
    for endpoint in lists:
        exchange = await call(world.client, endpoint, {}, caller=caller, headers=headers, ctx=ctx)
        check_leaks(exchange, markers, failures)
        status, code = exchange.response.status_code, problem_code(exchange.response)
        refused = status == 403 and code in REFUSED_BEFORE_LOOKUP and caller == "b-api-key"
        if status != 200 and not refused:
            failures.append(f"expected 200 (B's owner may read every list of B): {exchange.describe()}")
    report(failures, f"lists that fail or leak to {caller}")

    # The control: the same lists show A's owner all of A, so the markers are what a leak would look like.
    seen = ""
    for endpoint in lists:
        exchange = await call(
            world.client, endpoint, {}, caller="A's owner", headers=bearer(world.a.owner.access_token), ctx=ctx
        )
        seen += exchange.response.text
    unseen = [label for label, value in world.a.visible_markers().items() if value not in seen]
    assert not unseen, f"A's owner does not see these of A in any list; the leak check is blind to them: {unseen}"


# The query parameter of the lists that search (agents, knowledge bases, conversations by title...).
SEARCH = "q"
# The longest search every such list accepts (agents take 80 characters); a longer marker is searched by its start.
SEARCH_LENGTH = 80


@pytest.mark.parametrize("caller", list(ATTACKERS))
async def test_searches_find_nothing_of_another_tenant(world: World, caller: str) -> None:
    """Every list that searches (`?q=`), asked for each of A's names, titles, emails and ids: nothing of A. The
    same searches by A's owner find A's things, so the searches reach the data they would leak."""
    headers = ATTACKERS[caller](world)
    ctx = Ctx(target=world.a, own=world.b)
    markers = world.a.markers()
    searches = [e for e in world.of_kind("tenant") if e.method == "GET" and not e.params and SEARCH in e.query]
    assert searches, f"no list takes ?{SEARCH}=: this test is blind"
    terms = [value[:SEARCH_LENGTH] for value in world.a.visible_markers().values()]
    failures: list[str] = []
    for endpoint in searches:
        for term in terms:
            exchange = await call(
                world.client, endpoint, {}, caller=caller, headers=headers, ctx=ctx, query={SEARCH: term}
            )
            check_leaks(exchange, markers, failures)
            status, code = exchange.response.status_code, problem_code(exchange.response)
            refused = status == 403 and code in REFUSED_BEFORE_LOOKUP and caller == "b-api-key"
            if status != 200 and not refused:
                failures.append(f"expected 200 (B's owner may search every list of B): {exchange.describe()}")
    report(failures, f"searches that fail or leak to {caller}")

    owner = bearer(world.a.owner.access_token)
    for endpoint in searches:
        found = False
        for term in terms:
            exchange = await call(
                world.client, endpoint, {}, caller="A's owner", headers=owner, ctx=ctx, query={SEARCH: term}
            )
            found = found or (exchange.response.status_code == 200 and bool(exchange.response.json()["items"]))
        assert found, f"{endpoint}: A's owner finds nothing of A by any of its names; this test is blind to it"


@pytest.mark.parametrize("caller", list(ATTACKERS))
async def test_operator_routes_refuse_tenant_callers(world: World, caller: str) -> None:
    headers = ATTACKERS[caller](world)
    ctx = Ctx(target=world.a, own=world.b)
    markers = world.a.markers()
    before = await snapshot(world)
    failures: list[str] = []
    endpoints = world.of_kind("operator")
    assert endpoints
    for endpoint in endpoints:
        for values in assignments(endpoint, world.a):
            exchange = await call(world.client, endpoint, values, caller=caller, headers=headers, ctx=ctx)
            check_leaks(exchange, markers, failures)
            status, code = exchange.response.status_code, problem_code(exchange.response)
            if status != 403 or code not in REFUSED_BEFORE_LOOKUP:
                failures.append(f"expected 403 {sorted(REFUSED_BEFORE_LOOKUP)}: {exchange.describe()}")
    report(failures, f"operator routes that do not refuse {caller}")
    assert_unchanged(before, await snapshot(world))


_METHOD_ORDER = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}


async def test_the_examples_reach_the_handlers(world: World) -> None:
    """The positive control: C's owner (and the operator) calling every route with C's own ids and the example
    bodies gets past validation, and every read succeeds. So B's 404s above are about ownership, not a bad
    request. Runs on C only, which nothing else uses: it deletes and disables things."""
    c = world.c
    ctx = Ctx(target=c, own=c)
    failures: list[str] = []

    def order(endpoint: Endpoint) -> tuple[int, int, int]:
        # Operator routes last (they disable C), deletions after the rest, most specific deletions first.
        return (endpoint.kind == "operator", _METHOD_ORDER.get(endpoint.method, 5), -len(endpoint.params))

    for endpoint in sorted(world.of_kind("public", "tenant", "operator"), key=order):
        if endpoint.kind == "operator":
            caller, headers = "operator", OPERATOR_HEADERS
        else:
            caller, headers = "C's owner", bearer(c.owner.access_token)
        for values in assignments(endpoint, c):
            exchange = await call(world.client, endpoint, values, caller=caller, headers=headers, ctx=ctx)
            status = exchange.response.status_code
            if status == 422 or status >= 500:
                failures.append(
                    f"the example does not reach the handler: fix BODIES/QUERIES in {THIS_FILE} (or the route): "
                    f"{exchange.describe()}"
                )
            elif endpoint.method == "GET" and endpoint.kind != "public" and status != 200:
                failures.append(f"C's owner cannot read C's own data with PATH_PARAMS' values: {exchange.describe()}")
    report(failures, "examples that do not reach their handler")


# --- The MCP server --------------------------------------------------------------------------------------------------

# The MCP server answers to loopback host names only (DNS-rebinding protection): call it as 127.0.0.1.
MCP_URL = f"http://127.0.0.1{MCP_PATH}"
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}
MCP_INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "iso", "version": "1"}},
}


def mcp_result(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a streamable HTTP answer (an SSE stream of one message, or JSON)."""
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        message: dict[str, Any] = json.loads(data[-1])
        return message
    return dict(response.json())


async def mcp_session(world: World, url: str, headers: dict[str, str]) -> dict[str, str]:
    """Initialize an MCP session; the headers of its later requests."""
    response = await world.client.post(url, json=MCP_INITIALIZE, headers={**MCP_ACCEPT, **headers})
    assert "result" in mcp_result(response), response.text
    session = {**MCP_ACCEPT, **headers, "mcp-session-id": response.headers["mcp-session-id"]}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert (await world.client.post(url, json=initialized, headers=session)).status_code == 202
    return session


async def mcp_call(world: World, url: str, session: dict[str, str], method: str, params: dict[str, Any]) -> Any:
    response = await world.client.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers=session
    )
    return mcp_result(response)


def agent_tool_name(tenant: TenantData) -> str:
    return tenant.agent_name.replace(" ", "_")


@pytest.mark.parametrize("variant", [*BAD_CREDENTIALS, "revoked-key-in-url", "unknown-key-in-url"])
async def test_mcp_without_valid_credentials_answers_401(world: World, variant: str) -> None:
    url, headers = MCP_URL, {}
    if variant == "revoked-key-in-url":
        url = f"{MCP_URL}/k/{world.a.revoked_key_secret}"
    elif variant == "unknown-key-in-url":
        url = f"{MCP_URL}/k/nxk_isolation-probe-matches-no-key"
    else:
        headers = BAD_CREDENTIALS[variant](world)
    response = await world.client.post(url, json=MCP_INITIALIZE, headers={**MCP_ACCEPT, **headers})
    assert response.status_code == 401, response.text
    assert problem_code(response) is not None
    assert response.headers["www-authenticate"].startswith("Bearer")
    leaked = [name for name, value in world.a.markers().items() if value in response.text]
    assert not leaked, f"LEAK of {leaked}: {response.text}"


@pytest.mark.parametrize("how", ["header", "url"])
async def test_mcp_offers_a_key_nothing_of_another_tenant(world: World, how: str) -> None:
    def endpoint(tenant: TenantData) -> tuple[str, dict[str, str]]:
        if how == "url":
            return f"{MCP_URL}/k/{tenant.api_key_secret}", {}
        return MCP_URL, bearer(tenant.api_key_secret)

    # The control: A's key is offered A's published agent and a search over A's knowledge base.
    url, headers = endpoint(world.a)
    session = await mcp_session(world, url, headers)
    tools = {tool["name"]: tool for tool in (await mcp_call(world, url, session, "tools/list", {}))["result"]["tools"]}
    assert set(tools) == {agent_tool_name(world.a), "knowledge_base_search"}, tools
    assert world.a.kb_name in tools["knowledge_base_search"]["description"]

    # B's key: B's own, nothing of A's, whatever it asks for.
    url, headers = endpoint(world.b)
    session = await mcp_session(world, url, headers)
    answers = [await mcp_call(world, url, session, "tools/list", {})]
    names = {tool["name"] for tool in answers[0]["result"]["tools"]}
    assert names == {agent_tool_name(world.b), "knowledge_base_search"}, names
    a_agent = await mcp_call(
        world, url, session, "tools/call", {"name": agent_tool_name(world.a), "arguments": {"message": "hi"}}
    )
    assert "Unknown tool" in json.dumps(a_agent), a_agent
    search = await mcp_call(
        world,
        url,
        session,
        "tools/call",
        {"name": "knowledge_base_search", "arguments": {"query": world.a.document_phrase, "top_k": 50}},
    )
    assert search["result"].get("isError") is not True, search
    answers += [a_agent, search]
    text = json.dumps(answers)
    leaked = [name for name, value in world.a.markers().items() if value in text]
    assert not leaked, f"LEAK of {leaked}: {text}"


A2A_VERSION = {"A2A-Version": "1.0"}


def a2a_call(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


def a2a_send(text: str) -> dict[str, Any]:
    message = {"role": "ROLE_USER", "parts": [{"text": text}], "messageId": str(uuid.uuid4())}
    return a2a_call("SendMessage", {"message": message, "configuration": {"returnImmediately": True}})


@pytest.mark.parametrize("variant", list(BAD_CREDENTIALS))
async def test_a2a_without_valid_credentials_answers_401(world: World, variant: str) -> None:
    headers = {**A2A_VERSION, **BAD_CREDENTIALS[variant](world)}
    for method, path, body in (
        ("POST", f"{A2A_PATH}/{world.a.agent_id}/", a2a_call("ListTasks", {})),
        ("POST", f"{A2A_PATH}/{world.a.agent_id}", a2a_send("probe")),
        ("GET", f"{A2A_PATH}/{world.a.agent_id}/rest/tasks", None),
    ):
        response = await world.client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert problem_code(response) is not None
        assert response.headers["www-authenticate"].startswith("Bearer")
        leaked = [name for name, value in world.a.markers().items() if value in response.text]
        assert not leaked, f"LEAK of {leaked}: {response.text}"


async def test_a2a_offers_a_key_nothing_of_another_tenant(world: World) -> None:
    # The control: A's key reaches A's agent, and its task.
    a_url, a_key = f"{A2A_PATH}/{world.a.agent_id}/", {**A2A_VERSION, **bearer(world.a.api_key_secret)}
    sent = await world.client.post(a_url, json=a2a_send(world.a.agent_description), headers=a_key)
    assert sent.status_code == 200, sent.text
    task_id = sent.json()["result"]["task"]["id"]
    got = await world.client.post(a_url, json=a2a_call("GetTask", {"id": task_id}), headers=a_key)
    assert got.json()["result"]["id"] == task_id, got.text

    # B's key: A's agent is not found, over either binding; A's task is not found through B's own agent.
    b_key = {**A2A_VERSION, **bearer(world.b.api_key_secret)}
    answers = []
    for method, path, body in (
        ("POST", a_url, a2a_call("GetTask", {"id": task_id})),
        ("POST", a_url, a2a_send("probe")),
        ("GET", f"{A2A_PATH}/{world.a.agent_id}/rest/tasks/{task_id}", None),
    ):
        response = await world.client.request(method, path, json=body, headers=b_key)
        assert response.status_code == 404, response.text
        assert problem_code(response) == "agent_not_found"
        answers.append(response.text)
    b_url = f"{A2A_PATH}/{world.b.agent_id}/"
    for call in (
        a2a_call("GetTask", {"id": task_id}),
        a2a_call("CancelTask", {"id": task_id}),
        a2a_call("SubscribeToTask", {"id": task_id}),
    ):
        response = await world.client.post(b_url, json=call, headers=b_key)
        assert response.status_code == 200, response.text
        assert "error" in response.text and "result" not in response.text, response.text
        answers.append(response.text)
    listed = await world.client.post(b_url, json=a2a_call("ListTasks", {}), headers=b_key)
    assert task_id not in listed.text, listed.text
    rest = await world.client.get(f"{A2A_PATH}/{world.b.agent_id}/rest/tasks/{task_id}", headers=b_key)
    assert rest.status_code == 404, rest.text
    answers += [listed.text, rest.text]
    text = json.dumps(answers)
    leaked = [name for name, value in world.a.markers().items() if value in text]
    assert not leaked, f"LEAK of {leaked}: {text}"
