"""Webhook signatures as the Standard Webhooks specification defines them
(https://www.standardwebhooks.com/): pure functions, no I/O.

A message carries three headers: ``webhook-id`` (the message's id, the same on every
retry), ``webhook-timestamp`` (integer Unix seconds of this attempt) and
``webhook-signature``: space-separated ``v1,<base64>`` entries, each the HMAC-SHA256 of
``"{id}.{timestamp}.{body}"`` under the secret. A secret is shown as ``whsec_`` and the
base64 of its key bytes; the key is the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24  # 192 bits (the specification asks for 24 to 64 bytes)
TOLERANCE_S = 300  # verify(): how far a timestamp may be from now


class BadSignature(ValueError):
    """verify() refused a message: a missing header, an old timestamp, no matching
    signature."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def key_of(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret (the prefix is optional)."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }


def verify(secret: str, received: dict[str, str], body: bytes, now: float) -> None:
    """What a receiver does (and the tests do): check the headers of ``body`` against
    ``secret``, or raise :class:`BadSignature`. Header names are lower case here."""
    try:
        msg_id = received["webhook-id"]
        timestamp = int(received["webhook-timestamp"])
        given = received["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise BadSignature(f"missing or malformed webhook header: {exc}") from exc
    if abs(now - timestamp) > TOLERANCE_S:
        raise BadSignature("the timestamp is too far from now")
    expected = signature(secret, msg_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise BadSignature("no signature matches")
