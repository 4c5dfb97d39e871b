"""Journeys of the skills pages: a skill uploaded as a ZIP made here, listed, opened, its SKILL.md edited beside its
preview into a new version, a text file edited, a bad archive's refusal shown in plain words, the skill shared with a
group, exported and deleted; a skill drafted with AI by keyboard (streamed, edited, created), attached to an agent in
the studio, and its delete refused while the published agent uses it; the pages at 1280 and 390 pixels and in
Chinese."""

from __future__ import annotations

import io
import json
import re
import zipfile

from playwright.sync_api import FilePayload, Page, expect

from tests.browser.conftest import Live, allow_console_error, shoot, sign_in_as
from tests.support.model_server import ChatReply

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

    # Deleted.
    page.goto("/skills")
    page.get_by_role("button", name="Delete release-notes").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_text("No skills yet")).to_be_visible()
    assert live.api("GET", f"/api/skills/{skill_id}", token).status_code == 404


DRAFTED = """---
name: meeting-minutes
description: Turns a meeting transcript into minutes with decisions and action items.
---

# Meeting minutes

1. List the **decisions**.
2. List the action items with their owners.
"""


def test_draft_a_skill_attach_it_to_an_agent_and_delete_refused(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    live.add_model(token, "scripted-llm")
    sign_in_as(page, tokens)
    page.goto("/skills")

    # Draft with AI, by keyboard: the SKILL.md streams into an editable text, then becomes the skill's version 1.
    live.llm.server.enqueue(ChatReply.text(DRAFTED).paced(chunk_delay=0.02, chunk_size=12))
    page.get_by_role("button", name="Draft with AI").first.click()
    drawer = page.get_by_role("dialog", name="Draft a skill with AI")
    expect(drawer.get_by_label("What should the skill teach an agent?")).to_be_focused()
    page.keyboard.type("Minutes of a meeting from its transcript.")
    page.keyboard.press("Control+Enter")
    expect(drawer.get_by_test_id("skill-draft-status")).to_have_text(
        "The draft is ready: edit it, then create the skill."
    )
    text = drawer.get_by_label("Drafted SKILL.md")
    expect(text).to_have_value(DRAFTED)
    expect(drawer.get_by_role("region", name="Preview").locator("strong")).to_have_text("decisions")
    sent = live.llm.server.last_request("/v1/chat/completions")
    assert "Minutes of a meeting from its transcript." in json.dumps(sent.messages)
    text.fill(DRAFTED.replace("with their owners", "with their owners and dates"))
    shoot(page, "skill-draft")
    drawer.get_by_role("button", name="Create skill").click()
    expect(page.get_by_text("meeting-minutes was added.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/skills\?id="))
    expect(page.get_by_label("Text of SKILL.md")).to_have_value(re.compile("owners and dates"))
    skill_id = page.url.split("id=")[1].split("&")[0]

    # The studio's skill picker: a new agent with the skill attached.
    page.goto("/agents/edit")
    page.get_by_label("Name", exact=True).fill("Minute taker")
    page.get_by_label("Model").click()
    page.get_by_title("scripted-llm (default)").click()
    page.get_by_role("combobox", name=re.compile("^Skills")).click()
    page.keyboard.type("meeting")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_text("Minute taker was created.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/agents/edit\?id="))
    agent_id = page.url.split("id=")[1].split("&")[0]
    agent = live.api("GET", f"/api/agents/{agent_id}", token).json()
    assert agent["skill_ids"] == [skill_id]
    page.reload()
    expect(page.get_by_test_id("skill-picker")).to_contain_text("meeting-minutes")
    shoot(page, "agent-studio-skills")
    published = live.api("POST", f"/api/agents/{agent_id}/publish", token, json={})
    assert published.status_code in (200, 201), published.text

    # A new version of the skill: the draft (which uses the newest) differs from the published version (pinned).
    edited = live.api("PUT", f"/api/skills/{skill_id}/files/notes.md", token, json={"content": "More."})
    assert edited.status_code == 200, edited.text
    page.goto(f"/agents/edit?id={agent_id}&tab=versions")
    expect(page.get_by_text("Unpublished changes")).to_be_visible()
    expect(page.get_by_text("Skill: meeting-minutes", exact=True)).to_be_visible()
    expect(page.locator("del")).to_contain_text("its v1")
    expect(page.locator("ins")).to_contain_text("its v2")  # publishing now would pin version 2

    # Its delete is refused while the published agent uses it: the agents are named.
    allow_console_error(page, "409")
    page.goto("/skills")
    page.get_by_role("button", name="Delete meeting-minutes").click()
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_test_id("skill-in-use")).to_contain_text("meeting-minutes cannot be deleted: agents use it.")
    expect(page.get_by_test_id("skill-in-use")).to_contain_text("Used by: agent 'Minute taker' version 1.")
    shoot(page, "skills-in-use")
    assert live.api("GET", f"/api/skills/{skill_id}", token).status_code == 200


def test_draft_refused_failed_and_stopped(page: Page, live: Live) -> None:
    tokens = live.register()
    sign_in_as(page, tokens)
    page.goto("/skills")
    page.get_by_role("button", name="Draft with AI").first.click()
    drawer = page.get_by_role("dialog", name="Draft a skill with AI")
    description = drawer.get_by_label("What should the skill teach an agent?")
    description.fill("Sort receipts by month.")

    # Refused before the stream: the workspace has no model.
    allow_console_error(page, "404")
    drawer.get_by_role("button", name="Generate").click()
    expect(drawer.get_by_role("alert")).to_be_visible()
    live.add_model(tokens["access_token"], "scripted-llm")

    # The model fails: its message and code.
    live.llm.server.enqueue(ChatReply.error(401, "bad key"))
    drawer.get_by_role("button", name="Generate").click()
    expect(drawer.get_by_test_id("skill-draft-status")).to_have_text("The model failed.")
    expect(drawer.get_by_role("alert")).to_contain_text("The model failed:")

    # Stopped while it writes: what was written stays, editable.
    live.llm.server.enqueue(ChatReply.text(DRAFTED).paced(chunk_delay=0.3, chunk_size=8))
    drawer.get_by_role("button", name="Generate").click()
    text = drawer.get_by_label("Drafted SKILL.md")
    expect(text).to_have_value(re.compile("^---\nname"))
    drawer.get_by_role("button", name="Stop").click()
    expect(drawer.get_by_test_id("skill-draft-status")).to_have_text("Stopped: what was written is kept.")
    expect(text).to_be_editable()
    assert len(text.input_value()) < len(DRAFTED)
    shoot(page, "skill-draft-stopped")
