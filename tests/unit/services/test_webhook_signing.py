"""Webhook signatures against the Standard Webhooks specification's own test vector."""

from __future__ import annotations

import pytest

from pnyx.services import webhook_signing as signing

# From the specification's reference libraries' tests (standard-webhooks/standard-webhooks).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_is_the_specifications() -> None:
    assert signing.signature(SECRET, MSG_ID, TIMESTAMP, BODY) == EXPECTED
    assert signing.headers(SECRET, MSG_ID, TIMESTAMP, BODY) == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": EXPECTED,
    }


def test_verify_takes_the_right_message_and_any_listed_signature() -> None:
    given = signing.headers(SECRET, MSG_ID, TIMESTAMP, BODY)
    signing.verify(SECRET, given, BODY, now=TIMESTAMP + 10)
    rotated = {**given, "webhook-signature": "v1,bm90IHRoaXMgb25l " + EXPECTED}
    signing.verify(SECRET, rotated, BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    "change",
    [
        {"body": b'{"test": 2432232315}'},
        {"webhook-id": "msg_other"},
        {"webhook-timestamp": str(TIMESTAMP + 1)},
        {"secret": "whsec_" + "A" * 32},
        {"now": TIMESTAMP + 301},
        {"now": TIMESTAMP - 301},
        {"webhook-signature": None},
        {"webhook-timestamp": "soon"},
    ],
)
def test_verify_refuses_anything_changed(change: dict[str, object]) -> None:
    received: dict[str, str] = signing.headers(SECRET, MSG_ID, TIMESTAMP, BODY)
    body, secret, now = BODY, SECRET, float(TIMESTAMP)
    for key, value in change.items():
        if key == "body":
            body = value  # type: ignore[assignment]
        elif key == "secret":
            secret = value  # type: ignore[assignment]
        elif key == "now":
            now = float(value)  # type: ignore[arg-type]
        elif value is None:
            del received[key]
        else:
            received[key] = value  # type: ignore[assignment]
    with pytest.raises(signing.BadSignature):
        signing.verify(secret, received, body, now=now)


def test_new_secrets_are_whsec_base64_of_24_random_bytes() -> None:
    a, b = signing.new_secret(), signing.new_secret()
    assert a != b and a.startswith("whsec_")
    assert len(signing.key_of(a)) == 24
    with pytest.raises(ValueError, match="base64"):
        signing.key_of("whsec_not base64!")
