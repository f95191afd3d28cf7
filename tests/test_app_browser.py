"""End to end in a real headless Chromium: start ``streamlit run`` on a free port, open every
page, check a Plotly chart rendered, and save the screenshots used by docs/app.md.

Needs the Debian packages ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``,
``/usr/bin/chromedriver``); Selenium is pointed at them, so nothing downloads a browser.
Screenshots go to ``docs/images/app_<page>.png`` (palette PNGs, < 300 KB), or to
``$SSABNET_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("SSABNET_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("SSABNET_CHROMEDRIVER", "/usr/bin/chromedriver"))
REPO = Path(__file__).resolve().parents[1]
#: url path -> (screenshot name, CSS selector that proves the page rendered its chart,
#: which match of it to scroll to the top of the screenshot)
PAGES = {
    "": ("overview", '[data-testid="stMetric"]', 0),
    "Runs": ("runs", ".js-plotly-plot", 1),
    "Compare": ("compare", ".js-plotly-plot", 1),
    "Feature_maps": ("feature_maps", '[data-testid="stImage"]', 0),
    "SABL_curves": ("sabl_curves", ".js-plotly-plot", 0),
    "Error_analysis": ("error_analysis", ".js-plotly-plot", 0),
}
MAX_PNG_BYTES = 300_000
#: url path -> sections shot after the page screenshot: (name, XPath of the element scrolled to
#: the top, CSS selector that must exist inside the page once it rendered)
SECTIONS = {
    "Error_analysis": [
        (
            "error_taxonomy",
            "//h3[contains(., 'TIDE error types per object size')]",
            ".js-plotly-plot",
        ),
        (
            "error_fp_gallery",
            "//h3[contains(., 'False positives by type and size')]",
            '[data-testid="stImage"]',
        ),
        (
            "error_missed",
            "//h3[contains(., 'Missed objects (smallest first)')]",
            '[data-testid="stImage"]',
        ),
        (
            "error_missed_by_a_found_by_b",
            "//h3[contains(., 'Missed by one run, found by')]",
            '[data-testid="stImage"]',
        ),
        (
            "error_pr_confusion",
            "//h3[contains(., 'Per-class PR curves and confusion matrix')]",
            ".js-plotly-plot",
        ),
    ],
    "SABL_curves": [
        ("sabl_mu", "(//div[contains(@class, 'js-plotly-plot')])[3]", ".js-plotly-plot"),
    ],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(port: int, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"streamlit did not answer on port {port} within {timeout} s")


def _save_small_png(png: bytes, path: Path) -> int:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB").quantize(colors=96)
        buffer = io.BytesIO()
        small.save(buffer, format="PNG", optimize=True)
    path.write_bytes(buffer.getvalue())
    return len(buffer.getvalue())


@pytest.mark.slow
def test_every_page_renders_in_chromium(demo_runs, tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)"
        )
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from ssabnet.app_launcher import start_app

    shots = Path(os.environ.get("SSABNET_SCREENSHOT_DIR", REPO / "docs" / "images"))
    shots.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = (tmp_path / "streamlit.log").open("w")
    server = start_app(
        demo_runs,
        str(demo_runs / "data" / "val"),
        port=port,
        compare=["baseline-n", "ssabnet-n"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--window-size=1280,1200",
        f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        options.add_argument(flag)
    driver = None
    try:
        _wait_healthy(port, server)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        for url_path, (name, selector, shown) in PAGES.items():
            driver.get(f"http://127.0.0.1:{port}/{url_path}")
            wait = WebDriverWait(driver, 90)
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, selector)))
            # the script has finished when Streamlit's status widget is gone
            wait.until(
                lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
            )
            time.sleep(1.0)  # let Plotly finish drawing
            body = driver.find_element(By.TAG_NAME, "body").text
            assert "Traceback" not in body, f"{name}: {body[:500]}"
            found = driver.find_elements(By.CSS_SELECTOR, selector)
            assert found, name
            if url_path:  # every analysis page draws at least one Plotly chart
                assert driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg"), name
            target = found[min(shown, len(found) - 1)]
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", target)
            time.sleep(0.5)
            size = _save_small_png(driver.get_screenshot_as_png(), shots / f"app_{name}.png")
            assert size < MAX_PNG_BYTES, (name, size)
            for section, xpath, needed in SECTIONS.get(url_path, []):
                assert driver.find_elements(By.CSS_SELECTOR, needed), (section, needed)
                heading = driver.find_element(By.XPATH, xpath)
                driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", heading)
                time.sleep(0.5)
                png = driver.get_screenshot_as_png()
                size = _save_small_png(png, shots / f"app_{section}.png")
                assert size < MAX_PNG_BYTES, (section, size)
            if url_path == "Error_analysis":  # galleries drew crops; the new charts are there
                charts = driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")
                assert len(charts) >= 5, len(charts)  # ΔAP, counts, outcomes, PR, confusion
                assert "TIDE error types per object size" in body
                assert "F1-optimal threshold" in body
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
