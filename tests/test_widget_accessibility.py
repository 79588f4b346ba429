"""Accessibility, measured: axe-core on the demo page with the widget open,
mid-conversation, at desktop size and on a 360 px phone. The bar: no serious or
critical WCAG 2.2 AA violation.

axe-core comes from npm at build time (`make axe` puts it in build/axe/); nothing
is downloaded here, and Chromium is Debian's (`make browser`).
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from assistant.paths import PROJECT_ROOT
from tests.conftest import ARTIFACTS, report_figure
from tests.helpers.widget import WIDGET, ask, open_chat

pytest.importorskip("playwright.sync_api")

AXE = PROJECT_ROOT / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
BAR = ("serious", "critical")


def scan(page: Any) -> List[Dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_22_AA)
    # axe reaches into the widget's (open) shadow root: its targets there are nested lists
    in_widget = [n for rule in result["passes"] for n in rule["nodes"]
                 if isinstance(n["target"][0], list) and n["target"][0][0] == WIDGET]
    assert len(in_widget) > 20, "axe did not check the widget itself"
    return [v for v in result["violations"] if v["impact"] in BAR]


@pytest.mark.parametrize(("name", "viewport"), [("desktop", {"width": 1280, "height": 800}),
                                                ("360px", {"width": 360, "height": 740})])
def test_no_serious_wcag_22_aa_violation_mid_conversation(
        browser: Any, stack: Any, name: str, viewport: Dict[str, int]) -> None:
    if not AXE.exists():
        pytest.fail(f"axe-core is missing ({AXE}); run `make axe`")
    # The demo page's CSP allows only the bot's own scripts; axe is injected by the test.
    context = browser.new_context(viewport=viewport, bypass_csp=True, is_mobile=name == "360px")
    page = context.new_page()
    try:
        page.goto(f"{stack.url}/webchat/")
        open_chat(page)
        ask(page, "i'd like to book an appointment")  # links, quick replies, thumbs
        ask(page, "does dry needling hurt?")
        page.locator(f"{WIDGET} .message.bot").last.locator(".feedback button").nth(0).click()
        page.screenshot(path=str(ARTIFACTS / f"widget-axe-{name}.png"))
        violations = scan(page)
    finally:
        context.close()
    report_figure(f"axe-core {name} (widget open, mid-conversation): "
                  f"{len(violations)} serious or critical WCAG 2.2 AA violations (bar: 0)")
    assert violations == [], [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                              for v in violations]
