"""``/docs`` in a real browser, with no internet (every test runs in a network namespace).

Swagger UI is served by the worker (vendored from npm): the page lists the API's
operations, its Content-Security-Policy allows no inline script and nothing from elsewhere,
nothing is blocked or logged as an error, and every request the page makes goes to the
worker itself.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Request, expect

from tests.helpers.browser import SIZES, Size, check_page, open_tab
from tests.integration.conftest import ROOT, ApiUnderTest

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: s.name)
async def test_docs_render_the_operations_offline_from_the_worker_alone(
    browser: Browser, api: ApiUnderTest, size: Size
) -> None:
    origin = api.relay.stack.web_url
    async with open_tab(browser, size) as tab:
        requested: list[str] = []
        failed: list[str] = []

        def record(request: Request) -> None:
            requested.append(request.url)

        tab.page.on("request", record)
        tab.page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        response = await tab.page.goto(f"{origin}/docs")
        assert response is not None and response.status == 200
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp.split("style-src")[0]
        assert "unsafe-eval" not in csp

        page = tab.page
        documents = page.locator(".opblock", has_text="/api/v1/documents").first
        await expect(documents).to_be_visible(timeout=30_000)
        await expect(page.locator(".opblock-tag-section").first).to_be_visible()
        await expect(page.locator(".info .title")).to_contain_text("Policy Relay")
        # An operation opens and shows its parameters, from the served schema.
        await page.locator(".opblock-summary", has_text="/api/v1/documents").first.click()
        await expect(page.locator(".opblock-body").first).to_be_visible()
        await check_page(tab, "docs")

        assert tab.errors() == []
        assert await tab.csp_violations() == []
        assert failed == []
        hosts = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in requested}
        assert hosts == {origin}, requested
        paths = {urlsplit(u).path for u in requested}
        assert {"/docs", "/docs/static/swagger-ui-bundle.js", "/openapi.json"} <= paths


async def test_docs_assets_are_the_vendored_files_with_their_licence(api: ApiUnderTest) -> None:
    page = await api.http.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "<script>" not in page.text and "cdn" not in page.text.lower()
    bundle = await api.http.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert bundle.headers["x-content-type-options"] == "nosniff"
    vendored = ROOT / "templates/web/static/swagger-ui/swagger-ui-bundle.js"
    assert bundle.content == vendored.read_bytes()
    # A reload revalidates the large bundle instead of fetching it again.
    again = await api.http.get(
        "/docs/static/swagger-ui-bundle.js", headers={"If-None-Match": bundle.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""
    licence = await api.http.get("/docs/static/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text
    # Only the listed files; FastAPI's CDN-loading pages are gone.
    for path in ("/docs/static/swagger-ui.css.map", "/docs/static/..%2Fdashboard.js", "/redoc"):
        r = await api.http.get(path)
        assert r.status_code == 404, path
    assert "/docs" not in (await api.http.get("/openapi.json")).json()["paths"]


async def test_try_it_out_calls_the_api_from_the_docs_with_the_operator_token(
    browser: Browser, api: ApiUnderTest
) -> None:
    async with open_tab(browser) as tab:
        page = tab.page
        await page.goto(f"{api.relay.stack.web_url}/docs")
        await page.get_by_role("button", name="Authorize").first.click()
        dialog = page.locator(".dialog-ux .modal-ux")
        await expect(dialog).to_be_visible()
        await check_page(tab, "docs-authorize")
        await dialog.locator("input").first.fill(api.operator_token)
        await dialog.get_by_role("button", name="Authorize").click()
        await dialog.locator("button.btn-done", has_text="Close").click()

        operation = page.locator(".opblock-get", has_text="/api/v1/documents").first
        await operation.locator(".opblock-summary").click()
        await operation.get_by_role("button", name="Try it out").click()
        await operation.get_by_role("button", name="Execute").click()
        status = operation.locator(".live-responses-table .response .response-col_status").first
        await expect(status).to_have_text("200", timeout=30_000)
        await expect(operation.locator(".live-responses-table")).to_contain_text('"items"')
        await check_page(tab, "docs-try-it-out")
        assert tab.errors() == []
        assert await tab.csp_violations() == []
