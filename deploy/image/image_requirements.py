"""Print the image's requirements from requirements.lock: the packages Nexent and its `local` extra need (and the
build backend), each pinned with its hashes as in the lock; not the development tools (the `dev` and `web` extras
and what only they need), nor PyTorch and what only its CUDA build needs (the image installs PyTorch's CPU build on
its own).

Usage: python3 image_requirements.py pyproject.toml requirements.lock > image.lock (standard library only: it runs
before any package is installed). Which package needs which comes from the lock's `# via` comments."""

from __future__ import annotations

import re
import sys
import tomllib

EXTRAS = ("local",)
# The build backend: the image installs the project itself from its sources, without build isolation.
BUILD = ["hatchling"]
# PyTorch (installed separately, CPU build) and the packages only its CUDA build requires.
LEFT_OUT = re.compile(r"^(torch|triton|cuda-[a-z0-9-]+|nvidia-[a-z0-9-]+)$")
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(lock: str) -> list[tuple[str, list[str], set[str]]]:
    """Each entry of the lock: its name, its lines, and the packages it is required by (`nexent` for the project)."""
    result: list[tuple[str, list[str], set[str]]] = []
    for line in lock.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            match = _NAME.match(line)
            assert match, line
            result.append((normalize(match.group(1)), [line], set()))
        elif result:
            result[-1][1].append(line)
            comment = line.strip()
            if comment.startswith("#"):
                words = comment.lstrip("#").strip().removeprefix("via").strip().split()
                if words and _NAME.match(words[0]):
                    result[-1][2].add(normalize(words[0]))
    return result


def image_requirements(pyproject: str, lock: str) -> str:
    project = tomllib.loads(pyproject)["project"]
    requirements = list(project["dependencies"]) + BUILD
    for extra in EXTRAS:
        requirements += project["optional-dependencies"][extra]
    needed = {normalize(_NAME.match(req).group(1)) for req in requirements}  # type: ignore[union-attr]
    locked = entries(lock)
    while True:  # whatever a needed package requires is needed
        more = {name for name, _, parents in locked if name not in needed and parents & (needed - {"nexent"})}
        if not more:
            break
        needed |= more
    lines = [line for name, block, _ in locked if name in needed and not LEFT_OUT.match(name) for line in block]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as pyproject, open(sys.argv[2], encoding="utf-8") as lock:
        sys.stdout.write(image_requirements(pyproject.read(), lock.read()))
