"""The hosted pages in a real browser: headless Chromium driven by selenium, the way a person
uses them (register, verify, sign in, create a token and use it, sign out, forgot, the mailed
link, reset, sign in again, the old token refused, two-factor with a recovery code, a passkey
made by Chrome's virtual authenticator that then signs in alone and as the second factor, delete),
then the OAuth provider's pages as an application sends a person to them (the authorization
request through sign-in to the consent page, Allow, the consent remembered, prompt=consent and
Deny, RP-initiated logout), then "Continue with Test IdP" (a sign-up through panva's
oidc-provider's own login and consent pages, the account's "Connected accounts", a sign-in again),
then sign-in by email (the link opened in the browser that asked, spent; a link forwarded to a fresh
browser, which signs no one in and asks for the code, typed where it was asked for), each page
screenshotted at 1280 px and 375 px and checked by axe-core for serious and critical accessibility
violations.

Run by scripts/browser-test, which starts `gatehouse serve` and passes:
  GATEHOUSE_BROWSER_BASE   the server's address (http://localhost:PORT: WebAuthn takes a domain)
  GATEHOUSE_BROWSER_LOG    the server's output, where the log mailer prints the mails
  GATEHOUSE_SCREENSHOTS    where the screenshots go
  GATEHOUSE_OAUTH_REGISTRATION_TOKEN   the token RFC 7591 client registration asks for
  GATEHOUSE_AXE            axe-core's axe.min.js (tests/browser/node_modules: npm's axe-core 4.x)
  GATEHOUSE_BROWSER_IDP    the test IdP (tests/federation/idp.mjs), serve's provider `idp`, "Test IdP"
"""

import base64
import hashlib
import hmac
import json
import os
import re
import struct
import sys
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from axe_selenium_python import Axe
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.virtual_authenticator import VirtualAuthenticatorOptions
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["GATEHOUSE_BROWSER_BASE"]
LOG = os.environ["GATEHOUSE_BROWSER_LOG"]
SHOTS = os.environ["GATEHOUSE_SCREENSHOTS"]
AXE = os.environ["GATEHOUSE_AXE"]
EMAIL = "ann.browser@example.com"
PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "a brand new and long passphrase 7"
OAUTH_EMAIL = "olly.oauth@example.com"
REGISTRATION_TOKEN = os.environ["GATEHOUSE_OAUTH_REGISTRATION_TOKEN"]
IDP = os.environ["GATEHOUSE_BROWSER_IDP"]
IDP_NAME = "Test IdP"
FED_EMAIL = "alice@example.test"
# Who signs in at the IdP: its login field reads these claims (tests/federation/idp.mjs).
FED_LOGIN = f"sub=alice-browser;email={FED_EMAIL};verified=true;name=Alice"
LINK_EMAIL = "lena.link@example.com"

