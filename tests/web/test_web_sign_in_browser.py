"""The page's AWS sign-in in real Chromium (Debian's, through Playwright's `executable_path`), against
a fake hosted UI, token endpoint and Cognito Identity answered by Playwright's request routing.

What it proves beyond web/test/auth.test.ts: the real bundle (dist/app.js), served with the hosting
stack's Content-Security-Policy (cdk/web_hosting.PAGE_CSP), reads an aws config.json, goes to the
hosted UI with PKCE S256 and a state, comes back, redeems the code, gets the web role's credentials
(the CSP lets the page reach the token endpoint and Cognito Identity), keeps the tokens in
sessionStorage only, refuses an answer with another state, and signs out. No AWS account, nothing
downloaded: every request the page makes is answered here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from cdk.web_hosting import PAGE_CSP
from tests.web.web_build import build

WEB = Path(__file__).resolve().parents[2] / "web"
CHROMIUM = os.environ.get("CCC_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PAGE = "https://ccc-page.test/"
DOMAIN = "ccc-acme-111111111111.auth.eu-west-1.amazoncognito.com"
IDENTITY = "https://cognito-identity.eu-west-1.amazonaws.com/"
SIGN_IN = {
    "user_pool_id": "eu-west-1_AbC123xyz",
    "client_id": "4kq1example0client0id0abcde",
    "domain": DOMAIN,
    "identity_pool_id": "eu-west-1:0b7a1c2d-aaaa-bbbb-cccc-123456789abc",
}
CONFIG = {
    "tier": "aws",
    "tenant": "acme",
    "region": "eu-west-1",
    "api_url": "https://abcde12345.execute-api.eu-west-1.amazonaws.com/prod/",
    "kms_endpoint_url": None,
    "sign_in": SIGN_IN,
}
CORS = {"Access-Control-Allow-Origin": "https://ccc-page.test", "Access-Control-Allow-Headers": "*"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make setup` installs Debian's chromium")
    build(tests=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


class FakeCognito:
    """Serves the page and answers the hosted UI, the token endpoint and Cognito Identity."""

    def __init__(self, csp: str = PAGE_CSP) -> None:
        self.csp = csp
        self.authorize: list[dict[str, str]] = []
        self.token_forms: list[dict[str, str]] = []
        self.identity_calls: list[tuple[str, dict[str, Any]]] = []
        self.revoked: list[dict[str, str]] = []
        self.logouts: list[dict[str, str]] = []

    @staticmethod
    def _query(url: str) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

    @staticmethod
    def _go_to(route: Route, url: str) -> None:
        """The hosted UI sends the browser back (a 302 on AWS; Playwright does not route a fulfilled
        redirect's target, so a refresh navigation stands in for it)."""
        refresh = f'<meta http-equiv="refresh" content="0;url={url}">'
        route.fulfill(status=200, body=refresh, content_type="text/html")

    def page(self, route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path == "/":
            body = (WEB / "index.html").read_bytes()
            route.fulfill(
                status=200, body=body, headers={"Content-Type": "text/html", "Content-Security-Policy": self.csp}
            )
        elif path == "/dist/app.js":
            route.fulfill(status=200, body=(WEB / "dist" / "app.js").read_bytes(), content_type="text/javascript")
        elif path == "/config.json":
            route.fulfill(status=200, body=json.dumps(CONFIG), content_type="application/json")
        else:  # /local/config.json and the rest: what S3 behind CloudFront answers for a missing object
            route.fulfill(status=403, body="AccessDenied")

    def hosted_ui(self, route: Route) -> None:
        url = route.request.url
        path = urlsplit(url).path
        if route.request.method == "OPTIONS":
            route.fulfill(status=204, headers=CORS)
        elif path == "/oauth2/authorize":
            query = self._query(url)
            self.authorize.append(query)
            self._go_to(route, f"{PAGE}?{urlencode({'code': 'the-code', 'state': query['state']})}")
        elif path == "/oauth2/token":
            form = {k: v[0] for k, v in parse_qs(route.request.post_data or "").items()}
            self.token_forms.append(form)
            answer = {
                "id_token": "id-token-1",
                "access_token": "a",
                "refresh_token": "refresh-token-1",
                "expires_in": 3600,
            }
            route.fulfill(status=200, body=json.dumps(answer), content_type="application/json", headers=CORS)
        elif path == "/oauth2/revoke":
            self.revoked.append({k: v[0] for k, v in parse_qs(route.request.post_data or "").items()})
            route.fulfill(status=200, body="", headers=CORS)
        elif path == "/logout":
            self.logouts.append(self._query(url))
            self._go_to(route, PAGE)
        else:
            route.fulfill(status=404, body="")

    def identity(self, route: Route) -> None:
        if route.request.method == "OPTIONS":
            route.fulfill(status=204, headers={**CORS, "Access-Control-Allow-Methods": "POST"})
            return
        target = route.request.headers.get("x-amz-target", "")
        body = json.loads(route.request.post_data or "{}")
        self.identity_calls.append((target, body))
        if target.endswith(".GetId"):
            answer: dict[str, Any] = {"IdentityId": "eu-west-1:identity-1"}
        else:
            answer = {
                "IdentityId": "eu-west-1:identity-1",
                "Credentials": {
                    "AccessKeyId": "ASIAEXAMPLE",
                    "SecretKey": "the-secret-key",
                    "SessionToken": "the-session-token",
                    "Expiration": time.time() + 3600,
                },
            }
        route.fulfill(status=200, body=json.dumps(answer), content_type="application/x-amz-json-1.1", headers=CORS)


def _open(browser: Browser, fake: FakeCognito) -> tuple[Any, Page]:
    context = browser.new_context(service_workers="block")
    context.route("https://ccc-page.test/**", fake.page)
    context.route(f"https://{DOMAIN}/**", fake.hosted_ui)
    context.route(f"{IDENTITY}**", fake.identity)
    page = context.new_page()
    page.goto(PAGE)
    page.wait_for_selector("#auth[data-state='signed-out']", timeout=30_000)
    return context, page


@pytest.fixture
def signed_out_page(browser: Browser) -> Iterator[tuple[Page, FakeCognito]]:
    fake = FakeCognito()
    context, page = _open(browser, fake)
    yield page, fake
    context.close()


def _s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def test_the_page_signs_in_with_pkce_and_keeps_tokens_in_session_storage_only(
    signed_out_page: tuple[Page, FakeCognito],
) -> None:
    page, fake = signed_out_page
    page.wait_for_function("document.body.dataset.ready === 'true'", timeout=30_000)
    assert "signed in" not in page.inner_text("#stack")  # nobody is, yet: the sign-in box says so
    page.click("#auth button")
    page.wait_for_selector("#auth[data-state='signed-in']", timeout=30_000)
    (authorize,) = fake.authorize
    assert {
        k: authorize[k] for k in ("response_type", "client_id", "redirect_uri", "scope", "code_challenge_method")
    } == {
        "response_type": "code",
        "client_id": SIGN_IN["client_id"],
        "redirect_uri": PAGE,
        "scope": "openid",
        "code_challenge_method": "S256",
    }
    (form,) = fake.token_forms
    assert form["grant_type"] == "authorization_code" and form["code"] == "the-code"
    assert _s256(form["code_verifier"]) == authorize["code_challenge"]
    assert "client_secret" not in form
    logins = {f"cognito-idp.eu-west-1.amazonaws.com/{SIGN_IN['user_pool_id']}": "id-token-1"}
    assert fake.identity_calls == [
        ("AWSCognitoIdentityService.GetId", {"IdentityPoolId": SIGN_IN["identity_pool_id"], "Logins": logins}),
        (
            "AWSCognitoIdentityService.GetCredentialsForIdentity",
            {"IdentityId": "eu-west-1:identity-1", "Logins": logins},
        ),
    ]
    assert page.url == PAGE, "the code left the address bar"
    session = page.evaluate("JSON.stringify(Object.entries(sessionStorage))")
    local = page.evaluate("JSON.stringify(Object.entries(localStorage))")
    assert "id-token-1" in session and "refresh-token-1" in session
    assert "token" not in local and "the-secret-key" not in session + local
    databases = page.evaluate("indexedDB.databases().then((d) => d.map((x) => x.name))")
    assert all("auth" not in str(name) for name in databases)

    page.click("#auth button")  # sign out
    page.wait_for_selector("#auth[data-state='signed-out']", timeout=30_000)
    assert fake.revoked == [{"token": "refresh-token-1", "client_id": SIGN_IN["client_id"]}]
    assert fake.logouts == [{"client_id": SIGN_IN["client_id"], "logout_uri": PAGE}]
    assert page.evaluate("sessionStorage.length") == 0


def test_an_answer_with_another_state_is_refused_and_its_code_never_redeemed(
    signed_out_page: tuple[Page, FakeCognito],
) -> None:
    page, fake = signed_out_page
    page.goto(f"{PAGE}?code=injected-code&state=not-this-tabs")
    page.wait_for_selector("#auth[data-state='signed-out']", timeout=30_000)
    assert "state" in page.inner_text("#auth")
    assert fake.token_forms == [] and fake.identity_calls == []
    assert page.url == PAGE


def test_the_hosting_csp_is_what_lets_the_page_reach_the_token_endpoint(browser: Browser) -> None:
    """Without https://*.amazoncognito.com in connect-src the browser blocks the code exchange."""
    fake = FakeCognito(csp=PAGE_CSP.replace(" https://*.amazoncognito.com", ""))
    context, page = _open(browser, fake)
    try:
        page.click("#auth button")
        deadline = time.monotonic() + 30  # polled from here: the page's CSP forbids evaluated predicates
        while "not reachable" not in page.inner_text("#auth") and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert "not reachable" in page.inner_text("#auth")
        assert page.get_attribute("#auth", "data-state") == "signed-out"
        assert len(fake.authorize) == 1 and fake.token_forms == []
    finally:
        context.close()
