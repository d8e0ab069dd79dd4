"""The core is closed for modification: a fourth platform, written as a separate
distribution under ``examples/``, installs into a fresh venv beside the core with nothing
but ``pip install``, passes the contract harness at strictness high there, and runs end to
end through that venv's embedded ``waimai-bridge serve`` (SQLite, in-process worker)."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.processes import free_port, processes, wait_until

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "waimai-bridge-jsonhmac"
SECRET = "jsonhmac-e2e-secret-0123456789"
TOKEN = "api-token-jsonhmac"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_716_181_200_000

CONFIG = """
[bridge]
database_url = "sqlite:///{folder}/bridge.sqlite3"
public_base_url = "https://bridge.example.com"
accept_hold_seconds = 1
api_tokens = ["{token}"]

[platforms.jsonhmac]
app_id = "e2e-app"
app_secret = "{secret}"
api_base = "{api_base}"

[stores.S001]
name = "Store 1"
jsonhmac = {{ shop_id = "SH-001" }}
"""

ORDER_DATA = {
    "items": [{"sku": "SKU-1", "item_id": "P-1", "name": "牛肉面", "quantity": 2,
               "unit_price": 1800, "unit_paid": 1600}],
    "amounts": {"original": 4100, "packaging": 200, "delivery": 300, "merchant_discount": 400,
                "platform_discount": 0, "paid": 3700, "commission": 370, "income": 3130},
}  # fmt: skip


def clean_environment() -> dict[str, str]:
    """The environment without the bridge's settings or this tree on the path."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WAIMAI_", "PYTHON", "VIRTUAL_ENV"))
    }


def run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, env=clean_environment(), capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the core and the example plugin pip-installed, nothing else."""
    folder = tmp_path_factory.mktemp("fresh")
    created = run([sys.executable, "-m", "venv", str(folder / "venv")], folder, 120)
    assert created.returncode == 0, created.stderr
    pip = [str(folder / "venv" / "bin" / "python"), "-m", "pip", "install", "-q"]
    installed = run([*pip, str(ROOT), str(EXAMPLE)], folder, 420)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return folder / "venv"


def test_the_example_passes_the_harness_at_high_from_a_fresh_venv(venv: Path) -> None:
    result = run([str(venv / "bin" / "waimai-bridge"), "contract", "jsonhmac",
                  "--strictness", "high"], venv.parent, 120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    # skipped: the eight optional hooks it leaves out, and the pull, fetch, verify and
    # authorization suites
    assert "0 failed, 12 skipped (strictness high)" in result.stdout.splitlines()[-1]
    assert "site-packages/waimai_bridge_jsonhmac/fixtures" in result.stdout.splitlines()[0]


def test_the_core_lists_the_example_as_a_valid_plugin(venv: Path) -> None:
    result = run([str(venv / "bin" / "waimai-bridge"), "plugins", "--json"], venv.parent, 60)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"jsonhmac"}
    assert rows["jsonhmac"]["status"] == "valid"
    assert rows["jsonhmac"]["source"] == "waimai-bridge-jsonhmac 0.1.0"


# --------------------------------------------------------------------------- hostile pushes

GOOD = {"id": "E-1", "type": "order.accepted", "shop_id": "SH-001", "order_id": "O-1",
        "time_ms": T0, "data": {}}  # fmt: skip

HOSTILE = {
    "float-time": {**GOOD, "time_ms": 1e300},
    "huge-time": {**GOOD, "time_ms": 10**30},
    "superscript-time": {**GOOD, "time_ms": "²"},
    "long-id": {**GOOD, "id": "i" * 100_000},
    "long-order": {**GOOD, "order_id": "o" * 100_000},
    "long-type": {**GOOD, "type": "t" * 100_000},
    "long-shop": {**GOOD, "shop_id": "s" * 100_000},
    "a-list": [GOOD],
}
"""Signed messages holding what no contract field holds."""

READ_HOSTILE = """
import json, sys
from waimai_bridge.errors import PushRefused
from waimai_bridge.models import InboundRequest, PluginConfig
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge_jsonhmac.protocol import signed_headers

secret, t0, messages = json.load(sys.stdin)
platform = PluginRegistry.discover().platform("jsonhmac")
config = PluginConfig(platform="jsonhmac", public_base_url="https://bridge.example.com",
                      settings={"app_id": "e2e-app", "app_secret": secret,
                                "api_base": "http://127.0.0.1:9/"},
                      stores={"S001": {"shop_id": "SH-001"}})
