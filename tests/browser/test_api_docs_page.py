"""/api/docs renders the OpenAPI 3.1 description in a real Chromium, under the gateway's CSP."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_the_docs_page_lists_every_operation(page, dashboard):
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(dashboard.url + "/api/docs")
    page.wait_for_selector(".opblock", timeout=15000)
    assert page.locator(".opblock").count() >= 25
    assert page.get_by_text("/api/realtime/events").count() >= 1
    assert not violations, violations
