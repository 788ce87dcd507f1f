"""Secrets at rest: SMTP passwords and tenants' client credentials, encrypted with KMS.

The API encrypts before anything is stored; only the Lambdas that use a secret decrypt it.
Each ciphertext is bound to its owner by an encryption context, so a ciphertext copied onto
another account or tenant does not decrypt. Decrypted values are cached per warm environment.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

_CACHE_LIMIT = 512


class SecretBox:
    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self._key_id = key_id
        self._plain: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._lock = threading.Lock()

    def seal(self, plaintext: str, context: dict[str, str]) -> str:
        response = self._kms.encrypt(
            KeyId=self._key_id, Plaintext=plaintext.encode(), EncryptionContext=context
        )
        return base64.b64encode(response["CiphertextBlob"]).decode()

    def open(self, sealed: str, context: dict[str, str]) -> str:
        cache_key = (sealed, tuple(sorted(context.items())))
        with self._lock:
            cached = self._plain.get(cache_key)
        if cached is not None:
            return cached
        # KeyId: only the proxy's own key may decrypt (and the call names the key it uses).
        response = self._kms.decrypt(
            KeyId=self._key_id, CiphertextBlob=base64.b64decode(sealed), EncryptionContext=context
        )
        plaintext = bytes(response["Plaintext"]).decode()
        with self._lock:
            if len(self._plain) >= _CACHE_LIMIT:
                self._plain.clear()
            self._plain[cache_key] = plaintext
        return plaintext


def account_context(tenant_id: str, account_id: str) -> dict[str, str]:
    return {"purpose": "smtp-password", "tenant_id": tenant_id, "account_id": account_id}


def client_auth_context(tenant_id: str) -> dict[str, str]:
    return {"purpose": "client-auth", "tenant_id": tenant_id}


def bounce_password_context() -> dict[str, str]:
    """The bounce mailbox's IMAP password: one per instance."""
    return {"purpose": "bounce-imap-password"}
