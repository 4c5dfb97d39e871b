"""Skills over HTTP: uploads checked (bad archives refused with their codes), versions, edits, sharing, export,
deleting, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import stat
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PostgresDatabases, make_settings, serve_in_process
from tests.support.identity import bearer, invite_and_register, register
from tests.test_http import assert_problem

MANIFEST = """---
name: {name}
description: Turns CSV files into summaries.
allowed-tools: [calculator]
---

# CSV summaries

Read `reference/format.md`, then run `scripts/summarise.py`.
"""


def skill_md(name: str = "csv-summary") -> str:
    return MANIFEST.format(name=name)


def make_zip(entries: dict[str, bytes | str], *, top: str | None = "csv-summary") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, data in entries.items():
            archive.writestr(f"{top}/{path}" if top else path, data)
    return out.getvalue()


def default_files(name: str = "csv-summary") -> dict[str, bytes | str]:
    return {
        "SKILL.md": skill_md(name),
        "reference/format.md": "Columns are separated by commas.\n",
        "scripts/summarise.py": "print('rows: 3')\n",
    }


@pytest.fixture(params=["sqlite", "postgres"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path, pg_databases: PostgresDatabases
) -> AsyncIterator[httpx.AsyncClient]:
    overrides: dict[str, Any] = (
        {"database_url": await pg_databases.create(migrated=True)} if request.param == "postgres" else {}
    )
    async with serve_in_process(make_settings(tmp_path, builtin_models=False, **overrides)) as http:
        yield http


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register(client, f"skills-{uuid.uuid4().hex[:6]}@example.com")


async def upload_zip(client: httpx.AsyncClient, token: str, data: bytes, url: str = "/api/skills") -> httpx.Response:
    return await client.post(url, files={"archive": ("skill.zip", data, "application/zip")}, headers=bearer(token))


async def upload(client: httpx.AsyncClient, token: str, name: str = "csv-summary") -> dict[str, Any]:
    response = await upload_zip(client, token, make_zip(default_files(name)))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_upload_list_read_edit_make_versions(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    skill = await upload(client, token)
    assert (skill["name"], skill["version"], skill["latest_version"]) == ("csv-summary", 1, 1)
    assert skill["allowed_tools"] == ["calculator"] and skill["network"] is False
    assert skill["body"].startswith("# CSV summaries")
    assert [f["path"] for f in skill["files"]] == ["SKILL.md", "reference/format.md", "scripts/summarise.py"]

    listed = (await client.get("/api/skills", headers=bearer(token))).json()
    assert [(s["name"], s["latest_version"], s["can_edit"]) for s in listed["items"]] == [("csv-summary", 1, True)]

    url = f"/api/skills/{skill['id']}"
    text = (await client.get(f"{url}/files/reference/format.md", headers=bearer(token))).json()
    assert text["content"] == "Columns are separated by commas.\n"
    assert_problem(await client.get(f"{url}/files/nope.md", headers=bearer(token)), 404, "skill_file_not_found")

    # Writing a file makes version 2; changing SKILL.md's fields makes version 3; versions stay as they were.
    written = await client.put(
        f"{url}/files/reference/format.md", json={"content": "Semicolons.\n", "note": "fix"}, headers=bearer(token)
    )
    assert written.status_code == 200, written.text
    assert written.json()["version"] == 2
    patched = await client.patch(url, json={"description": "Summarises CSV.", "network": True}, headers=bearer(token))
    assert patched.status_code == 200, patched.text
    assert (patched.json()["version"], patched.json()["description"], patched.json()["network"]) == (
        3,
        "Summarises CSV.",
        True,
    )
    assert patched.json()["body"].startswith("# CSV summaries")
    old = (await client.get(f"{url}/files/reference/format.md?version=1", headers=bearer(token))).json()
    new = (await client.get(f"{url}/files/reference/format.md", headers=bearer(token))).json()
    assert (old["content"], new["content"], new["version"]) == (
        "Columns are separated by commas.\n",
        "Semicolons.\n",
        3,
    )
    manifest = (await client.get(f"{url}/files/SKILL.md", headers=bearer(token))).json()["content"]
    assert "description: Summarises CSV." in manifest and "network: true" in manifest
    assert (await client.get(f"{url}?version=1", headers=bearer(token))).json()["description"] == (
        "Turns CSV files into summaries."
    )

    # A bad SKILL.md written through the file route is refused, and nothing changes.
    bad = await client.put(f"{url}/files/SKILL.md", json={"content": "no front matter"}, headers=bearer(token))
    assert assert_problem(bad, 422, "skill_manifest_invalid")["field"] == "front_matter"
    unsafe = await client.put(f"{url}/files/a/../../x", json={"content": "x"}, headers=bearer(token))
    assert unsafe.status_code in (404, 422)

    # A new ZIP is the next version; the list of versions is newest first.
    renewed = await upload_zip(client, token, make_zip({"SKILL.md": skill_md()}, top=None), f"{url}/versions")
    assert renewed.status_code == 201, renewed.text
    assert (renewed.json()["version"], [f["path"] for f in renewed.json()["files"]]) == (4, ["SKILL.md"])
    versions = (await client.get(f"{url}/versions", headers=bearer(token))).json()
    assert [v["number"] for v in versions] == [4, 3, 2, 1]
    assert versions[2]["note"] == "fix"

    # Export: a ZIP of a version, under one top folder, that uploads again as it is.
    exported = await client.get(f"{url}/export?version=2", headers=bearer(token))
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        assert sorted(archive.namelist()) == [
            "csv-summary/SKILL.md",
            "csv-summary/reference/format.md",
            "csv-summary/scripts/summarise.py",
        ]
        assert archive.read("csv-summary/reference/format.md") == b"Semicolons.\n"
    assert_problem(await upload_zip(client, token, exported.content), 409, "skill_name_taken")

    # Files one by one, with their relative paths.
    files = [
        ("file", ("SKILL.md", skill_md("other-skill").encode(), "text/markdown")),
        ("file", ("docs/a.md", b"A", "text/markdown")),
    ]
    one_by_one = await client.post("/api/skills", files=files, headers=bearer(token))
    assert one_by_one.status_code == 201, one_by_one.text
    assert [f["path"] for f in one_by_one.json()["files"]] == ["SKILL.md", "docs/a.md"]

    assert (await client.delete(url, headers=bearer(token))).status_code == 204
    assert_problem(await client.get(url, headers=bearer(token)), 404, "skill_not_found")


def _zip_with_info(info: zipfile.ZipInfo, data: bytes, *, extra: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("SKILL.md", skill_md())
        for path, content in (extra or {}).items():
            archive.writestr(path, content)
        archive.writestr(info, data)
    return out.getvalue()


def _symlink_zip() -> bytes:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zip_with_info(info, b"/etc/passwd")


def _device_zip() -> bytes:
    info = zipfile.ZipInfo("dev")
    info.external_attr = (stat.S_IFCHR | 0o644) << 16
    return _zip_with_info(info, b"")


def _bomb_zip() -> bytes:
    info = zipfile.ZipInfo("big.txt")
    info.compress_type = zipfile.ZIP_DEFLATED
    return _zip_with_info(info, b"\0" * (9 * 1024 * 1024))


BAD_ARCHIVES: dict[str, tuple[bytes, int, str, str | None]] = {
    "not a zip": (b"PK\x03\x04 nope", 422, "skill_archive_invalid", None),
    "traversal": (make_zip({"SKILL.md": skill_md(), "../x": "x"}, top=None), 422, "skill_path_unsafe", None),
    "nested traversal": (make_zip({**default_files(), "a/../../x": "x"}), 422, "skill_path_unsafe", None),
    "absolute": (make_zip({"SKILL.md": skill_md(), "/etc/x": "x"}, top=None), 422, "skill_path_unsafe", None),
    "windows drive": (make_zip({"SKILL.md": skill_md(), "C:/x": "x"}, top=None), 422, "skill_path_unsafe", None),
    "backslash": (make_zip({"SKILL.md": skill_md(), "a\\..\\x": "x"}, top=None), 422, "skill_path_unsafe", None),
    "too deep": (
        make_zip({"SKILL.md": skill_md(), "/".join("d" * 12) + "/f": "x"}, top=None),
        422,
        "skill_path_unsafe",
        None,
    ),
    "symlink": (_symlink_zip(), 422, "skill_link_refused", None),
    "device": (_device_zip(), 422, "skill_path_unsafe", None),
    "too large": (
        make_zip({"SKILL.md": skill_md(), **{f"r{i}.bin": b"a" * (900 * 1024) for i in range(12)}}),
        413,
        "skill_too_large",
        None,
    ),
    "too many files": (
        make_zip({"SKILL.md": skill_md(), **{f"f{i}.md": "x" for i in range(201)}}),
        413,
        "skill_too_large",
        None,
    ),
    "zip bomb": (_bomb_zip(), 413, "skill_too_large", None),
    "missing SKILL.md": (make_zip({"README.md": "hello"}), 422, "skill_manifest_missing", None),
    "nested SKILL.md only": (make_zip({"a/SKILL.md": skill_md(), "b/x": "x"}), 422, "skill_manifest_missing", None),
    "no front matter": (make_zip({"SKILL.md": "# Just a title"}), 422, "skill_manifest_invalid", "front_matter"),
    "bad yaml": (make_zip({"SKILL.md": "---\nname: [x\n---\nbody"}), 422, "skill_manifest_invalid", "front_matter"),
    "bad name": (make_zip({"SKILL.md": skill_md("CSV_Summary")}), 422, "skill_manifest_invalid", "name"),
    "long name": (make_zip({"SKILL.md": skill_md("a" * 65)}), 422, "skill_manifest_invalid", "name"),
    "no description": (
        make_zip({"SKILL.md": "---\nname: x\n---\nbody"}),
        422,
        "skill_manifest_invalid",
        "description",
    ),
    "long description": (
        make_zip({"SKILL.md": f"---\nname: x\ndescription: {'d' * 1025}\n---\nbody"}),
        422,
        "skill_manifest_invalid",
        "description",
    ),
    "bad network": (
        make_zip({"SKILL.md": "---\nname: x\ndescription: d\nnetwork: maybe\n---\n"}),
        422,
        "skill_manifest_invalid",
        "network",
    ),
}


async def test_bad_archives_are_refused_with_their_codes(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    for label, (data, status, code, field) in BAD_ARCHIVES.items():
        response = await upload_zip(client, token, data)
        body = assert_problem(response, status, code)
        if field is not None:
            assert body["field"] == field, label
    # Files one by one get the same checks, on their paths.
    for path, code in (("../evil.sh", "skill_path_unsafe"), ("/abs.sh", "skill_path_unsafe")):
        files = [("file", ("SKILL.md", skill_md().encode(), "text/markdown")), ("file", (path, b"x", "text/plain"))]
        assert_problem(await client.post("/api/skills", files=files, headers=bearer(token)), 422, code)
    assert_problem(await client.post("/api/skills", headers=bearer(token)), 422, "skill_archive_invalid")
    assert (await client.get("/api/skills", headers=bearer(token))).json()["total"] == 0


async def test_sharing_with_a_group_lets_a_member_use_it(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    user = await invite_and_register(client, token, f"user-{uuid.uuid4().hex[:6]}@example.com", role="user")
    user_headers = bearer(user["access_token"])
    group = (await client.post("/api/groups", json={"name": "Readers"}, headers=bearer(token))).json()
    await client.put(f"/api/groups/{group['id']}/members/{user['user']['id']}", headers=bearer(token))
    skill = await upload(client, token)
    url = f"/api/skills/{skill['id']}"

    assert (await client.get("/api/skills", headers=user_headers)).json()["total"] == 0
    assert_problem(await client.get(url, headers=user_headers), 404, "skill_not_found")
    assert_problem(
        await upload_zip(client, user["access_token"], make_zip(default_files("mine"))), 403, "permission_denied"
    )

    shared = await client.put(f"{url}/shares/{group['id']}", json={"permission": "read"}, headers=bearer(token))
    assert shared.status_code == 200, shared.text
    listed = (await client.get("/api/skills", headers=user_headers)).json()
    assert [(s["name"], s["can_edit"]) for s in listed["items"]] == [("csv-summary", False)]
    assert (await client.get(f"{url}/files/SKILL.md", headers=user_headers)).status_code == 200
    assert (await client.get(f"{url}/export", headers=user_headers)).status_code == 200
    assert_problem(
        await client.put(f"{url}/files/x.md", json={"content": "x"}, headers=user_headers), 403, "permission_denied"
    )
    assert_problem(await client.delete(url, headers=user_headers), 403, "permission_denied")

    await client.put(f"{url}/shares/{group['id']}", json={"permission": "edit"}, headers=bearer(token))
    edited = await client.put(f"{url}/files/x.md", json={"content": "x"}, headers=user_headers)
    assert edited.status_code == 200 and edited.json()["version"] == 2
    assert_problem(await client.delete(url, headers=user_headers), 403, "permission_denied")
    shares = (await client.get(f"{url}/shares", headers=bearer(token))).json()
    assert [(s["group_id"], s["permission"]) for s in shares] == [(group["id"], "edit")]
    assert (await client.delete(f"{url}/shares/{group['id']}", headers=bearer(token))).status_code == 204
    assert_problem(await client.get(url, headers=user_headers), 404, "skill_not_found")

    audit = (await client.get("/api/audit-log", headers=bearer(token))).json()
    actions = {e["action"] for e in audit["items"]}
    assert {"skill.created", "skill.versioned", "resource.shared"} <= actions


async def test_another_tenant_cannot_see_a_skill(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    skill = await upload(client, owner["access_token"])
    other = await register(client, f"other-{uuid.uuid4().hex[:6]}@example.com")
    headers = bearer(other["access_token"])
    assert (await client.get("/api/skills", headers=headers)).json()["total"] == 0
    for method, path in (
        ("GET", ""),
        ("GET", "/files/SKILL.md"),
        ("GET", "/versions"),
        ("GET", "/export"),
        ("DELETE", ""),
    ):
        response = await client.request(method, f"/api/skills/{skill['id']}{path}", headers=headers)
        assert_problem(response, 404, "skill_not_found")
    # The same name is free in another tenant.
    assert (await upload_zip(client, other["access_token"], make_zip(default_files()))).status_code == 201


async def add_llm(client: httpx.AsyncClient, token: str) -> str:
    response = await client.post(
        "/api/models",
        json={"name": "m-llm", "kind": "llm", "model": "x", "base_url": "http://127.0.0.1:9/v1"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_agents_attach_skills_pinned_at_publish(client: httpx.AsyncClient, owner: dict[str, Any]) -> None:
    token = owner["access_token"]
    skill = await upload(client, token)
    url = f"/api/skills/{skill['id']}"
    model_id = await add_llm(client, token)
    created = await client.post(
        "/api/agents",
        json={"name": "analyst", "model_id": model_id, "skill_ids": [skill["id"]]},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    agent = created.json()
    assert agent["skill_ids"] == [skill["id"]]

    # Unknown skills (and another tenant's) are refused by name of the field.
    other = await register(client, f"other-{uuid.uuid4().hex[:6]}@example.com")
    foreign = await upload(client, other["access_token"], "foreign-skill")
    refused = await client.patch(
        f"/api/agents/{agent['id']}", json={"skill_ids": [skill["id"], foreign["id"]]}, headers=bearer(token)
    )
    assert_problem(refused, 422, "invalid_agent")
    assert [e["loc"] for e in refused.json()["errors"]] == [["body", "skill_ids", "1"]]
    assert_problem(
        await client.post(
            "/api/agents", json={"name": "thief", "skill_ids": [skill["id"]]}, headers=bearer(other["access_token"])
        ),
        422,
        "invalid_agent",
    )

    # While no version uses it, the skill may be deleted; a published version pins it and keeps it.
    published = await client.post(f"/api/agents/{agent['id']}/publish", json={}, headers=bearer(token))
    assert published.status_code == 201, published.text
    assert published.json()["config"]["skills"] == [{"skill_id": skill["id"], "name": "csv-summary", "version": 1}]
    await client.put(f"{url}/files/x.md", json={"content": "x"}, headers=bearer(token))  # version 2
    version = (await client.get(f"/api/agents/{agent['id']}/versions/1", headers=bearer(token))).json()
    assert version["config"]["skills"][0]["version"] == 1
    diff = await client.get(f"/api/agents/{agent['id']}/compare?base=1&target=draft", headers=bearer(token))
    assert diff.status_code == 200, diff.text
    changes = {c["field"]: (c["before"], c["after"]) for c in diff.json()["changes"]}
    assert changes == {f"skills.{skill['id']}": (1, 2)}  # publishing now would pin version 2
    in_use = assert_problem(await client.delete(url, headers=bearer(token)), 409, "skill_in_use")
    assert in_use["used_by"] == ["agent 'analyst' version 1"]

    # Export names the skill; import maps the name back onto the tenant's skill of that name.
    document = (await client.get(f"/api/agents/{agent['id']}/export", headers=bearer(token))).json()
    assert document["agents"][0]["skills"] == ["csv-summary"]
    preview = await client.post("/api/agents/import/preview", json=document, headers=bearer(other["access_token"]))
    assert preview.json()["agents"][0]["skills"] == [{"name": "csv-summary", "status": "unmapped", "skill_id": None}]
    imported = await client.post("/api/agents/import", json=document, headers=bearer(token))
    assert imported.status_code == 201, imported.text
    copy = (await client.get(f"/api/agents/{imported.json()['root_agent_id']}", headers=bearer(token))).json()
    assert copy["skill_ids"] == [skill["id"]]

    # Once no enabled version uses it (and the drafts drop it), it may go.
    await client.patch(f"/api/agents/{agent['id']}/versions/1", json={"disabled": True}, headers=bearer(token))
    assert (await client.delete(url, headers=bearer(token))).status_code == 204
    enabled = await client.patch(
        f"/api/agents/{agent['id']}/versions/1", json={"disabled": False}, headers=bearer(token)
    )
    assert assert_problem(enabled, 409, "version_broken")["missing"] == ["skill csv-summary"]


async def test_a_tenants_owners_and_admins_let_its_skill_scripts_use_the_network(
    client: httpx.AsyncClient, owner: dict[str, Any]
) -> None:
    token = owner["access_token"]
    admin = await invite_and_register(client, token, f"admin-{uuid.uuid4().hex[:6]}@example.com", role="admin")
    developer = await invite_and_register(client, token, f"dev-{uuid.uuid4().hex[:6]}@example.com", role="developer")
    user = await invite_and_register(client, token, f"user-{uuid.uuid4().hex[:6]}@example.com", role="user")
    tenant = await client.get("/api/tenant", headers=bearer(user["access_token"]))
    assert tenant.status_code == 200 and tenant.json()["id"] == owner["tenant"]["id"]
    assert tenant.json()["skills_network"] is False

    for member in (developer, user):
        refused = await client.patch(
            "/api/tenant", json={"skills_network": True}, headers=bearer(member["access_token"])
        )
        assert_problem(refused, 403, "permission_denied")
    assert (await client.get("/api/tenant", headers=bearer(token))).json()["skills_network"] is False

    turned_on = await client.patch("/api/tenant", json={"skills_network": True}, headers=bearer(admin["access_token"]))
    assert turned_on.status_code == 200 and turned_on.json()["skills_network"] is True
    assert (await client.get("/api/tenant", headers=bearer(user["access_token"]))).json()["skills_network"] is True
    turned_off = await client.patch("/api/tenant", json={"skills_network": False}, headers=bearer(token))
    assert turned_off.json()["skills_network"] is False
    assert_problem(
        await client.patch("/api/tenant", json={"name": "x"}, headers=bearer(token)), 422, "validation_error"
    )
    events = (await client.get("/api/audit-log?action=tenant.settings_updated", headers=bearer(token))).json()
    assert [(e["details"], e["actor_user_id"]) for e in events["items"]] == [
        ({"skills_network": False}, owner["user"]["id"]),
        ({"skills_network": True}, admin["user"]["id"]),
    ]

    # Another tenant's owner changes only its own tenant; the operator sees and sets the flag too.
    stranger = await register(client, f"stranger-{uuid.uuid4().hex[:6]}@example.com")
    theirs = await client.patch("/api/tenant", json={"skills_network": True}, headers=bearer(stranger["access_token"]))
    assert theirs.json()["id"] == stranger["tenant"]["id"] and theirs.json()["skills_network"] is True
    assert (await client.get("/api/tenant", headers=bearer(token))).json()["skills_network"] is False
    operator = {"Authorization": "Bearer operator-secret"}
    by_operator = await client.patch(
        f"/api/admin/tenants/{owner['tenant']['id']}", json={"skills_network": True}, headers=operator
    )
    assert by_operator.status_code == 200 and by_operator.json()["skills_network"] is True
    assert (await client.get("/api/tenant", headers=bearer(token))).json()["skills_network"] is True
