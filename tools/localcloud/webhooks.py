"""`make webhooks`: the webhooks the local cloud delivered to its receiver (newest first), read from the receiver
that `make run` starts (its URL is in .localcloud.json; register it with POST /v1/webhooks/endpoints)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from datetime import UTC, datetime
from typing import Any

from localcloud.outbox import state_file

DEFAULT_PORT = 3001


def receiver_url() -> str:
    try:
        with open(state_file(), encoding="utf-8") as handle:
            return str(json.load(handle)["webhook_receiver"])
    except (OSError, ValueError, KeyError):
        return f"http://127.0.0.1:{os.environ.get('WEBHOOK_RECEIVER_PORT', DEFAULT_PORT)}"


def fetch(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/received", timeout=10) as response:  # the local receiver only
        data: list[dict[str, Any]] = json.loads(response.read())
        return data


def render(received: list[dict[str, Any]], limit: int) -> str:
    newest = list(reversed(received))[:limit]
    lines = [f"Webhooks delivered (newest first): {len(newest) or 'none'}"]
    for item in newest:
        headers = item.get("headers", {})
        at = datetime.fromtimestamp(float(item.get("at", 0)), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        try:
            body = json.loads(item.get("body") or "null")
            kind = body.get("type", "?") if isinstance(body, dict) else "?"
            text = json.dumps(body, indent=2, ensure_ascii=False)
        except ValueError:
            kind, text = "?", str(item.get("body", ""))
        lines.append(f"  {at}  {kind}  POST {item.get('path')} -> {item.get('status')}")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            lines.append(f"    {name}: {headers.get(name, '')}")
        lines.extend(f"    {line}" for line in text.splitlines())
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="localcloud.webhooks", description=__doc__)
    parser.add_argument("--limit", type=int, default=10, help="deliveries to show")
    args = parser.parse_args()
    url = receiver_url()
    try:
        received = fetch(url)
    except OSError as error:
        print(f"cannot reach the webhook receiver at {url} ({error}); start it with `make run`", file=sys.stderr)
        raise SystemExit(1) from error
    sys.stdout.write(render(received, args.limit))


if __name__ == "__main__":
    main()
