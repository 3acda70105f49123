"""Signature schemes of gateway.sdk.signatures: published vectors, rotation, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from gateway.errors import ConfigError, NotAuthenticated
from gateway.sdk.signatures import EASYPOST, CgtHmac, HeaderHmac, StandardWebhooks

# Standard Webhooks 1.0: the specification's own test vector (its libraries' test_sign_function).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

OLD_SECRET = "whsec_" + base64.b64encode(b"an-older-secret-of-32-bytes-long").decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"the-newer-secret-of-32-bytes-lon").decode()
SW = StandardWebhooks()


def spec_headers(signature: str = SPEC_SIGNATURE, timestamp: int = SPEC_TIMESTAMP) -> dict[str, str]:
    return {"webhook-id": SPEC_ID, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def test_the_specifications_vector_verifies() -> None:
    assert SW.sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    verified = SW.verify(spec_headers(), SPEC_BODY, [SPEC_SECRET], SPEC_TIMESTAMP + 10)
    assert verified.replay_key == f"{SPEC_ID}.{SPEC_TIMESTAMP}"
    assert verified.fresh_until == SPEC_TIMESTAMP + 300


def test_headers_are_read_in_any_case_and_among_other_signatures() -> None:
    headers = {
        "Webhook-Id": SPEC_ID,
        "Webhook-Timestamp": str(SPEC_TIMESTAMP),
        # an asymmetric v1a signature and a stale v1 beside the good one: any v1 that matches admits
        "Webhook-Signature": f"v1a,aGVsbG8= v1,{'A' * 43}= {SPEC_SIGNATURE}",
    }
    SW.verify(headers, SPEC_BODY, [SPEC_SECRET], SPEC_TIMESTAMP)


@pytest.mark.parametrize("signed_with", [OLD_SECRET, NEW_SECRET])
def test_either_of_two_live_secrets_admits_during_rotation(signed_with: str) -> None:
    now = 1_800_000_000
    signature = SW.sign(signed_with, "msg_1", now, b"{}")
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    SW.verify(headers, b"{}", [OLD_SECRET, NEW_SECRET], now)
    retired = NEW_SECRET if signed_with == OLD_SECRET else OLD_SECRET
    with pytest.raises(NotAuthenticated):  # once a secret is retired, its signatures are refused
        SW.verify(headers, b"{}", [retired], now)


@pytest.mark.parametrize(
    ("headers", "body", "now", "why"),
    [
        (spec_headers(), SPEC_BODY, SPEC_TIMESTAMP + 301, "too old"),
        (spec_headers(), SPEC_BODY, SPEC_TIMESTAMP - 301, "in the future"),
        (spec_headers(), b'{"test": 2432232315}', SPEC_TIMESTAMP, "bad webhook-signature"),
        (spec_headers("v1," + "B" * 43 + "="), SPEC_BODY, SPEC_TIMESTAMP, "bad webhook-signature"),
        (spec_headers(SPEC_SIGNATURE.replace("v1,", "v2,")), SPEC_BODY, SPEC_TIMESTAMP, "bad webhook"),
        (spec_headers(timestamp=SPEC_TIMESTAMP + 1), SPEC_BODY, SPEC_TIMESTAMP, "bad webhook-signature"),
        ({"webhook-id": SPEC_ID}, SPEC_BODY, SPEC_TIMESTAMP, "signed request is required"),
        ({**spec_headers(), "webhook-timestamp": "16142653e0"}, SPEC_BODY, SPEC_TIMESTAMP, "Unix time"),
        ({**spec_headers(), "webhook-id": "msg.1"}, SPEC_BODY, SPEC_TIMESTAMP, "dot"),
        ({**spec_headers(), "webhook-signature": "v1,é"}, SPEC_BODY, SPEC_TIMESTAMP, "malformed"),
    ],
)
def test_stale_future_forged_and_malformed_are_refused(
    headers: dict[str, str], body: bytes, now: int, why: str
) -> None:
    with pytest.raises(NotAuthenticated) as refused:
        SW.verify(headers, body, [SPEC_SECRET], now)
    assert why in refused.value.detail


def test_a_secret_that_is_not_base64_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        SW.verify(spec_headers(), SPEC_BODY, ["whsec_not base64!"], SPEC_TIMESTAMP)


def test_the_cgt_scheme_is_the_one_of_api_messages() -> None:
    scheme, now, body = CgtHmac(), 1_800_000_000, b'{"a": 1}'
    digest = hmac.new(b"s3cret", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-CGT-Timestamp": str(now), "X-CGT-Signature": f"sha256={digest.upper()}"}
    verified = scheme.verify(headers, body, ["other", "s3cret"], now + 299)
    assert verified.replay_key == f"{now}.{digest}" and verified.fresh_until == now + 300
    for bad in ({**headers, "X-CGT-Signature": digest}, {**headers, "X-CGT-Timestamp": str(now - 1)}):
        with pytest.raises(NotAuthenticated):
            scheme.verify(bad, body, ["s3cret"], now)
    with pytest.raises(NotAuthenticated, match="too old"):
        scheme.verify(headers, body, ["s3cret"], now + 301)


# EasyPost: the secret is keyed in its NFKD form, UTF-8; a composed "é" and "e" + U+0301 sign alike.
COMPOSED, DECOMPOSED_KEY = "sécret", b"se\xcc\x81cret"
EVENT = b'{"description":"tracker.updated","id":"evt_synthetic_1","result":{"status":"delivered"}}'


def test_easypost_signs_the_body_with_the_normalised_secret() -> None:
    expected = "hmac-sha256-hex=" + hmac.new(DECOMPOSED_KEY, EVENT, hashlib.sha256).hexdigest()
    verified = EASYPOST.verify({"X-Hmac-Signature": expected}, EVENT, [COMPOSED], 0)
    assert verified.replay_key is None  # nothing signed ages: repeats are the intake's to answer
    EASYPOST.verify(
        {"x-hmac-signature": expected.upper().replace("HMAC-SHA256-HEX=", "hmac-sha256-hex=")},
        EVENT,
        ["se\u0301cret"],
        0,
    )
    raw = HeaderHmac(normalise=False)  # without the normalisation the composed secret differs
    with pytest.raises(NotAuthenticated):
        raw.verify({"X-Hmac-Signature": expected}, EVENT, [COMPOSED], 0)


@pytest.mark.parametrize(
    "given",
    [
        None,
        "38f3f53c103713df81616a0a186d77141957323ec21d5fe9363db93840f527db",  # no prefix
        "hmac-sha256-hex=" + "0" * 64,
    ],
)
def test_easypost_without_a_good_signature_is_refused(given: str | None) -> None:
    headers = {} if given is None else {"X-Hmac-Signature": given}
    with pytest.raises(NotAuthenticated):
        EASYPOST.verify(headers, EVENT, [COMPOSED], 0)
