"""Deployment settings: one frozen object built from the environment.

Clinic settings (working hours, retry gaps…) live in the database; only what a deployment
decides lives here. Every variable is parsed explicitly: ``bool(os.environ.get(...))`` would
turn ``"false"`` into True.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from callcenter.errors import ConfigError

#: Values that are fine for the demo and the tests, and refused anywhere else.
DEFAULT_SECRET_KEY = "dev-not-secret"
DEFAULT_AMI_SECRET = "demo-ami-secret"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(name: str, value: str) -> bool:
    """Parse a boolean setting strictly.

    >>> parse_bool("X", "Yes"), parse_bool("X", "0")
    (True, False)
    >>> parse_bool("X", "maybe")
    Traceback (most recent call last):
    ...
    callcenter.errors.ConfigError: X must be one of 1/true/yes/on or 0/false/no/off, got 'maybe'
    """
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{name} must be one of 1/true/yes/on or 0/false/no/off, got {value!r}")


def parse_int(name: str, value: str, *, minimum: int | None = None) -> int:
    """Parse an integer setting strictly.

    >>> parse_int("AMI_PORT", " 5038 ")
    5038
    >>> parse_int("AMI_PORT", "50x")
    Traceback (most recent call last):
    ...
    callcenter.errors.ConfigError: AMI_PORT must be an integer, got '50x'
    """
    try:
        n = int(value.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from exc
    if minimum is not None and n < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {n}")
    return n


def parse_float(name: str, value: str, *, minimum: float | None = None) -> float:
    """Parse a number setting strictly."""
    try:
        n = float(value.strip())
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if minimum is not None and n < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {n}")
    return n


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process needs to start; the defaults are the embedded demo set-up."""

    # SQLAlchemy URL. SQLite is the embedded default; PostgreSQL in production
    # (postgresql+psycopg://user:pass@host/db).
    database_url: str = "sqlite:///callcenter.db"
    # Asterisk Manager Interface (manager.conf in asterisk_config/ defines the user).
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "callcenter"
    ami_secret: str = DEFAULT_AMI_SECRET
    # Seconds between Pings, and how long a Ping may go unanswered before we reconnect.
    ami_ping_interval_s: float = 10.0
    ami_ping_timeout_s: float = 5.0
    # Reconnect back-off: first delay, doubled each failure up to the cap.
    ami_backoff_initial_s: float = 0.5
    ami_backoff_max_s: float = 30.0
    # Redis: Huey storage and the Socket.IO message queue when set; embedded mode when empty.
    redis_url: str | None = None
    # Flask session signing key; must be set outside the demo.
    secret_key: str = DEFAULT_SECRET_KEY
    # Vosk model folder (see models/README.md).
    vosk_model_path: str = "models/vosk-model-small-ru-0.22"
    # Clinic time zone for due times and working hours (stored in UTC).
    timezone: str = "Europe/Moscow"
    # Web server bind address.
    web_host: str = "127.0.0.1"
    web_port: int = 5000
    # Served over HTTPS (behind the TLS proxy): session cookies get the Secure flag.
    web_https: bool = False
    # Log as JSON lines (default: when stderr is not a terminal).
    log_json: bool | None = None
    log_level: str = "INFO"
    # Callback dialer: "patient_first" rings the patient, then an operator; "operator_first"
    # rings the operator's phone first (click-to-call style).
    dialer_style: str = "patient_first"
    # Extensions the dialer may connect callbacks to.
    dialer_operators: tuple[str, ...] = ("101",)
    # Originates in flight at once, per dialer process.
    dialer_max_concurrent: int = 2
    # How long the first side of a callback rings.
    dialer_originate_timeout_s: float = 30.0
    # How long a claimed task stays with its dialer before another may take it over.
    dialer_lease_s: float = 300.0
    # A number that called us this many days ago asked for the call (152-ФЗ: own request).
    dialer_own_request_days: int = 30
    # Caller ID shown to patients on callbacks, e.g. '"Клиника" <74951234500>'.
    dialer_caller_id: str | None = None
    # Huey's SQLite file in the embedded mode (default: next to the SQLite database).
    huey_path: str | None = None
    # Worker threads of `callcenter worker`.
    worker_threads: int = 2
    # Port where `callcenter listen` serves /healthz, /readyz (AMI link) and /metrics;
    # unset = none (`serve` and `web` answer them on the panel's port).
    metrics_port: int | None = None
    # Where Asterisk's MixMonitor writes recordings; a call's `recording` is a name in it.
    recordings_dir: str = "/var/spool/asterisk/monitor"
    # Longest recording the transcription job decodes, in seconds (longer ones fail).
    transcribe_max_duration_s: float = 4 * 3600.0
    # The queue's ``wrapuptime`` (asterisk_config/queues.conf): Asterisk announces no event
    # when an operator's wrap-up ends, so the tracker times it.
    queue_wrapup_s: float = 2.0
    # Recordings and transcripts of calls older than this many days are deleted by the
    # worker's daily retention job and `callcenter retention` (0 = keep them forever).
    retention_days: int = 0
    # A recorded call still without a finished transcript this many minutes after it ended is
    # queued for transcription again (a failed or lost job), at most this many times.
    transcribe_requeue_after_min: int = 30
    transcribe_max_requeues: int = 3
    # How the queue names an operator's member (asterisk_config/queues.conf), for QueuePause
    # from the panel; "{extension}" is replaced, e.g. "PJSIP/{extension}" for PJSIP members.
    queue_member_interface: str = "Local/{extension}@agents/n"
    # Report thresholds (the dashboard's defaults, the wallboard's alert): answered within
    # this many seconds of queue wait counts for the service level (queues.conf servicelevel);
    # abandoned sooner than this after joining the queue is a "short" abandon; a booking
    # within this many days after a drop wins the caller back.
    report_service_level_s: float = 20.0
    report_short_abandon_s: float = 5.0
    report_win_back_days: int = 14
    # True only for `callcenter demo` and tests: allows the default secrets above.
    demo: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, demo: bool = False) -> Settings:
        """Build settings from environment variables; unset ones keep their defaults.

        :raises ConfigError: when a value does not parse.
        """
        env = os.environ if env is None else env
        d = cls()
        return cls(
            database_url=env.get("DATABASE_URL", d.database_url),
            ami_host=env.get("AMI_HOST", d.ami_host),
            ami_port=parse_int("AMI_PORT", env["AMI_PORT"], minimum=1)
            if "AMI_PORT" in env
            else d.ami_port,
            ami_username=env.get("AMI_USERNAME", d.ami_username),
            ami_secret=env.get("AMI_SECRET", d.ami_secret),
            ami_ping_interval_s=_float(env, "AMI_PING_INTERVAL", d.ami_ping_interval_s),
            ami_ping_timeout_s=_float(env, "AMI_PING_TIMEOUT", d.ami_ping_timeout_s),
            ami_backoff_initial_s=_float(env, "AMI_BACKOFF_INITIAL", d.ami_backoff_initial_s),
            ami_backoff_max_s=_float(env, "AMI_BACKOFF_MAX", d.ami_backoff_max_s),
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY", d.secret_key),
            vosk_model_path=env.get("VOSK_MODEL_PATH", d.vosk_model_path),
            timezone=env.get("CLINIC_TIMEZONE", d.timezone),
            web_host=env.get("WEB_HOST", d.web_host),
            web_port=parse_int("WEB_PORT", env["WEB_PORT"], minimum=1)
            if "WEB_PORT" in env
            else d.web_port,
            web_https=parse_bool("WEB_HTTPS", env["WEB_HTTPS"]) if "WEB_HTTPS" in env else False,
            log_json=parse_bool("LOG_JSON", env["LOG_JSON"]) if "LOG_JSON" in env else None,
            log_level=env.get("LOG_LEVEL", d.log_level).upper(),
            dialer_style=_choice(env, "DIALER_STYLE", d.dialer_style, DIALER_STYLES),
            dialer_operators=_list(env, "DIALER_OPERATORS", d.dialer_operators),
            dialer_max_concurrent=_int(env, "DIALER_MAX_CONCURRENT", d.dialer_max_concurrent, 1),
            dialer_originate_timeout_s=_float(
                env, "DIALER_ORIGINATE_TIMEOUT", d.dialer_originate_timeout_s
            ),
            dialer_lease_s=_float(env, "DIALER_LEASE", d.dialer_lease_s),
            dialer_own_request_days=_int(
                env, "DIALER_OWN_REQUEST_DAYS", d.dialer_own_request_days, 0
            ),
            dialer_caller_id=env.get("DIALER_CALLER_ID") or None,
            huey_path=env.get("HUEY_PATH") or None,
            worker_threads=_int(env, "WORKER_THREADS", d.worker_threads, 1),
            metrics_port=parse_int("METRICS_PORT", env["METRICS_PORT"], minimum=1)
            if env.get("METRICS_PORT")
            else None,
            recordings_dir=env.get("RECORDINGS_DIR") or d.recordings_dir,
            transcribe_max_duration_s=_float(
                env, "TRANSCRIBE_MAX_DURATION", d.transcribe_max_duration_s
            ),
            queue_wrapup_s=_float(env, "QUEUE_WRAPUP", d.queue_wrapup_s),
            report_service_level_s=_float(env, "REPORT_SERVICE_LEVEL", d.report_service_level_s),
            report_short_abandon_s=_float(env, "REPORT_SHORT_ABANDON", d.report_short_abandon_s),
            report_win_back_days=_int(env, "REPORT_WIN_BACK_DAYS", d.report_win_back_days, 1),
            queue_member_interface=_template(
                env, "QUEUE_MEMBER_INTERFACE", d.queue_member_interface, "{extension}"
            ),
            retention_days=_int(env, "RETENTION_DAYS", d.retention_days, 0),
            transcribe_requeue_after_min=_int(
                env, "TRANSCRIBE_REQUEUE_AFTER", d.transcribe_requeue_after_min, 1
            ),
            transcribe_max_requeues=_int(
                env, "TRANSCRIBE_MAX_REQUEUES", d.transcribe_max_requeues, 0
            ),
            demo=demo,
        )

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some fields replaced (command-line flags win over env)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def require_production_secrets(self, *, need_web: bool, need_ami: bool) -> None:
        """Refuse default secrets outside the demo.

        :raises ConfigError: naming each variable that still has its default.
        """
        if self.demo:
            return
        missing = []
        if need_ami and self.ami_secret == DEFAULT_AMI_SECRET:
            missing.append("AMI_SECRET")
        if need_web and self.secret_key == DEFAULT_SECRET_KEY:
            missing.append("SECRET_KEY")
        if missing:
            raise ConfigError(
                f"refusing to start with the default {' and '.join(missing)}: set "
                f"{'them' if len(missing) > 1 else 'it'} in the environment "
                "(defaults are for `callcenter demo` only)"
            )


DIALER_STYLES = ("patient_first", "operator_first")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return parse_float(name, env[name], minimum=0.0) if name in env else default


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    return parse_int(name, env[name], minimum=minimum) if name in env else default


def _template(env: Mapping[str, str], name: str, default: str, placeholder: str) -> str:
    value = env.get(name, default).strip()
    if value.count(placeholder) != 1:
        raise ConfigError(f"{name} must contain {placeholder} once, got {value!r}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name, default).strip()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if name not in env:
        return default
    items = tuple(item.strip() for item in env[name].split(",") if item.strip())
    if not items:
        raise ConfigError(f"{name} must list at least one value (comma-separated)")
    return items
