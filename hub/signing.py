"""Signed tokens: callback URLs, subscriber streams and account-level hooks.

Each token is an itsdangerous timed signature (HMAC-SHA256, compared in constant time) over a
small JSON payload, under a salt that names its purpose. A token made for one purpose never
verifies for another, and the payload binds it to its task and provider, so a callback token
cannot open a stream, a subscriber token cannot post a webhook, and neither works for another
task. Rotation: the first secret signs, every secret verifies.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from hub.errors import ConfigError, TokenError, TokenExpired, TokenScopeError

CALLBACK = "callback-hub.callback.v1"
SUBSCRIBER = "callback-hub.subscriber.v1"
ACCOUNT = "callback-hub.account.v1"
_CACHE_SIZE = 65_536


class Signer:
    """Mints and checks the hub's tokens."""

    def __init__(
        self,
        secrets: Sequence[str],
        *,
        callback_max_age: int,
        subscriber_max_age: int,
    ) -> None:
        if not secrets or not all(secrets):
            raise ConfigError("at least one non-empty signing secret is needed")
        # itsdangerous signs with the last key and verifies with all of them.
        keys = list(reversed(secrets))
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                keys, salt=purpose, signer_kwargs={"digest_method": hashlib.sha256}
            )
            for purpose in (CALLBACK, SUBSCRIBER, ACCOUNT)
        }
        self._max_age: dict[str, int | None] = {
            CALLBACK: callback_max_age,
            SUBSCRIBER: subscriber_max_age,
            ACCOUNT: None,
        }
        # Providers post many webhooks per task with the same token; re-deriving the HMAC for
        # each costs ~25 us, a third of the ingest budget. Tokens that verified once are kept
        # (bounded) with their signing time, so expiry still applies.
        self._verified: dict[tuple[str, str], tuple[Any, float]] = {}

    def callback_token(self, task_id: str, provider: str) -> str:
        """A token for the callback URL of one task at one provider."""
        return self._dumps(CALLBACK, [task_id, provider])

    def verify_callback(self, token: str, provider: str) -> str:
        """The task id a callback token was made for; raises :class:`TokenError`."""
        payload = self._loads(CALLBACK, token)
        if not _is_pair(payload):
            raise TokenError("malformed callback token")
        task_id, token_provider = payload
        if token_provider != provider:
            raise TokenScopeError("this callback token belongs to another provider")
        return str(task_id)

    def subscriber_token(self, task_id: str) -> str:
        """A token that lets its holder follow one task's events and nothing else."""
        return self._dumps(SUBSCRIBER, [task_id])

    def verify_subscriber(self, token: str, task_id: str) -> None:
        """Check a subscriber token for ``task_id``; raises :class:`TokenError`."""
        payload = self._loads(SUBSCRIBER, token)
        if not (isinstance(payload, list) and len(payload) == 1):
            raise TokenError("malformed subscriber token")
        if payload[0] != task_id:
            raise TokenScopeError("this subscriber token belongs to another task")

    def account_key(self, provider: str) -> str:
        """A key for a provider's account-level webhook URL (one URL for every task)."""
        return self._dumps(ACCOUNT, [provider])

    def verify_account_key(self, key: str, provider: str) -> None:
        """Check an account key for ``provider``; raises :class:`TokenError`."""
        payload = self._loads(ACCOUNT, key)
        if not (isinstance(payload, list) and len(payload) == 1):
            raise TokenError("malformed account key")
        if payload[0] != provider:
            raise TokenScopeError("this account key belongs to another provider")

    def _dumps(self, purpose: str, payload: list[str]) -> str:
        token = self._serializers[purpose].dumps(payload)
        return token if isinstance(token, str) else token.decode()

    def _loads(self, purpose: str, token: str) -> Any:
        max_age = self._max_age[purpose]
        cached = self._verified.get((purpose, token))
        if cached is not None:
            payload, signed_at = cached
            if max_age is not None and time.time() - signed_at > max_age:
                raise TokenExpired("token expired")
            return payload
        if not _canonical(token):
            raise TokenError("invalid token")
        try:
            payload, stamp = self._serializers[purpose].loads(
                token, max_age=max_age, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise TokenExpired("token expired") from exc
        except (BadData, UnicodeError, ValueError, TypeError) as exc:
            raise TokenError("invalid token") from exc
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))
        self._verified[(purpose, token)] = (payload, stamp.timestamp())
        return payload


def _canonical(token: str) -> bool:
    """Whether the signature is spelled exactly as the hub mints it.

    itsdangerous decodes base64 leniently (it drops non-ASCII characters and ignores the spare
    bits of the last character), so without this one signed token has many spellings that all
    verify; the HMAC already covers the rest of the token byte for byte.
    """
    _, dot, signature = token.rpartition(".")
    if not dot or not signature.isascii():
        return False
    try:
        raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    except ValueError:  # binascii.Error is a ValueError
        return False
    return base64.urlsafe_b64encode(raw).rstrip(b"=") == signature.encode()


def _is_pair(payload: Any) -> bool:
    return (
        isinstance(payload, list)
        and len(payload) == 2
        and all(isinstance(part, str) for part in payload)
    )
