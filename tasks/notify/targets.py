"""The three kinds of target and how each turns a notification into one HTTP request.

``send`` returns normally on a 2xx and raises :class:`DeliveryFailed` otherwise, saying whether
a retry may help and how long the target asked us to wait.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from shared.config import Settings
from tasks.notify.messages import Notification

DISCORD_EMBEDS_MAX = 10
DISCORD_DESCRIPTION_MAX = 4096
LINE_TEXT_MAX = 5000
LINE_MESSAGES_MAX = 5


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        try:
            body = response.json()
        except ValueError:
            return None
        raw = body.get("retry_after") if isinstance(body, dict) else None  # Discord's JSON body
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):
        return None


def check(response: requests.Response) -> None:
    """Raise DeliveryFailed for anything but a 2xx (429, 5xx and 408 are retryable)."""
    if 200 <= response.status_code < 300:
        return
    snippet = response.text[:200]
    if response.status_code == 429:
        raise DeliveryFailed(f"429 rate limited: {snippet}", retryable=True, retry_after=_retry_after(response))
    retryable = response.status_code >= 500 or response.status_code == 408
    raise DeliveryFailed(f"{response.status_code}: {snippet}", retryable=retryable,
                         retry_after=_retry_after(response) if retryable else None)


@dataclass
class Target:
    name: str
    kind: str  # discord | line | webhook
    url: str
    token: str = ""  # LINE channel token
    to: str = ""  # LINE recipient
    secret: str = ""  # Standard Webhooks secret
    batches: bool = True  # chats get summaries; a webhook receives every event
    timeout_s: float = 10.0
    _pause_until: float = 0.0  # Discord's rate-limit bucket said "wait"

    def send(self, session: requests.Session, notification: Notification) -> None:
        wait = self._pause_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            response = getattr(self, f"_send_{self.kind}")(session, notification)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        if self.kind == "discord":
            self._note_discord_bucket(response)
        check(response)

    # --- Discord incoming webhook ---
    def _send_discord(self, session: requests.Session, n: Notification) -> requests.Response:
        embed: dict[str, Any] = {"title": n.title[:256], "description": n.text[:DISCORD_DESCRIPTION_MAX]}
        if n.url:
            embed["url"] = n.url
        embeds = [embed]
        if n.kind != "summary":
            for ev in n.events[1:DISCORD_EMBEDS_MAX]:
                embeds.append({"title": ev.get("type", ""), "description": json.dumps(ev.get("payload"))[:1000]})
        return session.post(self.url, json={"content": n.title[:2000], "embeds": embeds}, timeout=self.timeout_s,
                            params={"wait": "true"})

    def _note_discord_bucket(self, response: requests.Response) -> None:
        if response.headers.get("X-RateLimit-Remaining") == "0":
            try:
                after = float(response.headers.get("X-RateLimit-Reset-After", "0"))
            except ValueError:
                after = 0.0
            self._pause_until = time.monotonic() + after

    # --- LINE Messaging API push ---
    def _send_line(self, session: requests.Session, n: Notification) -> requests.Response:
        text = f"{n.title}\n{n.text}"
        chunks = [text[i:i + LINE_TEXT_MAX] for i in range(0, len(text), LINE_TEXT_MAX)][:LINE_MESSAGES_MAX]
        headers = {"Authorization": f"Bearer {self.token}",
                   # LINE answers 409 to a second push with one retry key: a retried push is not doubled.
                   "X-Line-Retry-Key": str(uuid.uuid5(uuid.NAMESPACE_URL, f"rakuda:{self.name}:{n.id}"))}
        body = {"to": self.to, "messages": [{"type": "text", "text": c} for c in chunks]}
        response = session.post(f"{self.url.rstrip('/')}/v2/bot/message/push", json=body, headers=headers,
                                timeout=self.timeout_s)
        if response.status_code == 409 and response.headers.get("x-line-accepted-request-id"):
            response.status_code = 200  # accepted earlier under this retry key
        return response

    # --- Standard Webhooks ---
    def _send_webhook(self, session: requests.Session, n: Notification) -> requests.Response:
        body_obj: Any = n.events[0] if len(n.events) == 1 and n.kind == "event" else n.to_json()
        body = json.dumps(body_obj, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {"content-type": "application/json", "webhook-id": n.id, "webhook-timestamp": timestamp,
                   "webhook-signature": sign_standard_webhook(self.secret, n.id, timestamp, body)}
        return session.post(self.url, data=body, headers=headers, timeout=self.timeout_s)


def sign_standard_webhook(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` under the decoded ``whsec_`` secret."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def targets_from_settings(settings: Settings, *, escalation: bool = False) -> list[Target]:
    """The configured targets (or the escalation ones); a half-configured target raises ValueError."""
    p = "notify_escalation_" if escalation else "notify_"
    prefix = "escalation-" if escalation else ""
    found: list[Target] = []
    t = settings.notify_timeout_s
    discord = getattr(settings, p + "discord_webhook_url")
    if discord:
        found.append(Target(prefix + "discord", "discord", discord, timeout_s=t))
    token, to = getattr(settings, p + "line_channel_token"), getattr(settings, p + "line_to")
    if token or to:
        if not (token and to):
            raise ValueError(f"LINE needs both {p.upper()}LINE_CHANNEL_TOKEN and {p.upper()}LINE_TO")
        found.append(Target(prefix + "line", "line", settings.line_api_url, token=token, to=to, timeout_s=t))
    url, secret = getattr(settings, p + "webhook_url"), getattr(settings, p + "webhook_secret")
    if url:
        if not secret.startswith("whsec_"):
            raise ValueError(f"{p.upper()}WEBHOOK_SECRET must be whsec_ + base64")
        try:
            base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            raise ValueError(f"{p.upper()}WEBHOOK_SECRET is not valid base64 after whsec_") from None
        found.append(Target(prefix + "webhook", "webhook", url, secret=secret, batches=False, timeout_s=t))
    return found
