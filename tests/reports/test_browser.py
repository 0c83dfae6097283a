"""The pages in a real browser: headless Chromium opens them from file:// and runs their script.

Without Chromium these tests skip, except under CI=true, where they fail
(.ci/run installs Debian's `chromium`). Screenshots are written under the
test's tmp dir and, when GRADFUZZ_KEEP_SCREENSHOTS is set, copied to
reports-screenshots/ at the repository root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from matplotlib.image import imread

from reports import render_history, render_site
from reports_testkit import parse_html, section, table_rows

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail("chromium is not installed, and CI must run the browser tests (.ci/run installs it)",
                    pytrace=False)
    pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI runs these tests")


@pytest.fixture
def chromium(chromium_binary, tmp_path_factory):
    """``chromium(page, *flags, query="")`` runs headless Chromium on ``file://page?query``."""
    def run(page: Path, *flags: str, query: str = "") -> str:
        profile = tmp_path_factory.mktemp("chromium-profile")
        url = page.resolve().as_uri() + (f"?{query}" if query else "")
        result = subprocess.run([chromium_binary, *FLAGS, f"--user-data-dir={profile}", *flags, url],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout
    return run


@pytest.fixture
def dom(chromium):
    """The page's DOM after its script ran, parsed."""
    return lambda page, query="": parse_html(chromium(page, "--dump-dom", query=query))


def keep_screenshot(path: Path) -> None:
    if os.environ.get("GRADFUZZ_KEEP_SCREENSHOTS"):
        folder = ROOT / "reports-screenshots"
        folder.mkdir(exist_ok=True)
        shutil.copy(path, folder / path.name)


def visible(table) -> list[list[str]]:
    return table_rows(table, visible_only=True)


def test_index_sorts_and_filters_from_the_address(campaign_run, dom):
    page = dom(render_site(campaign_run), "sort=ops-table:findings:desc&find=mul")
    assert "js" in page.find("html").attrs["class"]  # the script ran
    ops = page.find("table", id="ops-table")
    assert ops.find("th", data_key="findings").attrs["aria-sort"] == "descending"
    assert [row[0] for row in table_rows(ops)][:2] == ["add", "sub"]  # 2 findings each, then 1
    findings = page.find("table", id="findings-index")
    assert [row[3] for row in visible(findings)] == ["gradient|mul|float32"]  # not matmul
    assert page.find("output", data_count_for="findings-index").text == "1 of 20 shown"
    assert section(page, "ops").find("svg").find_all("text")


def test_index_without_a_query_keeps_the_rendered_order(campaign_run, dom):
    page = dom(render_site(campaign_run))
    findings = page.find("table", id="findings-index")
    assert len(visible(findings)) == 20
    assert page.find("output", data_count_for="findings-index").text == ""
    assert [row[0] for row in table_rows(page.find("table", id="ops-table"))][:3] == ["add", "amax", "clamp"]


def test_finding_page_renders_difference_and_outcomes(campaign_run, dom):
    render_site(campaign_run)
    page = dom(campaign_run / "findings" / "gradient-mul-float32.html", "sort=differences:tensor")
    assert page.find("h1").clean_text == "gradient in mul (float32)"
    assert "Largest absolute error 2.5 in grad x0 at [2, 1]" in section(page, "difference").clean_text
    assert [row[0] for row in table_rows(page.find("table", id="differences"))] == ["grad x0", "grad x1", "v1", "v2"]
    assert [o.attrs["data-side"] for o in page.find_all("div", cls="outcome")] == ["engine", "torch"]


def test_history_page_sorts_and_filters(nightly, dom):
    page = dom(render_history(nightly), "sort=runs-table:examples&sig=exp")
    assert [row[0] for row in table_rows(page.find("table", id="runs-table"))] == [
        "2026-11-27", "2026-11-26", "2026-11-24", "2026-11-25"]
    assert [row[0] for row in visible(page.find("table", id="signatures-table"))] == ["gradient|exp|float32"]
    assert page.find("output", data_count_for="signatures-table").text == "1 of 4 shown"
    assert section(page, "trends").find("svg")


def test_conformance_page_filters_failures_from_a_matrix_link(conformance_run, dom):
    page = dom(render_site(conformance_run), "fail=exp%20float64&sort=matrix-table:failed:desc")
    assert [row[0] for row in visible(page.find("table", id="failures-table"))] == ["exp"]
    assert page.find("output", data_count_for="failures-table").text == "1 of 1 shown"
    first_ops = [table_rows(body)[0][0] for body in page.find("table", id="matrix-table").find_all("tbody")]
    assert first_ops == ["exp", "tests/engine/test_format.py"]  # sorted within each group


@pytest.mark.parametrize("which", ["index", "finding", "history", "conformance"])
def test_screenshots(which, chromium, campaign_run, nightly, conformance_run, tmp_path):
    index = render_site(campaign_run)
    page = {"index": index,
            "finding": campaign_run / "findings" / "gradient-mul-float32.html",
            "history": render_history(nightly),
            "conformance": render_site(conformance_run)}[which]
    shot = tmp_path / f"{which}.png"
    chromium(page, f"--screenshot={shot}", "--window-size=1280,2000")
    keep_screenshot(shot)
    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    rgb = pixels[..., :3]
    assert (rgb.sum(axis=-1) < 0.6).mean() > 0.002  # dark text drawn
    red = (rgb[..., 0] > 0.6) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    assert red.any()  # findings, failures or interrupted runs in red


def test_finding_page_prints_to_a_few_pages(chromium, campaign_run, tmp_path):
    render_site(campaign_run)
    pdf = tmp_path / "finding.pdf"
    chromium(campaign_run / "findings" / "gradient-mul-float32.html", f"--print-to-pdf={pdf}",
             "--no-pdf-header-footer")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = int(re.search(rb"/Count (\d+)", data).group(1))
    assert 1 <= pages <= 3
