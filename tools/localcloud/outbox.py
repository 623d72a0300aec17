"""`make outbox`: the e-mails and text messages the local cloud has sent, newest first, read back from
the emulator (moto's /moto-api/data.json), so that a person trying the service can read their code.

Also prepares the emulator for sending: SES accepts mail only from a verified identity.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3

from localcloud.provision import Stack

STATE_FILE = os.path.join(os.path.dirname(__file__), "..", "..", ".localcloud.json")


def state_file() -> str:
    """Where a running local cloud writes its ports: LOCALCLOUD_STATE if set (each cloud a test starts gets its own,
    so that several can run from one checkout), else .localcloud.json at the repository root (`make run`)."""
    return os.environ.get("LOCALCLOUD_STATE") or STATE_FILE


SENDER_VARIABLE = "EMAIL_SENDER"


@dataclass(frozen=True)
class Sent:
    kind: str  # "email" | "sms"
    to: str
    text: str
    subject: str = ""
    sender: str = ""


def verify_senders(session: boto3.session.Session, stack: Stack, region: str = "us-east-1") -> list[str]:
    """Verify, in the emulator, every sender address a function of the template sends e-mail from."""
    ses = session.client("ses", region_name=region)
    senders = []
    for logical, resource in stack.template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        sender = stack.function_environment(logical).get(SENDER_VARIABLE)
        if sender and sender not in senders:
            ses.verify_email_identity(EmailAddress=sender)
            senders.append(sender)
    return senders


def collect(model_data: dict[str, Any]) -> list[Sent]:
    """The sent messages in moto's model data, newest first (e-mails, then text messages: moto keeps
    no send times, only the order of each kind)."""
    emails = [
        Sent(
            kind="email",
            to=", ".join(address for addresses in (m.get("destinations") or {}).values() for address in addresses),
            text=str(m.get("body", "")),
            subject=str(m.get("subject", "")),
            sender=str(m.get("source", "")),
        )
        for m in model_data.get("ses", {}).get("Message", [])
    ]
    texts = [
        Sent(kind="sms", to=str(m.get("phone_number", "")), text=str(m.get("message", "")))
        for m in model_data.get("sns", {}).get("SMS", [])
    ]
    return list(reversed(emails)) + list(reversed(texts))


def endpoint() -> str:
    try:
        with open(state_file(), encoding="utf-8") as handle:
            return str(json.load(handle)["moto_endpoint"])
    except (OSError, ValueError, KeyError):
        return f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}"


def fetch(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=10) as response:  # local emulator only
        data: dict[str, Any] = json.loads(response.read())
        return data


def render(messages: list[Sent], limit: int) -> str:
    lines: list[str] = []
    for title, kind in (("E-mails", "email"), ("Text messages", "sms")):
        mine = [m for m in messages if m.kind == kind][:limit]
        lines.append(f"{title} (newest first): {len(mine) or 'none'}")
        for message in mine:
            head = f"  to {message.to}"
            if message.kind == "email":
                head += f"  from {message.sender}  subject: {message.subject}"
            lines.append(head)
            lines.extend(f"    {line}" for line in message.text.splitlines())
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="localcloud.outbox", description=__doc__)
    parser.add_argument("--limit", type=int, default=10, help="messages of each kind to show")
    args = parser.parse_args()
    url = endpoint()
    try:
        data = fetch(url)
    except OSError as error:
        print(f"cannot reach the local cloud at {url} ({error}); start it with `make run`", file=sys.stderr)
        raise SystemExit(1) from error
    sys.stdout.write(render(collect(data), args.limit))


if __name__ == "__main__":
    main()
