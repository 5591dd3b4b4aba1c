"""A report opened in headless Chromium, for the browser tests, benchmarks/bench_report.py and
scripts/report_demo.py: Debian's chromium and chromium-driver driven by Selenium (the test extra).
The CLI never imports this module.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--hide-scrollbars",
)


def available() -> bool:
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


def chromium(width: int = 1400, height: int = 1000, *, logs: bool = False) -> Any:
    """A Selenium WebDriver on headless Chromium with a ``width`` x ``height`` window; ``logs``
    keeps the console (``get_log("browser")``) and the network events (``get_log("performance")``)."""
    # selenium is in the test extra only: imported here, so that this module imports without it
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def wait_for(driver: Any, script: str, timeout: float = 10.0) -> Any:
    """Run ``script`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for: {script}")


def open_report(driver: Any, page: Path) -> None:
    """Load the report and wait until its script has drawn the table."""
    driver.get(page.as_uri())
    wait_for(driver, "return document.body && document.body.dataset.ready === 'true'")
