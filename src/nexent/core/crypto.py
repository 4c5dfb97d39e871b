"""Encryption of secrets at rest: provider API keys, MCP tokens, OIDC client secrets.

`SecretBox` wraps `cryptography`'s Fernet (AES-128-CBC with an HMAC-SHA256 tag, so tampering is detected) in a
`MultiFernet` for key rotation: the first configured key encrypts, every configured key decrypts. Tokens carry a
`v1:` prefix so the stored format can change later without guessing.

Keys come from `NEXENT_ENCRYPTION_KEYS` or, in the embedded shape, from a key file that `load_or_create_keys`
creates once (see docs/secrets.md). Errors never include a key or a plaintext.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = [
    "VERSION_MARKER",
    "InvalidEncryptionKey",
    "InvalidKeyFile",
    "SecretBox",
    "SecretDecryptionError",
    "load_or_create_keys",
]

logger = logging.getLogger("nexent.crypto")

VERSION_MARKER: Final = "v1:"
"""Version marker in front of every token `SecretBox.encrypt` returns (`v1:` + a Fernet token)."""

KEY_FILE_FIELD: Final = "encryption_keys"


class SecretDecryptionError(Exception):
    """A token could not be decrypted: garbled, tampered with, of an unknown format, or made with no configured key."""


class InvalidEncryptionKey(ValueError):
    """A configured key is not a Fernet key (32 bytes, url-safe base64). The message names its position only."""


class InvalidKeyFile(Exception):
    """The key file exists but cannot be read or parsed; it is never replaced, since that would lose secrets."""


def _fernet(key: str, position: int) -> Fernet:
    """Build the Fernet of one configured key; `position` is 1-based and is all the error tells about the key."""
    if not isinstance(key, str):
        raise InvalidEncryptionKey(f"encryption key #{position} is not a string")
    try:
        return Fernet(key.strip())
    except (ValueError, TypeError):
        pass
    raise InvalidEncryptionKey(
        f"encryption key #{position} is not a valid Fernet key (32 bytes, url-safe base64); "
        "generate one with SecretBox.generate_key()"
    )


class SecretBox:
    """Encrypts and decrypts secrets with a list of keys: the first encrypts, all decrypt (key rotation)."""

    __slots__ = ("_fernets", "_multi", "_primary")

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str | bytes):
            raise TypeError("SecretBox takes a list of keys, not a single key")
        fernets = [_fernet(key, position) for position, key in enumerate(keys, start=1)]
        if not fernets:
            raise InvalidEncryptionKey("no encryption key configured")
        self._fernets = fernets
        self._primary = fernets[0]
        self._multi = MultiFernet(fernets)

    def __repr__(self) -> str:
        return f"<SecretBox with {len(self._fernets)} key(s)>"

    @staticmethod
    def generate_key() -> str:
        """A fresh random key, in the form `SecretBox` and `NEXENT_ENCRYPTION_KEYS` expect."""
        return Fernet.generate_key().decode("ascii")

    @property
    def key_count(self) -> int:
        """How many keys are configured (the primary one included)."""
        return len(self._fernets)

    def encrypt(self, plaintext: str) -> str:
        """Encrypt `plaintext` with the primary key; the same input gives a different token each time."""
        if not isinstance(plaintext, str):
            raise TypeError("SecretBox.encrypt takes a str")
        token = self._primary.encrypt(plaintext.encode("utf-8"))
        return VERSION_MARKER + token.decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by `encrypt` with any configured key; raises `SecretDecryptionError` otherwise."""
        data = self._multi_decrypt(token)
        plaintext: str | None = None
        with contextlib.suppress(UnicodeDecodeError):
            plaintext = data.decode("utf-8")
        if plaintext is None:  # raised outside the handler so no exception holding the bytes is chained
            raise SecretDecryptionError("secret token does not hold text")
        return plaintext

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the primary key (use after adding a new first key); same plaintext."""
        raw = self._raw(token)
        rotated: bytes | None = None
        with contextlib.suppress(InvalidToken):
            rotated = self._multi.rotate(raw)
        if rotated is None:
            raise SecretDecryptionError("secret token is invalid or was encrypted with an unknown key")
        return VERSION_MARKER + rotated.decode("ascii")

    def needs_rotation(self, token: str) -> bool:
        """Whether `token` is valid but not encrypted with the primary key, so `rotate` would change it."""
        raw = self._raw(token)
        with contextlib.suppress(InvalidToken):
            self._primary.decrypt(raw)
            return False
        self._multi_decrypt(token)  # raises SecretDecryptionError when no key decrypts it
        return True

    def _raw(self, token: str) -> bytes:
        """The Fernet token inside a versioned token."""
        if not isinstance(token, str) or not token.startswith(VERSION_MARKER):
            raise SecretDecryptionError("secret token has an unknown format (expected the 'v1:' prefix)")
        body = token[len(VERSION_MARKER) :]
        if not body.isascii():
            raise SecretDecryptionError("secret token is invalid or was encrypted with an unknown key")
        return body.encode("ascii")

    def _multi_decrypt(self, token: str) -> bytes:
        raw = self._raw(token)
        data: bytes | None = None
        with contextlib.suppress(InvalidToken):
            data = self._multi.decrypt(raw)
        if data is None:
            raise SecretDecryptionError("secret token is invalid or was encrypted with an unknown key")
        return data


def load_or_create_keys(path: Path) -> list[str]:
    """Keys from the JSON key file at `path`, creating it with one new key (mode 0600) when it does not exist.

    The embedded shape uses this when `NEXENT_ENCRYPTION_KEYS` is unset. An existing file is never overwritten;
    an unreadable or invalid one raises `InvalidKeyFile`, because a fresh key could not decrypt stored secrets.
    """
    if path.exists() or path.is_symlink():
        return _read_key_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = SecretBox.generate_key()
    content = json.dumps({KEY_FILE_FIELD: [key]}, indent=2) + "\n"
    if not _create_exclusively(path, content):
        return _read_key_file(path)  # another process created it first: use its keys
    logger.warning(
        "created a new secret encryption key file; back it up together with the database",
        extra={"path": str(path)},
    )
    return [key]


def _read_key_file(path: Path) -> list[str]:
    problem: str | None = None
    document: object = None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"cannot be read ({type(exc).__name__}: {getattr(exc, 'strerror', None) or 'not UTF-8'})"
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"is not valid JSON (line {exc.lineno}, column {exc.colno})"
    # Raised outside the handlers above: a chained JSONDecodeError would carry the file's text, keys included.
    if problem is not None:
        raise InvalidKeyFile(f"key file {path} {problem}; fix or restore it, do not delete it")
    keys = document.get(KEY_FILE_FIELD) if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise InvalidKeyFile(f'key file {path} must be a JSON object {{"{KEY_FILE_FIELD}": ["<key>", ...]}}')
    for position, key in enumerate(keys, start=1):
        try:
            _fernet(key, position)
        except InvalidEncryptionKey as exc:
            raise InvalidKeyFile(f"key file {path}: {exc}") from None
    _warn_if_exposed(path)
    return [key.strip() for key in keys]


def _create_exclusively(path: Path, content: str) -> bool:
    """Write `content` to a new file at `path` (mode 0600) atomically; False if `path` appeared meanwhile."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), 0o600)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # unlike rename, never replaces an existing file
        except FileExistsError:
            return False
        except OSError:  # hard links not supported here: exclusive create, not atomic but never overwriting
            return _write_new(path, content)
        _fsync_dir(path.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _write_new(path: Path, content: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(content.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _fsync_dir(directory: Path) -> None:
    """Make the new directory entry durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _warn_if_exposed(path: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            logger.warning(
                "secret encryption key file is readable by other users; chmod 600 it",
                extra={"path": str(path)},
            )
