"""Fixtures of the end-to-end tests: the running local pool (scripts/local-pool) and its CLI."""

import json
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_POOL = str(ROOT / "scripts" / "local-pool")
_timings = []


def local_pool(*args):
    """scripts/local-pool ARGS..., its stdout parsed as JSON."""
    out = subprocess.run([LOCAL_POOL, *args], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"scripts/local-pool {' '.join(args)} failed ({out.returncode}): {out.stderr}{out.stdout}")
    return json.loads(out.stdout)


@dataclass
class Pool:
    endpoint: str
    user_pool_id: str
    client_id: str
    region: str
    overrides: dict
    idp: object

    def sms(self, phone):
        """The texts sent to phone, oldest first (`local-pool sms PHONE --json`)."""
        return local_pool("sms", phone, "--json")

    def jwks(self):
        with urllib.request.urlopen(f"{self.endpoint}/{self.user_pool_id}/.well-known/jwks.json", timeout=10) as r:
            return json.load(r)


@pytest.fixture(scope="session")
def pool():
    status = local_pool("status", "--json")
    assert status.get("running"), "no local pool: run testing/e2e/run, or scripts/local-pool start first"
    idp = boto3.client("cognito-idp", endpoint_url=status["endpoint"], region_name=status["region"],
                       aws_access_key_id="test", aws_secret_access_key="test")
    return Pool(status["endpoint"], status["userPoolId"], status["clientId"], status["region"],
                {o["name"]: o["value"] for o in status.get("overrides", [])}
                | {o["parameter"]: o["value"] for o in status.get("overrides", []) if o.get("parameter")},
                idp)


@pytest.fixture(scope="session")
def timings():
    return _timings


def pytest_terminal_summary(terminalreporter):
    if _timings:
        terminalreporter.section("wall times measured by the tests")
        for what, seconds in _timings:
            terminalreporter.write_line(f"{what}: {seconds:.2f} s")
    if os.environ.get("LOCAL_POOL_DIR"):
        terminalreporter.write_line(f"(pool state: {os.environ['LOCAL_POOL_DIR']})")
