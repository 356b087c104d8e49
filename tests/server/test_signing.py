"""Standard Webhooks signing: the spec's published vector, and the `standardwebhooks` package both ways."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from threadloom.exceptions import UserError
from threadloom.server import BadSignature, new_webhook_secret, sign, verify

# https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md (test vectors)
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_AT = datetime.fromtimestamp(1614265330, UTC)
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specs_published_vector() -> None:
    headers = sign(VECTOR_SECRET, VECTOR_BODY, msg_id=VECTOR_ID, at=VECTOR_AT)
    assert headers == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": VECTOR_SIGNATURE,
    }


def test_what_we_sign_the_package_verifies() -> None:
    secret = new_webhook_secret()
    body = json.dumps({"type": "thread.done", "thread_id": "th_1"}).encode()
    headers = sign(secret, body, msg_id="msg_1")
    assert Webhook(secret).verify(body, headers) == {"type": "thread.done", "thread_id": "th_1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, headers)


def test_what_the_package_signs_we_verify() -> None:
    secret = new_webhook_secret()
    body = '{"order": "A-1001"}'
    now = datetime.now(UTC)
    headers = {
        "Webhook-Id": "msg_2",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": Webhook(secret).sign("msg_2", now, body),
    }
    assert verify(secret, headers, body.encode()) == "msg_2"


def test_a_signature_among_several_is_enough_and_other_versions_are_ignored() -> None:
    secret = new_webhook_secret()
    headers = sign(secret, b"{}", msg_id="msg_3")
    headers["webhook-signature"] = f"v2,abc v1,{base64.b64encode(b'x' * 32).decode()} {headers['webhook-signature']}"
    assert verify(secret, headers, b"{}") == "msg_3"


def test_a_changed_body_id_or_secret_is_refused() -> None:
    secret = new_webhook_secret()
    headers = sign(secret, b'{"a": 1}', msg_id="msg_4")
    for changed in (
        lambda: verify(secret, headers, b'{"a": 2}'),
        lambda: verify(secret, {**headers, "webhook-id": "msg_5"}, b'{"a": 1}'),
        lambda: verify(new_webhook_secret(), headers, b'{"a": 1}'),
    ):
        with pytest.raises(BadSignature, match="does not match"):
            changed()


def test_unsigned_is_refused_naming_what_is_missing() -> None:
    with pytest.raises(BadSignature, match="webhook-id, webhook-timestamp, webhook-signature headers are missing"):
        verify(new_webhook_secret(), {}, b"{}")
    headers = sign(secret := new_webhook_secret(), b"{}", msg_id="msg_6")
    del headers["webhook-signature"]
    with pytest.raises(BadSignature, match="the webhook-signature header is missing"):
        verify(secret, headers, b"{}")


def test_older_or_newer_than_five_minutes_is_refused() -> None:
    secret = new_webhook_secret()
    now = datetime.now(UTC)
    assert verify(secret, sign(secret, b"{}", msg_id="m", at=now - timedelta(minutes=4)), b"{}") == "m"
    for at in (now - timedelta(minutes=6), now + timedelta(minutes=6), VECTOR_AT):
        with pytest.raises(BadSignature, match="more than 5 minutes"):
            verify(secret, sign(secret, b"{}", msg_id="m", at=at), b"{}")


def test_a_malformed_secret_is_a_user_error_that_does_not_show_it() -> None:
    with pytest.raises(UserError, match="whsec_") as caught:
        sign("whsec_not*base64!", b"{}", msg_id="m")
    assert "not*base64" not in str(caught.value)


@given(
    signature=st.text(max_size=80),
    timestamp=st.text(max_size=20),
    body=st.binary(max_size=64),
)
def test_any_header_or_body_is_either_accepted_or_a_bad_signature(signature: str, timestamp: str, body: bytes) -> None:
    headers = {"webhook-id": "msg_h", "webhook-timestamp": timestamp, "webhook-signature": signature}
    with pytest.raises(BadSignature):
        verify(VECTOR_SECRET, headers, body)


def test_a_body_that_is_not_utf8_is_refused() -> None:
    secret = new_webhook_secret()
    headers = sign(secret, b"{}", msg_id="m")
    with pytest.raises(BadSignature):
        verify(secret, headers, b"\xff\xfe")
