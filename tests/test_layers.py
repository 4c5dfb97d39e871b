"""The import rules of the design (pyproject.toml's import-linter contracts) hold, and each contract fails when
the rule it states is broken: a copy of the package gets one forbidden import, and `lint-imports` must refuse it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(src: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    selected = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(REPO / "pyproject.toml"), *selected],
        env={**os.environ, "PYTHONPATH": str(src)},
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_every_contract() -> None:
    result = lint_imports(REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("contract", "module", "line"),
    [
        ("base", "core/errors.py", "import nexent.runtime.models"),
        ("base", "engines/container.py", "import nexent.jobs.queue"),
        ("core-below-engines", "core/db.py", "import nexent.engines.container"),
        ("identity", "identity/services/tenants.py", "import nexent.providers.builtin"),
        ("providers", "providers/service.py", "import nexent.knowledge.models"),
        ("acyclic", "tools/registry.py", "import nexent.runtime.builder"),
        ("agents-repository", "runtime/builder.py", "import nexent.agents.repository"),
        ("knowledge-repository", "agents/service.py", "import nexent.knowledge.repository"),
        ("providers-repository", "knowledge/service.py", "import nexent.providers.repository"),
        ("jobs-repository", "knowledge/jobs.py", "import nexent.jobs.repository"),
        ("mcp-client-beside", "runtime/builder.py", "import nexent.mcp_client.service"),
        ("mcp-client-repository", "agents/service.py", "import nexent.mcp_client.repository"),
        ("northbound-on-top", "runtime/service.py", "import nexent.northbound.service"),
        ("northbound-repository", "runtime/service.py", "import nexent.northbound.repository"),
        ("openapi-tools-through-sources", "runtime/builder.py", "import nexent.openapi_tools.service"),
        ("openapi-tools-repository", "mcp_client/service.py", "import nexent.openapi_tools.repository"),
    ],
)
def test_a_broken_rule_is_refused(tmp_path: Path, contract: str, module: str, line: str) -> None:
    shutil.copytree(REPO / "src" / "nexent", tmp_path / "nexent", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "nexent" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint_imports(tmp_path, contract)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
