#!/usr/bin/env python3
"""A small example client of the Melanoma Portal REST API (needs only `requests`).

It signs in, uploads a dermoscopic image to a lesion, polls the analysis until it is done,
failed or not analysed (the image gate refused the image), and prints it. Two ways to sign in:

- as a person, the way the mobile app does (JWT): e-mail, password and, when the account has
  an authenticator app, a current code. The portal answers with an access token valid for
  minutes and a refresh token valid for days; this client renews the access token before it
  expires (each renewal also replaces the refresh token: keep only the newest, a used one
  presented again ends the sign-in) and signs out at the end.

    export PORTAL_PASSWORD=...              # or --password
    python docs/api-client.py --base-url https://portal.example --email eva@clinic.example \
        --code 123456 --lesion 12 photo.jpg

- as an integration, with an API token a clinic admin issued under /clinic/api-tokens/ (valid
  for the days they chose; it starts `mp_`):

    export PORTAL_API_TOKEN=...             # or --token
    python docs/api-client.py --base-url https://portal.example --lesion 12 photo.jpg

An expired or revoked token, a wrong password or code, fails at once with the API's reason.

Exit status: 0 when the analysis is done, 2 when it failed or the image was not analysed (the
reason is printed), 1 for any other error (bad token, rejected upload, timeout), with the API's
message.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

FINAL = {"done", "failed", "not_analysed"}


class ApiError(Exception):
    pass


def _check(response: requests.Response) -> dict:
    """The JSON body, or ApiError with the API's own message (it is written for people)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        message = body.get("message") or response.text[:200] or response.reason
        raise ApiError(f"HTTP {response.status_code}: {message}")
    return body


class JwtSession(requests.Session):
    """A session signed in as a person with a JWT pair, renewing the access token shortly
    before it expires (POST /api/v1/auth/token/refresh/ rotates the refresh token too)."""

    MARGIN_S = 30

    def __init__(self, base_url: str, email: str, password: str, code: str = "") -> None:
        super().__init__()
        self.base_url = base_url
        body = {"email": email, "password": password}
        if code:
            body["code"] = code
        self._use(_check(super().request("POST", f"{base_url}/api/v1/auth/token/", json=body)))

    def _use(self, pair: dict) -> None:
        self.refresh_token = pair["refresh"]
        self.access_expires = datetime.fromisoformat(pair["access_expires"])
        self.headers["Authorization"] = f"Bearer {pair['access']}"

    def renew(self) -> None:
        url = f"{self.base_url}/api/v1/auth/token/refresh/"
        self._use(_check(super().request("POST", url, json={"refresh": self.refresh_token})))

    def request(self, method, url, *args, **kwargs):
        left = (self.access_expires - datetime.now(UTC)).total_seconds()
        if left < self.MARGIN_S:
            self.renew()
        return super().request(method, url, *args, **kwargs)

    def sign_out(self) -> None:
        url = f"{self.base_url}/api/v1/auth/token/sign-out/"
        super().request("POST", url, json={"refresh": self.refresh_token}, timeout=30)


def whoami(session: requests.Session, base_url: str) -> None:
    """Check the token before uploading: a bad one fails here with a clear message."""
    _check(session.get(f"{base_url}/api/v1/analyses/", timeout=30))


def upload(session: requests.Session, base_url: str, lesion: int, image: Path) -> dict:
    with image.open("rb") as handle:
        response = session.post(
            f"{base_url}/api/v1/lesions/{lesion}/images/",
            files={"file": (image.name, handle)},
            timeout=120,
        )
    body = _check(response)
    if response.status_code != 202:
        raise ApiError(f"expected 202 Accepted, got {response.status_code}")
    return body


def wait(session: requests.Session, status_url: str, *, timeout: float, interval: float) -> dict:
    """Ask with ?wait=: the server answers as soon as the status changes (or after 20 s), so
    asking again at once sees the result within ~0.1 s of it being stored. When it answered
    without waiting (X-Status-Held: 0, its waiting places taken), pause `interval` first."""
    deadline = time.monotonic() + timeout
    while True:
        response = session.get(status_url, params={"wait": 20}, timeout=60)
        analysis = _check(response)
        if analysis["status"] in FINAL:
            return analysis
        if time.monotonic() > deadline:
            raise ApiError(f"no result after {timeout:.0f}s (status: {analysis['status']})")
        if float(response.headers.get("X-Status-Held", "0")) <= 0:
            time.sleep(interval)


def describe(analysis: dict) -> str:
    lines = [f"Analysis {analysis['id']}: {analysis['status']}"]
    if analysis["status"] == "failed":
        lines.append(f"Reason: {analysis['failure_reason']}")
        return "\n".join(lines)
    if analysis["status"] == "not_analysed":
        refusal = analysis["not_analysed"]
        lines += [refusal["headline"], f"What to do: {refusal['advice']}"]
        return "\n".join(lines)
    result = analysis["result"]
    if result.get("outside_validated_use"):
        lines.append(result["outside_validated_use"]["text"])
    lines.append(f"Top class: {result['top_class_name']} ({result['top_class']})")
    if result.get("triage"):
        lines.append(f"Triage: {result['triage']['text']}")
    else:
        lines.append(f"Risk tier: {result['risk_tier']}")
    lines += [
        f"Melanoma probability: {result['melanoma_probability']:.1%}",
        f"Model version: {result['model_version']}",
        "Probabilities:",
    ]
    ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
    for code, probability in ranked:
        name = result["class_names"].get(code, code)
        lines.append(f"  {name:<40} {probability:6.1%}")
    lines.append(analysis["disclaimer"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("image", type=Path, help="a JPEG or PNG dermoscopic image")
    parser.add_argument("--lesion", type=int, required=True, help="the lesion's id")
    parser.add_argument("--base-url", default=os.environ.get("PORTAL_URL", "http://localhost:8000"))
    parser.add_argument("--token", default=os.environ.get("PORTAL_API_TOKEN"))
    parser.add_argument("--email", help="sign in as this person (JWT) instead of with a token")
    parser.add_argument("--password", default=os.environ.get("PORTAL_PASSWORD"))
    parser.add_argument("--code", default="", help="a code from the authenticator app")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for a result")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    args = parser.parse_args(argv)
    if not args.token and not args.email:
        parser.error("no credentials: pass --email (and --password) or --token")
    base_url = args.base_url.rstrip("/")
    try:
        if args.email:
            session = JwtSession(base_url, args.email, args.password or "", args.code)
        else:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {args.token}"
        whoami(session, base_url)
        started = time.monotonic()
        accepted = upload(session, base_url, args.lesion, args.image)
        print(f"Uploaded; analysis {accepted['analysis_id']} is {accepted['status']}.", flush=True)
        analysis = wait(
            session, accepted["status_url"], timeout=args.timeout, interval=args.interval
        )
    except (ApiError, requests.RequestException, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    if isinstance(session, JwtSession):
        session.sign_out()
    print(describe(analysis))
    print(f"Upload to result: {time.monotonic() - started:.2f}s")
    return 0 if analysis["status"] == "done" else 2


if __name__ == "__main__":
    sys.exit(main())
