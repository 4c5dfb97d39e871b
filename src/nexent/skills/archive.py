"""A skill's files as uploaded (a ZIP, or a set of files with their relative paths), checked before anything is
stored, and its `SKILL.md` read.

What is refused, each with its code (all 4xx):

- `skill_archive_invalid`: not a ZIP, a damaged one, an encrypted member, the same path twice, no files;
- `skill_too_large`: more than `MAX_TOTAL_BYTES` inflated (the sizes of the ZIP's central directory are checked
  before any member is read, members are read with a cap so a lying header cannot make it read more, and a member
  that expands more than `MAX_INFLATE_RATIO` times is a decompression bomb), more than `MAX_FILES` files, a ZIP
  itself larger than `MAX_TOTAL_BYTES`;
- `skill_path_unsafe`: an absolute path, a `..` segment, a backslash or control character, a path longer than
  `MAX_PATH_CHARS` or deeper than `MAX_DEPTH` folders, a device, pipe or socket entry;
- `skill_link_refused`: a symbolic link entry (the ZIP's Unix mode says so);
- `skill_manifest_missing`: no `SKILL.md` at the top (one common top folder is stripped first);
- `skill_manifest_invalid`: `SKILL.md` without YAML front matter, or a field that is not valid (`field` names it).
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from nexent.core.errors import AppError

MANIFEST = "SKILL.md"
MAX_TOTAL_BYTES = 10 * 1024 * 1024
MAX_FILES = 200
MAX_PATH_CHARS = 255
MAX_DEPTH = 8
MAX_INFLATE_RATIO = 100
INFLATE_RATIO_GRACE_BYTES = 1 << 20  # members inflating to less are not checked for their ratio
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_IGNORED = ("__MACOSX/",)
_IGNORED_NAMES = (".DS_Store", "Thumbs.db")


class SkillArchiveInvalid(AppError):
    status, code = 422, "skill_archive_invalid"


class SkillTooLarge(AppError):
    status, code = 413, "skill_too_large"


class SkillPathUnsafe(AppError):
    status, code = 422, "skill_path_unsafe"


class SkillLinkRefused(AppError):
    status, code = 422, "skill_link_refused"


class SkillManifestMissing(AppError):
    status, code = 422, "skill_manifest_missing"


class SkillManifestInvalid(AppError):
    status, code = 422, "skill_manifest_invalid"

    def __init__(self, detail: str, *, field_name: str) -> None:
        super().__init__(detail, extra={"field": field_name})


@dataclass(frozen=True)
class Manifest:
    """`SKILL.md`'s front matter, checked, and its body (the instructions)."""

    name: str
    description: str
    allowed_tools: list[str]
    network: bool
    body: str
    extra: dict[str, Any] = field(default_factory=dict)  # other front-matter fields, kept as they are


@dataclass(frozen=True)
class SkillFiles:
    """A skill's files by relative path (`SKILL.md` among them) and its manifest."""

    files: dict[str, bytes]
    manifest: Manifest

    @property
    def total_bytes(self) -> int:
        return sum(len(data) for data in self.files.values())


