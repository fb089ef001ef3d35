"""Notifiers: log, a Slack webhook on a local HTTP server, e-mail to a local SMTP server."""

from __future__ import annotations

import json
import logging
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from retrain.config import RetrainConfig
from retrain.notify import (
    LogNotifier,
    Notification,
    NotificationError,
    Notifier,
    SlackWebhookNotifier,
    SmtpNotifier,
    notifier_from_config,
)
from tools.mlflow_server import free_port

ROLLBACK = Notification(
    event="rollback",
    title="churn: rolled back to version 3",
    text="production moved from v4 back to v3; reason: accuracy dropped",
    level="critical",
    details={"from_version": 4, "to_version": 3},
)


# --- a local webhook -----------------------------------------------------------------------------


class Webhook:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200


@pytest.fixture
def webhook() -> Iterator[tuple[Webhook, str]]:
    hook = Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.requests.append((self.path, dict(self.headers), body))
            self.send_response(hook.status)
            self.end_headers()
            self.wfile.write(b"ok" if hook.status == 200 else b"invalid_payload")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield hook, f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXX"
    server.shutdown()
    server.server_close()


# --- a local SMTP server (just enough of RFC 5321) -----------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[list[dict[str, Any]], int]]:
    received: list[dict[str, Any]] = []

    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(f"{line}\r\n".encode())

        def handle(self) -> None:
            mail: dict[str, Any] = {"rcpt": []}
            self.reply("220 localhost test SMTP")
            while line := self.rfile.readline().decode().rstrip("\r\n"):
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    self.reply("250 localhost")
                elif verb == "MAIL":
                    mail["from"] = line.split(":", 1)[1].strip()
                    self.reply("250 OK")
                elif verb == "RCPT":
                    mail["rcpt"].append(line.split(":", 1)[1].strip())
                    self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 end with .")
                    data = []
                    while (chunk := self.rfile.readline().decode()) not in (".\r\n", ""):
                        data.append(chunk)
                    mail["data"] = "".join(data)
                    received.append(mail)
                    self.reply("250 queued")
                elif verb == "QUIT":
                    self.reply("221 bye")
                    return
                else:
                    self.reply("250 OK")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, server.server_address[1]
    server.shutdown()
    server.server_close()


class TestLogNotifier:
    def test_logs_critical_events_at_critical(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.INFO, logger="retrain.notify"):
            LogNotifier().notify(ROLLBACK)

        [entry] = caplog.records
        assert entry.levelno == logging.CRITICAL
        assert "rolled back to version 3" in entry.getMessage()

    def test_is_a_notifier(self) -> None:
        assert isinstance(LogNotifier(), Notifier)


class TestSlackWebhookNotifier:
    def test_posts_json_text_to_the_webhook(self, webhook: tuple[Webhook, str]) -> None:
        hook, url = webhook

        SlackWebhookNotifier(url).notify(ROLLBACK)

        [(path, headers, body)] = hook.requests
        assert path == "/services/T000/B000/XXX"
        assert headers["Content-Type"].startswith("application/json")
        text = json.loads(body)["text"]
        assert ":rotating_light: *churn: rolled back to version 3*" in text
        assert "to_version: `3`" in text

    def test_an_error_answer_raises_with_the_status(self, webhook: tuple[Webhook, str]) -> None:
        hook, url = webhook
        hook.status = 400

        with pytest.raises(NotificationError, match="HTTP 400: invalid_payload"):
            SlackWebhookNotifier(url).notify(ROLLBACK)

    def test_an_unreachable_webhook_raises(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/hook"

        with pytest.raises(NotificationError, match="unreachable"):
            SlackWebhookNotifier(url, timeout=2).notify(ROLLBACK)

    def test_refuses_a_non_http_url(self) -> None:
        with pytest.raises(ValueError, match="http"):
            SlackWebhookNotifier("file:///etc/passwd")


class TestSmtpNotifier:
    def test_sends_a_plain_text_mail(self, smtp_server: tuple[list[dict[str, Any]], int]) -> None:
        received, port = smtp_server

        SmtpNotifier(["ops@example.com"], sender="retrain@example.com", port=port).notify(ROLLBACK)

        [mail] = received
        assert mail["rcpt"] == ["<ops@example.com>"]
        assert "Subject: [retrain] [critical] churn: rolled back to version 3" in mail["data"]
        assert "accuracy dropped" in mail["data"]

    def test_reads_host_and_port_from_the_environment(self) -> None:
        notifier = SmtpNotifier.from_env(
            ["a@example.com"], env={"RETRAIN_SMTP_HOST": "mail", "RETRAIN_SMTP_PORT": "2525"}
        )

        assert (notifier.host, notifier.port, notifier.starttls) == ("mail", 2525, False)

    def test_an_unreachable_server_raises(self) -> None:
        notifier = SmtpNotifier(["a@example.com"], port=free_port(), timeout=2)

        with pytest.raises(NotificationError, match="failed"):
            notifier.notify(ROLLBACK)


class TestNotifierFromConfig:
    @pytest.mark.parametrize(
        ("section", "kind"),
        [
            pytest.param({}, LogNotifier, id="log by default"),
            pytest.param(
                {"kind": "slack", "slack_webhook_url": "https://hooks.slack.com/services/x"},
                SlackWebhookNotifier,
                id="slack when configured",
            ),
            pytest.param(
                {"kind": "smtp", "smtp_to": ["ops@example.com"]},
                SmtpNotifier,
                id="smtp when configured",
            ),
        ],
    )
    def test_picks_the_configured_adapter(
        self,
        make_config: Callable[..., RetrainConfig],
        section: dict[str, Any],
        kind: type,
    ) -> None:
        config = make_config(registry={"tracking_uri": "http://127.0.0.1:1"}, notifications=section)

        assert isinstance(notifier_from_config(config), kind)
