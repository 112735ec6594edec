"""The leaderboard site in a real browser: headless Debian Chromium driven by playwright-core.

`make browser-deps` provides both (apt `chromium`, `npm ci --prefix tests/browser`); without
them this test is skipped. Screenshots go to tests/browser/screenshots/ (or
$FIQABENCH_SCREENSHOTS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fiqabench.leaderboard.bundle_thumbs import LocalTasks, LocalThumbnails
from fiqabench.leaderboard.site import build_site
from fiqabench.leaderboard.site_inputs import load_run_folder
from fiqabench.tasks.registry import TaskRegistry
from tests.test_leaderboard_site import HOSTILE, make_hostile_run, run_eval

CHROMIUM = Path("/usr/bin/chromium")
BROWSER = Path(__file__).parent / "browser"
SCREENSHOTS = Path(os.environ.get("FIQABENCH_SCREENSHOTS", BROWSER / "screenshots"))

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file() or not (BROWSER / "node_modules" / "playwright-core").is_dir(),
    reason="needs /usr/bin/chromium and tests/browser/node_modules (run `make browser-deps`)",
)


def check_site(
    site: Path, screenshots: Path, expect_text: list[str], screenshot: list[str]
) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is needed to drive the browser (it installs with npm)"
    command = [
        node,
        str(BROWSER / "check_site.mjs"),
        "--site",
        str(site),
        "--out",
        str(screenshots),
    ]
    for text in expect_text:
        command += ["--expect-text", text]
    for page in screenshot:
        command += ["--screenshot", page]
    done = subprocess.run(command, capture_output=True, text=True, timeout=540, check=False)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_site_loads_sorts_and_draws_in_chromium(tmp_path: Path) -> None:
    runs = [
        run_eval(model, tmp_path / "runs" / model) for model in ("random", "classical-laplacian")
    ]
    hostile = make_hostile_run(runs[0], tmp_path / "hostile")
    tasks = LocalTasks(TaskRegistry())
    thumbs = LocalThumbnails(tasks)
    submissions = [load_run_folder(path, thumbs) for path in (*runs, hostile)]
    site = tmp_path / "site"
    build = build_site(submissions, site, tasks=tasks)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)

    hostile_samples = next(site.glob("models/img-src-*/mini-qa-1.html")).relative_to(site)
    report = check_site(site, SCREENSHOTS, [HOSTILE], [hostile_samples.as_posix()])

    pages = {page["path"]: page for page in report["pages"]}
    assert len(pages) == build.pages
    for name, page in pages.items():
        assert page["console_errors"] == [], name
        assert page["page_errors"] == [], name
        assert page["dialogs"] == [], name  # the hostile onerror/alert never ran
        assert page["blocked_requests"] == [], name  # no network: no CDN, no fetch
        assert page["images"]["broken"] == [], name
        for chart in page["charts"]:
            assert chart["drawn"] >= 1, (name, chart["title"])
    index = pages["index.html"]
    assert index["expected_text"] == {HOSTILE: True}  # shown literally, as text
    assert index["injected_images"] == 0
    assert index["charts"], "the radar chart of the index page"
    assert len(pages["tasks/mini-fiqa.html"]["charts"]) >= 6  # error-versus-reject curves
    samples = [page for name, page in pages.items() if name.endswith("/mini-qa-1.html")]
    assert len(samples) == 3 and all(page["images"]["total"] > 0 for page in samples)

    steps = report["sorting"]["steps"]
    first, second, keyboard = steps
    assert first["aria_sort"] == "descending" and second["aria_sort"] == "ascending"
    assert all(step["ordered"] and step["same_values"] for step in steps)
    present = [key for key in first["keys"] if key]
    assert present == sorted(present, key=float, reverse=True) and len(present) == 3
    assert [k for k in second["keys"] if k] == list(reversed(present))
    assert keyboard["input"] == "keyboard" and keyboard["aria_sort"] == "ascending"

    assert len(report["screenshots"]) >= 6
    for shot in map(Path, report["screenshots"]):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
