"""Fixtures for tests that drive a real JupyterLab / Notebook 7 in Debian's Chromium.

    def test_something(lab):                     # or notebook7, or jupyter_frontend
        nb = lab.open_notebook("x.ipynb", ["import covalent_nb as ct", "..."])
        nb.run_all()
        nb.wait_for_output("COMPLETED")
        nb.wait_for_selector('.cnb-legend [data-state="completed"][data-count="3"]')
        nb.click_cy_node(where=lambda n: n["data"].get("name") == "task_1")
        assert nb.locator('.cnb-details [data-field="node_name"]').inner_text() == "task_1"
        nb.screenshot("after-click")

Session fixtures: ``browser`` (Playwright's Chromium; fails, never skips, when
/usr/bin/chromium is missing), ``jupyter_home`` (isolated Jupyter dirs with a
kernelspec for this Python), ``lab_server`` and ``notebook_server`` (started on
first use, stopped at the end). Per test: ``page`` (a fresh browser context),
``lab`` / ``notebook7`` (a :class:`jupyter.Frontend` on that page) and
``jupyter_frontend`` (parametrised over both). A failing test leaves a
screenshot, the page's console and the outputs of its notebooks in
test-artifacts/; every test under tests/browser/ is marked ``browser``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .jupyter import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    Artifacts,
    Frontend,
    JupyterHome,
    JupyterServer,
)

BROWSER_DIR = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # Before -m selection runs: a test in this folder is a browser test even if
    # its module forgot the mark, so `-m "not browser"` never starts Chromium.
    for item in items:
        if BROWSER_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # fixtures read this at teardown to leave artifacts for a failed test
    setattr(item, f"rep_{report.when}", report)


def _failed(request) -> bool:
    return any(getattr(request.node, f"rep_{when}", None) is not None
               and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))


@pytest.fixture(scope="session")
def artifacts_dir(pytestconfig) -> Path:
    path = Path(pytestconfig.rootpath) / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def artifacts(request, artifacts_dir) -> Artifacts:
    return Artifacts(artifacts_dir, request.node.name)


@pytest.fixture(scope="session")
def browser():
    # Missing browser = failure: CI installs it (scripts/install-system-deps.sh),
    # and a skipped browser test would let a broken widget pass.
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
                    "(bash scripts/install-system-deps.sh, which `make test` runs)",
                    pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        pytest.fail(f"playwright is not installed ({error}): pip install -e '.[test]'",
                    pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield chromium
        chromium.close()


class PageRecorder:
    """Keeps the page's console; on failure, saves it with a screenshot, once."""

    def __init__(self, page, artifacts: Artifacts):
        self.page = page
        self.artifacts = artifacts
        self.console: list[str] = []
        self.saved = False
        page.on("console", lambda msg: self.console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda err: self.console.append(f"[pageerror] {err}"))

    def save_failure(self) -> None:
        if self.saved:
            return
        self.saved = True
        try:
            self.page.screenshot(path=str(self.artifacts.path("failure.png")))
        except Exception as error:  # a crashed page must not hide the real failure
            self.console.append(f"[harness] screenshot failed: {error}")
        self.artifacts.path("console.log").write_text("\n".join(self.console) + "\n")


@pytest.fixture
def page(browser, request, artifacts):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.cnb_recorder = PageRecorder(page, artifacts)
    yield page
    if _failed(request):
        page.cnb_recorder.save_failure()
    context.close()


@pytest.fixture(scope="session")
def jupyter_home(tmp_path_factory) -> JupyterHome:
    return JupyterHome(tmp_path_factory.mktemp("jupyter-home"))


def _server(flavor, jupyter_home, tmp_path_factory, artifacts_dir):
    server = JupyterServer(flavor, jupyter_home,
                           root_dir=tmp_path_factory.mktemp(f"{flavor}-root"),
                           log_path=jupyter_home.base / f"jupyter-{flavor}.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.copy(server.log_path, artifacts_dir / f"jupyter-{flavor}-server.log")


@pytest.fixture(scope="session")
def lab_server(jupyter_home, tmp_path_factory, artifacts_dir):
    yield from _server("lab", jupyter_home, tmp_path_factory, artifacts_dir)


@pytest.fixture(scope="session")
def notebook_server(jupyter_home, tmp_path_factory, artifacts_dir):
    yield from _server("notebook", jupyter_home, tmp_path_factory, artifacts_dir)


def _frontend(server, page, request, artifacts):
    frontend = Frontend(server, page, artifacts)
    yield frontend
    if _failed(request):
        page.cnb_recorder.save_failure()  # now, while the notebook is still on screen
        lines = []
        for nb in frontend.notebooks:
            try:
                outputs = nb.outputs()
            except Exception as error:
                lines.append(f"== {nb.name}: could not read outputs: {error}")
                continue
            lines.append(f"== {nb.name} ({frontend.name})")
            lines += [f"-- output\n{text}" for text in outputs["texts"]]
            lines += [f"-- ERROR\n{text}" for text in outputs["errors"]]
        if lines:
            artifacts.path(f"{frontend.name}-outputs.txt").write_text("\n".join(lines) + "\n")
    # the page goes first, so it does not pop up a "kernel died" dialog meanwhile
    page.goto("about:blank")
    frontend.close()


@pytest.fixture
def lab(lab_server, page, request, artifacts):
    """JupyterLab in a fresh page: ``lab.open_notebook(name, cells) -> NotebookUI``."""
    yield from _frontend(lab_server, page, request, artifacts)


@pytest.fixture
def notebook7(notebook_server, page, request, artifacts):
    """Jupyter Notebook 7 in a fresh page; the same API as ``lab``."""
    yield from _frontend(notebook_server, page, request, artifacts)


@pytest.fixture(params=["lab", "notebook7"])
def jupyter_frontend(request):
    """Each test using it runs once in JupyterLab and once in Notebook 7."""
    return request.getfixturevalue(request.param)