answers = {}
for case, message in messages.items():
    body = json.dumps(message, separators=(",", ":")).encode()
    headers = signed_headers("e2e-app", secret, t0, body)
    request = InboundRequest(method="POST", url="https://bridge.example.com/webhooks/jsonhmac",
                             kind=None, query=[], headers=headers, body=body, received_at_ms=t0)
    try:
        platform.parse_event(request, config)
        answers[case] = [200, "accepted"]
    except PushRefused as refused:
        answers[case] = [refused.status, refused.message]
    except Exception as failure:
        answers[case] = [500, type(failure).__name__]
print(json.dumps(answers))
"""
"""Each hostile message read by the example's ``parse_event`` in the fresh venv (the example
is not installed here): its status and message."""


def test_a_signed_message_no_contract_holds_is_refused_with_400(venv: Path) -> None:
    result = subprocess.run([str(venv / "bin" / "python"), "-c", READ_HOSTILE],
                            input=json.dumps([SECRET, T0, HOSTILE]), cwd=venv.parent,
                            env=clean_environment(), capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert {case: status for case, (status, _) in answers.items()} == dict.fromkeys(HOSTILE, 400), (
        answers
    )
    assert all(len(message) < 200 for _, message in answers.values())


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def fake_api() -> Iterator[Any]:
    """The example's fake API, imported from its source folder (it is not installed here)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        testing = importlib.import_module("waimai_bridge_jsonhmac.testing")
    finally:
        sys.path.remove(str(EXAMPLE))
    api = testing.FakeApi("e2e-app", SECRET).start()
    yield api
    api.stop()


def post(base: str, order: str, code: str, minute: int, data: dict[str, Any]) -> None:
    """Sign and POST one push the way the platform does (README.md: the protocol)."""
    message = {"id": f"{order}-{minute}", "type": code, "shop_id": "SH-001",
               "order_id": order, "time_ms": T0 + minute * 60_000, "data": data}  # fmt: skip
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    stamp = str(T0 + minute * 60_000 + 5)
    signature = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    headers = {"x-jsonhmac-app": "e2e-app", "x-jsonhmac-timestamp": stamp,
               "x-jsonhmac-signature": signature.hexdigest()}  # fmt: skip
    answer = httpx.post(f"{base}/webhooks/jsonhmac", content=body, headers=headers, timeout=10)
    assert (answer.status_code, answer.text) == (200, '{"ok":true}')


def stored(base: str, order: str) -> dict[str, Any] | None:
    found = httpx.get(f"{base}/api/v1/platform-orders/jsonhmac/{order}", headers=AUTH)
    if found.status_code != 200 or found.json()["order_id"] is None:
        return None
    view: dict[str, Any] = httpx.get(
        f"{base}/api/v1/orders/{found.json()['order_id']}", headers=AUTH
    ).json()
    return view


def test_the_example_runs_end_to_end_through_the_embedded_pipeline(
    venv: Path, fake_api: Any, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(CONFIG.format(folder=tmp_path, token=TOKEN, secret=SECRET,
                                    api_base=fake_api.api_base), encoding="utf-8")  # fmt: skip
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [str(venv / "bin" / "waimai-bridge"), "--config", str(config), "serve",
               "--port", str(port)]  # fmt: skip
    with processes(tmp_path) as start:
        start("serve", command, clean_environment())
        wait_until(lambda: httpx.get(f"{base}/healthz").status_code == 200, 60, "serve healthy")
        for minute, (code, data) in enumerate([
            ("order.created", ORDER_DATA), ("order.accepted", {}), ("rider.picked_up", {}),
            ("rider.delivered", {}), ("order.completed", {}),
        ]):  # fmt: skip
            post(base, "O-E2E-1", code, minute, data)

        def completed() -> dict[str, Any] | None:
            view = stored(base, "O-E2E-1")
            return view if view and view["state"] == "completed" else None

        order = wait_until(completed, 30, "the order stored and completed")
        assert order["rider_state"] == "delivered"
        assert order["price"]["user_paid"] == 3700
        assert order["price"]["merchant_income"] == 3130

        post(base, "O-E2E-2", "order.created", 0, ORDER_DATA)
        asked = httpx.post(
            f"{base}/api/v1/platform-orders/jsonhmac/O-E2E-2/actions",
            json={"action": "confirm", "idempotency_key": "e2e-confirm-1"},
            headers=AUTH,
        )
        assert asked.status_code == 202, asked.text

        def done() -> dict[str, Any] | None:
            action: dict[str, Any] = httpx.get(
                f"{base}/api/v1/actions/{asked.json()['id']}", headers=AUTH
            ).json()
            return action if action["status"] != "pending" else None

        assert wait_until(done, 30, "the action performed")["status"] == "done"
    [call] = fake_api.calls()
    assert call == {"method": "POST", "path": "orders/O-E2E-2/confirm",
                    "params": {"shop_id": "SH-001"}, "signature_ok": True}  # fmt: skip
