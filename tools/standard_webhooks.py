"""Replicate's webhook signing done by PyPI's `standardwebhooks`, an implementation
independent of ours, for the signing tests (so the verifier and the emulator cannot share a
bug with the test).

    standard_webhooks.py sign SECRET MSG_ID TIMESTAMP < body   prints the webhook-signature
    standard_webhooks.py verify SECRET < {"headers": {...}, "body": "..."}
                                                             exits 0 when it verifies, else 1
"""

import json
import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    command, secret = sys.argv[1], sys.argv[2]
    webhook = Webhook(secret)
    if command == "sign":
        msg_id, timestamp = sys.argv[3], int(sys.argv[4])
        body = sys.stdin.buffer.read().decode()
        when = datetime.fromtimestamp(timestamp, tz=timezone.utc)
        print(webhook.sign(msg_id, when, body))
        return 0
    if command == "verify":
        delivery = json.load(sys.stdin)
        try:
            webhook.verify(delivery["body"], delivery["headers"], json_parse=False)
        except WebhookVerificationError as error:
            print(f"not verified: {error}", file=sys.stderr)
            return 1
        return 0
    print(f"unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
