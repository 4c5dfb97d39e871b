"""Journeys of the skills pages: a skill uploaded as a ZIP made here, listed, opened, its SKILL.md edited beside its
preview into a new version, a text file edited, a bad archive's refusal shown in plain words, the skill shared with a
group, exported, a delete refused because agents use it (the answer is staged: no agent attaches skills yet) and then
deleted; the pages at 1280 and 390 pixels and in Chinese."""

from __future__ import annotations

import io
import json
import re
import zipfile

from playwright.sync_api import FilePayload, Page, Route, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_in_as

SKILL_MD = """---
name: release-notes
description: Writes release notes from a list of merged changes.
allowed-tools:
  - knowledge_search
---
# Release notes

1. Group the changes by **area**.
2. Run `scripts/count.py` to count them.
"""


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return buffer.getvalue()


def choose_zip(page: Page, name: str, data: bytes) -> None:
    payload: FilePayload = {"name": name, "mimeType": "application/zip", "buffer": data}
    page.get_by_role("dialog").locator("input[type=file][accept*='.zip']").set_input_files(files=[payload])


def test_upload_edit_share_and_delete_a_skill(page: Page, live: Live) -> None:
    tokens = live.register(display_name="Skill Owner", tenant_name="Skill Team")
    token = tokens["access_token"]
    group = live.api("POST", "/api/groups", token, json={"name": "Writers"})
    assert group.status_code == 201, group.text
    sign_in_as(page, tokens)
    page.goto("/skills")
    expect(page.get_by_text("No skills yet")).to_be_visible()
    expect(page.get_by_text("with a SKILL.md that starts with YAML front matter")).to_be_visible()
    shoot(page, "skills-empty")

    # A bad archive: a path that climbs out of the folder, refused in plain words with the server's code.
    allow_console_error(page, "422")
    page.get_by_role("button", name="Upload a skill").first.click()
    choose_zip(page, "bad.zip", zip_of({"SKILL.md": SKILL_MD, "../escape.txt": "out"}))
    refusal = page.get_by_role("dialog").get_by_test_id("skill-refusal")
    expect(refusal).to_contain_text("climbs out of the skill's folder")
    expect(refusal).to_contain_text("skill_path_unsafe")
    # No SKILL.md at the top.
    choose_zip(page, "empty.zip", zip_of({"notes/readme.txt": "hello", "other/x.txt": "x"}))
    expect(refusal).to_contain_text("There is no SKILL.md at the top")
    shoot(page, "skills-upload-refused")

    # A good one, in a top folder (stripped by the server), with a script.
    choose_zip(
        page,
        "release-notes.zip",
        zip_of({"release-notes/SKILL.md": SKILL_MD, "release-notes/scripts/count.py": "print(len([]))\n"}),
    )
    expect(page.get_by_text("release-notes was added.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("release-notes"))
    expect(row).to_contain_text("Writes release notes")
    expect(row).to_contain_text("v1")
    expect(row).to_contain_text("Not shared")
    shoot(page, "skills-list")

    # The skill: front matter, the editor beside its preview.
    page.get_by_role("link", name="Open release-notes").click()
    expect(page).to_have_url(re.compile(r"/skills\?id="))
    expect(page.get_by_role("heading", name=re.compile("release-notes"), level=2)).to_be_visible()
    fields = page.locator(".ant-descriptions")
    expect(fields).to_contain_text("knowledge_search")
    expect(fields).to_contain_text("No network")
    preview = page.get_by_test_id("skill-preview")
    expect(preview.locator("strong")).to_have_text("area")
    editor = page.get_by_label("Text of SKILL.md")
    editor.fill(SKILL_MD.replace("# Release notes", "# Release notes\n\nKeep each line *short*."))
    expect(preview.locator("em")).to_have_text("short")  # the preview follows the text
    page.get_by_label("What changed (optional)").fill("shorter lines")
    editor.focus()
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Saved as version 2.")).to_be_visible()
    expect(page.get_by_role("heading", level=2)).to_contain_text("v2")
    shoot(page, "skill-manifest")

    # A front matter that is not valid: refused, the field named.
    editor.fill("---\nname: Release Notes!\ndescription: x\n---\nbody\n")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_test_id("skill-refusal")).to_contain_text("SKILL.md is not valid (field: name)")
    page.get_by_role("button", name="Discard changes").click()

    # Files: the tree, a text file viewed and edited (version 3).
    page.get_by_role("tab", name="Files").click()
    tree = page.get_by_role("list", name="The skill's files")
    expect(tree).to_contain_text("scripts/")
    tree.get_by_role("button", name="scripts/count.py").click()
    content = page.get_by_label("Content of scripts/count.py")
    expect(content).to_have_value("print(len([]))\n")
    content.fill("print(3)\n")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_text("Saved as version 3.")).to_be_visible()
    shoot(page, "skill-files")

    # Versions: one per edit, with the note.
    page.get_by_role("tab", name="Versions").click()
    versions = page.get_by_test_id("skill-versions")
    expect(versions.get_by_role("row")).to_have_count(4)  # the header and three versions
    expect(versions.get_by_role("row", name=re.compile("^v2"))).to_contain_text("shorter lines")
    versions.get_by_role("button", name="View v1").click()
    expect(page.get_by_text("You are looking at version 1, not the newest.")).to_be_visible()
    expect(page.get_by_label("Text of SKILL.md")).not_to_have_value(re.compile("short"))
    page.get_by_role("button", name="Show the newest").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text("v3")

    # Export: a ZIP download with the newest files.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export ZIP").click()
    assert download_info.value.suggested_filename == "release-notes-v3.zip"
    with zipfile.ZipFile(download_info.value.path()) as exported:
        assert exported.read("release-notes/scripts/count.py") == b"print(3)\n"
        assert "Keep each line *short*." in exported.read("release-notes/SKILL.md").decode()

    # Sharing with a group, by keyboard.
    page.get_by_role("tab", name="Sharing").click()
    select = page.get_by_label("Access of Writers")
    select.focus()
    page.keyboard.press("Enter")
    page.get_by_title("Read", exact=True).click()
    expect(page.get_by_text("Saved", exact=True)).to_be_visible()
    skill_id = page.url.split("id=")[1].split("&")[0]
    shares = live.api("GET", f"/api/skills/{skill_id}/shares", token).json()
    assert [(s["group_id"], s["permission"]) for s in shares] == [(group.json()["id"], "read")]
    shoot(page, "skill-sharing")

    # The page in Chinese.
    page.evaluate("window.localStorage.setItem('nexent.locale', 'zh')")
    page.goto(f"/skills?id={skill_id}")
    expect(page.get_by_role("tab", name="文件")).to_be_visible()
    expect(page.get_by_role("button", name="导出 ZIP")).to_be_visible()
    shoot(page, "skill-zh")
    page.goto("/skills")
    expect(page.get_by_role("heading", name="技能", level=2)).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("release-notes"))).to_contain_text("Writers · 读取")
    shoot(page, "skills-zh")
    page.evaluate("window.localStorage.setItem('nexent.locale', 'en')")

    # A delete refused because agents use it: the answer the server gives then (staged), the agents named.
    allow_console_error(page, "409")

    def in_use(route: Route) -> None:
        if route.request.method != "DELETE":
            route.fallback()
            return
        problem = {
            "type": "about:blank",
            "title": "Conflict",
            "status": 409,
            "detail": "This skill is used by Changelog bot; disable those versions or delete their agents first.",
            "code": "skill_in_use",
            "used_by": ["Changelog bot"],
        }
        route.fulfill(status=409, content_type="application/problem+json", body=json.dumps(problem))

    page.route(re.compile(rf"/api/skills/{skill_id}$"), in_use)
    page.goto("/skills")
    page.get_by_role("button", name="Delete release-notes").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_test_id("skill-in-use")).to_contain_text("Used by: Changelog bot.")
    page.unroute(re.compile(rf"/api/skills/{skill_id}$"))
    in_use_alert = page.get_by_test_id("skill-in-use")
    in_use_alert.get_by_role("button", name="Close").click()
    expect(in_use_alert).to_have_count(0)
    # The first confirmation has finished closing (a click on its trigger meanwhile is lost).
    expect(page.locator(".ant-popover:not(.ant-popover-hidden)")).to_have_count(0)

    page.get_by_role("button", name="Delete release-notes").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("No skills yet")).to_be_visible()
    assert live.api("GET", f"/api/skills/{skill_id}", token).status_code == 404
