"""Standard Webhooks signatures (https://www.standardwebhooks.com): every webhook in and out carries them.

    webhook-id: msg_...               the message's id, the same on every retry (receivers dedupe by it)
    webhook-timestamp: 1614265330     seconds since the epoch when this attempt was signed
    webhook-signature: v1,<base64>    HMAC-SHA256 of `id.timestamp.body`, keyed by the secret

A secret is `whsec_` and the base64 of its key. The `standardwebhooks` package (the spec's own
reference library) does the HMAC, the constant-time comparison and the 5-minute tolerance. This
module wraps it so that a body is the bytes that went over the wire and every way a request can
be wrong (a header missing or malformed, a body that is not UTF-8, a stale timestamp) is one
exception, `BadSignature`, instead of the package's mix of its own error, `ValueError` and
`binascii.Error`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

from ..exceptions import UserError

__all__ = ["TOLERANCE", "BadSignature", "new_webhook_secret", "sign", "verify"]

TOLERANCE = timedelta(minutes=5)
"""How far a `webhook-timestamp` may be from now (the package's own, fixed, tolerance)."""

_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class BadSignature(Exception):
    """A webhook that is unsigned, forged, changed or stale; `reason` says which, never what was expected."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_webhook_secret() -> str:
    """A new random signing secret: `whsec_` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _webhook(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError):
        # The secret is configuration, not input: say what is wrong with it without showing it.
        raise UserError(
            "a webhook secret must be `whsec_` followed by base64, e.g. from new_webhook_secret()"
        ) from None


def sign(secret: str, body: bytes, *, msg_id: str, at: datetime | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers that sign `body` as message `msg_id`, at `at` (now by default).

    Args:
        secret: The `whsec_...` secret shared with the receiver.
        body: The request body exactly as sent (UTF-8 text, as JSON is).
        msg_id: The message's id: the same on every retry of one message.
        at: The signing time, a timezone-aware datetime; each attempt is signed anew, so a retry
            hours later is still within the receiver's tolerance.

    Raises:
        UserError: The secret is not `whsec_` and base64, or `body` is not UTF-8.
    """
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise UserError("a Standard Webhooks body must be UTF-8 text") from None
    signature = _webhook(secret).sign(msg_id=msg_id, timestamp=moment, data=text)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())), "webhook-signature": signature}


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Check that `body` was signed with `secret` less than 5 minutes from now; return its `webhook-id`.

    Args:
        secret: The `whsec_...` secret shared with the sender.
        headers: The request's headers (any case).
        body: The request body exactly as received.

    Raises:
        BadSignature: A header is missing or malformed, the timestamp is more than `TOLERANCE` from
            now, or no `v1` signature matches.
        UserError: The secret itself is malformed (a configuration mistake).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in _HEADERS if not lowered.get(name)]
    if missing:
        raise BadSignature(f"unsigned: the {', '.join(missing)} header{'s are' if len(missing) > 1 else ' is'} missing")
    webhook = _webhook(secret)
    try:
        webhook.verify(body, lowered, json_parse=False)
    except WebhookVerificationError as exc:
        if "timestamp too" in str(exc):
            raise BadSignature("the webhook-timestamp is more than 5 minutes from now") from None
        if "Invalid Signature Headers" in str(exc):
            raise BadSignature("the webhook-timestamp is not a number of seconds") from None
        raise BadSignature("the signature does not match the body") from None
    except ValueError:  # a signature without its comma, bad base64, a body that is not UTF-8
        raise BadSignature("the signature does not match the body") from None
    return lowered["webhook-id"]
