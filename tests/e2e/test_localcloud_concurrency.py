"""`make run` runs each function in several instances, so that races show locally (hardening item 9).

Boots the local cloud exactly as `make run` does (`python -m localcloud run`, here with three instances
per function) and drives it over HTTP. The interleaving is forced, not hoped for: an instance is frozen
with SIGSTOP while a request waits in it, and another request to the same function must be answered
by another instance meanwhile. A local cloud that serialised a function's invocations would hang there.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from localcloud.process import RunningCloud, running

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INSTANCES = 3
WAIT_S = 120  # a bound for a hung test, not a timing assumption: nothing here is expected to take long


@dataclass
class Answer:
    status: int
    instance: str
    pid: int
    started_ns: int
    finished_ns: int
    body: object

    def overlaps(self, other: Answer) -> bool:
        return self.started_ns < other.finished_ns and other.started_ns < self.finished_ns


def get(cloud: RunningCloud, path: str, token: str | None = None) -> Answer:
    request = urllib.request.Request(cloud.base + path)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        response = urllib.request.urlopen(request, timeout=WAIT_S)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        headers, status, body = response.headers, response.status, json.loads(response.read() or b"null")
    started, finished = (int(t) for t in headers["x-localcloud-invocation"].split())
    return Answer(status, headers["x-localcloud-instance"], int(headers["x-localcloud-pid"]), started, finished, body)


@pytest.fixture(scope="module")
def cloud() -> Iterator[RunningCloud]:
    with running(instances=INSTANCES) as started:
        yield started


def test_a_request_is_served_by_another_instance_while_one_is_busy(cloud: RunningCloud) -> None:
    """Two concurrent requests to one function: whichever reaches the frozen instance first stays in it;
    the other is answered by a second instance meanwhile, and their invocations overlap.

    The deletion function is used because nothing else in this module calls it (so it has exactly one
    instance, the frozen one) and because its Timeout (60 s) leaves a second instance ample time for its
    cold start before the pool would stop the frozen invocation as overrun."""
    token = cloud.token("demo")
    path = "/v1/deletions/" + "0" * 32
    warm = get(cloud, path, token)
    assert warm.status == 404 and warm.instance == "DeletionFunction-1"
    os.kill(warm.pid, signal.SIGSTOP)  # the only (idle) instance: the next invocation it takes cannot finish
    answers: queue.Queue[Answer] = queue.Queue()
    try:
        for _ in range(2):
            threading.Thread(target=lambda: answers.put(get(cloud, path, token)), daemon=True).start()
        first = answers.get(timeout=WAIT_S)
        assert answers.empty()  # the other request is inside the frozen instance
    finally:
        os.kill(warm.pid, signal.SIGCONT)
    second = answers.get(timeout=WAIT_S)
    assert first.status == second.status == 404, "a 500 here means the frozen invocation overran its Timeout"
    assert first.pid != warm.pid and second.pid == warm.pid
    assert first.instance == "DeletionFunction-2"
    # The frozen invocation took its instance first and ended last: the other one ran inside it.
    assert second.started_ns < first.started_ns < first.finished_ns < second.finished_ns


def test_a_burst_spreads_over_instances_up_to_the_limit(cloud: RunningCloud) -> None:
    """Nine requests released together to a function nothing has called yet (the fallback function):
    each new instance starts cold while the others are busy, so the burst is served by several
    instances, never by more than the limit, and their invocations overlap."""
    token = cloud.token("demo")
    start = threading.Barrier(9)
    answers: list[Answer] = []
    lock = threading.Lock()

    def call(n: int) -> None:
        start.wait(timeout=WAIT_S)
        answer = get(cloud, f"/v1/verification-sessions/{n:072x}", token)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert len(answers) == 9 and {a.status for a in answers} == {404}
    assert all(a.instance.startswith("FallbackFunction-") for a in answers)
    instances = {a.instance for a in answers}
    assert 1 < len(instances) <= INSTANCES, instances
    assert any(a.overlaps(b) for a in answers for b in answers if a.instance != b.instance)


def test_a_method_without_a_route_gets_api_gateways_404(cloud: RunningCloud) -> None:
    """Found by `make fuzz`: http.server answered TRACE (and any method it had no do_ method for) with a
    501 HTML page; API Gateway answers 404 {"message": "Not Found"} for a route that does not exist."""
    for method in ("TRACE", "OPTIONS", "PATCH", "BREW"):
        request = urllib.request.Request(cloud.base + "/v1/health", method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=WAIT_S)
        assert refused.value.code == 404, method
        assert refused.value.headers["content-type"] == "application/json"
        assert json.loads(refused.value.read()) == {"message": "Not Found"}
    head = urllib.request.Request(cloud.base + "/v1/health", method="HEAD")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(head, timeout=WAIT_S)
    assert refused.value.code == 404 and refused.value.read() == b""


def test_a_burst_of_requests_with_bodies_is_accepted_whole(cloud: RunningCloud) -> None:
    """Found by the race tests: 30 POSTs with a body released together. http.server listens with a backlog
    of 5, and with its accept queue full the kernel reset some of the connections (in 9 of 10 bursts, up to
    10 of 30 requests got ECONNRESET); API Gateway accepts such a burst. Each must get its answer: here
    the consent function's 422 for a body that is not a consent."""
    token = cloud.token("demo")
    body = json.dumps({"padding": "x" * 64_000}).encode()
    start = threading.Barrier(30)
    outcomes: list[object] = []
    lock = threading.Lock()

    def post() -> None:
        request = urllib.request.Request(cloud.base + "/v1/subjects/burst/consents", data=body, method="POST")
        request.add_header("content-type", "application/json")
        request.add_header("authorization", f"Bearer {token}")
        start.wait(timeout=WAIT_S)
        try:
            urllib.request.urlopen(request, timeout=WAIT_S).close()
            outcome: object = "accepted"
        except urllib.error.HTTPError as error:
            outcome = error.code
        except OSError as error:
            outcome = repr(error)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=post) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert Counter(outcomes) == {422: 30}, Counter(outcomes)
