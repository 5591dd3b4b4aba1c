"""The HTML report in a real browser: headless Chromium (Debian's chromium and chromium-driver, which
.ci/run installs) driven by Selenium, on a report made by a real `radn batch --report` with the
shipped weights.

Checked: no console errors and no request leaving the report's folder, sorting and filtering change
the rows, a click opens the two images and the heatmap, a screenshot has content, and file names
with spaces, quotes, HTML and a `</script>` stay text.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image, ImageStat
from test_cli import run
from test_report import INJECTED, ODD_NAME, make_study, write_results

from radn_cli.report.browser import available, chromium, open_report, wait_for

pytestmark = [
    pytest.mark.heavy,  # a browser
    pytest.mark.shipped,
    pytest.mark.skipif(
        not available(),
        reason="headless browser tests need Debian's chromium and chromium-driver "
        "(/usr/bin/chromium, /usr/bin/chromedriver; .ci/run installs them)",
    ),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report of the study of test_report.make_study, made by `radn batch --report`."""
    from radn_cli.weights import shipped_weights_path

    root = tmp_path_factory.mktemp("browser")
    pairs = make_study(root / "study")
    page = root / "report.html"
    args = ("batch", "--pairs", pairs, "-o", root / "scores.csv", "--report", page)
    result = run(*args, "--weights", shipped_weights_path())
    assert result.exit_code == 1 and "radn: report of 8 pairs (5 with a heatmap)" in result.stderr, (
        result.output
    )
    return page


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("selenium", reason="selenium (the test extra) is not installed")
    driver = chromium(logs=True)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, report):
    """The report freshly opened, its script done; the logs emptied."""
    browser.get_log("performance")
    open_report(browser, report)
    return browser


def requests(driver) -> list[str]:
    """The URLs the page asked for since the last call (Chrome's network log)."""
    events = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [
        event["params"]["request"]["url"]
        for event in events
        if event["method"] == "Network.requestWillBeSent"
    ]


def errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def cells(driver, column: int, table: str = "#pairs-table") -> list[str]:
    return driver.execute_script(
        f"return Array.from(document.querySelectorAll('{table} tbody tr'))"
        f".map(tr => tr.cells[{column}].textContent)"
    )


def click_header(driver, key: str) -> None:
    driver.execute_script(f"document.querySelector('#pairs-table th button[data-key=\"{key}\"]').click()")


def test_page_loads_without_console_errors_or_requests_outside_its_folder(page, report):
    assert errors(page) == []
    assert page.title == "radn report: scores.csv"
    assert page.execute_script("return document.getElementById('count').textContent") == "8 of 8 pairs"
    wait_for(page, "return Array.from(document.images).every(img => !img.src || img.complete)")
    folder = report.with_name("report_files").as_uri() + "/"
    requested = requests(page)
    assert requested[0] == report.as_uri() and len(requested) > 3, requested
    assert all(url.startswith(folder) for url in requested[1:]), requested
    links = page.execute_script(
        "return Array.from(document.querySelectorAll('[src], [href]'))"
        ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
    )
    assert links and all(urlparse(link).scheme == "" and not link.startswith("/") for link in links), links


def test_sorting_changes_the_order_of_the_rows(page):
    scores = [float(text) for text in cells(page, 3) if text != "failed"]
    assert scores == sorted(scores) and len(set(scores)) == 5  # worst first: higher is better
    click_header(page, "s")
    again = [float(text) for text in cells(page, 3) if text != "failed"]
    assert again == sorted(scores, reverse=True)
    click_header(page, "dist")
    paths = cells(page, 6)
    assert paths == sorted(paths, key=str.casefold)
    assert errors(page) == []


def test_filters_change_the_row_count(page):
    def count() -> int:
        return len(page.find_elements("css selector", "#pairs-table tbody tr"))

    assert count() == 8
    search = page.find_element("id", "filter")
    search.send_keys("ref 0")
    assert count() == 5 and all("ref 0" in ref for ref in cells(page, 7))
    page.execute_script(
        "const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input'))"
    )
    assert count() == 8
    from selenium.webdriver.support.select import Select

    Select(page.find_element("id", "method-filter")).select_by_value("blur<script>")
    assert count() == 3 and set(cells(page, 5)) == {"blur<script>"}
    Select(page.find_element("id", "method-filter")).select_by_value("")
    Select(page.find_element("id", "status-filter")).select_by_value("failed")
    assert count() == 3 and set(cells(page, 3)) == {"failed"}
    assert errors(page) == []


