"""`nexent.engines` imports no domain: engines are infrastructure that domains build on (the job queue's
implementations, which run the jobs domain's table, live in `nexent.jobs.queue`)."""

from __future__ import annotations

import ast
from pathlib import Path

import nexent

ALLOWED = ("nexent.engines", "nexent.core", "nexent.settings")


def test_engines_import_no_domain() -> None:
    root = Path(nexent.__file__).parent / "engines"
    offending: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [(node.module, node.lineno)]
            elif isinstance(node, ast.Import):
                names = [(alias.name, node.lineno) for alias in node.names]
            else:
                continue
            for name, line in names:
                if (name == "nexent" or name.startswith("nexent.")) and not name.startswith(ALLOWED):
                    offending.append(f"{path.relative_to(root.parent)}:{line} imports {name}")
    assert offending == []
