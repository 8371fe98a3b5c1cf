"""``ecom-pipeline lab`` in a real browser: as an analyst starts it, then Run All and a terminal.

Debian's Chromium (``make setup`` installs it) driven by Playwright (PyPI; no browser download:
``executable_path`` names Debian's). The lab runs as a subprocess with its work folder, its
JupyterLab settings and workspaces in a temporary folder; it restores the seeded stack that
``make lab`` saved in ``.lab-cache/`` (or seeds and saves it, a few minutes, after the pipeline's
code changed). Each explore notebook is cleared, then Kernel → Restart Kernel and Run All Cells:
every prompt must show a number, no cell an error or stderr, the charts must be drawn; a
terminal runs ``ecom-pipeline runs list``; the tracked notebooks are left as committed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest

from pipeline_tasks.local.process import free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: The explore notebooks and how many charts (``img`` outputs) each draws.
CHARTS = {"kpi_dashboard.ipynb": 4, "batch_review.ipynb": 2}
#: The notebook JupyterLab shows (hidden panels keep their DOM).
ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
TERMINAL = ".jp-Terminal:not(.lm-mod-hidden)"
#: A first start seeds the stack (two pipeline runs); later ones restore it in seconds.
START_TIMEOUT = 600
RUN_ALL_TIMEOUT = 300


@dataclass
class Lab:
    process: subprocess.Popen[str]
    work: Path
    output: list[str] = field(default_factory=list)
    url: str = ""

    @property
    def base(self) -> str:
        return self.url.split("/lab?")[0]

    @property
    def token(self) -> str:
        return self.url.split("token=")[1]

    def log(self) -> str:
        return "".join(self.output[-60:])


def notebooks_status() -> str:
    command = ["git", "status", "--porcelain", "--untracked-files=all", "--", "notebooks"]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout


def jupyterlab_settings(folder: Path) -> Path:
    """User settings of the test's JupyterLab: no news request; the terminal's text in the DOM
    (its screen-reader mode: xterm otherwise draws on a canvas)."""
    for plugin, values in {
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "terminal-extension/plugin": {"screenReaderMode": True},
    }.items():
        path = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return folder


def lab_environment(tmp: Path) -> dict[str, str]:
    """The analyst's shell: this virtualenv's ``bin`` not on PATH (the lab must put it there)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != BIN)
    env["PIPELINE_LAB_DIR"] = str(tmp / "work")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(jupyterlab_settings(tmp / "settings"))
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(tmp / "workspaces")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, committed_status: str) -> Iterator[Lab]:
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (make setup installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')")
    tmp = tmp_path_factory.mktemp("lab")
    command = [str(BIN / "ecom-pipeline"), "lab", "--no-browser", "--port", str(free_port())]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=lab_environment(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started = Lab(process, tmp / "work")
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: started.output.extend(iter(stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not started.url:
            assert process.poll() is None, f"the lab stopped:\n{started.log()}"
            assert time.monotonic() < deadline, f"no JupyterLab URL after {START_TIMEOUT} s:\n{started.log()}"
            found = re.search(r"http://127\.0\.0\.1:\d+/lab\?token=\w+", "".join(started.output))
            started.url = found.group(0) if found else ""
            time.sleep(0.5)
        yield started
    finally:
        # Ctrl-C, as an analyst stops it: JupyterLab, then the moto server, stop.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=shutil.which("chromium"))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page of its own for each test; a "leave the page?" question is answered yes."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        yield page
    finally:
        page.close()


@pytest.fixture(scope="module")
def committed_status() -> str:
    """``git status`` of notebooks/ before the lab ran (other work in progress may show there)."""
    return notebooks_status()


def menu(page: Any, *path: str) -> None:
    """Click through the menu bar: ``menu(page, "Kernel", "Restart Kernel and Run All Cells")``."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{path[0]}$")).click()
    for label in path[1:-1]:
        page.locator(".lm-Menu:visible .lm-Menu-itemLabel", has_text=re.compile(f"^{label}$")).first.hover()
    page.locator(".lm-Menu:visible .lm-Menu-itemLabel", has_text=path[-1]).first.click()


def dismiss_popups(page: Any) -> None:
    """The kernel picker (keep the notebook's kernel) and the news toast, when they show."""
    picker = page.locator(".jp-Dialog", has_text="Select Kernel")
    if picker.count():
        picker.locator(".jp-mod-accept").click()
    for button in page.locator(".jp-toast-button", has_text=re.compile("^No$")).all():
        button.click()


def prompts(page: Any) -> list[str]:
    """The code cells' prompts; ``text_content``: off-screen cells have no rendered ``inner_text``."""
    cells = page.locator(f"{ACTIVE} .jp-CodeCell .jp-InputArea-prompt")
    return [(cells.nth(i).text_content() or "").strip() for i in range(cells.count())]


def wait_for(condition: Any, timeout: float, what: str, state: Any = lambda: "") -> None:
    """Poll ``condition``; past ``timeout``, fail naming ``what`` and the ``state`` seen last."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not after {timeout} s; {state()}"
        time.sleep(0.5)


@pytest.mark.parametrize("name", list(CHARTS))
def test_an_explore_notebook_runs_all_its_cells_in_the_browser(lab, page, committed_status, name):
    copy = lab.work / "explore" / name
    assert copy.is_file(), "the lab copies the explore notebooks into its work folder"
    code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(copy, as_version=4).cells)

    # A workspace of its own, reset: no tab restored from an earlier page takes the focus.
    page.goto(f"{lab.base}/lab/workspaces/{copy.stem}/tree/explore/{name}?reset&token={lab.token}")
    current_tab = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    wait_for(lambda: current_tab.text_content() == name, 60, f"{name} shown", current_tab.all_text_contents)
    page.wait_for_selector(f"{ACTIVE} .jp-CodeCell", timeout=60_000)
    dismiss_popups(page)
    # The kernel started and connected (a restart asked before then can leave it "Unknown").
    status = page.locator("#jp-main-statusbar")
    wait_for(lambda: "| Idle" in (status.text_content() or ""), 120, "kernel idle", status.text_content)
    # Outputs cleared first: the copy opens with the committed ones, prompts numbered already.
    menu(page, "Edit", "Clear Outputs of All Cells")
    wait_for(lambda: all(p in ("[ ]:", "") for p in prompts(page)), 30, "outputs cleared")
    menu(page, "Kernel", "Restart Kernel and Run All Cells")
    page.locator(".jp-Dialog .jp-mod-accept").click()

    def all_numbered() -> bool:
        dismiss_popups(page)
        shown = prompts(page)
        return len(shown) == code_cells and all(re.fullmatch(r"\[\d+\]:", p) for p in shown)

    try:
        wait_for(all_numbered, RUN_ALL_TIMEOUT, f"every prompt of {name} numbered", lambda: prompts(page))
    except AssertionError:
        page.screenshot(path=str(lab.work.parent / f"{name}.png"))
        raise

    outputs = page.locator(f"{ACTIVE} .jp-OutputArea-output")
    kinds = outputs.evaluate_all("nodes => nodes.map(node => node.getAttribute('data-mime-type'))")
    failed = page.locator(f"{ACTIVE} .jp-OutputArea-output[data-mime-type*='stderr'], {ACTIVE} .jp-RenderedError")
    assert failed.count() == 0, "\n".join(failed.all_text_contents())
    assert "application/vnd.jupyter.error" not in kinds and "application/vnd.jupyter.stderr" not in kinds, kinds
    assert page.locator(f"{ACTIVE} .jp-OutputArea-output img").count() >= CHARTS[name]

    # Saved (as autosave would): into the work folder's copy, never over the tracked notebook.
    saved_before = copy.stat().st_mtime_ns
    menu(page, "File", "Save Notebook")
    wait_for(lambda: copy.stat().st_mtime_ns != saved_before, 30, f"{copy} saved")
    assert notebooks_status() == committed_status


def test_a_lab_terminal_runs_the_cli(lab, page):
    page.goto(f"{lab.base}/lab/workspaces/terminal?reset&token={lab.token}")
    page.wait_for_selector(".lm-MenuBar-itemLabel", timeout=60_000)
    dismiss_popups(page)
    menu(page, "File", "New", "Terminal")
    page.wait_for_selector(f"{TERMINAL} .xterm", timeout=60_000)
    page.locator(f"{TERMINAL} .xterm").click()
    page.keyboard.type("ecom-pipeline runs list\n")

    def text() -> str:
        return " ".join(page.locator(f"{TERMINAL} .xterm-accessibility-tree").all_text_contents())

    wait_for(lambda: "local-0002-batch-02" in text() or "not found" in text(), 60, "`ecom-pipeline runs list` output")
    assert "not found" not in text()
    assert "SUCCEEDED" in text() and "local-0001-batch-01" in text()


def test_the_lab_leaves_the_tracked_notebooks_as_committed(lab, page, committed_status):
    assert notebooks_status() == committed_status
    assert (lab.work / "pipeline" / "10_validate.ipynb").is_file()
