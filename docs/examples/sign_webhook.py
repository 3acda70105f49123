#!/usr/bin/env python3
"""Sign a courier webhook for the gateway, with the Python standard library only.

    python docs/examples/sign_webhook.py --secret whsec_... --id msg_0001 body.json
    python docs/examples/sign_webhook.py --scheme easypost --secret ... body.json

prints the headers to send with the body, one `Name: value` a line (`--curl URL` prints the whole
curl command instead). Standard Webhooks: HMAC-SHA256 keyed with the base64-decoded secret (after
`whsec_`) over "<webhook-id>.<webhook-timestamp>.<body>", base64, as `v1,<signature>`; the
timestamp must be within 5 minutes of the gateway's clock. EasyPost: HMAC-SHA256 keyed with the
secret's NFKD form over the body, hex, as `hmac-sha256-hex=<signature>`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import shlex
import sys
import time
import unicodedata
from pathlib import Path


def standard_webhooks(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def easypost(secret: str, body: bytes) -> dict[str, str]:
    key = unicodedata.normalize("NFKD", secret).encode()
    return {"X-Hmac-Signature": "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("body", type=Path, help="the file holding the exact bytes to send")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--scheme", choices=["standard-webhooks", "easypost"], default="standard-webhooks")
    parser.add_argument("--id", default=None, help="webhook-id: your event id, the same on every retry")
    parser.add_argument("--timestamp", type=int, default=None, help="Unix seconds (default: now)")
    parser.add_argument("--curl", metavar="URL", help="print a curl command for URL")
    args = parser.parse_args(argv)
    body = args.body.read_bytes()
    if args.scheme == "easypost":
        headers = easypost(args.secret, body)
    else:
        message_id = args.id or "msg_" + hashlib.sha256(body).hexdigest()[:24]
        headers = standard_webhooks(args.secret, message_id, args.timestamp or int(time.time()), body)
    headers["Content-Type"] = "application/json"
    if args.curl:
        parts = ["curl", "-sS", "-X", "POST", args.curl, "--data-binary", f"@{args.body}"]
        for name, value in headers.items():
            parts += ["-H", f"{name}: {value}"]
        print(shlex.join(parts))
    else:
        print("\n".join(f"{name}: {value}" for name, value in headers.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
