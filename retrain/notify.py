"""Announce rollbacks, promotions and failures: to the log, a Slack webhook or e-mail.

``notifier_from_config(config)`` picks the adapter named by ``notifications.kind``. Every adapter
implements :class:`Notifier` (one method, ``notify``). Network adapters raise
:class:`NotificationError` on failure; callers that must not fail because of a notification (the
registry after a rollback) catch it and log it. Airflow's ``BaseNotifier`` wraps these in the DAG
layer; nothing here imports Airflow.

SMTP settings other than the recipients come from the environment: ``RETRAIN_SMTP_HOST``
(default ``localhost``), ``RETRAIN_SMTP_PORT`` (25), ``RETRAIN_SMTP_FROM``, ``RETRAIN_SMTP_USER``,
``RETRAIN_SMTP_PASSWORD`` and ``RETRAIN_SMTP_STARTTLS`` (``true``/``false``).
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from retrain.errors import ConfigError, NotificationError

if TYPE_CHECKING:
    from retrain.config import NotificationSettings, RetrainConfig

__all__ = [
    "Level",
    "LogNotifier",
    "Notification",
    "NotificationError",
    "Notifier",
    "SlackWebhookNotifier",
    "SmtpNotifier",
    "notifier_for",
    "notifier_from_config",
]

Level = Literal["info", "warning", "critical"]
_LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_SLACK_ICONS = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
}


@dataclass(frozen=True)
class Notification:
    """One announcement: a short title, a readable text and machine-readable details."""

    event: str
    title: str
    text: str
    level: Level = "info"
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["details"] = dict(self.details)
        return data


@runtime_checkable
class Notifier(Protocol):
    """Something that delivers a :class:`Notification`."""

    def notify(self, notification: Notification) -> None: ...


class LogNotifier:
    """Writes the notification to a logger, at CRITICAL for critical events (the default)."""

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("retrain.notify")

    def notify(self, notification: Notification) -> None:
        self.logger.log(
            _LOG_LEVELS[notification.level],
            "%s: %s",
            notification.title,
            notification.text,
            extra={"retrain_event": notification.event, "retrain_details": notification.details},
        )


class SlackWebhookNotifier:
    """Posts ``{"text": ...}`` JSON to a Slack incoming webhook URL."""

    def __init__(self, webhook_url: str, *, timeout: float = 5.0) -> None:
        if not webhook_url.startswith(("https://", "http://")):
            raise ConfigError([f"Slack webhook URL must be http(s), got {webhook_url!r}"])
        self.webhook_url = webhook_url
        self.timeout = timeout

    def payload(self, notification: Notification) -> dict[str, Any]:
        icon = _SLACK_ICONS[notification.level]
        lines = [f"{icon} *{notification.title}*", notification.text]
        lines += [f"• {key}: `{value}`" for key, value in notification.details.items()]
        return {"text": "\n".join(lines)}

    def notify(self, notification: Notification) -> None:
        body = json.dumps(self.payload(notification)).encode("utf-8")
        request = urllib.request.Request(
            self.webhook_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(200).decode("utf-8", "replace")
            raise NotificationError(
                f"Slack webhook answered HTTP {exc.code}: {detail or exc.reason}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotificationError(f"Slack webhook unreachable: {reason}") from None


class SmtpNotifier:
    """Sends a plain-text e-mail with :mod:`smtplib`."""

    def __init__(
        self,
        to: Sequence[str],
        *,
        sender: str | None = None,
        host: str = "localhost",
        port: int = 25,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if not to:
            raise ConfigError(["SmtpNotifier needs at least one recipient"])
        self.to = list(to)
        self.sender = sender or f"retrain@{socket.gethostname()}"
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout

    @classmethod
    def from_env(cls, to: Sequence[str], env: Mapping[str, str] | None = None) -> SmtpNotifier:
        """Build from ``RETRAIN_SMTP_*`` variables (see the module docstring)."""
        env = os.environ if env is None else env
        return cls(
            to,
            sender=env.get("RETRAIN_SMTP_FROM") or None,
            host=env.get("RETRAIN_SMTP_HOST", "localhost"),
            port=int(env.get("RETRAIN_SMTP_PORT", "25")),
            username=env.get("RETRAIN_SMTP_USER") or None,
            password=env.get("RETRAIN_SMTP_PASSWORD") or None,
            starttls=env.get("RETRAIN_SMTP_STARTTLS", "false").lower() in {"1", "true", "yes"},
        )

    def message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[retrain] [{notification.level}] {notification.title}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        details = "".join(f"\n  {key}: {value}" for key, value in notification.details.items())
        message.set_content(f"{notification.text}\n{details}\n")
        return message

    def notify(self, notification: Notification) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(self.message(notification))
        except (smtplib.SMTPException, OSError) as exc:
            raise NotificationError(
                f"e-mail to {', '.join(self.to)} via {self.host}:{self.port} failed: {exc}"
            ) from None


def notifier_from_config(config: RetrainConfig) -> Notifier:
    """The notifier named by ``config.notifications``."""
    return notifier_for(config.notifications)


def notifier_for(settings: NotificationSettings) -> Notifier:
    """The notifier named by a ``notifications`` section."""
    if settings.kind == "slack":
        assert settings.slack_webhook_url is not None  # guaranteed by config validation
        return SlackWebhookNotifier(settings.slack_webhook_url)
    if settings.kind == "smtp":
        return SmtpNotifier.from_env(settings.smtp_to)
    return LogNotifier()
