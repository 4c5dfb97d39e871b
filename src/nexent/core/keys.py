"""The process's key material: the access-token signing secret and the secret box for data at rest.

Both come from settings; in the embedded shape, missing ones are created once under the data directory
(mode 0600) so a laptop install needs no configuration. Back those files up with the database.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from nexent.core.crypto import SecretBox, load_or_create_keys
from nexent.settings import Settings


@dataclass(frozen=True)
class KeyRing:
    jwt_secret: bytes = field(repr=False)
    box: SecretBox = field(repr=False)


def load_keyring(settings: Settings) -> KeyRing:
    data_dir = settings.data_dir.resolve()
    if settings.jwt_secret is not None:
        jwt_secret = settings.jwt_secret.get_secret_value().encode()
    else:
        jwt_secret = _load_or_create_token_secret(data_dir / "jwt-secret")
    if settings.encryption_keys:
        keys = [key.get_secret_value() for key in settings.encryption_keys]
    else:
        keys = load_or_create_keys(data_dir / "secret-keys.json")
    return KeyRing(jwt_secret=jwt_secret, box=SecretBox(keys))


def _load_or_create_token_secret(path: Path) -> bytes:
    if path.exists():
        value = path.read_bytes().strip()
        if len(value) < 32:
            raise ValueError(f"{path} holds no usable secret; delete it to make a new one (signs everyone out)")
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return _load_or_create_token_secret(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
