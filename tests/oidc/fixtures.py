"""A real OpenID Connect provider for the tests: panva's oidc-provider (npm, pinned in
package-lock.json beside this file) run by Node.js on a free localhost port.

`oidc_provider` (one per test module) knows the hospital's people (PEOPLE); each test's clinic
registers the portal as a client with its own redirect URI (`register_client`), as a hospital's
IT department registers the portal. `sign_in_through_provider` walks the sign-in as a browser
does: the portal's page sends the person to the provider, the provider's log-in form takes the
login and password, and the provider sends them back to the portal's callback with a code,
which the portal exchanges with the provider over HTTP.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests

HERE = Path(__file__).resolve().parent
HOSPITAL_PASSWORD = "hospital-password-1"

# The hospital's directory. `amr` is what the provider reports for the person's sign-in.
PEOPLE = [
    {
        "login": "doctor@vienna.example",
        "sub": "hosp-0001",
        "email": "doctor@vienna.example",
        "email_verified": True,
        "amr": ["pwd", "otp"],
        "groups": ["derm-doctors"],
        "name": "Dr Eva Gruber",
    },
    {
        "login": "staff@vienna.example",
        "sub": "hosp-0002",
        "email": "staff@vienna.example",
        "email_verified": True,
        "amr": ["pwd"],
        "groups": ["ward-staff"],
    },
    {
        # A provider that reports no amr at all.
        "login": "admin@vienna.example",
        "sub": "hosp-0003",
        "email": "admin@vienna.example",
        "email_verified": True,
    },
    {
        "login": "newcomer@vienna.example",
        "sub": "hosp-0004",
        "email": "newcomer@vienna.example",
        "email_verified": True,
        "amr": ["pwd", "otp"],
        "name": "Jana Novak",
        "groups": ["derm-doctors"],
    },
    {
        "login": "unverified@vienna.example",
        "sub": "hosp-0005",
        "email": "unverified@vienna.example",
        "email_verified": False,
        "amr": ["pwd"],
    },
    {
        # Another clinic's doctor, as clinic A's provider might (wrongly or maliciously) say.
        "login": "staff@graz.example",
        "sub": "hosp-0006",
        "email": "staff@graz.example",
        "email_verified": True,
        "amr": ["pwd", "otp"],
    },
    {
        "login": "someone@mail.example",
        "sub": "hosp-0007",
        "email": "someone@mail.example",
        "email_verified": True,
        "amr": ["pwd"],
    },
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_node_modules() -> None:
    """`npm ci` from the committed lock file when node_modules is missing (CI, a fresh clone)."""
    if (HERE / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("needs Node.js and npm for the OpenID Connect provider (tests/oidc)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=300)


class OidcProvider:
    def __init__(self, tmp: Path, *, clock_offset_s: int = 0) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.config = tmp / f"oidc-{self.port}.json"
        self.log = tmp / f"oidc-{self.port}.log"
        people = [{**person, "password": HOSPITAL_PASSWORD} for person in PEOPLE]
        self.config.write_text(
            json.dumps({"port": self.port, "accounts": people, "clock_offset_s": clock_offset_s})
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> OidcProvider:
        ensure_node_modules()
        self.process = subprocess.Popen(
            [shutil.which("node") or "node", str(HERE / "provider.mjs"), str(self.config)],
            cwd=HERE,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited:\n{self.log.read_text()}")
            try:
                requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"the OIDC provider did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """Register the portal (dynamic client registration); returns (client id, secret)."""
        response = requests.post(
            f"{self.issuer}/reg",
            json={
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_post",
            },
            timeout=10,
        )
        response.raise_for_status()
        body = response.json()
        return body["client_id"], body["client_secret"]


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory) -> Iterator[OidcProvider]:
    provider = OidcProvider(tmp_path_factory.mktemp("oidc")).start()
    yield provider
    provider.stop()


def callback_path(clinic_id: int) -> str:
    return f"/accounts/oidc/clinic-{clinic_id}/login/callback/"


def sign_in_through_provider(client, clinic_id: int, login: str, password=HOSPITAL_PASSWORD):
    """Sign in with the clinic's hospital sign-in on Django's test `client`; returns the
    portal's answer to the provider's redirect back (the callback)."""
    start = f"/accounts/oidc/clinic-{clinic_id}/login/"
    assert client.get(start).status_code == 200  # the "continue to your hospital" page
    to_provider = client.post(start)
    assert to_provider.status_code == 302, to_provider.content[:500]
    url = to_provider["Location"]
    browser = requests.Session()
    for _ in range(10):
        answer = browser.get(url, allow_redirects=False, timeout=10)
        if answer.status_code == 200 and 'name="login"' in answer.text:
            form_url = urljoin(url, f"/interaction/{urlsplit(answer.url).path.split('/')[2]}/login")
            answer = browser.post(
                form_url,
                data={"login": login, "password": password},
                allow_redirects=False,
                timeout=10,
            )
        assert answer.status_code in (302, 303), answer.text[:500]
        url = urljoin(url, answer.headers["Location"])
        parts = urlsplit(url)
        if parts.netloc == "testserver":
            return client.get(f"{parts.path}?{parts.query}")
    raise AssertionError("the provider never sent the browser back to the portal")
