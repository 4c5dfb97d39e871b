"""docs/permissions.md shows exactly the permission table the code enforces."""

from __future__ import annotations

from nexent.identity.models import Role
from nexent.identity.permissions import API_KEY_PERMISSIONS, ROLE_PERMISSIONS, Permission
from tests.conftest import REPO_ROOT

COLUMNS = [Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.USER]


def test_the_documented_table_is_the_enforced_one() -> None:
    rows: dict[str, list[str]] = {}
    for line in (REPO_ROOT / "docs" / "permissions.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[2:]
    assert set(rows) == {p.value for p in Permission}
    for permission in Permission:
        expected = ["yes" if permission in ROLE_PERMISSIONS[role] else "no" for role in COLUMNS]
        expected.append("yes" if permission in API_KEY_PERMISSIONS else "no")
        assert rows[permission.value] == expected, permission
