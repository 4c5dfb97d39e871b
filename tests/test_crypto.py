"""SecretBox (encryption of secrets at rest, key rotation) and the embedded shape's key file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from nexent.core.crypto import (
    VERSION_MARKER,
    InvalidEncryptionKey,
    InvalidKeyFile,
    SecretBox,
    SecretDecryptionError,
    load_or_create_keys,
)

SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize("plaintext", [SECRET, "", "pässwörd 🔑 密钥", "x" * 10_000])
def test_round_trip(plaintext: str) -> None:
    box = SecretBox([SecretBox.generate_key()])
    token = box.encrypt(plaintext)
    assert token.startswith(VERSION_MARKER)
    assert plaintext == "" or plaintext not in token
    assert box.decrypt(token) == plaintext


def test_each_encryption_differs() -> None:
    box = SecretBox([SecretBox.generate_key()])
    first, second = box.encrypt(SECRET), box.encrypt(SECRET)
    assert first != second
    assert box.decrypt(first) == box.decrypt(second) == SECRET


def test_generated_keys_are_fernet_keys_and_unique() -> None:
    key = SecretBox.generate_key()
    Fernet(key)
    assert key != SecretBox.generate_key()


def flip(token: str, index: int) -> str:
    """`token` with one character at `index` replaced by another valid base64 character."""
    char = token[index]
    return token[:index] + ("A" if char != "A" else "B") + token[index + 1 :]


@pytest.mark.parametrize("index", [len(VERSION_MARKER) + 20, -10])
def test_tampered_token_is_rejected(index: int) -> None:
    box = SecretBox([SecretBox.generate_key()])
    token = box.encrypt(SECRET)
    with pytest.raises(SecretDecryptionError) as info:
        box.decrypt(flip(token, index % len(token)))
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "garbage",
    ["", "v1:", "v1:not-a-token", "v2:abc", "gAAAAAB-no-prefix", "v1:ünïcode", "v1:" + "A" * 200],
)
def test_garbled_token_is_rejected(garbage: str) -> None:
    box = SecretBox([SecretBox.generate_key()])
    with pytest.raises(SecretDecryptionError):
        box.decrypt(garbage)
    with pytest.raises(SecretDecryptionError):
        box.rotate(garbage)
    with pytest.raises(SecretDecryptionError):
        box.needs_rotation(garbage)


def test_token_from_an_unknown_key_is_rejected_without_leaking() -> None:
    key = SecretBox.generate_key()
    token = SecretBox([key]).encrypt(SECRET)
    other = SecretBox([SecretBox.generate_key()])
    with pytest.raises(SecretDecryptionError) as info:
        other.decrypt(token)
    message = str(info.value)
    assert SECRET not in message
    assert key not in message
    assert info.value.__cause__ is None


def test_rotation() -> None:
    old_key, new_key = SecretBox.generate_key(), SecretBox.generate_key()
    old_token = SecretBox([old_key]).encrypt(SECRET)

    rotating = SecretBox([new_key, old_key])
    assert rotating.decrypt(old_token) == SECRET
    assert rotating.needs_rotation(old_token)

    rotated = rotating.rotate(old_token)
    assert rotated.startswith(VERSION_MARKER)
    assert not rotating.needs_rotation(rotated)
    assert SecretBox([new_key]).decrypt(rotated) == SECRET
    with pytest.raises(SecretDecryptionError):
        SecretBox([old_key]).decrypt(rotated)

    # New encryptions use the first key.
    assert SecretBox([new_key]).decrypt(rotating.encrypt(SECRET)) == SECRET


@pytest.mark.parametrize(
    ("keys", "position"),
    [
        (["not-a-key"], 1),
        ([SecretBox.generate_key(), ""], 2),
        ([SecretBox.generate_key(), SecretBox.generate_key(), "c2hvcnQ="], 3),
        ([SecretBox.generate_key(), "ünïcode-key"], 2),
    ],
)
def test_malformed_key_names_its_position_only(keys: list[str], position: int) -> None:
    with pytest.raises(InvalidEncryptionKey) as info:
        SecretBox(keys)
    message = str(info.value)
    assert f"#{position}" in message
    for key in keys:
        if key:
            assert key not in message


def test_no_keys_or_a_bare_string_is_refused() -> None:
    with pytest.raises(InvalidEncryptionKey):
        SecretBox([])
    with pytest.raises(TypeError):
        SecretBox(SecretBox.generate_key())


def test_surrounding_whitespace_in_keys_is_ignored() -> None:
    key = SecretBox.generate_key()
    assert SecretBox([f" {key}\n"]).decrypt(SecretBox([key]).encrypt(SECRET)) == SECRET


def test_repr_shows_no_key() -> None:
    keys = [SecretBox.generate_key(), SecretBox.generate_key()]
    box = SecretBox(keys)
    for text in (repr(box), str(box)):
        assert all(key not in text for key in keys)
        assert "2" in text
    assert box.key_count == 2


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "secret-keys.json"
    keys = load_or_create_keys(path)
    assert len(keys) == 1
    Fernet(keys[0])
    assert json.loads(path.read_text()) == {"encryption_keys": keys}
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret-keys.json"]  # no temporary file left

    before = path.read_bytes()
    assert load_or_create_keys(path) == keys
    assert path.read_bytes() == before


def test_existing_key_file_is_read_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret-keys.json"
    keys = [SecretBox.generate_key(), SecretBox.generate_key()]
    path.write_text(json.dumps({"encryption_keys": keys, "comment": "kept"}))
    assert load_or_create_keys(path) == keys
    assert json.loads(path.read_text())["comment"] == "kept"


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        '{"encryption_keys": ["' + "k" * 10,
        "[]",
        "{}",
        '{"encryption_keys": []}',
        '{"encryption_keys": "one-key"}',
        '{"encryption_keys": ["not-a-key"]}',
        '{"encryption_keys": [42]}',
    ],
)
def test_invalid_key_file_raises_and_is_untouched(tmp_path: Path, content: str) -> None:
    path = tmp_path / "secret-keys.json"
    path.write_text(content)
    before = path.stat()
    with pytest.raises(InvalidKeyFile) as info:
        load_or_create_keys(path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None
    assert path.read_text() == content
    assert path.stat().st_mtime_ns == before.st_mtime_ns
    assert [p.name for p in tmp_path.iterdir()] == ["secret-keys.json"]


def test_invalid_json_error_does_not_chain_the_file_text(tmp_path: Path) -> None:
    path = tmp_path / "secret-keys.json"
    key = SecretBox.generate_key()
    path.write_text('{"encryption_keys": ["' + key + '"')  # truncated
    with pytest.raises(InvalidKeyFile) as info:
        load_or_create_keys(path)
    assert key not in str(info.value)
    assert info.value.__context__ is None


def test_unreadable_key_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "secret-keys.json"
    path.mkdir()  # exists, but cannot be read as a file
    with pytest.raises(InvalidKeyFile):
        load_or_create_keys(path)
    assert path.is_dir()


def test_key_file_created_concurrently_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret-keys.json"
    theirs = [SecretBox.generate_key()]
    real_link = os.link

    def link_after_someone_else(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        Path(dst).write_text(json.dumps({"encryption_keys": theirs}))
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_someone_else)
    assert load_or_create_keys(path) == theirs
    assert json.loads(path.read_text()) == {"encryption_keys": theirs}
    assert [p.name for p in tmp_path.iterdir()] == ["secret-keys.json"]


def test_key_file_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret-keys.json"

    def no_links(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    keys = load_or_create_keys(path)
    assert json.loads(path.read_text()) == {"encryption_keys": keys}
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret-keys.json"]
