"""Settings: parsing from the environment, and docs/configuration.md kept in step with the class."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nexent.settings import Settings
from tests.conftest import REPO_ROOT

ROW = re.compile(r"^\| `(NEXENT_[A-Z0-9_]+)` \| (.+?) \| .+ \|$")


def documented() -> dict[str, str]:
    text = (REPO_ROOT / "docs" / "configuration.md").read_text()
    return {m.group(1): m.group(2) for line in text.splitlines() if (m := ROW.match(line))}


def expected_default(name: str) -> str:
    field = Settings.model_fields[name]
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if value is None or value in ([], {}):
        return "*(none)*" if value is None else "*(empty)*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_every_setting_is_documented_with_its_default() -> None:
    docs = documented()
    names = {f"NEXENT_{name.upper()}": name for name in Settings.model_fields}
    assert set(docs) == set(names), "docs/configuration.md and Settings disagree"
    for variable, field in names.items():
        assert docs[variable] == expected_default(field), variable


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEXENT_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("NEXENT_JOB_MODULES", "pkg.one,pkg.two")
    monkeypatch.setenv("NEXENT_PRIVATE_ENDPOINTS_ALLOW", "localhost, 10.0.0.0/8")
    monkeypatch.setenv("NEXENT_QUEUE_WORKERS", "2")
    monkeypatch.setenv("NEXENT_DATA_DIR", str(tmp_path))
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.job_modules == ["pkg.one", "pkg.two"]
    assert settings.private_endpoints_allow == ["localhost", "10.0.0.0/8"]
    assert settings.queue_workers == 2
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/nexent.db"
    assert settings.resolved_storage_dir == (tmp_path / "objects").resolve()
    assert settings.resolved_broker_url == settings.redis_url


def test_dotenv_is_read_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("NEXENT_S3_BUCKET=from-file\nNEXENT_S3_REGION=eu-west-1\n")
    monkeypatch.setenv("NEXENT_S3_REGION", "ap-east-1")
    settings = Settings(_env_file=env_file)
    assert (settings.s3_bucket, settings.s3_region) == ("from-file", "ap-east-1")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NEXENT_QUEUE_BACKEND", "rabbit"),
        ("NEXENT_MAX_BODY_BYTES", "0"),
        ("NEXENT_LOG_LEVEL", "LOUD"),
        ("NEXENT_QUEUE_WORKERS", "-1"),
    ],
)
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable.removeprefix("NEXENT_").lower()):
        Settings(_env_file=None)


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXENT_ADMIN_TOKEN", "very-secret-token")
    monkeypatch.setenv("NEXENT_S3_SECRET_KEY", "very-secret-key")
    settings = Settings(_env_file=None)
    assert "very-secret" not in repr(settings) and "very-secret" not in str(settings.model_dump())
