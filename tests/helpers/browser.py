"""Pages in a real browser: Debian's Chromium driven by Playwright, at desktop and phone sizes.

Every browser test opens its tabs through `open_tab`, which records console errors, page
crashes and Content-Security-Policy violations before any of the page's own scripts run.
`check_page` is what every page must pass at every size: nothing wider than the screen
(measured in the browser), no serious or critical accessibility violation found by axe-core
(vendored under ``tests/vendor/axe-core``), and a screenshot kept as a test artifact under
``test-artifacts/screenshots`` (or ``$RELAY_TEST_ARTIFACTS``). Chromium comes from the
system (``apt-get install chromium fonts-noto-cjk``; .ci/run does it): Playwright never
downloads a browser, and a missing Chromium fails the test rather than skipping it.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Page, ViewportSize, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("RELAY_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts")
)
#: Font families that draw Chinese (Debian's fonts-noto-cjk gives "Noto Sans CJK SC").
CJK_FAMILY = re.compile(r"CJK|Source Han|WenQuanYi|PingFang|YaHei|Hiragino", re.IGNORECASE)
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-core" / "axe.min.js"
#: Every CSP violation the page sees, recorded before any of its own scripts run.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


@dataclass(frozen=True)
class Size:
    name: str
    viewport: ViewportSize
    mobile: bool


DESKTOP = Size("desktop", {"width": 1400, "height": 1000}, mobile=False)
#: An ordinary phone held upright (CSS pixels).
PHONE = Size("phone", {"width": 390, "height": 844}, mobile=True)
SIZES = (DESKTOP, PHONE)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver fonts-noto-cjk "
        "(see .ci/run)"
    )
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    page: Page
    size: Size
    console: list[ConsoleMessage] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)

    def errors(self, allowed: re.Pattern[str] | None = None) -> list[str]:
        """Console errors and page crashes, less those matching `allowed`."""
        found = [m.text for m in self.console if m.type == "error"] + self.crashes
        return [e for e in found if not (allowed and allowed.search(e))]

    async def csp_violations(self) -> list[str]:
        violations: list[str] = await self.page.evaluate("window.__csp || []")
        return violations


@asynccontextmanager
async def open_tab(browser: Browser, size: Size = DESKTOP) -> AsyncIterator[Tab]:
    """A fresh context (own storage) with one watched tab at `size`."""
    context = await browser.new_context(
        viewport=size.viewport, is_mobile=size.mobile, has_touch=size.mobile
    )
    try:
        page = await context.new_page()
        tab = Tab(page, size)
        page.on("console", lambda m: tab.console.append(m))
        page.on("pageerror", lambda e: tab.crashes.append(f"page error: {e}"))
        await page.add_init_script(WATCH_CSP)
        yield tab
    finally:
        await context.close()


#: The widths that matter: the window's, the document's, and every element wider than it.
MEASURE = """
() => {
  const view = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > view + 1 || r.left < -1)) {
      const style = getComputedStyle(el);
      if (style.position === "fixed" || style.visibility === "hidden") continue;
      let clipped = false;
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        const o = getComputedStyle(p).overflowX;
        if (o === "auto" || o === "scroll" || o === "hidden") { clipped = true; break; }
      }
      const name = el.id ? "#" + el.id : el.tagName.toLowerCase();
      if (!clipped) wide.push(name + " " + Math.round(r.right));
    }
  }
  return {view, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 10)};
}
"""


async def sideways(page: Page) -> dict[str, Any]:
    """How far the page reaches past the screen's width (`scroll` > `view` means it scrolls)."""
    measured: dict[str, Any] = await page.evaluate(MEASURE)
    return measured


async def screenshot(tab: Tab, name: str) -> Path:
    """A full-page screenshot kept as a test artifact, named after the page and the size."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "screenshots" / f"{name}-{tab.size.name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    await tab.page.screenshot(path=str(path), full_page=True)
    return path


async def fonts_drawing(tab: Tab, selector: str) -> dict[str, int]:
    """The system fonts Chromium actually drew the element's text with: family -> glyphs
    (from the DevTools protocol, so a fallback that draws empty boxes shows up by name)."""
    page = tab.page
    cdp = await page.context.new_cdp_session(page)
    try:
        await cdp.send("DOM.enable")
        await cdp.send("CSS.enable")
        root = await cdp.send("DOM.getDocument", {"depth": -1})
        node = await cdp.send(
            "DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector}
        )
        assert node["nodeId"], f"no {selector} on the page"
        used = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
    finally:
        await cdp.detach()
    return {f["familyName"]: int(f["glyphCount"]) for f in used["fonts"]}


async def assert_renders_chinese(tab: Tab, selector: str) -> None:
    """The element's Chinese characters are drawn by a CJK font, not as empty boxes."""
    text = await tab.page.locator(selector).first.inner_text()
    han = len(HAN.findall(text))
    assert han, f"{selector} holds no Chinese to draw: {text!r}"
    fonts = await fonts_drawing(tab, selector)
    cjk = sum(n for family, n in fonts.items() if CJK_FAMILY.search(family))
    assert cjk >= han, (
        f"{selector} ({text!r}, {han} Chinese characters) is drawn with {fonts}: "
        "no CJK font draws it (apt-get install fonts-noto-cjk; .ci/run does it)"
    )


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


#: The impacts that fail a page; "minor" and "moderate" ones are left to judgement.
FAILING_IMPACTS = ("serious", "critical")

RUN_AXE = """
async () => {
  const result = await window.axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), summary: n.failureSummary || ""})),
  }));
}
"""


def describe_violations(violations: list[dict[str, Any]], limit: int = 5) -> str:
    """One paragraph per rule: its impact, id and help, then up to `limit` offending elements."""
    lines: list[str] = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} element(s))")
        for node in v["nodes"][:limit]:
            summary = " ".join(node["summary"].split())
            lines.append(f"    {node['target']}: {summary[:300]}")
        if len(v["nodes"]) > limit:
            lines.append(f"    ... and {len(v['nodes']) - limit} more")
    return "\n".join(lines)


async def axe_violations(tab: Tab) -> list[dict[str, Any]]:
    """Every violation axe-core finds on the page as it is now (all impacts).

    axe is evaluated through the DevTools protocol (``page.evaluate``), which the page's
    Content-Security-Policy does not govern, so the page keeps its strict policy while it is
    checked (an inline ``<script>`` or a ``bypass_csp`` context would need it weakened).
    """
    if not await tab.page.evaluate("typeof window.axe === 'object'"):
        await tab.page.evaluate(_axe_source())
    violations: list[dict[str, Any]] = await tab.page.evaluate(RUN_AXE)
    return violations


async def assert_accessible(tab: Tab, name: str = "the page") -> None:
    """Fail on any serious or critical axe-core violation, each listed with its elements."""
    found = [v for v in await axe_violations(tab) if v["impact"] in FAILING_IMPACTS]
    assert not found, (
        f"{name} at {tab.size.name} has serious accessibility violations:\n"
        + describe_violations(found)
    )


async def check_page(tab: Tab, name: str) -> None:
    """What every page must pass at every size: no sideways scrolling, no serious or critical
    accessibility violation, and a kept screenshot (taken first, so a failing page still
    leaves its picture)."""
    await screenshot(tab, name)
    measured = await sideways(tab.page)
    assert measured["scroll"] <= measured["view"], (
        f"{name} at {tab.size.name} scrolls sideways: {measured}"
    )
    await assert_accessible(tab, name)
