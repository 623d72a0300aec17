"""FailoverPublisher: an event that must not be lost goes by the fallback when the bus fails."""

from __future__ import annotations

from typing import Any

import pytest

from facegate.core.errors import EventPublishError
from facegate.core.events import FailoverPublisher

pytestmark = pytest.mark.unit


class Channel:
    def __init__(self, up: bool) -> None:
        self.up = up
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        if not self.up:
            raise EventPublishError()
        self.sent.append((detail_type, detail))


def test_the_bus_is_used_while_it_works_and_the_fallback_only_when_it_fails() -> None:
    bus, queue = Channel(up=True), Channel(up=True)
    publisher = FailoverPublisher(bus, queue)
    publisher.publish("ConsentWithdrawn", {"record_id": "r1"})
    assert bus.sent == [("ConsentWithdrawn", {"record_id": "r1"})] and queue.sent == []
    bus.up = False
    publisher.publish("ConsentWithdrawn", {"record_id": "r2"})
    assert queue.sent == [("ConsentWithdrawn", {"record_id": "r2"})]


def test_when_both_fail_the_caller_is_told() -> None:
    publisher = FailoverPublisher(Channel(up=False), Channel(up=False))
    with pytest.raises(EventPublishError):
        publisher.publish("ConsentWithdrawn", {"record_id": "r3"})
