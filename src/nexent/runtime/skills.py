"""Skills in a run (docs/skills.md): progressive disclosure. The agent's instructions list only each attached
skill's name and description; the agent loads a skill's instructions and file list on demand (`load_skill`, which
emits `skill.loaded`), reads its reference files (`read_skill_file`) and runs its scripts in the sandbox's script
mode (`run_skill_script`)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from nexent.engines.storage.base import ObjectStorage
from nexent.runtime import event_types
from nexent.runtime.sandbox import SandboxError, run_script
from nexent.runtime.smol_tools import make_tool
from nexent.skills.service import LoadedSkill, SkillFileNotFound, load_for_run, loaded_file

LOAD_SKILL = "load_skill"
READ_SKILL_FILE = "read_skill_file"
RUN_SKILL_SCRIPT = "run_skill_script"
MAX_FILE_CHARS = 50_000  # what read_skill_file gives the model of one file
TOOL_TIMEOUT_SECONDS = 120.0

_LOAD_SPEC: dict[str, Any] = {
    "name": LOAD_SKILL,
    "description": "Load one of your skills: its full instructions and the list of its files. Load a skill before "
    "you follow it.",
    "parameters": {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "The skill's name, as listed in your instructions."}},
        "required": ["name"],
    },
}
_READ_SPEC: dict[str, Any] = {
    "name": READ_SKILL_FILE,
    "description": "Read one file of a skill you loaded (a reference document, a script, a template).",
    "parameters": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The skill's name."},
            "path": {"type": "string", "description": "The file's path inside the skill, as load_skill lists it."},
        },
        "required": ["name", "path"],
    },
}
_RUN_SPEC: dict[str, Any] = {
    "name": RUN_SKILL_SCRIPT,
    "description": "Run a script of a skill (a .py or .sh file) in an isolated sandbox and get its output and exit "
    "code. The script sees the skill's files in its folder, read-only, and a scratch folder as its working "
    "directory.",
    "parameters": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "The skill's name."},
            "path": {"type": "string", "description": "The script's path inside the skill."},
            "args": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Command-line arguments for the script.",
                "nullable": True,
            },
        },
        "required": ["name", "path"],
    },
}


async def skills_of(
    session: AsyncSession, tenant_id: Any, uses: Collection[tuple[Any, int | None]]
) -> list[LoadedSkill]:
    """The skills an agent (draft or version) uses, as its run sees them."""
    return await load_for_run(session, tenant_id, uses)


def skills_instructions(skills: list[LoadedSkill]) -> str:
    """What the agent's instructions say of its skills: only each one's name and description."""
    if not skills:
        return ""
    listed = "\n".join(f"- {s.name}: {s.manifest.description}" for s in skills)
    return (
        "You have skills: know-how you load on demand. When a task matches a skill's description, call "
        f"`{LOAD_SKILL}` with its name first and follow what it says; read its files with `{READ_SKILL_FILE}` and "
        f"run its scripts with `{RUN_SKILL_SCRIPT}` as its instructions tell you.\nSkills:\n{listed}"
    )


ScriptRunner = Callable[[LoadedSkill, dict[str, bytes], str, list[str]], str]
"""Runs a skill's script (blocking; in a thread): the skill, its files, the script's path and its arguments; answers
what the model reads."""


def script_runner(
    skill: LoadedSkill,
    files: dict[str, bytes],
    path: str,
    args: list[str],
    *,
    cancel: threading.Event,
    disk_mb: int,
    network: bool,
) -> str:
    """Run a skill's script in the sandbox's script mode; the network only if its manifest asks and `network` allows
    it (the platform's `NEXENT_SKILLS_NETWORK` and the tenant's `skills_network`, as the run's builder read them)."""
    try:
        result = run_script(
            files, path, args, disk_mb=disk_mb, allow_network=network and skill.manifest.network, cancel=cancel
        )
    except SandboxError as exc:
        return json.dumps({"error": "script_not_run", "message": str(exc)})
    return json.dumps(result, ensure_ascii=False)


class RunSkills:
    """The skill tools of one agent of a run."""

    def __init__(
        self,
        skills: list[LoadedSkill],
        storage: ObjectStorage,
        emit: Callable[[event_types.BaseRunEvent], None],
        run_script: ScriptRunner | None = None,
    ) -> None:
        self.skills = {s.name: s for s in skills}
        self.storage = storage
        self.emit = emit
        self.run_script = run_script

    def tools(self, loop: asyncio.AbstractEventLoop, cancel: threading.Event) -> list[Any]:
        if not self.skills:
            return []
        specs = [(_LOAD_SPEC, self._load), (_READ_SPEC, self._read)]
        if self.run_script is not None:
            specs.append((_RUN_SPEC, self._run))
        return [
            make_tool(spec, self._guarded(handler), loop, cancel=cancel, timeout=TOOL_TIMEOUT_SECONDS)
            for spec, handler in specs
        ]

    def _guarded(self, handler: Callable[[dict[str, Any]], Any]) -> Callable[[str, dict[str, Any]], Any]:
        async def execute(_: str, arguments: dict[str, Any]) -> str:
            try:
                result: str = await handler(arguments)
            except _Refused as exc:
                return json.dumps({"error": exc.code, "message": str(exc)})
            except SkillFileNotFound as exc:
                return json.dumps({"error": "skill_file_not_found", "message": exc.detail})
            return result

        return execute

    def _skill(self, arguments: dict[str, Any]) -> LoadedSkill:
        name = str(arguments.get("name") or "")
        skill = self.skills.get(name)
        if skill is None:
            raise _Refused("unknown_skill", f"No skill named {name!r}; yours are: {', '.join(sorted(self.skills))}.")
        return skill

    async def _load(self, arguments: dict[str, Any]) -> str:
        skill = self._skill(arguments)
        self.emit(event_types.SkillLoaded(name=skill.name, version=skill.version))
        return json.dumps(
            {
                "name": skill.name,
                "version": skill.version,
                "allowed_tools": skill.manifest.allowed_tools,
                "instructions": skill.manifest.body,
                "files": skill.files,
            },
            ensure_ascii=False,
        )

    async def _read(self, arguments: dict[str, Any]) -> str:
        skill = self._skill(arguments)
        data = await loaded_file(self.storage, skill, str(arguments.get("path") or ""))
        text = data.decode("utf-8", errors="replace")
        if len(text) > MAX_FILE_CHARS:
            text = text[:MAX_FILE_CHARS] + f"\n[... cut: the file has {len(text)} characters]"
        return text

    async def _run(self, arguments: dict[str, Any]) -> str:
        assert self.run_script is not None
        skill = self._skill(arguments)
        path = str(arguments.get("path") or "")
        if path not in skill.files:
            raise _Refused("skill_file_not_found", f"No file {path[:200]!r} in the skill {skill.name!r}.")
        if not path.endswith((".py", ".sh")):
            raise _Refused("not_a_script", "Only .py and .sh files run.")
        raw_args = arguments.get("args") or []
        if not isinstance(raw_args, list) or len(raw_args) > 64:
            raise _Refused("invalid_arguments", "`args` must be a list of at most 64 strings.")
        args = [str(a)[:4000] for a in raw_args]
        files = {p: await loaded_file(self.storage, skill, p) for p in skill.files}
        return await asyncio.to_thread(self.run_script, skill, files, path, args)


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
