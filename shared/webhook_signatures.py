"""Signing and checking marketplace webhooks over the RAW body bytes, in constant time.

* Joom: ``X-Joom-Signature = hex(hmac_sha256(JOOM_WEBHOOK_SECRET, raw_body))``.
* eBay: ``X-EBAY-SIGNATURE = base64(hmac_sha256(EBAY_WEBHOOK_SECRET, timestamp + raw_body))`` with
  ``X-EBAY-TIMESTAMP`` in unix seconds, accepted within EBAY_TIMESTAMP_TOLERANCE_S of now.
* eBay's endpoint handshake: ``challengeResponse = sha256_hex(challenge_code + token + endpoint)``.

Re-serialising the parsed JSON before checking would break on any formatting difference;
these functions only ever see the bytes received.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

EBAY_TIMESTAMP_TOLERANCE_S = 300


def sign_joom(secret: str, raw_body: bytes) -> str:
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def sign_ebay(secret: str, timestamp: str, raw_body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def joom_signature_valid(secret: str, raw_body: bytes, presented: str) -> bool:
    return hmac.compare_digest(sign_joom(secret, raw_body).encode(), presented.strip().lower().encode())


def ebay_signature_valid(secret: str, timestamp: str, raw_body: bytes, presented: str) -> bool:
    return hmac.compare_digest(sign_ebay(secret, timestamp, raw_body).encode(), presented.strip().encode())


def ebay_timestamp_fresh(timestamp: str, now: float | None = None) -> bool:
    """True when ``timestamp`` (unix seconds) is within the tolerance of ``now``."""
    try:
        value = float(timestamp)
    except ValueError:
        return False
    return abs((now if now is not None else time.time()) - value) <= EBAY_TIMESTAMP_TOLERANCE_S


def ebay_challenge_response(challenge_code: str, verification_token: str, endpoint: str) -> str:
    return hashlib.sha256((challenge_code + verification_token + endpoint).encode()).hexdigest()
