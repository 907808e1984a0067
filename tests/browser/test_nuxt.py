"""@gatehouse/nuxt's example app (examples/nuxt), BUILT (`nuxt build`, then node
.output/server/index.mjs), in real headless Chromium driven by selenium, against real
`gatehouse serve`s, in both deployments:

  same-site     the app proxies /api/auth/** to its gatehouse (the browser only sees the app)
  cross-origin  the browser calls gatehouse on another origin of the same site with
                credentials: "include" (the app's origin in GATEHOUSE_ALLOWED_ORIGINS: CORS and
                the CSRF rule)

For each: the `auth` middleware sends a signed-out visitor to sign in (in the browser, and in the
server's own answer), registration, the verification link from serve's log, the first paint
rendered on the server with the user (the HTML as the server sends it, with the browser's
cookie), `guest` sends a signed-in visitor on, two-factor set up and answered with TOTP codes
computed here (and a recovery code), a passkey added and used to sign in through Chrome's virtual
authenticator (alone, and as the second factor), tokens created, listed (and used), revoked,
sign-out; axe-core finds no serious or critical violation on any page, and the browser's console
no error (hydration, exceptions, CORS, CSP). Then concurrent server renders for two users and
anonymous visitors at once: each page shows its own user, never another's.

Run by scripts/nuxt-test, which starts everything and passes:
  NUXT_TEST_DEPLOYMENTS   name=app_url=gatehouse_url=serve_log[,…]  (http://localhost:PORT: WebAuthn takes a domain)
  GATEHOUSE_SCREENSHOTS   where the screenshots go
  GATEHOUSE_AXE           axe-core's axe.min.js (tests/browser/node_modules)
"""

import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import re
import struct
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
from selenium.webdriver.support.ui import WebDriverWait

SHOTS = os.environ["GATEHOUSE_SCREENSHOTS"]
AXE = os.environ["GATEHOUSE_AXE"]
PASSWORD = "correct horse battery staple 42"
SESSION_COOKIE = "__Host-gatehouse_session"

violations = []
console_errors = []
results = []


