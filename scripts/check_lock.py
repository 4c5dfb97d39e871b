"""Check that requirements.lock was written from the current pyproject.toml (`--write` records that it was).

The lock's first line holds a digest of every dependency declaration in pyproject.toml (dependencies, extras,
required Python, uv settings); scripts/lock writes it, scripts/test checks it, so an edit to pyproject.toml that
was not followed by scripts/lock fails the tests instead of installing something other than what was declared.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
MARK = "# pyproject-sha256: "


def declared_digest() -> str:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    declared = {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requires-python": project.get("requires-python"),
        "uv": pyproject.get("tool", {}).get("uv", {}),
    }
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def main() -> int:
    lines = LOCK.read_text().splitlines(keepends=True)
    body = lines[1:] if lines and lines[0].startswith(MARK) else lines
    digest = declared_digest()
    if "--write" in sys.argv[1:]:
        LOCK.write_text(MARK + digest + "\n" + "".join(body))
        return 0
    recorded = lines[0][len(MARK) :].strip() if lines and lines[0].startswith(MARK) else None
    if recorded != digest:
        print(
            "requirements.lock does not match pyproject.toml: the dependencies changed since it was written. "
            "Run scripts/lock and commit requirements.lock.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
