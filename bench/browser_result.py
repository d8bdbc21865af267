"""Upload-to-result as a person sees it: headless Chromium uploads an image through the upload
page and the time is taken until the result is on the screen.

    .venv/bin/python bench/browser_result.py                      # 10 uploads, today's page
    .venv/bin/python bench/browser_result.py --before be7c9dc     # and the page of that commit,
                                                                  # alternating, in one run

The portal runs as production does, started and torn down by bench/load.py's Portal: nginx
with TLS in front of gunicorn (bin/serve-nginx), the production settings, PostgreSQL (its own
database), Redis, one Celery worker process. Chromium (Debian's, /usr/bin/chromium with
/usr/bin/chromedriver) signs in, opens the upload page, picks the file and presses Upload; from
that moment until the page showing the result is first painted (the browser's own paint timing)
is "submit to result on screen". "Stored to result on screen" is from the analysis's
finished_at (the worker's commit) to the same moment, split into the wait until the page began
to reload (the script learning of the result) and the reload's response; "with images" is when
the page had also loaded the lesion's image and the heatmaps.

With --before REV the result page's script of that commit (static/js/analysis_status.js) is
served for every other upload, so the two are measured side by side under the same load; the
browser's cache is off, so each page load fetches whichever script is on disk.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from load import ROOT, SAMPLES, Portal, cpu_line, seed, summary

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,1200",
    "--ignore-certificate-errors",  # bin/serve-nginx's certificate is self-signed
)
SCRIPT = "js/analysis_status.js"
SHOWN = (
    "return document.getElementById('top-class') || document.getElementById('failure-reason')"
    " ? 1 : 0"
)


def distinct_pictures(folder: Path, count: int) -> list[Path]:
    """The shipped samples, flipped and turned: as many pictures as asked, none of which the
    duplicate check takes for another (its difference hash is neither flip- nor turn-proof),
    so no upload stops at the "already uploaded" warning."""
    from PIL import Image

    turns = [None, *Image.Transpose]
    folder.mkdir(parents=True, exist_ok=True)
    if count > len(SAMPLES) * len(turns):
        sys.exit(f"at most {len(SAMPLES) * len(turns)} distinct pictures")
    pictures = []
    for index in range(count):
        sample, turn = SAMPLES[index % len(SAMPLES)], turns[index // len(SAMPLES)]
        path = folder / f"{index}-{sample.name}"
        with Image.open(sample) as image:
            (image.transpose(turn) if turn is not None else image).save(path, quality=92)
        pictures.append(path)
    return pictures


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    return driver


def sign_in(driver, base: str, email: str, password: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/accounts/login/")
    driver.find_element(By.NAME, "login").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 30).until(ec.none_of(ec.url_contains("/accounts/login/")))


@dataclass
class Timing:
    """Epoch seconds of one upload through the page, as the browser saw them."""

    submitted: float
    began: float  # the page that shows the result began to load
    answered: float  # its response had arrived
    painted: float  # it was first painted, with the result
    loaded: float  # with its images


def upload_once(driver, base: str, patient: int, lesion: int, sample: Path, timeout: float):
    """Upload through the page, wait for the result on it; the timing and the analysis."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from diagnosis.models import Analysis

    driver.get(f"{base}/patients/{patient}/upload/")
    Select(driver.find_element(By.NAME, "lesion")).select_by_value(str(lesion))
    driver.find_element(By.NAME, "image").send_keys(str(sample))
    submitted = time.time()
    driver.find_element(By.ID, "upload-button").click()
    while True:
        try:
            if driver.execute_script(SHOWN):
                loaded = time.time()
                break
        except WebDriverException:  # noqa: S110 - the page is being replaced: look again
            pass
        if time.time() - submitted > timeout:
            raise SystemExit(f"no result on the page after {timeout:.0f} s: {driver.current_url}")
        time.sleep(0.005)
    analysis_id = int(driver.current_url.rstrip("/").rsplit("/", 1)[-1])
    # The browser's own timing of the page that shows the result (epoch seconds): when it
    # began to load (the reload the script asked for), when its response had arrived, and when
    # it was first painted, result included (it is in the HTML). `loaded` above, when the
    # driver could look, is later: it waits for the page's images (the lesion, the heatmaps).
    began, answered, painted = driver.execute_script(
        "const o = performance.timeOrigin, n = performance.getEntriesByType('navigation')[0];"
        "const p = performance.getEntriesByName('first-contentful-paint')[0];"
        "return [o / 1000, (o + n.responseEnd) / 1000,"
        " (o + (p ? p.startTime : n.domContentLoadedEventEnd)) / 1000];"
    )
    return Timing(submitted, began, answered, painted, loaded), Analysis.objects.get(pk=analysis_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="uploads per page version")
    parser.add_argument("--before", metavar="REV", help="also measure this commit's page script")
    parser.add_argument("--port", type=int, default=18160, help="HTTPS; +1 HTTP, +2 gunicorn")
    parser.add_argument("--database", default="browser_bench")
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--redis-db", type=int, default=12, help="broker; the cache uses +1")
    parser.add_argument("--web-workers", type=int, default=0)
    parser.add_argument("--worker-processes", type=int, default=1)
    args = parser.parse_args()
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        sys.exit(f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)")
    variants = {"today": (ROOT / "static" / SCRIPT).read_text()}
    if args.before:
        variants["before"] = subprocess.run(  # noqa: S603 - git, fixed arguments
            ["git", "show", f"{args.before}:static/{SCRIPT}"],  # noqa: S607
            cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip

    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    portal = Portal(args, nginx=True)
    os.environ.update(portal.env)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"CPU: {cpu_line()}")
    print("This machine's CPU is shared with other jobs: figures are noisy.")
    driver = None
    try:
        portal.create_database()
        clinic = seed(1)
        portal.start()
        from tests import factories

        samples = distinct_pictures(portal.run_dir / "pictures", len(variants) * args.runs + 1)
        served = portal.run_dir / "static" / SCRIPT
        driver = browser()
        sign_in(driver, portal.base, clinic.staff_email, factories.PASSWORD)
        patient, lesion = clinic.patients[0][0], clinic.lesions[0]
        # The worker loads the model on its first analysis: not measured.
        *_, first = upload_once(driver, portal.base, patient, lesion, samples[0], args.timeout)
        print(f"warm-up upload: {first.status}")

        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
        for index in range(args.runs):
            for offset, (name, script) in enumerate(variants.items()):
                served.write_text(script)
                sample = samples[1 + index * len(variants) + offset]
                t, analysis = upload_once(
                    driver, portal.base, patient, lesion, sample, args.timeout
                )
                stored = analysis.finished_at.timestamp()
                results[name].append(
                    (
                        t.painted - t.submitted,
                        stored - t.submitted,
                        t.painted - stored,
                        t.began - stored,
                        t.answered - t.began,
                        t.loaded - stored,
                    )
                )
        for name, rows in results.items():
            label = f"{name} ({args.before})" if name == "before" else name
            print(f"\n== result page script: {label}, {len(rows)} uploads one at a time")
            print(f"submit to result on screen:   {summary([r[0] for r in rows])}")
            print(f"submit to result stored:      {summary([r[1] for r in rows])}")
            print(f"stored to result on screen:   {summary([r[2] for r in rows], 'ms')}")
            print(f"  stored to reload begun:     {summary([r[3] for r in rows], 'ms')}")
            print(f"  reload to page received:    {summary([r[4] for r in rows], 'ms')}")
            print(f"stored to page with images:   {summary([r[5] for r in rows], 'ms')}")
    finally:
        if driver is not None:
            driver.quit()
        portal.stop()
        portal.drop()


if __name__ == "__main__":
    main()
