"""The simulator's knobs: timings, accounts and faults. All of them can change while it runs.

Rates are probabilities in [0, 1] drawn from one seeded random generator, so a run with a
``seed`` is repeatable. Counters (``force_429``, ``force_5xx``) make the next N provider API
requests fail, which is what tests want when they need one failure exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from hub.simulator.blocklist import DEFAULT_TERMS

_RATES = ("drop_rate", "duplicate_rate", "reorder_rate", "fail_rate", "timeout_rate")


class ConfigError(ValueError):
    """A knob value the simulator cannot use."""


@dataclass
class SimConfig:
    """Everything that shapes how the simulated providers behave."""

    seed: int | None = None
    #: Time a job waits as pending, and between two progress steps (seconds).
    queue_s: float = 0.5
    step_s: float = 1.0
    steps: int = 4
    #: LinkrAPI: fast jobs one key runs at once; more wait as pending (its documentation says 3).
    linkrapi_fast_slots: int = 3
    #: midjourney-api.com refuses a key's submit with status 1002 past this many open jobs.
    mjapi_max_jobs: int = 10
    #: Webhook faults.
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    delay_s: float = 0.0
    #: LinkrAPI and midjourney-api.com document only a terminal webhook; True also sends one
    #: for each progress step (the live LinkrAPI API is said to, undocumented).
    progress_webhooks: bool = False
    #: Task faults: a share of jobs fail, or stall; a stalled job reports the provider's
    #: timeout after ``provider_timeout_s`` (None: it hangs until the simulator stops).
    fail_rate: float = 0.0
    timeout_rate: float = 0.0
    provider_timeout_s: float | None = None
    #: Rate limit per API key: at most ``rate_limit`` requests per ``rate_window_s``.
    rate_limit: int | None = None
    rate_window_s: float = 1.0
    #: Seconds sent in Retry-After (providers send whole seconds; fractions speed up tests).
    retry_after_s: float = 1.0
    #: The next N provider API requests answer 429 (with Retry-After) or 5xx.
    force_429: int = 0
    force_5xx: int = 0
    #: Words the content policy refuses (LinkrAPI answers 400; the others fail the job).
    blocklist: tuple[str, ...] = DEFAULT_TERMS
    #: Accepted keys per provider slug; an empty or missing entry accepts any well-formed key.
    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: LinkrAPI keys whose hold account is suspended (403).
    suspended_keys: tuple[str, ...] = ("lkr_suspended",)
    #: ImagineAPI posts every webhook to one URL per account: token → URL ("*" for any token).
    imagineapi_webhooks: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work."""
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1")
        if self.fail_rate + self.timeout_rate > 1.0:
            raise ConfigError("fail_rate + timeout_rate must be at most 1")
        for name in ("queue_s", "step_s", "delay_s", "rate_window_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.steps < 1 or self.linkrapi_fast_slots < 1 or self.mjapi_max_jobs < 1:
            raise ConfigError("steps, linkrapi_fast_slots and mjapi_max_jobs must be positive")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ConfigError("rate_limit must be positive (or null for none)")

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (JSON values) after checking names and types; all or nothing."""
        known = {f.name: f for f in fields(self)}
        staged: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ConfigError(f"unknown knob {name!r}")
            staged[name] = _coerce(name, value, getattr(self, name))
        previous = {name: getattr(self, name) for name in staged}
        for name, value in staged.items():
            setattr(self, name, value)
        try:
            self.validate()
        except ConfigError:
            for name, value in previous.items():
                setattr(self, name, value)
            raise

    def to_dict(self) -> dict[str, Any]:
        """The knobs as JSON-ready data."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["blocklist"] = list(self.blocklist)
        data["suspended_keys"] = list(self.suspended_keys)
        data["keys"] = {k: list(v) for k, v in self.keys.items()}
        return data


def _coerce(name: str, value: Any, current: Any) -> Any:
    nullable = name in ("seed", "rate_limit", "provider_timeout_s")
    if value is None and nullable:
        return None
    if isinstance(current, bool) or name == "progress_webhooks":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false")
        return value
    if name in ("blocklist", "suspended_keys"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{name} must be a list of strings")
        return tuple(value)
    if name == "keys":
        if not isinstance(value, dict) or not all(
            isinstance(v, list) and all(isinstance(k, str) for k in v) for v in value.values()
        ):
            raise ConfigError("keys must map provider slugs to lists of keys")
        return {str(k): tuple(v) for k, v in value.items()}
    if name == "imagineapi_webhooks":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError("imagineapi_webhooks must map tokens to URLs")
        return {str(k): v for k, v in value.items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number")
    if name in (
        "seed",
        "steps",
        "linkrapi_fast_slots",
        "mjapi_max_jobs",
        "rate_limit",
        "force_429",
        "force_5xx",
    ):
        if int(value) != value:
            raise ConfigError(f"{name} must be an integer")
        return int(value)
    return float(value)