class Deployment:
    def __init__(self, spec):
        self.name, self.app, self.gatehouse, self.log = spec.split("=", 3)
        self.cross = self.name.startswith("cross")


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("GATEHOUSE_CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(os.environ.get("GATEHOUSE_CHROMEDRIVER", "/usr/bin/chromedriver")), options=opts)
    # Chrome's WebAuthn virtual authenticator: a platform authenticator with resident keys and
    # user verification, as a laptop with a screen lock is.
    authenticator = VirtualAuthenticatorOptions()
    authenticator.protocol = VirtualAuthenticatorOptions.Protocol.CTAP2
    authenticator.transport = VirtualAuthenticatorOptions.Transport.INTERNAL
    authenticator.has_resident_key = True
    authenticator.has_user_verification = True
    authenticator.is_user_verified = True
    d.add_virtual_authenticator(authenticator)
    return d


def step(name):
    """A named check: recorded as passed when the block ends without an exception."""

    class Step:
        def __enter__(self):
            self.started = time.monotonic()

        def __exit__(self, kind, value, tb):
            took = time.monotonic() - self.started
            results.append((name, kind is None, took))
            print(f"  {'ok  ' if kind is None else 'FAIL'} {name} ({took:.1f} s)", flush=True)
            return False

    return Step()


def wait(d, what, cond, timeout=15):
    try:
        return WebDriverWait(d, timeout).until(lambda d: cond(d))
    except TimeoutException:
        body = ""
        try:
            body = d.find_element(By.TAG_NAME, "body").text
        except WebDriverException:
            pass
        raise AssertionError(f"timed out waiting for {what} at {d.current_url}:\n{body}") from None


def hydrated(d):
    """Whether Nuxt hydrated the page (before that, a click on a submit button is a plain form
    submission, not the app's)."""
    return d.execute_script(
        "const el = document.getElementById('__nuxt');"
        "const app = el && el.__vue_app__;"
        "const nuxt = app && app.config.globalProperties.$nuxt;"
        "return !!nuxt && nuxt.isHydrating === false;"
    )


def path(d, dep):
    url = d.current_url
    assert url.startswith(dep.app), f"left the app: {url}"
    return url[len(dep.app):]


def open_page(d, dep, page, expect=None):
    d.get(dep.app + page)
    wait(d, f"{expect or page} (hydrated)", lambda d: hydrated(d) and (expect is None or path(d, dep) == expect))


def at(d, dep, expected):
    wait(d, f"the app at {expected}", lambda d: path(d, dep) == expected)
    wait(d, "hydration", hydrated)


def text(d, css="body"):
    return d.find_element(By.CSS_SELECTOR, css).text


def says(d, s, css="body"):
    wait(d, repr(s), lambda d: s in text(d, css))


def fill(d, values):
    for field_id, value in values.items():
        el = d.find_element(By.ID, field_id)
        el.clear()
        el.send_keys(value)


def press(d, label):
    d.find_element(By.XPATH, f"//button[normalize-space()='{label}']").click()


def check_page(d, name):
    """Screenshots at 1280 and 375 px (no sideways scrolling there) and axe-core's serious and
    critical violations of the page now shown."""
    for width, height in [(1280, 900), (375, 800)]:
        d.set_window_size(width, height)
        d.save_screenshot(os.path.join(SHOTS, f"{name}-{width}.png"))
        if width == 375:
            scroll = d.execute_script("return document.documentElement.scrollWidth")
            assert scroll <= 375, f"{name}: {scroll} px wide at 375 px (scrolls sideways)"
    d.set_window_size(1280, 900)
    axe = Axe(d, script_url=AXE)
    axe.inject()
    result = axe.run()
    for v in result["violations"]:
        if v.get("impact") in ("serious", "critical"):
            violations.append(f"{name}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}")
    console_check(d, name)


def console_check(d, name):
    """The browser console's errors since the last look, but for the failed requests the walk
    makes on purpose (a wrong password, a wrong code: Chromium logs each 4xx answer): a hydration
    mismatch, an exception, a CSP or CORS refusal all land here."""
    for entry in d.get_log("browser"):
        message = entry.get("message", "")
        if entry.get("level") != "SEVERE" or "Failed to load resource: the server responded with a status of 4" in message:
            continue
        console_errors.append(f"{name}: {message}")


def totp(secret_b32, counter):
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


class Totp:
    """Codes of one secret, never the same time step twice (gatehouse takes a step once). A step
    may be the next one: gatehouse allows ±1 step of clock skew (shared/src/services/two_factor.rs)."""

    def __init__(self, secret):
        self.secret = secret
        self.used = -1

    def code(self):
        counter = max(int(time.time() // 30), self.used + 1)
        while counter > int(time.time() // 30) + 1:
            time.sleep(0.5)
        self.used = counter
        return totp(self.secret, counter)

    def wrong(self):
        """A code no step near now has."""
        now = int(time.time() // 30)
        near = {totp(self.secret, c) for c in range(now - 2, now + 3)}
        return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


def mailed_link(dep, marker, to):
    """The newest link holding `marker` in a mail to `to` in serve's log."""
    for _ in range(300):
        with open(dep.log, encoding="utf-8", errors="replace") as f:
            mails = f.read().split("──── mail")
        for mail in reversed(mails):
            addressed = re.search(r"^To: (\S+)$", mail, re.M)
            found = re.search(r"http://localhost:\d+" + re.escape(marker) + r"\S+", mail)
            if addressed and addressed.group(1) == to and found:
                return found.group(0)
        time.sleep(0.1)
    raise AssertionError(f"no mail to {to} with a {marker} link in {dep.log} within 30 s")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def server_html(url, cookie=None):
    """What the app's server answers (its own render, no JavaScript run): status, Location, body."""
    opener = urllib.request.build_opener(NoRedirect)
    req = urllib.request.Request(url, headers={"cookie": cookie} if cookie else {})
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, r.headers.get("location"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("location"), e.read().decode(errors="replace")


def browser_cookie(d):
    return "; ".join(f"{c['name']}={c['value']}" for c in d.get_cookies())


def bearer_user(dep, token):
    req = urllib.request.Request(dep.gatehouse + "/user", headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def requests_seen(d):
    """Every URL this document fetched (the Resource Timing entries)."""
    return d.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")


def who(d):
    return text(d, "[data-testid=who]")


def sign_out(d, dep):
    press(d, "Sign out")
    at(d, dep, "/sign-in")
    wait(d, "the header to say signed out", lambda d: who(d) == "Not signed in")


def walk(dep):
    """The example app, as a newcomer uses it, in one deployment."""
    print(f"== {dep.name}: app {dep.app}, gatehouse {dep.gatehouse}", flush=True)
    email = f"ann.{dep.name}@example.com"
    d = browser()
    try:
        with step(f"{dep.name}: auth middleware redirects a signed-out visitor (server and browser)"):
            status, location, _ = server_html(dep.app + "/account")
            assert status == 302 and location == "/sign-in?redirect=/account", (status, location)
            status, location, _ = server_html(dep.app + "/tokens")
            assert status == 302 and location == "/sign-in?redirect=/tokens", (status, location)
            open_page(d, dep, "/")
            assert who(d) == "Not signed in", who(d)
            check_page(d, f"{dep.name}-home-signed-out")
            # A client-side navigation, not a server render: the middleware in the browser.
            d.find_element(By.XPATH, "//nav//a[normalize-space()='Sign in']")  # the header's links
            d.execute_script("document.getElementById('__nuxt').__vue_app__.config.globalProperties.$router.push('/account')")
            at(d, dep, "/sign-in?redirect=/account")
            check_page(d, f"{dep.name}-sign-in")

        with step(f"{dep.name}: registration (a validation error first, then the account)"):
            open_page(d, dep, "/register")
            check_page(d, f"{dep.name}-register")
            fill(d, {"name": "Ann", "email": email, "password": "short", "password_confirmation": "short"})
            press(d, "Create account")
            says(d, "password", "#form-error")
            check_page(d, f"{dep.name}-register-error")
            fill(d, {"password": PASSWORD, "password_confirmation": PASSWORD})
            press(d, "Create account")
            at(d, dep, "/account?registered=1")
            says(d, "not verified", "#account-email")
            assert who(d) == f"Signed in as {email}", who(d)
            check_page(d, f"{dep.name}-account-unverified")

        with step(f"{dep.name}: the first paint is rendered on the server with the user"):
            cookie = browser_cookie(d)
            assert SESSION_COOKIE + "=" in cookie, f"no session cookie in the browser: {cookie}"
            status, _, html = server_html(dep.app + "/account", cookie)
            assert status == 200, status
            assert f"Signed in as {email}" in html and 'id="account-name">Ann<' in html, html[:2000]
            status, _, html = server_html(dep.app + "/", cookie)
            assert status == 200 and f"Hello Ann ({email})" in html, html[:2000]
            status, _, html = server_html(dep.app + "/")
            assert status == 200 and "Not signed in" in html and email not in html, "an anonymous render shows a user"

        with step(f"{dep.name}: the verification link from serve's log, opened in the app"):
            link = mailed_link(dep, "/email/verify/", email)
            assert link.startswith(dep.app + "/email/verify/"), link
            d.get(link)
            wait(d, "hydration", hydrated)
            says(d, "verified", "#verify-result")
            check_page(d, f"{dep.name}-verified")
            open_page(d, dep, "/account")
            assert text(d, "#verified") == "verified", text(d, "#verified")
            # Rendered so on the server too.
            _, _, html = server_html(dep.app + "/account", browser_cookie(d))
            assert 'id="verified">verified<' in html, "the server render does not show the address verified"

        with step(f"{dep.name}: guest middleware sends a signed-in visitor on"):
            status, location, _ = server_html(dep.app + "/sign-in", browser_cookie(d))
            assert status == 302 and location == "/account", (status, location)
            status, location, _ = server_html(dep.app + "/register?redirect=/tokens", browser_cookie(d))
            assert status == 302 and location == "/tokens", (status, location)
            status, location, _ = server_html(dep.app + "/sign-in?redirect=//evil.example/x", browser_cookie(d))
            assert status == 302 and location == "/account", ("an open redirect", status, location)
            d.get(dep.app + "/sign-in")
            at(d, dep, "/account")
            # In the browser too (a client-side navigation).
            d.execute_script("document.getElementById('__nuxt').__vue_app__.config.globalProperties.$router.push('/register?redirect=/tokens')")
            at(d, dep, "/tokens")
            open_page(d, dep, "/account")

        with step(f"{dep.name}: two-factor set up with a TOTP code"):
            fill(d, {"tf-password": PASSWORD})
            press(d, "Set up two-factor authentication")
            secret = wait(d, "the two-factor key", lambda d: d.find_elements(By.ID, "tf-secret") and text(d, "#tf-secret").strip())
            codes = Totp(secret)
            check_page(d, f"{dep.name}-two-factor-setup")
            fill(d, {"tf-code": codes.code()})
            press(d, "Turn on")
            wait(d, "the recovery codes", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recovery-codes code")) == 10)
            recovery = [e.text.strip() for e in d.find_elements(By.CSS_SELECTOR, "#recovery-codes code")]
            says(d, "On:", "#tf-status")
            check_page(d, f"{dep.name}-two-factor-on")

        with step(f"{dep.name}: a passkey added through Chrome's virtual authenticator"):
            fill(d, {"pk-name": "Virtual key", "pk-password": PASSWORD})
            press(d, "Add a passkey")
            says(d, 'Your passkey "Virtual key" was added.')
            names = [e.text for e in d.find_elements(By.CSS_SELECTOR, "#passkeys .pk-name")]
            assert names == ["Virtual key"], names
            assert len(d.get_credentials()) == 1, "the authenticator holds one credential"
            check_page(d, f"{dep.name}-account-passkey")

        with step(f"{dep.name}: tokens created, listed, used, revoked"):
            d.find_element(By.XPATH, "//nav//a[normalize-space()='Tokens']").click()
            at(d, dep, "/tokens")
            wait(d, "the (empty) list", lambda d: d.find_elements(By.ID, "no-tokens"))
            check_page(d, f"{dep.name}-tokens-empty")
            made = []
            for name in ["ci", "laptop"]:
                fill(d, {"token-name": name, "token-password": PASSWORD})
                press(d, "Create token")
                wait(d, f"the token {name}", lambda d: d.find_elements(By.ID, "new-token") and name in text(d, "[role=status]"))
                made.append(text(d, "#new-token").strip())
            wait(d, "two tokens listed", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tokens li")) == 2)
            listed = sorted(e.text for e in d.find_elements(By.CSS_SELECTOR, "#tokens .token-name"))
            assert listed == ["ci", "laptop"], listed
            check_page(d, f"{dep.name}-tokens")
            for token in made:
                status, body = bearer_user(dep, token)
                assert status == 200 and body["user"]["email"] == email, (status, body)
            d.find_element(By.XPATH, "//button[@aria-label='Revoke token ci']").click()
            says(d, 'The token "ci" was revoked.')
            wait(d, "one token left", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tokens li")) == 1)
            assert [e.text for e in d.find_elements(By.CSS_SELECTOR, "#tokens .token-name")] == ["laptop"]
            status, body = bearer_user(dep, made[0])
            assert status == 401, ("a revoked token still works", status, body)
            status, _ = bearer_user(dep, made[1])
            assert status == 200, status
            # Reloaded: the list comes from gatehouse, not from the page's memory.
            open_page(d, dep, "/tokens")
            wait(d, "the list", lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, "#tokens .token-name")] == ["laptop"])

        with step(f"{dep.name}: which origin the browser called"):
            seen = requests_seen(d)
            if dep.cross:
                assert any(u.startswith(dep.gatehouse + "/tokens") for u in seen), seen
                assert not any("/api/auth/" in u for u in seen), seen
                # The app proxies nothing in this deployment.
                status, _, _ = server_html(dep.app + "/api/auth/user", browser_cookie(d))
                assert status == 404, status
            else:
                assert any(u.startswith(dep.app + "/api/auth/tokens") for u in seen), seen
                assert not any(u.startswith(dep.gatehouse) for u in seen), seen

        with step(f"{dep.name}: sign-out"):
            sign_out(d, dep)
            status, location, _ = server_html(dep.app + "/account", browser_cookie(d))
            assert status == 302, ("still signed in on the server", status, location)
            d.get(dep.app + "/account")
            at(d, dep, "/sign-in?redirect=/account")

        with step(f"{dep.name}: sign-in with the password and a TOTP code, back to the page asked for"):
            fill(d, {"email": email, "password": "not the password"})
            press(d, "Sign in")
            says(d, "do not match", "#form-error")
            check_page(d, f"{dep.name}-sign-in-error")
            fill(d, {"password": PASSWORD})
            press(d, "Sign in")
            wait(d, "the two-factor step", lambda d: d.find_elements(By.ID, "code"))
            check_page(d, f"{dep.name}-two-factor-challenge")
            fill(d, {"code": codes.wrong()})
            press(d, "Verify")
            says(d, "code", "#form-error")
            fill(d, {"code": codes.code()})
            press(d, "Verify")
            at(d, dep, "/account")
            assert who(d) == f"Signed in as {email}", who(d)
            sign_out(d, dep)

        with step(f"{dep.name}: sign-in with the passkey alone"):
            d.get(dep.app + "/tokens")
            at(d, dep, "/sign-in?redirect=/tokens")
            press(d, "Sign in with a passkey")
            at(d, dep, "/tokens")
            assert who(d) == f"Signed in as {email}", who(d)
            sign_out(d, dep)

        with step(f"{dep.name}: the passkey as the second factor"):
            fill(d, {"email": email, "password": PASSWORD})
            press(d, "Sign in")
            wait(d, "the two-factor step", lambda d: d.find_elements(By.ID, "code"))
            press(d, "Use a passkey")
            at(d, dep, "/account")
            assert who(d) == f"Signed in as {email}", who(d)
            sign_out(d, dep)

        with step(f"{dep.name}: a recovery code as the second factor"):
            fill(d, {"email": email, "password": PASSWORD})
            press(d, "Sign in")
            wait(d, "the two-factor step", lambda d: d.find_elements(By.ID, "recovery_code"))
            fill(d, {"recovery_code": recovery[0]})
            press(d, "Use a recovery code")
            at(d, dep, "/account")
            assert who(d) == f"Signed in as {email}", who(d)
            sign_out(d, dep)
            _, _, html = server_html(dep.app + "/", browser_cookie(d))
            assert "Not signed in" in html and email not in html, "signed out, yet rendered signed in"
        console_check(d, f"{dep.name}-end")
    except Exception:
        d.save_screenshot(os.path.join(SHOTS, f"{dep.name}-failure.png"))
        print(f"nuxt: {dep.name} failed at {d.current_url}; the browser's console said:", file=sys.stderr)
        for entry in d.get_log("browser")[-20:]:
            print("  ", entry.get("message"), file=sys.stderr)
        raise
    finally:
        d.quit()


def post_json(url, body, cookie=None, origin=None, site="same-origin"):
    """A POST as the app's page sends it (the headers a browser adds); answers status, Set-Cookie, body."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"content-type": "application/json", "sec-fetch-site": site, "origin": origin or f"{parts.scheme}://{parts.netloc}"}
    if cookie:
        headers["cookie"] = cookie
    conn.request("POST", parts.path, json.dumps(body), headers)
    r = conn.getresponse()
    data = r.read()
    cookies = [h.split(";", 1)[0] for k, h in r.getheaders() if k.lower() == "set-cookie"]
    conn.close()
    return r.status, "; ".join(cookies), json.loads(data or b"null")


def isolation(dep):
    """Two users' server renders, and anonymous ones, at once: each page shows its own user only."""
    with step(f"{dep.name}: concurrent SSR for two users never mixes them"):
        users = {}
        for name in ["Bea", "Cal"]:
            email = f"{name.lower()}.{dep.name}@example.com"
            body = {"name": name, "email": email, "password": PASSWORD, "password_confirmation": PASSWORD}
            if dep.cross:  # the page calls gatehouse itself, from the app's origin (same site)
                status, cookie, body = post_json(dep.gatehouse + "/register", body, origin=dep.app, site="same-site")
            else:  # the page calls its own origin, which proxies
                status, cookie, body = post_json(dep.app + "/api/auth/register", body)
            assert status == 201 and SESSION_COOKIE in cookie, (status, cookie, body)
            users[name] = (email, cookie)
        jobs = [(name, page) for _ in range(15) for name in ["Bea", "Cal", None] for page in ["/", "/account", "/tokens"]]

        def render(job):
            name, page = job
            cookie = users[name][1] if name else None
            return job, server_html(dep.app + page, cookie)

        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(render, jobs))
        for (name, page), (status, location, html) in answers:
            emails = {n: e for n, (e, _) in users.items()}
            if name is None:
                if page == "/":
                    assert status == 200 and "Not signed in" in html, (page, status)
                else:
                    assert status == 302 and location.startswith("/sign-in"), (page, status, location)
                assert not any(e in html for e in emails.values()), f"an anonymous render of {page} shows a user"
                continue
            assert status == 200, (name, page, status, location)
            shown = re.search(r'data-testid="who"[^>]*>([^<]*)<', html)
            assert f"Signed in as {emails[name]}" in html, f"{name}'s render of {page} shows {shown and shown.group(1)!r}"
            other = [e for n, e in emails.items() if n != name]
            assert not any(e in html for e in other), f"{name}'s render of {page} shows another user"
        print(f"    {len(answers)} concurrent renders, each with its own user", flush=True)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    deployments = [Deployment(s) for s in os.environ["NUXT_TEST_DEPLOYMENTS"].split(",")]
    started = time.monotonic()
    failed = None
    for dep in deployments:
        try:
            walk(dep)
            isolation(dep)
        except Exception as e:  # noqa: BLE001 - report, then the other deployment still runs
            failed = failed or e
            import traceback
            traceback.print_exc()
    with step("axe: no serious or critical violation on any page"):
        assert not violations, "axe: serious or critical violations:\n  " + "\n  ".join(violations)
    with step("the browser console: no error on any page (hydration, exceptions, CORS, CSP)"):
        assert not console_errors, "console errors:\n  " + "\n  ".join(console_errors)
    passed = sum(1 for _, ok, _ in results if ok)
    print(f"nuxt: {passed} of {len(results)} checks passed in {time.monotonic() - started:.0f} s; screenshots in {SHOTS}")
    if failed or passed != len(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
