"""Runs the dashboard client's unit tests (tests/js/*.test.mjs) with node's built-in test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

JS_TESTS = Path(__file__).resolve().parent


def test_client_logic_passes_node_test_runner():
    node = shutil.which("node")
    assert node is not None, "node is not installed (scripts/test installs Debian's nodejs)"
    result = subprocess.run([node, "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