def safe_path(raw: str) -> str:
    """A relative path inside the skill's folder, normalised (`./` dropped), or `SkillPathUnsafe`."""
    if _CONTROL.search(raw) or "\\" in raw:
        raise SkillPathUnsafe(f"The path {raw[:80]!r} holds a backslash or a control character.")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:", raw):
        raise SkillPathUnsafe(f"The path {raw[:80]!r} is absolute; paths must be relative to the skill's folder.")
    parts = [part for part in raw.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise SkillPathUnsafe(f"The path {raw[:80]!r} leaves the skill's folder (`..`).")
    if not parts:
        raise SkillPathUnsafe(f"The path {raw[:80]!r} names no file.")
    path = "/".join(parts)
    if len(path) > MAX_PATH_CHARS:
        raise SkillPathUnsafe(f"A path is longer than {MAX_PATH_CHARS} characters.")
    if len(parts) > MAX_DEPTH + 1:
        raise SkillPathUnsafe(f"The path {path[:80]!r} is deeper than {MAX_DEPTH} folders.")
    return path


def _ignored(path: str) -> bool:
    return path.startswith(_IGNORED) or path.rsplit("/", 1)[-1] in _IGNORED_NAMES


def from_zip(data: bytes) -> SkillFiles:
    """A skill from a ZIP archive, every check made before a member is inflated."""
    if len(data) > MAX_TOTAL_BYTES:
        raise SkillTooLarge(f"The archive is larger than {MAX_TOTAL_BYTES} bytes.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise SkillArchiveInvalid("The upload is not a readable ZIP archive.") from None
    members: list[tuple[str, zipfile.ZipInfo]] = []
    for info in infos:
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise SkillLinkRefused(f"The entry {info.filename[:80]!r} is a symbolic link; links are refused.")
        if kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
            raise SkillPathUnsafe(f"The entry {info.filename[:80]!r} is a device, pipe or socket.")
        path = safe_path(info.filename)
        if info.is_dir() or kind == stat.S_IFDIR or _ignored(path):
            continue
        if info.flag_bits & 0x1:
            raise SkillArchiveInvalid(f"The entry {path[:80]!r} is encrypted.")
        members.append((path, info))
    _check_counts(len(members), sum(info.file_size for _, info in members))
    for path, info in members:
        if info.file_size > INFLATE_RATIO_GRACE_BYTES and info.file_size > MAX_INFLATE_RATIO * max(
            info.compress_size, 1
        ):
            raise SkillTooLarge(f"The entry {path[:80]!r} expands more than {MAX_INFLATE_RATIO} times (a zip bomb).")
    files: list[tuple[str, bytes]] = []
    budget = MAX_TOTAL_BYTES
    for path, info in members:
        try:
            with archive.open(info) as handle:
                content = handle.read(budget + 1)
        # zipfile raises NotImplementedError for compression methods it cannot read, RuntimeError for encryption.
        except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError, RuntimeError):
            raise SkillArchiveInvalid(f"The entry {path[:80]!r} cannot be read.") from None
        budget -= len(content)
        if budget < 0:
            raise SkillTooLarge(f"The files expand to more than {MAX_TOTAL_BYTES} bytes.")
        files.append((path, content))
    return build(files)


def from_files(items: Iterable[tuple[str, bytes]]) -> SkillFiles:
    """A skill from files uploaded one by one, each with its relative path."""
    files = [(safe_path(path), data) for path, data in items]
    files = [(path, data) for path, data in files if not _ignored(path)]
    _check_counts(len(files), sum(len(data) for _, data in files))
    return build(files)


def _check_counts(count: int, total: int) -> None:
    if count > MAX_FILES:
        raise SkillTooLarge(f"A skill holds at most {MAX_FILES} files.")
    if total > MAX_TOTAL_BYTES:
        raise SkillTooLarge(f"The files come to more than {MAX_TOTAL_BYTES} bytes.")
    if count == 0:
        raise SkillArchiveInvalid("The upload holds no files.")


def build(items: list[tuple[str, bytes]]) -> SkillFiles:
    """The files (one common top folder stripped when `SKILL.md` is not at the top) and the parsed manifest."""
    paths = [path for path, _ in items]
    tops = {path.split("/", 1)[0] for path in paths}
    if MANIFEST not in paths and len(tops) == 1 and all("/" in path for path in paths):
        items = [(path.split("/", 1)[1], data) for path, data in items]
    files: dict[str, bytes] = {}
    for path, data in items:
        if path in files:
            raise SkillArchiveInvalid(f"The path {path[:80]!r} appears twice.")
        files[path] = data
    _check_counts(len(files), sum(len(data) for data in files.values()))
    if MANIFEST not in files:
        raise SkillManifestMissing(f"A skill needs a {MANIFEST} at the top of its folder.")
    return SkillFiles(files=files, manifest=parse_manifest(files[MANIFEST]))


_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.DOTALL)


def parse_manifest(raw: bytes | str) -> Manifest:
    """`SKILL.md`: YAML front matter between `---` lines (`name`, `description`, optional `allowed-tools` and
    `network`), then the instructions."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise SkillManifestInvalid(f"{MANIFEST} is not UTF-8 text.", field_name="SKILL.md") from None
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise SkillManifestInvalid(
            f"{MANIFEST} must start with YAML front matter between two `---` lines.", field_name="front_matter"
        )
    try:
        meta = yaml.safe_load(match.group(1))
    except yaml.YAMLError:
        raise SkillManifestInvalid(
            f"The front matter of {MANIFEST} is not valid YAML.", field_name="front_matter"
        ) from None
    if not isinstance(meta, dict):
        raise SkillManifestInvalid("The front matter must be a YAML mapping.", field_name="front_matter") from None
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise SkillManifestInvalid("`name` is required (a string).", field_name="name")
    if len(name) > MAX_NAME_CHARS or not NAME_PATTERN.match(name):
        raise SkillManifestInvalid(
            f"`name` must be lowercase letters, digits and single hyphens, at most {MAX_NAME_CHARS} characters.",
            field_name="name",
        )
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        raise SkillManifestInvalid("`description` is required (a string).", field_name="description")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise SkillManifestInvalid(
            f"`description` is longer than {MAX_DESCRIPTION_CHARS} characters.", field_name="description"
        )
    tools = meta.get("allowed-tools", [])
    if isinstance(tools, str):
        tools = [t for t in re.split(r"[,\s]+", tools) if t]
    if not isinstance(tools, list) or not all(isinstance(t, str) and 0 < len(t) <= 200 for t in tools):
        raise SkillManifestInvalid("`allowed-tools` must be a list of tool names.", field_name="allowed-tools")
    network = meta.get("network", False)
    if not isinstance(network, bool):
        raise SkillManifestInvalid("`network` must be true or false.", field_name="network")
    extra = {str(k): v for k, v in meta.items() if k not in ("name", "description", "allowed-tools", "network")}
    return Manifest(
        name=name,
        description=description.strip(),
        allowed_tools=list(dict.fromkeys(tools)),
        network=network,
        body=match.group(2).strip("\n"),
        extra=_jsonable(extra),
    )


def _jsonable(value: Any) -> Any:
    """YAML values as JSON can hold them (dates become strings)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def render_manifest(manifest: Manifest) -> str:
    """`SKILL.md` written from a manifest (what an edit of its fields stores)."""
    meta: dict[str, Any] = {"name": manifest.name, "description": manifest.description}
    if manifest.allowed_tools:
        meta["allowed-tools"] = manifest.allowed_tools
    if manifest.network:
        meta["network"] = True
    meta.update(manifest.extra)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000).strip()
    return f"---\n{front}\n---\n\n{manifest.body.strip()}\n"


def to_zip(top: str, files: dict[str, bytes]) -> bytes:
    """The files as a ZIP archive under one top folder (what export answers)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(f"{top}/{path}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[path])
    return out.getvalue()
