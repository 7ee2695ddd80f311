"""Settings, read from the environment in this one place (prefix ``LAKALA_SANDBOX_``)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "LAKALA_SANDBOX_"

SignatureMode = Literal["strict", "warn", "off"]
Mode = Literal["sandbox", "real"]
# settings that take one of a few words: the env parser and the CLI offer exactly these
CHOICES: dict[str, tuple[str, ...]] = {"signature": get_args(SignatureMode), "mode": get_args(Mode)}


@dataclass(frozen=True)
class Settings:
    """Everything the sandbox can be told. ``create_app(Settings(...))`` builds a server from it.

    ``data_dir=":memory:"`` keeps orders in an in-memory SQLite database and keys in memory.
    """

    host: str = "127.0.0.1"
    port: int = 8090
    data_dir: str = ".lakala-sandbox"
    seed: int | None = None
    signature: SignatureMode = "strict"
    signature_max_skew: int = 300
    strict_responses: bool = False
    public_url: str | None = None
    merchant_no: str = "8222900701106PZ"
    channel_id: str = "25"
    term_no: str = "D9296400"
    appid: str = "OP00000003"
    serial_no: str = "00dfba8194c41b84cf"
    apps_file: str | None = None
    v1_data_alias: bool = True
    v1_tokens: tuple[str, ...] = ()
    v1_validity_seconds: int = 3600
    admin_token: str | None = None
    timezone: str = "Asia/Shanghai"
    clock_start: str | None = None
    clock_speed: float = 1.0
    scenarios_dir: str | None = None
    default_scenario: str = "manual"
    notify_ladder: tuple[float, ...] = (1, 5, 5, 10, 180, 600, 1200, 1800, 3600, 7200)
    notify_timeout: float = 10.0
    notify_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ("loopback",)
    allowed_hosts: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    mode: Mode = "sandbox"
    page_redirect_seconds: int = 5

    def __post_init__(self) -> None:
        for problem in _problems(self):
            raise ValueError(problem)

    @property
    def in_memory(self) -> bool:
        return self.data_dir == ":memory:"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``LAKALA_SANDBOX_<FIELD>`` variables; unset ones keep their defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw, cls.__dataclass_fields__[f.name].default)
        return cls(**values)


DAY = 86_400
# (setting, lowest, highest): a value outside is refused at start, naming the setting, rather
# than breaking something later (an infinite notify delay once broke the outbox for good)
RANGES: tuple[tuple[str, float, float], ...] = (
    ("port", 0, 65_535),
    ("signature_max_skew", 0, 7 * DAY),
    ("v1_validity_seconds", 1, 7 * DAY),  # Lakala keeps an order open for at most 7 days
    ("notify_timeout", 0.001, 3_600),
    ("max_body_bytes", 1_024, 1024**3),
    ("page_redirect_seconds", 0, 3_600),
)
MAX_NOTIFY_DELAY = 30 * DAY
# what a browser sends in Origin: a scheme, a host (or [IPv6]) and maybe a port; nothing else
_ORIGIN = re.compile(r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?")
# what a Host header names: a DNS name, an IPv4 address, or an IPv6 one (bracketed or not)
_HOST = re.compile(r"[A-Za-z0-9_.-]{1,253}|\[?[0-9A-Fa-f:.]{2,45}\]?")


def _problems(settings: Settings) -> list[str]:
    problems = []
    for name, choices in CHOICES.items():
        value = getattr(settings, name)
        if value not in choices:
            words = ", ".join(choices[:-1]) + " or " + choices[-1]
            problems.append(f"{_called(name)} must be {words}, not {value!r}")
    for name, low, high in RANGES:
        value = getattr(settings, name)
        if not (isinstance(value, int | float) and low <= value <= high):  # (NaN fails too)
            problems.append(f"{_called(name)} must be from {low:g} to {high:g}, not {value!r}")
    ladder = settings.notify_ladder
    if not ladder or not all(0 <= delay <= MAX_NOTIFY_DELAY for delay in ladder):
        problems.append(
            f"{_called('notify_ladder')} must be one or more delays in seconds, each from 0 to "
            f"{MAX_NOTIFY_DELAY} (30 days), not {','.join(f'{d:g}' for d in ladder) or 'none'}"
        )
    for origin in settings.cors_origins:
        if origin not in ("*", "loopback", "none") and not _ORIGIN.fullmatch(origin):
            problems.append(
                f"{_called('cors_origins')} takes origins such as http://localhost:3000 "
                f"(scheme, host and port only), loopback, * or none, not {origin!r}"
            )
    for host in settings.allowed_hosts:
        if host != "*" and not _HOST.fullmatch(host):
            problems.append(
                f"{_called('allowed_hosts')} takes host names or addresses such as "
                f"sandbox.internal or 192.168.1.5 (no scheme, no port), or *, not {host!r}"
            )
    if "none" in settings.cors_origins and len(settings.cors_origins) > 1:
        problems.append(f"{_called('cors_origins')}: none stands alone, not with other origins")
    try:
        int(settings.serial_no, 16)
    except ValueError:
        problems.append(f"{_called('serial_no')} must be a hex number, not {settings.serial_no!r}")
    try:
        ZoneInfo(settings.timezone)
    except (ValueError, ZoneInfoNotFoundError):
        problems.append(
            f"{_called('timezone')} must be an IANA zone such as Asia/Shanghai, "
            f"not {settings.timezone!r}"
        )
    return problems


def _called(name: str) -> str:
    return f"{name} ({ENV_PREFIX}{name.upper()})"


def _parse(name: str, raw: str, default: Any) -> Any:
    if name in ("v1_tokens", "notify_hosts", "cors_origins", "allowed_hosts"):
        return tuple(t.strip() for t in raw.split(",") if t.strip())
    if name == "notify_ladder":
        try:
            return tuple(float(t) for t in raw.split(",") if t.strip())
        except ValueError:
            raise ValueError(
                f"{ENV_PREFIX}NOTIFY_LADDER must be comma-separated seconds, not {raw!r}"
            ) from None
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{ENV_PREFIX}{name.upper()} must be true or false, not {raw!r}")
    if isinstance(default, int) or name in ("seed",):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(
                f"{ENV_PREFIX}{name.upper()} must be an integer, not {raw!r}"
            ) from None
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a number, not {raw!r}") from None
    return raw  # a word: Settings itself refuses one outside CHOICES
