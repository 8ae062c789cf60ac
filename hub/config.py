"""Settings, read from ``HUB_*`` environment variables; the CLI overrides the common ones.

Every setting is listed in the README's "Configuration" table. Secrets that are not given are
generated once and kept in the data folder, so callback URLs keep working across restarts.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hub.errors import ConfigError

logger = logging.getLogger("hub")

DAY = 86_400


@dataclass(frozen=True)
class Settings:
    """Everything the hub can be configured with. Build with :meth:`from_env`."""

    # Secrets (and URLs that may carry a password) stay out of repr(), hence out of logs.
    secret: tuple[str, ...] = field(default=(), repr=False)
    api_key: str | None = field(default=None, repr=False)
    database_url: str | None = field(default=None, repr=False)
    broker_url: str = field(default="memory://", repr=False)
    public_url: str | None = None
    data_dir: Path = Path("hub-data")
    host: str = "127.0.0.1"
    port: int = 8000
    token_max_age: int = 30 * DAY
    subscriber_token_max_age: int = 7 * DAY
    max_body_bytes: int = 1024 * 1024
    sqlite_synchronous: str = "FULL"
    max_batch: int = 512
    wait_max_s: float = 60.0
    log_level: str = "info"
    # Event streams (SSE) and the log they resume from.
    sse_heartbeat_s: float = 15.0
    sse_retry_ms: int = 3000
    sse_max_streams: int = 10_000
    sse_buffer_bytes: int = 1024 * 1024
    sse_max_per_token: int = 10
    cors_origins: str = ""
    log_retention_s: float = 0.0
    # Abuse limits (SECURITY.md): webhooks per client address, and slow request bodies.
    hook_rate: float = 1000.0
    hook_burst: int = 2000
    hook_rate_exempt: str = "127.0.0.1,::1"
    body_timeout_s: float = 10.0
    # Provider APIs (submit, polling, actions): base URLs default to the real services.
    linkrapi_url: str = "https://linkrapi.com"
    linkrapi_key: str | None = field(default=None, repr=False)
    midjourney_api_url: str = "https://api.midjourney-api.com"
    midjourney_api_key: str | None = field(default=None, repr=False)
    imagineapi_url: str = "https://cl.imagineapi.dev"
    imagineapi_key: str | None = field(default=None, repr=False)
    midapi_url: str = "https://api.midapi.ai"
    midapi_key: str | None = field(default=None, repr=False)
    provider_concurrency: str = ""
    provider_timeout_s: float = 30.0
    submit_attempts: int = 5
    submit_backoff_s: float = 1.0
    submit_backoff_max_s: float = 30.0
    # Polling fallback and deadlines.
    task_deadline_s: float = 3600.0
    poll_after_s: float = 60.0
    poll_max_interval_s: float = 600.0
    poll_tick_s: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``HUB_*`` variables from ``environ`` (default ``os.environ``), then overrides."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("HUB_" + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot work."""
        if self.sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError("HUB_SQLITE_SYNCHRONOUS must be OFF, NORMAL, FULL or EXTRA")
        if self.max_body_bytes < 1024:
            raise ConfigError("HUB_MAX_BODY_BYTES must be at least 1024")
        if self.token_max_age <= 0:
            raise ConfigError("HUB_TOKEN_MAX_AGE must be positive")
        if self.sse_heartbeat_s < 0 or self.sse_retry_ms < 0:
            raise ConfigError("HUB_SSE_HEARTBEAT_S and HUB_SSE_RETRY_MS must not be negative")
        if self.sse_max_streams < 1 or self.sse_buffer_bytes < 4096:
            raise ConfigError("HUB_SSE_MAX_STREAMS must be >= 1, HUB_SSE_BUFFER_BYTES >= 4096")
        for name in ("poll_after_s", "poll_max_interval_s", "poll_tick_s", "provider_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"HUB_{name.upper()} must be positive")
        if self.submit_attempts < 1:
            raise ConfigError("HUB_SUBMIT_ATTEMPTS must be at least 1")
        if min(self.hook_rate, self.body_timeout_s, self.sse_max_per_token) < 0:
            raise ConfigError(
                "HUB_HOOK_RATE, HUB_BODY_TIMEOUT_S and HUB_SSE_MAX_PER_TOKEN must be >= 0 (0: off)"
            )
        if self.hook_burst < 1:
            raise ConfigError("HUB_HOOK_BURST must be at least 1")
        for entry in filter(None, (e.strip() for e in self.hook_rate_exempt.split(","))):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ConfigError(f"HUB_HOOK_RATE_EXEMPT: {entry!r} is no address") from None

    @property
    def effective_database_url(self) -> str:
        """The store URL: ``HUB_DATABASE_URL``, or a SQLite file in the data folder."""
        return self.database_url or f"sqlite:///{self.data_dir / 'hub.db'}"

    def with_generated_secrets(self) -> Settings:
        """Fill in a missing signing secret and API key from (or into) the data folder."""
        updated = self
        if not self.secret:
            updated = replace(updated, secret=(self._kept("secret", "HUB_SECRET"),))
        if not self.api_key:
            updated = replace(updated, api_key=self._kept("api_key", "HUB_API_KEY"))
        return updated

    def _kept(self, name: str, variable: str) -> str:
        path = self.data_dir / name
        if path.exists():
            value = path.read_text().strip()
            if value:
                logger.warning("%s is not set: using the one kept in %s", variable, path)
                return value
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(32)
        # Written owner-only: the file is as sensitive as the variable it stands in for.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        logger.warning("%s is not set: generated one and kept it in %s", variable, path)
        return value


_INTS = {
    "port",
    "token_max_age",
    "subscriber_token_max_age",
    "max_body_bytes",
    "max_batch",
    "sse_retry_ms",
    "sse_max_streams",
    "sse_buffer_bytes",
    "sse_max_per_token",
    "submit_attempts",
    "hook_burst",
}
_FLOATS = {
    "wait_max_s",
    "sse_heartbeat_s",
    "log_retention_s",
    "provider_timeout_s",
    "submit_backoff_s",
    "submit_backoff_max_s",
    "task_deadline_s",
    "poll_after_s",
    "poll_max_interval_s",
    "poll_tick_s",
    "hook_rate",
    "body_timeout_s",
}


def _parse(name: str, raw: str) -> Any:
    try:
        if name == "secret":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if name == "data_dir":
            return Path(raw)
        if name in _INTS:
            return int(raw)
        if name in _FLOATS:
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"HUB_{name.upper()} must be a number, not {raw!r}") from exc
    return raw