def test_a_click_shows_both_images_and_the_heatmap(page, tmp_path):
    page.find_elements("css selector", "#pairs-table tbody tr")[0].click()
    wait_for(page, "return document.getElementById('detail').open")
    sizes = wait_for(
        page,
        "const ids = ['detail-ref', 'detail-dist', 'detail-heat'];"
        "const w = ids.map(id => document.getElementById(id).naturalWidth);"
        "return w.every(x => x > 0) && w",
    )
    assert sizes == [96, 96, 96]  # the heatmap is the distorted view coloured; its legend is text
    caption = page.find_element("id", "detail-heat-caption").text
    method = cells(page, 5)[0]  # the first row's method folder
    assert method and caption.startswith("patch score heatmap of ") and f"{method} / " in caption
    assert page.find_element("id", "detail-dist-caption").text.startswith(f"distorted (method {method}): ")
    legend = page.find_element("id", "detail-legend")
    assert legend.is_displayed()
    assert page.find_element("id", "legend-label").text.startswith("patch score (fixed range")
    ends = [page.find_element("id", f"legend-{end}").text for end in ("low", "mid", "high")]
    assert ends == ["1", "3", "5"]  # the shipped weights' score scale
    size = "return parseFloat(getComputedStyle(document.getElementById('legend-label')).fontSize)"
    assert page.execute_script(size) >= 12  # text at reading size, not shrunk with a picture
    shot = tmp_path / "detail.png"
    assert page.save_screenshot(str(shot))
    picture = Image.open(io.BytesIO(shot.read_bytes())).convert("L")
    assert picture.size[0] >= 1000 and max(ImageStat.Stat(picture).stddev) > 20  # not blank
    page.find_element("id", "detail-close").click()
    assert not page.execute_script("return document.getElementById('detail').open")
    assert errors(page) == []


def test_odd_file_names_and_failed_rows_are_text(page):
    assert page.execute_script("return document.querySelectorAll('script').length") == 2
    assert page.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    paths = cells(page, 6)
    assert any(path.endswith(f"/blur<script>/{ODD_NAME}") for path in paths)
    assert any(path.endswith(f"/results/{INJECTED}") for path in paths)
    assert any('/noise "a"/' in path for path in paths)
    failures = page.execute_script(
        "return Array.from(document.querySelectorAll('#failures li')).map(li => li.textContent)"
    )
    assert len(failures) == 3 and any(INJECTED in text for text in failures)
    failed = [tr for tr in page.find_elements("css selector", "#pairs-table tbody tr") if "failed" in tr.text]
    failed[-1].click()
    wait_for(page, "return document.getElementById('detail').open")
    assert page.find_element("id", "detail-error").is_displayed()
    assert page.find_element("id", "detail-heat-caption").text == "no heatmap: the pair was not scored"
    assert errors(page) == []


def test_each_reference_lists_its_versions_best_first(page):
    from selenium.webdriver.support.select import Select

    options = [option.text for option in Select(page.find_element("id", "ref-select")).options]
    assert len(options) == 2 and options[0].endswith("ref 0.png (5)")
    assert cells(page, 0, "#ref-table") == ["1", "2", "3", "\u2013", "\u2013"]
    Select(page.find_element("id", "ref-select")).select_by_index(1)
    assert len(page.find_elements("css selector", "#ref-table tbody tr")) == 3


def test_each_weights_and_precision_is_ranked_apart(browser, tmp_path):
    """A resumed CSV holding a pair under two weights: the per-reference list has one entry per
    weights, and ranks count the versions of one weights only."""
    from selenium.webdriver.support.select import Select

    rows = [
        ("r.png", "a.png", 3.0, "w@1", ""),
        ("r.png", "b.png", 4.0, "w@1", ""),
        ("r.png", "a.png", 1.0, "w@2", ""),
    ]
    scores, report = write_results(tmp_path / "scores.csv", rows), tmp_path / "report.html"
    result = run("report", scores, "-o", report, "--no-heatmaps")
    assert result.exit_code == 0, result.output
    browser.get_log("browser")
    open_report(browser, report)
    options = [option.text for option in Select(browser.find_element("id", "ref-select")).options]
    assert options == ["r.png (w@1, fp32) (2)", "r.png (w@2, fp32) (1)"]
    assert sorted(cells(browser, 4)) == ["1 of 1", "1 of 2", "2 of 2"]
    assert cells(browser, 0, "#ref-table") == ["1", "2"]
    assert errors(browser) == []


def test_the_method_table_sorts(page):
    def names() -> list[str]:
        return cells(page, 0, "#method-table")

    first = names()
    assert len(first) == 3 and first[-1] == "x<"  # the method with only a failure comes last
    page.execute_script("document.querySelector('#method-table th button').click()")
    assert names() == sorted(first, key=str.casefold) and names() != first