violations = []


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("GATEHOUSE_CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]:
        opts.add_argument(arg)
    service = Service(os.environ.get("GATEHOUSE_CHROMEDRIVER", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(service=service, options=opts)
    # Chrome's WebAuthn virtual authenticator: a platform authenticator with resident keys and
    # user verification, as a phone or laptop with a screen lock is.
    authenticator = VirtualAuthenticatorOptions()
    authenticator.protocol = VirtualAuthenticatorOptions.Protocol.CTAP2
    authenticator.transport = VirtualAuthenticatorOptions.Transport.INTERNAL
    authenticator.has_resident_key = True
    authenticator.has_user_verification = True
    authenticator.is_user_verified = True
    d.add_virtual_authenticator(authenticator)
    return d


def check_page(d, name):
    """Screenshots at both widths and the axe pass for the page now shown."""
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
    # One script, the passkeys' (the CSP allows this site's files only, nothing inline).
    scripts = [s.get_attribute("src") for s in d.find_elements(By.CSS_SELECTOR, "script")]
    assert len(scripts) == 1 and "/account/assets/passkeys." in scripts[0], f"{name}: scripts {scripts}"


def fill(d, values):
    for field_id, value in values.items():
        el = d.find_element(By.ID, field_id)
        el.clear()
        el.send_keys(value)


def gone(element):
    """Whether `element` left the document. While a navigation swaps documents, Chromium may
    answer with a plain inspector error instead of a stale-element one: both mean gone."""

    def check(_driver):
        try:
            element.is_enabled()
            return False
        except WebDriverException:
            return True

    return check


def submit(d, button_text):
    """Clicks the button and waits for the page it leads to."""
    page = d.find_element(By.TAG_NAME, "html")
    d.find_element(By.XPATH, f"//button[normalize-space()='{button_text}']").click()
    WebDriverWait(d, 15).until(gone(page))


def path(d):
    return d.current_url[len(BASE):]


def says(d, text):
    body = d.find_element(By.TAG_NAME, "body").text
    assert text in body, f"expected {text!r} on {d.current_url}:\n{body}"


def get_user(token):
    req = urllib.request.Request(BASE + "/user", headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def mailed_link(marker, seen):
    """The newest link in the server's mail output holding `marker`, not among `seen`."""
    for _ in range(300):
        with open(LOG, encoding="utf-8", errors="replace") as f:
            links = re.findall(r"http://(?:127\.0\.0\.1|localhost):\d+" + re.escape(marker) + r"\S+", f.read())
        fresh = [l for l in links if l not in seen]
        if fresh:
            seen.add(fresh[-1])
            return fresh[-1]
        time.sleep(0.1)
    raise AssertionError(f"no mail with a {marker} link within 30 s")


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((at or time.time()) // 30)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    o = mac[-1] & 0x0F
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1_000_000)


def sign_in(d, email, password):
    fill(d, {"email": email, "password": password})
    submit(d, "Sign in")
    # The walk-through signed in often this minute: the login limit may ask for a wait first.
    wait = re.search(r"try again in (\d+) seconds?", d.find_element(By.TAG_NAME, "body").text)
    if wait:
        time.sleep(int(wait.group(1)) + 1)
        fill(d, {"email": email, "password": password})
        submit(d, "Sign in")


def post_json(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def post_form(url, fields):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), method="POST",
                                 headers={"content-type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def tab_to(d, button_text, limit=40):
    """Tabs from the page's first link (skip to content) until the button has the focus (it must be reachable by
    keyboard); answers the texts focused on the way."""
    d.execute_script("document.querySelector('a.skip').focus()")
    passed = ["Skip to content"]
    for _ in range(limit):
        ActionChains(d).send_keys(Keys.TAB).perform()
        text = d.execute_script("return document.activeElement.innerText || ''").strip()
        passed.append(text)
        if text == button_text:
            return passed
    raise AssertionError(f"{button_text!r} is not reachable with Tab: {passed}")


def arrived(d, prefix, press=None):
    """Presses (a callable: a click, a key) when given, waits for the browser to reach `prefix`
    (nothing listens there: Chromium shows its error page, and the address is the one it was
    sent to) and answers the query's parameters. Staying put, says whether Chromium blocked it."""
    if press:
        press()
    try:
        WebDriverWait(d, 15).until(lambda d: d.current_url.startswith(prefix))
    except TimeoutException:
        blocked = [e["message"] for e in d.get_log("browser") if "Content Security Policy" in e["message"]]
        why = f"; Chromium blocked it: {blocked[-1].split(' - ', 1)[-1].strip()}" if blocked else ""
        raise AssertionError(f"the browser stayed at {d.current_url} instead of going to {prefix}{why}") from None
    query = urllib.parse.urlsplit(d.current_url).query
    return dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


def visit(d, url):
    """Opens `url`, which may end at the client's address: nothing listens there, and Chromium's
    refusal is then the expected end of the walk, not an error."""
    try:
        d.get(url)
    except WebDriverException as e:
        if "ERR_CONNECTION_REFUSED" not in str(e):
            raise


def pressing(d, button_text):
    return lambda: d.find_element(By.XPATH, f"//button[normalize-space()='{button_text}']").click()


def oauth_walk(d):
    """The OAuth provider's pages, as an application sends a person to them."""
    with urllib.request.urlopen(BASE + "/.well-known/openid-configuration") as r:
        issuer = json.loads(r.read())["issuer"]
    # A port nobody listens on: the client's redirect and post-logout addresses.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    rp_port = s.getsockname()[1]
    s.close()
    redirect_uri = f"http://localhost:{rp_port}/cb"
    bye_uri = f"http://localhost:{rp_port}/bye"
    status, client = post_json(BASE + "/oauth/register", {
        "client_name": "Test RP",
        "redirect_uris": [redirect_uri],
        "post_logout_redirect_uris": [bye_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email offline_access",
        "token_endpoint_auth_method": "none",
    }, {"authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert status == 201 and client.get("client_id"), (status, client)
    client_id = client["client_id"]

    def authorize_url(state, verifier, **extra):
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        return BASE + "/account/oauth/authorize?" + urllib.parse.urlencode({
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
            "scope": "openid email", "state": state, "code_challenge": challenge,
            "code_challenge_method": "S256", "nonce": secrets.token_urlsafe(16), **extra,
        })

    # A person with an account, signed out.
    d.get(BASE + "/account/register")
    fill(d, {"name": "Olly", "email": OAUTH_EMAIL, "password": PASSWORD, "password_confirmation": PASSWORD})
    submit(d, "Create account")
    assert path(d) == "/account?notice=registered", path(d)
    submit(d, "Sign out")

    # The application's request, signed out: sign in first, then the consent page.
    state, verifier = secrets.token_urlsafe(16), secrets.token_urlsafe(48)
    d.get(authorize_url(state, verifier))
    assert path(d) == "/account/sign-in?notice=oauth-sign-in", path(d)
    says(d, "Sign in to continue to the application that sent you here.")
    check_page(d, "oauth-sign-in")
    sign_in(d, OAUTH_EMAIL, PASSWORD)
    assert path(d).startswith("/account/oauth/authorize?"), path(d)
    assert d.find_element(By.TAG_NAME, "h1").text == "Allow access?", d.find_element(By.TAG_NAME, "h1").text
    says(d, "Test RP wants to use your account")
    says(d, f"returning you to localhost:{rp_port}")
    scopes = [li.text.strip() for li in d.find_elements(By.CSS_SELECTOR, "#main section ul li")]
    assert sorted(scopes) == ["Know who you are when you sign in", "See your email address"], scopes
    check_page(d, "oauth-consent")

    # Allow, by keyboard: Allow comes before Deny in the tab order.
    passed = tab_to(d, "Allow")
    assert "Deny" not in passed, passed
    back = arrived(d, redirect_uri + "?", lambda: d.switch_to.active_element.send_keys(Keys.ENTER))
    assert back.get("code") and back.get("state") == state and back.get("iss") == issuer, (d.current_url, issuer)
    # The code is a real one: it buys tokens with the verifier.
    status, tokens = post_form(BASE + "/oauth/token", {
        "grant_type": "authorization_code", "code": back["code"], "redirect_uri": redirect_uri,
        "client_id": client_id, "code_verifier": verifier,
    })
    assert status == 200 and tokens.get("id_token") and tokens.get("access_token"), (status, tokens)

    # The same scopes again: the consent is remembered, straight back to the application.
    state = secrets.token_urlsafe(16)
    visit(d, authorize_url(state, secrets.token_urlsafe(48)))
    back = arrived(d, redirect_uri + "?")
    assert back.get("code") and back.get("state") == state and back.get("iss") == issuer, d.current_url

    # prompt=consent asks again; Deny.
    state = secrets.token_urlsafe(16)
    d.get(authorize_url(state, secrets.token_urlsafe(48), prompt="consent"))
    assert path(d).startswith("/account/oauth/authorize?"), path(d)
    says(d, "Test RP wants to use your account")
    back = arrived(d, redirect_uri + "?", pressing(d, "Deny"))
    assert back.get("error") == "access_denied" and back.get("state") == state and "code" not in back, d.current_url
    assert back.get("iss") == issuer, d.current_url

    # RP-initiated logout: the confirmation page, then back to the registered address, signed out.
    state = secrets.token_urlsafe(16)
    d.get(BASE + "/account/oauth/logout?" + urllib.parse.urlencode(
        {"client_id": client_id, "post_logout_redirect_uri": bye_uri, "state": state}))
    assert path(d).startswith("/account/oauth/logout?"), path(d)
    assert d.find_element(By.TAG_NAME, "h1").text == "Sign out?", d.find_element(By.TAG_NAME, "h1").text
    check_page(d, "oauth-logout")
    back = arrived(d, bye_uri, pressing(d, "Sign out"))
    assert urllib.parse.urlsplit(d.current_url).path == "/bye" and back == {"state": state}, d.current_url
    d.get(BASE + "/account")
    assert path(d) == "/account/sign-in", f"still signed in: {d.current_url}"


def heading(d):
    return d.find_element(By.TAG_NAME, "h1").text.strip()


def provider_button(d):
    """The sign-in and register pages' "Continue with Test IdP": one form, posting here."""
    assert d.find_element(By.ID, "fed-h").text.strip() == "Or continue with", d.current_url
    buttons = d.find_elements(By.XPATH, f"//button[normalize-space()='Continue with {IDP_NAME}']")
    assert len(buttons) == 1, f"{d.current_url}: {len(buttons)} 'Continue with {IDP_NAME}' buttons"
    form = buttons[0].find_element(By.XPATH, "./ancestor::form")
    assert form.get_attribute("action") == BASE + "/account/providers/idp", form.get_attribute("action")
    assert form.get_attribute("method") == "post", form.get_attribute("method")


def back_from_idp(d, button_text, login=None):
    """Presses `button_text` ("Continue with Test IdP") and goes through the IdP's own pages: its
    login (when it has no session yet: `login`, any password) and its consent (Continue), until
    the browser is back here. Answers the IdP's pages it saw (none when it remembered both)."""
    page = d.find_element(By.TAG_NAME, "html")
    pressing(d, button_text)()
    try:
        WebDriverWait(d, 15).until(gone(page))
    except TimeoutException:
        blocked = [e["message"] for e in d.get_log("browser") if "Content Security Policy" in e["message"]]
        why = f"; Chromium blocked it: {blocked[-1].split(' - ', 1)[-1].strip()}" if blocked else ""
        raise AssertionError(f"{button_text!r} left the browser at {d.current_url}{why}") from None
    seen = []
    for _ in range(4):
        if d.current_url.startswith(BASE):
            return seen
        assert d.current_url.startswith(IDP + "/interaction/"), f"at the IdP's {d.current_url}"
        if d.find_elements(By.NAME, "login"):
            assert login, f"the IdP asked for a login again: {d.current_url}"
            seen.append("login")
            fill_named(d, {"login": login, "password": "any password at all"})
            submit(d, "Sign-in")
        else:
            seen.append("consent")
            # Continue's answer redirects through the IdP to this site's callback.
            submit(d, "Continue")
    raise AssertionError(f"still at the IdP after {seen}: {d.current_url}")


def fill_named(d, values):
    for name, value in values.items():
        el = d.find_element(By.NAME, name)
        el.clear()
        el.send_keys(value)


def federation_walk(d):
    """"Continue with Test IdP": a new person signs up through the IdP's own pages, their account
    lists the provider, and they sign in with it again."""
    d.get(BASE + "/account/sign-in")
    provider_button(d)
    seen = back_from_idp(d, f"Continue with {IDP_NAME}", FED_LOGIN)
    assert seen == ["login", "consent"], seen
    assert path(d) == "/account", f"{d.current_url}: {heading(d)}: {d.find_element(By.TAG_NAME, 'body').text}"
    says(d, FED_EMAIL)
    badges = [b.text.strip() for b in d.find_elements(By.CSS_SELECTOR, ".badge")]
    assert "verified" in badges, f"the IdP vouched for the address: {badges}"
    connected = d.find_element(By.XPATH, "//section[h2[normalize-space()='Connected accounts']]")
    rows = [li.text for li in connected.find_elements(By.CSS_SELECTOR, "ul.list li")]
    assert len(rows) == 1 and IDP_NAME in rows[0] and FED_EMAIL in rows[0], rows
    assert connected.find_elements(By.XPATH, f".//button[normalize-space()='Disconnect {IDP_NAME}']"), connected.text
    assert not connected.find_elements(By.XPATH, f".//button[normalize-space()='Connect {IDP_NAME}']"), connected.text
    check_page(d, "account-connected")
    submit(d, "Sign out")
    assert path(d) == "/account/sign-in?notice=signed-out", path(d)
    d.get(BASE + "/account")
    assert path(d) == "/account/sign-in", f"still signed in: {d.current_url}"

    # Again: the identity signs in to the same account (the IdP may remember its own session and
    # its consent, then straight back).
    provider_button(d)
    back_from_idp(d, f"Continue with {IDP_NAME}", FED_LOGIN)
    assert path(d) == "/account", f"{d.current_url}: {heading(d)}: {d.find_element(By.TAG_NAME, 'body').text}"
    says(d, FED_EMAIL)
    rows = d.find_elements(By.CSS_SELECTOR, "section[aria-labelledby='ids-h'] ul.list li")
    assert len(rows) == 1, [r.text for r in rows]
    submit(d, "Sign out")
    assert path(d) == "/account/sign-in?notice=signed-out", path(d)


def mailed_sign_in(email, seen):
    """The newest sign-in mail to `email` not among `seen`: its link and its code."""
    for _ in range(300):
        with open(LOG, encoding="utf-8", errors="replace") as f:
            mails = f.read().split("──── mail")
        for mail in reversed(mails):
            to = re.search(r"^To: (\S+)$", mail, re.M)
            found = re.search(r"(http://localhost:\d+/account/email-link\?token=\S+)\s+Or type this code there: (\d{6})", mail)
            if to and to.group(1) == email and found and found.group(1) not in seen:
                seen.add(found.group(1))
                return found.group(1), found.group(2)
        time.sleep(0.1)
    raise AssertionError(f"no sign-in mail to {email} within 30 s")


def ask_for_link(d, email):
    """The sign-in page's "Or get a link by email": to the code page."""
    d.get(BASE + "/account/sign-in")
    assert d.find_element(By.ID, "link-h").text.strip() == "Or get a link by email"
    fill(d, {"link-email": email})
    submit(d, "Email me a sign-in link")
    assert path(d) == "/account/email-link", path(d)
    assert heading(d) == "Check your email", heading(d)
    says(d, "a link and a code are on their way")


def email_link_walk(d, seen):
    """Sign-in by email: the link in the browser that asked (a button, then signed in; spent
    after), and a link forwarded to another browser: it signs no one in there and asks for the
    code, which signs in where the request was made."""
    # A registered person with a verified address, signed out.
    d.get(BASE + "/account/register")
    fill(d, {"name": "Lena", "email": LINK_EMAIL, "password": PASSWORD, "password_confirmation": PASSWORD})
    submit(d, "Create account")
    assert path(d) == "/account?notice=registered", path(d)
    d.get(mailed_link("/account/verify-email/", seen))
    assert path(d) == "/account?notice=verified", path(d)
    submit(d, "Sign out")

    # The link, in the browser that asked: a button (a GET signs no one in), then signed in.
    ask_for_link(d, LINK_EMAIL)
    check_page(d, "email-link-sent")
    link, _ = mailed_sign_in(LINK_EMAIL, seen)
    d.get(link)
    assert path(d) == "/account/email-link", f"the token left the address: {d.current_url}"
    assert heading(d) == "Finish signing in", heading(d)
    says(d, "You asked to sign in from this browser.")
    check_page(d, "email-link-finish")
    d.get(BASE + "/account")
    assert path(d) == "/account/sign-in", f"opening the link signed in: {d.current_url}"
    d.get(link)
    submit(d, "Finish signing in")
    assert path(d) == "/account", f"{d.current_url}: {heading(d)}"
    says(d, LINK_EMAIL)
    # Spent: the same link again does nothing.
    d.get(link)
    assert heading(d) == "This link does not work", heading(d)
    says(d, "already used")
    check_page(d, "email-link-used")
    d.get(BASE + "/account")
    submit(d, "Sign out")

    # Forwarded: the link opened in a fresh browser (another profile, no cookie of the asking
    # one) signs no one in and asks for the code where the request was made.
    ask_for_link(d, LINK_EMAIL)
    link, code = mailed_sign_in(LINK_EMAIL, seen)
    other = browser()
    try:
        other.get(link)
        assert path(other) == "/account/email-link", f"the token left the address: {other.current_url}"
        assert heading(other) == "Use the code instead", heading(other)
        says(other, "asked for in another browser")
        assert not other.find_elements(By.XPATH, "//button[normalize-space()='Finish signing in']"), "a button elsewhere"
        check_page(other, "email-link-other-browser")
        other.get(BASE + "/account")
        assert path(other) == "/account/sign-in", f"the forwarded link signed in: {other.current_url}"
    finally:
        other.quit()
    # The first browser is still on the code page: a wrong code, then the mailed one.
    assert path(d) == "/account/email-link" and heading(d) == "Check your email", d.current_url
    wrong = "%06d" % ((int(code) + 1) % 1_000_000)
    fill(d, {"code": wrong})
    submit(d, "Sign in")
    assert path(d) == "/account/email-link/complete" and heading(d) == "Check your email", d.current_url
    says(d, "This sign-in link or code is invalid")
    check_page(d, "email-link-wrong-code")
    fill(d, {"code": code})
    submit(d, "Sign in")
    assert path(d) == "/account", f"{d.current_url}: {heading(d)}: {d.find_element(By.TAG_NAME, 'body').text}"
    says(d, LINK_EMAIL)
    submit(d, "Sign out")
    assert path(d) == "/account/sign-in?notice=signed-out", path(d)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    seen = set()
    took = {}
    started = time.monotonic()
    d = browser()
    try:
        # Register.
        d.get(BASE + "/account/register")
        provider_button(d)
        check_page(d, "register")
        fill(d, {"name": "Ann", "email": EMAIL, "password": "short", "password_confirmation": "short"})
        submit(d, "Create account")
        says(d, "Please correct")
        assert d.find_element(By.ID, "password").get_attribute("aria-invalid") == "true"
        assert d.find_element(By.ID, "email").get_attribute("value") == EMAIL, "the address is kept"
        assert d.find_element(By.ID, "password").get_attribute("value") == "", "a password is never sent back"
        check_page(d, "register-errors")
        fill(d, {"password": PASSWORD, "password_confirmation": PASSWORD})
        submit(d, "Create account")
        assert path(d) == "/account?notice=registered", path(d)
        says(d, "not verified")
        check_page(d, "account")

        # The verification mail's link, opened signed in: verified, and the address is clean.
        d.get(mailed_link("/account/verify-email/", seen))
        assert path(d) == "/account?notice=verified", path(d)
        says(d, "your email address is verified")

        # Sign out, sign in (a wrong password first).
        submit(d, "Sign out")
        assert path(d) == "/account/sign-in?notice=signed-out", path(d)
        provider_button(d)
        check_page(d, "sign-in")
        fill(d, {"email": EMAIL, "password": "not the password"})
        submit(d, "Sign in")
        says(d, "do not match")
        check_page(d, "sign-in-error")
        fill(d, {"password": PASSWORD})
        submit(d, "Sign in")
        assert path(d) == "/account", path(d)

        # A token: the plaintext shown once, and it works.
        fill(d, {"token-name": "browser", "token-password": PASSWORD})
        submit(d, "Create token")
        token = d.find_element(By.ID, "new-token").text.strip()
        assert token, "the plaintext is shown"
        check_page(d, "account-new-token")
        status, body = get_user(token)
        assert status == 200 and body["user"]["email"] == EMAIL, (status, body)
        d.get(BASE + "/account")
        assert not d.find_elements(By.ID, "new-token"), "shown once only"

        # Forgot, the mailed link, a new password.
        submit(d, "Sign out")
        d.get(BASE + "/account/forgot-password")
        check_page(d, "forgot-password")
        fill(d, {"email": EMAIL})
        submit(d, "Email me a reset link")
        says(d, "If an account exists")
        link = mailed_link("/account/reset-password?", seen)
        d.get(link)
        assert path(d) == "/account/reset-password", f"the token left the address: {d.current_url}"
        says(d, EMAIL)
        check_page(d, "reset-password")
        fill(d, {"password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD})
        submit(d, "Reset password")
        assert path(d) == "/account/sign-in?notice=password-reset", path(d)
        says(d, "Your password has been reset")
        # The link is used up: for another password it is refused. (The same password again
        # within ten minutes is the reset asked again, and is told it happened.)
        d.get(link)
        other = "yet another passphrase for the browser 4242"
        fill(d, {"password": other, "password_confirmation": other})
        submit(d, "Reset password")
        says(d, "invalid or has expired")
        check_page(d, "reset-password-used")

        # Sign in with the new password; the old token is refused.
        d.get(BASE + "/account/sign-in")
        fill(d, {"email": EMAIL, "password": NEW_PASSWORD})
        submit(d, "Sign in")
        assert path(d) == "/account", path(d)
        status, body = get_user(token)
        assert status == 401 and body["error"]["code"] == "unauthenticated", (status, body)

        # Two-factor: set up with the QR page, then a sign-in with a recovery code.
        fill(d, {"tf-password": NEW_PASSWORD})
        submit(d, "Set up two-factor authentication")
        check_page(d, "two-factor-setup")
        secret = d.find_element(By.CSS_SELECTOR, "code.secret").text.strip()
        fill(d, {"code": totp(secret)})
        submit(d, "Turn on")
        codes = [c.text.strip() for c in d.find_elements(By.CSS_SELECTOR, "#recovery-codes code")]
        assert len(codes) == 10, codes
        check_page(d, "two-factor-recovery-codes")
        d.get(BASE + "/account")
        submit(d, "Sign out")
        fill(d, {"email": EMAIL, "password": NEW_PASSWORD})
        submit(d, "Sign in")
        says(d, "authenticator app")
        check_page(d, "two-factor-challenge")
        fill(d, {"recovery_code": codes[0]})
        submit(d, "Use a recovery code")
        assert path(d) == "/account", path(d)

        # New recovery codes: the old ones stop working.
        fill(d, {"rc-password": NEW_PASSWORD})
        submit(d, "Make new recovery codes")
        says(d, "Your old recovery codes no longer work")
        fresh = [c.text.strip() for c in d.find_elements(By.CSS_SELECTOR, "#recovery-codes code")]
        assert len(fresh) == 10 and not set(fresh) & set(codes), (fresh, codes)
        check_page(d, "two-factor-new-recovery-codes")
        d.get(BASE + "/account")

        # A passkey, added from the account page (the virtual authenticator makes it), then a
        # sign-in with it alone, then as the second factor after the password; then removed.
        fill(d, {"pk-name": "Virtual key", "pk-password": NEW_PASSWORD})
        d.find_element(By.XPATH, "//button[normalize-space()='Add a passkey']").click()
        WebDriverWait(d, 15).until(lambda d: "notice=passkey-added" in d.current_url)
        says(d, "Your passkey was added")
        says(d, "Virtual key")
        assert len(d.get_credentials()) == 1, "the authenticator holds one credential"
        check_page(d, "account-passkey")
        submit(d, "Sign out")
        d.find_element(By.XPATH, "//button[normalize-space()='Sign in with a passkey']").click()
        WebDriverWait(d, 15).until(lambda d: path(d) == "/account")
        says(d, EMAIL)
        submit(d, "Sign out")
        fill(d, {"email": EMAIL, "password": NEW_PASSWORD})
        submit(d, "Sign in")
        says(d, "Or use a passkey")
        d.find_element(By.XPATH, "//button[normalize-space()='Use a passkey']").click()
        WebDriverWait(d, 15).until(lambda d: path(d) == "/account")
        fill(d, {"pkr-password": NEW_PASSWORD})
        submit(d, "Remove passkey")
        says(d, "The passkey was removed")
        assert not d.find_elements(By.ID, "passkeys"), "no passkeys listed"

        # Delete the account; it is gone.
        fill(d, {"delete-password": NEW_PASSWORD})
        submit(d, "Delete my account")
        assert path(d) == "/account/sign-in?notice=deleted", path(d)
        says(d, "Your account was deleted")
        fill(d, {"email": EMAIL, "password": NEW_PASSWORD})
        submit(d, "Sign in")
        # The walk-through signed in often this minute: the login limit may ask for a wait first.
        wait = re.search(r"try again in (\d+) seconds?", d.find_element(By.TAG_NAME, "body").text)
        if wait:
            time.sleep(int(wait.group(1)) + 1)
            fill(d, {"email": EMAIL, "password": NEW_PASSWORD})
            submit(d, "Sign in")
        says(d, "do not match")

        took["accounts"] = time.monotonic() - started

        # The OAuth provider's pages, signed out with a fresh account.
        oauth_walk(d)
        took["OAuth"] = time.monotonic() - started - sum(took.values())

        # "Continue with Test IdP", through the IdP's own pages.
        federation_walk(d)
        took["Continue with"] = time.monotonic() - started - sum(took.values())

        # Sign-in by email: the link where it was asked for, and forwarded.
        email_link_walk(d, seen)
        took["email link"] = time.monotonic() - started - sum(took.values())
    except Exception:
        d.save_screenshot(os.path.join(SHOTS, "failure.png"))
        print("browser: failed on", d.current_url, file=sys.stderr)
        raise
    finally:
        d.quit()
    if violations:
        print("axe: serious or critical violations:\n  " + "\n  ".join(violations), file=sys.stderr)
        sys.exit(1)
    parts = ", ".join(f"{name} {t:.0f} s" for name, t in took.items())
    print(f"browser: every step passed in {time.monotonic() - started:.0f} s ({parts}); screenshots in {SHOTS}")


if __name__ == "__main__":
    main()
