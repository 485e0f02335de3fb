"""``tokenfleet token --dpop`` and ``tokenfleet decode`` with DPoP, as subprocesses."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

from tokenfleet.testing import DevAuthServer


def run(*args: str, idp: DevAuthServer) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFLEET_")}
    env.update(
        TOKENFLEET_TOKEN_URL=idp.token_url,
        TOKENFLEET_CLIENT_ID=idp.client_id,
        TOKENFLEET_CLIENT_SECRET=idp.client_secret,
    )
    result = subprocess.run(
        [sys.executable, "-m", "tokenfleet", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert idp.client_secret not in result.stdout + result.stderr
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    return result


def test_token_dpop_prints_headers_that_curl_can_send(threaded_idp: DevAuthServer) -> None:
    url = threaded_idp.resource_url + "/orders"
    result = run("token", "--dpop", "--url", url, idp=threaded_idp)
    assert result.returncode == 0, result.stderr
    authorization, proof = result.stdout.splitlines()
    assert authorization.startswith("Authorization: DPoP ") and proof.startswith("DPoP: ey")
    sent = subprocess.run(
        ["curl", "-s", "-H", "@-", url],
        input=result.stdout,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert json.loads(sent.stdout)["ok"] is True
    again = subprocess.run(  # the same proof twice: a replay, refused
        ["curl", "-s", "-H", "@-", url],
        input=result.stdout,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert json.loads(again.stdout)["ok"] is False


def test_token_dpop_curl_prints_a_whole_command(threaded_idp: DevAuthServer) -> None:
    url = threaded_idp.resource_url
    result = run("token", "--dpop", "--url", url, "--method", "POST", "--curl", idp=threaded_idp)
    assert result.returncode == 0, result.stderr
    command = shlex.split(result.stdout.strip())
    assert command[:3] == ["curl", "-X", "POST"] and command[-1] == url
    sent = subprocess.run(
        [*command, "-s"], capture_output=True, text=True, timeout=30, check=False
    )
    assert json.loads(sent.stdout)["ok"] is True


def test_token_dpop_without_url_is_a_usage_error(threaded_idp: DevAuthServer) -> None:
    result = run("token", "--dpop", idp=threaded_idp)
    assert result.returncode == 2 and "--url" in result.stderr


def test_token_json_and_decode_show_the_thumbprint_not_the_key(
    threaded_idp: DevAuthServer,
) -> None:
    result = run("token", "--dpop", "--url", threaded_idp.resource_url, "--json", idp=threaded_idp)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["token_type"] == "DPoP" and "dpop_key" not in document
    decoded = run("decode", document["access_token"], idp=threaded_idp)
    assert f"cnf.jkt={document['dpop_jkt']}" in decoded.stdout
