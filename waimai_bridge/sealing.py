"""Sealing secrets at rest: stores' platform credentials, encrypted with Fernet keys.

The first key seals; every key unseals, so a key is rotated by putting a new one first,
re-sealing what is stored (``waimai-bridge auth rekey``), then dropping the old one.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SealingUnavailable(RuntimeError):
    """No key is configured, or none of the configured keys opens a sealed value."""


def check_key(key: str) -> bytes:
    """``key`` as Fernet takes it; ValueError when it is not a Fernet key."""
    try:
        Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError(
            "not a Fernet key (32 url-safe base64-encoded bytes: `waimai-bridge auth new-key` "
            "makes one)"
        ) from None
    return key.encode("ascii")


def new_key() -> str:
    """A fresh key for ``[authorization] keys``."""
    return Fernet.generate_key().decode("ascii")


class Sealer:
    """Seals and unseals text with the configured keys."""

    def __init__(self, keys: Sequence[str]) -> None:
        fernets = [Fernet(check_key(key)) for key in keys]
        self._fernet = MultiFernet(fernets) if fernets else None

    @property
    def ready(self) -> bool:
        """Whether a key is configured."""
        return self._fernet is not None

    def _keys(self) -> MultiFernet:
        if self._fernet is None:
            raise SealingUnavailable(
                "no key to seal credentials with: set [authorization] keys or "
                "WAIMAI_AUTHORIZATION_KEYS (`waimai-bridge auth new-key` makes one)"
            )
        return self._fernet

    def seal(self, secret: str) -> str:
        """``secret`` sealed with the first key."""
        return self._keys().encrypt(secret.encode("utf-8")).decode("ascii")

    def unseal(self, sealed: str) -> str:
        """The secret a sealed value holds."""
        try:
            return self._keys().decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SealingUnavailable(
                "none of the configured keys opens the stored credentials (a key was removed "
                "before `waimai-bridge auth rekey` re-sealed them with its successor)"
            ) from None

    def reseal(self, sealed: str) -> str:
        """A sealed value sealed again with the first key."""
        try:
            return self._keys().rotate(sealed.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise SealingUnavailable(
                "none of the configured keys opens the stored credentials"
            ) from None
