"""Real Jupyter servers and a real Chromium, for the browser tests.

Three pieces, used by ``conftest.py``'s fixtures and usable on their own:

``JupyterHome``
    Throwaway Jupyter config, data, runtime and IPython directories (and a
    COVALENT_NB_HOME), so a test run never reads or writes the user's own. It
    registers a ``python3`` kernelspec whose argv is this very interpreter,
    so kernels run the same Python (and the same covalent_nb) as pytest, and
    it presets the Lab settings that make a test page quiet and predictable:
    no news toast, no update check, every cell kept in the DOM.

``JupyterServer``
    ``jupyter lab`` or Jupyter Notebook 7 (``jupyter notebook``) as a
    subprocess on 127.0.0.1, a free port, a random token, rooted in a temp
    dir. ``start()`` returns once the REST API answers; ``stop()`` shuts the
    server down through the API (which also shuts its kernels down).

``NotebookUI``
    One notebook open in one browser page, in either front end: wait for its
    kernel, run all cells, run one more cell, wait for output text (failing
    at once, with the traceback, when a cell raises), query the DOM inside
    the notebook, click a node of a cytoscape graph, take screenshots.

Both front ends are started with ``expose_app_in_browser``, so the page has
``window.jupyterapp``: running cells goes through the same commands the
menus use (``notebook:run-all-cells``), which is far steadier than keyboard
shortcuts whose focus rules differ between Lab and Notebook 7.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote

import nbformat

CHROMIUM = os.environ.get("COVALENT_NB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # This machine's network is closed: without these Chromium spends its
    # time on refused connections to Google's services.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}

SERVER_START_TIMEOUT = 120.0  # seconds; a cold first start on a busy 2-core machine
KERNEL_READY_TIMEOUT = 90.0
OUTPUT_TIMEOUT = 60.0


# --------------------------------------------------------------------------
# isolated Jupyter directories


# Lab settings that keep test pages free of pop-ups and keep every cell's
# output in the DOM (Lab 4 otherwise virtualises cells scrolled out of view).
_LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


@dataclass
class JupyterHome:
    """A private set of Jupyter directories and the environment that selects them."""

    base: Path
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        dirs = {
            "JUPYTER_CONFIG_DIR": self.base / "config",
            "JUPYTER_DATA_DIR": self.base / "data",
            "JUPYTER_RUNTIME_DIR": self.base / "runtime",
            "IPYTHONDIR": self.base / "ipython",
            "COVALENT_NB_HOME": self.base / "covalent_nb",
        }
        env = dict(os.environ)
        # Extra search paths from the caller's shell would leak their config in.
        for name in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTERLAB_SETTINGS_DIR",
                     "JUPYTERLAB_WORKSPACES_DIR", "JUPYTER_TOKEN"):
            env.pop(name, None)
        for name, path in dirs.items():
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        # Our data dir (with our kernelspec) before the environment's share/jupyter,
        # also inside a venv where jupyter_core would otherwise prefer the env.
        env["JUPYTER_PREFER_ENV_PATH"] = "0"
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env
        self._install_kernelspec()
        self._write_lab_settings()

    @property
    def data_dir(self) -> Path:
        return Path(self.env["JUPYTER_DATA_DIR"])

    @property
    def config_dir(self) -> Path:
        return Path(self.env["JUPYTER_CONFIG_DIR"])

    def _install_kernelspec(self) -> None:
        # ipykernel writes argv[0] = sys.executable of the Python that runs it:
        # the kernel is pytest's Python, in or out of a venv.
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--user", "--name", "python3",
             "--display-name", "Python 3 (ipykernel)"],
            env=self.env, check=True, capture_output=True, text=True, timeout=60,
        )
        spec = json.loads((self.data_dir / "kernels" / "python3" / "kernel.json").read_text())
        if spec["argv"][0] != sys.executable:
            raise RuntimeError(f"kernelspec runs {spec['argv'][0]}, not {sys.executable}")

    def _write_lab_settings(self) -> None:
        # Lab and Notebook 7 both read <config dir>/lab/user-settings/<plugin id>.
        root = self.config_dir / "lab" / "user-settings"
        for plugin, values in _LAB_SETTINGS.items():
            package, _, name = plugin.rpartition("/")
            path = root / package / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2))


# --------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_FLAVORS = {
    # flavor: (module that runs it, its app class for the page-config options)
    "lab": ("jupyterlab", "LabApp"),
    "notebook": ("notebook", "JupyterNotebookApp"),
}


class ServerError(RuntimeError):
    pass


class JupyterServer:
    """A ``jupyter lab`` or ``jupyter notebook`` subprocess on 127.0.0.1."""

    def __init__(self, flavor: str, home: JupyterHome, root_dir: Path, log_path: Path):
        if flavor not in _FLAVORS:
            raise ValueError(f"flavor must be one of {sorted(_FLAVORS)}, not {flavor!r}")
        self.flavor = flavor
        self.home = home
        self.root_dir = Path(root_dir)
        self.log_path = Path(log_path)
        self.token = secrets.token_hex(16)
        self.port = 0
        self.process: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = SERVER_START_TIMEOUT, attempts: int = 3) -> "JupyterServer":
        self.root_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            self._spawn()
            try:
                self._wait_until_up(timeout)
                return self
            except ServerError:
                # Another process may have taken the port between free_port()
                # and the server's bind; anything else is a real failure.
                self._kill()
                if attempt == attempts or "already in use" not in self.log_tail():
                    raise
        raise AssertionError("unreachable")

    def _command(self) -> list[str]:
        module, app = _FLAVORS[self.flavor]
        cmd = [
            sys.executable, "-m", module,
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.terminals_enabled=False",
            "--ServerApp.allow_root=True",  # CI runs as root; the server is on loopback only
            f"--{app}.expose_app_in_browser=True",
        ]
        if self.flavor == "lab":
            cmd += [
                "--LabApp.extension_manager=readonly",  # no PyPI listing requests
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ]
        return cmd

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n$ {' '.join(self._command())}\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self._command(), cwd=self.root_dir, env=self.home.env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() can reap it whole
        )
        log.close()

    def _wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"jupyter {self.flavor} exited with code {self.process.returncode} "
                    f"before answering:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.2)
        raise ServerError(f"jupyter {self.flavor} did not answer within {timeout:.0f} s:\n"
                          f"{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """Shut the server down through its API (its kernels with it), then make sure."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.api("POST", "/api/shutdown", timeout=5)
            self.process.wait(timeout)
        except Exception:
            pass
        self._kill()

    def _kill(self) -> None:
        proc = self.process
        if proc is None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        # The group may hold helpers the server started; it is ours by pgid.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- addresses and REST ------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` on this server, with the token (which also sets the login cookie)."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{sep}token={self.token}"

    def document_url(self, name: str) -> str:
        """Where this front end opens the notebook ``name`` (relative to root_dir)."""
        if self.flavor == "lab":
            # ?reset: start from an empty workspace, not the previous test's tabs
            return self.url(f"/lab/tree/{quote(name)}?reset")
        return self.url(f"/notebooks/{quote(name)}")

    def api(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def shutdown_kernels(self) -> None:
        """Close every session and kernel: what one test started, the next does not inherit."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30)
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30)


# --------------------------------------------------------------------------
# notebooks


Cell = str | nbformat.NotebookNode


def new_notebook(cells: Iterable[Cell]) -> nbformat.NotebookNode:
    """A notebook for the ``python3`` kernel; a str is a code cell (dedented)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for cell in cells:
        if isinstance(cell, str):
            cell = nbformat.v4.new_code_cell(textwrap.dedent(cell).strip("\n"))
        nb.cells.append(cell)
    return nb


def write_notebook(directory: Path, name: str, cells: Iterable[Cell]) -> Path:
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells), path)
    return path


class CellError(AssertionError):
    """A cell of the notebook under test raised; the message carries its traceback."""


# Finds the notebook panel showing `path` among the main area's widgets; the
# same in Lab and Notebook 7. Every snippet below starts with it.
_FIND_PANEL = """
const app = window.jupyterapp;
const findPanel = (path) => {
    if (!app || !app.shell || !app.started) return null;
    for (const w of app.shell.widgets('main')) {
        if (w.context && w.context.path === path && w.content && w.sessionContext) return w;
    }
    return null;
};
"""

_JS_KERNEL_IDLE = _FIND_PANEL + """
const panel = findPanel(path);
if (!panel || !panel.context.isReady) return false;
const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
if (!kernel || kernel.status !== 'idle' || kernel.connectionStatus !== 'connected') return false;
return panel.node.id || false;
"""

_JS_RUN_ALL = _FIND_PANEL + """
const panel = findPanel(path);
app.shell.activateById(panel.id);
if (!app.commands.isEnabled('notebook:run-all-cells'))
    throw new Error('notebook:run-all-cells is not enabled');
// not awaited: the caller watches the page while cells run
app.commands.execute('notebook:run-all-cells');
return panel.content.model.cells.length;
"""

_JS_APPEND_AND_RUN = _FIND_PANEL + """
const panel = findPanel(path);
const notebook = panel.content;
const shared = notebook.model.sharedModel;
shared.insertCell(shared.cells.length, {cell_type: 'code', source: source});
app.shell.activateById(panel.id);
notebook.activeCellIndex = shared.cells.length - 1;
notebook.deselectAll();
app.commands.execute('notebook:run-cell');
return shared.cells.length - 1;
"""

_JS_KERNEL_STATUS = _FIND_PANEL + """
const panel = findPanel(path);
const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
return kernel ? kernel.status : 'none';
"""

# Output texts and error outputs of the notebook, cell by cell.
_JS_OUTPUTS = _FIND_PANEL + """
const panel = findPanel(path);
if (!panel) return {texts: [], errors: []};
const texts = [], errors = [];
for (const model of panel.content.model.cells) {
    if (model.type !== 'code') continue;
    for (let i = 0; i < model.outputs.length; i++) {
        const out = model.outputs.get(i).toJSON();
        if (out.output_type === 'error') {
            errors.push(out.ename + ': ' + out.evalue + '\\n' +
                        (out.traceback || []).join('\\n').replace(/\\x1b\\[[0-9;]*m/g, ''));
        }
    }
}
for (const el of panel.node.querySelectorAll('.jp-OutputArea-output')) texts.push(el.innerText);
return {texts, errors};
"""


def _js(body: str, *params: str) -> str:
    """A JS function taking one array argument, unpacked into ``params``."""
    return f"([{', '.join(params)}]) => {{ {body} }}"


class NotebookUI:
    """One notebook open in one page of the Lab or Notebook 7 front end."""

    def __init__(self, server: JupyterServer, page, name: str, artifacts: "Artifacts"):
        self.server = server
        self.page = page
        self.name = name
        self.artifacts = artifacts
        self.panel_id: str | None = None

    @property
    def frontend(self) -> str:
        return self.server.flavor

    # -- opening and running -------------------------------------------------

    def open(self, timeout: float = KERNEL_READY_TIMEOUT) -> "NotebookUI":
        """Navigate to the notebook and wait until its kernel is idle."""
        self.page.goto(self.server.document_url(self.name), wait_until="domcontentloaded")
        self.wait_for_kernel(timeout)
        return self

    def wait_for_kernel(self, timeout: float = KERNEL_READY_TIMEOUT) -> None:
        handle = self.page.wait_for_function(
            _js(_JS_KERNEL_IDLE, "path"), arg=[self.name], timeout=timeout * 1000, polling=250)
        self.panel_id = handle.json_value()

    def run_all(self) -> None:
        """Run all cells (the menu's Run > Run All Cells); returns once they are queued."""
        self.page.evaluate(_js(_JS_RUN_ALL, "path"), [self.name])

    def run_cell(self, source: str) -> int:
        """Append a code cell with ``source`` and run it; returns its index."""
        return self.page.evaluate(_js(_JS_APPEND_AND_RUN, "path", "source"),
                                  [self.name, textwrap.dedent(source).strip("\n")])

    def kernel_status(self) -> str:
        """The kernel's status as the page knows it: idle, busy, starting, ..."""
        return self.page.evaluate(_js(_JS_KERNEL_STATUS, "path"), [self.name])

    # -- reading the page ----------------------------------------------------

    @property
    def root(self):
        """A locator for the notebook panel; DOM queries inside it see only this notebook."""
        if self.panel_id is None:
            raise RuntimeError("open() the notebook first")
        return self.page.locator(f'[id="{self.panel_id}"]')

    def locator(self, selector: str):
        return self.root.locator(selector)

    def outputs(self) -> dict[str, list[str]]:
        """``{"texts": [rendered text of each output], "errors": [tracebacks]}``."""
        return self.page.evaluate(_js(_JS_OUTPUTS, "path"), [self.name])

    def check_no_errors(self) -> None:
        errors = self.outputs()["errors"]
        if errors:
            raise CellError("a cell raised:\n" + "\n\n".join(errors))

    def wait_for_output(self, text: str, timeout: float = OUTPUT_TIMEOUT) -> str:
        """Wait until an output of the notebook contains ``text``; returns that output.

        Fails at once, with the traceback, when a cell raises instead."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.outputs()
            for output in found["texts"]:
                if text in output:
                    return output
            if found["errors"]:
                raise CellError(f"a cell raised while waiting for {text!r}:\n"
                                + "\n\n".join(found["errors"]))
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no output contains {text!r} after {timeout:.0f} s; outputs so far:\n"
                    + "\n---\n".join(found["texts"]))
            self.page.wait_for_timeout(200)

    def wait_until(self, probe, done=bool, timeout: float = OUTPUT_TIMEOUT,
                   what: str = "condition"):
        """Poll ``probe()`` until ``done(value)`` is true; return that value.

        Fails early when a cell raises; on timeout the message names ``what``
        and shows the last value seen, e.g. the legend's counts."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if done(value):
                return value
            self.check_no_errors()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; "
                                     f"last seen: {value!r}")
            self.page.wait_for_timeout(100)

    def wait_for_selector(self, selector: str, timeout: float = OUTPUT_TIMEOUT,
                          state: str = "attached"):
        """Wait for ``selector`` inside the notebook (failing early on a cell error)."""
        deadline = time.monotonic() + timeout
        target = self.locator(selector).first
        while True:
            try:
                target.wait_for(state=state, timeout=1000)
                return target
            except Exception as error:  # playwright's TimeoutError
                if "Timeout" not in type(error).__name__:
                    raise
            self.check_no_errors()
            if time.monotonic() > deadline:
                raise AssertionError(f"{selector!r} did not appear within {timeout:.0f} s")

    # -- cytoscape graphs ----------------------------------------------------

    _JS_CY_NODES = """(root) => {
        const cy = root.__cy;
        if (!cy) throw new Error('no cytoscape instance at element.__cy');
        return cy.nodes().map((n) => {
            const p = n.renderedPosition();
            return {id: n.id(), data: n.data(), visible: n.visible(), x: p.x, y: p.y};
        });
    }"""

    def cy_nodes(self, graph_selector: str = ".cnb-graph") -> list[dict]:
        """The nodes of the cytoscape graph at ``graph_selector`` (its root element
        carries the instance as ``__cy``): id, data, visibility, and the centre
        in pixels relative to the cytoscape container. Waits until the positions
        hold still (the graph refits when its element gets its size)."""
        root = self.locator(graph_selector).first
        root.wait_for(state="visible")
        previous = None
        for _ in range(50):
            nodes = root.evaluate(self._JS_CY_NODES)
            if nodes == previous:
                return nodes
            previous = nodes
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the graph at {graph_selector!r} keeps moving")

    # Scroll the page (Lab scrolls an inner element, not the window) until the
    # node's centre is well inside the viewport; returns its viewport point and
    # whether a click there lands on the graph.
    _JS_BRING_NODE_INTO_VIEW = """([root, id]) => {
        const cy = root.__cy;
        const node = cy.getElementById(id);
        const where = () => {
            const box = cy.container().getBoundingClientRect();
            const p = node.renderedPosition();
            return {x: box.left + p.x, y: box.top + p.y};
        };
        let pt = where();
        const margin = 80, height = window.innerHeight;
        if (pt.y < margin || pt.y > height - margin) {
            let el = cy.container().parentElement;
            while (el && !(el.scrollHeight > el.clientHeight
                           && /(auto|scroll)/.test(getComputedStyle(el).overflowY)))
                el = el.parentElement;
            const delta = pt.y - height / 2;
            if (el) el.scrollTop += delta; else window.scrollBy(0, delta);
            pt = where();
        }
        const hit = document.elementFromPoint(pt.x, pt.y);
        return {x: pt.x, y: pt.y, onGraph: !!hit && cy.container().contains(hit)};
    }"""

    def click_cy_node(self, node_id: str | None = None, *, where=None,
                      graph_selector: str = ".cnb-graph") -> dict:
        """Click a node of the graph with the mouse, as a person would: the node
        with cytoscape id ``node_id``, or the first for which ``where(node)`` is
        true (``node`` as :meth:`cy_nodes` returns it). Returns that node.

        Scrolls first and lets the page settle before clicking: cytoscape
        caches its container's position and refreshes it on the scroll event,
        which arrives a frame after the scroll, so an immediate click would
        be mapped to the pre-scroll position and miss."""
        nodes = self.cy_nodes(graph_selector)
        for node in nodes:
            if (node_id is not None and node["id"] == str(node_id)) or (
                    where is not None and where(node)):
                break
        else:
            raise AssertionError(
                "no such node in the graph; nodes: "
                f"{[(n['id'], n['data'].get('label')) for n in nodes]}")
        if not node["visible"]:
            raise AssertionError(f"node {node['id']} is hidden")
        root = self.locator(graph_selector).first
        point = root.evaluate(f"(root) => ({self._JS_BRING_NODE_INTO_VIEW})([root, {node['id']!r}])")
        self._settle()
        point = root.evaluate(f"(root) => ({self._JS_BRING_NODE_INTO_VIEW})([root, {node['id']!r}])")
        if not point["onGraph"]:
            raise AssertionError(f"node {node['id']} is covered or off screen at {point}")
        self.page.mouse.click(point["x"], point["y"])
        return node

    def scroll_by(self, dy: float) -> None:
        """Scroll the notebook by ``dy`` pixels, as its scroll bar would (Lab and
        Notebook 7 scroll an inner element, not the window)."""
        self.root.evaluate("""(panel, dy) => {
            const scrollable = (el) => el.scrollHeight > el.clientHeight
                && /(auto|scroll)/.test(getComputedStyle(el).overflowY);
            const el = [...panel.querySelectorAll('*')].find(scrollable);
            if (el) el.scrollTop += dy; else window.scrollBy(0, dy);
        }""", dy)
        self._settle()

    def _settle(self) -> None:
        """Let two animation frames pass (scroll and resize events get delivered)."""
        self.page.evaluate(
            "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")

    # -- pictures --------------------------------------------------------------

    def screenshot(self, label: str, selector: str | None = None) -> Path:
        """Save a PNG of the page (or of one element) to the test's artifacts."""
        path = self.artifacts.path(f"{self.frontend}-{label}.png")
        if selector is None:
            self.page.screenshot(path=str(path))
        else:
            self.locator(selector).first.screenshot(path=str(path))
        return path


@dataclass
class Artifacts:
    """Files one test leaves in test-artifacts/: screenshots, logs."""

    directory: Path
    test_name: str

    def path(self, suffix: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.test_name).strip("_")
        self.directory.mkdir(parents=True, exist_ok=True)
        return self.directory / f"{safe}-{suffix}"


class Frontend:
    """A Jupyter front end (Lab or Notebook 7) in a browser page, for one test.

    ``open_notebook(name, cells)`` writes the notebook into the server's root
    and opens it; ``close()`` shuts down the kernels the test started."""

    def __init__(self, server: JupyterServer, page, artifacts: Artifacts):
        self.server = server
        self.page = page
        self.artifacts = artifacts
        self.notebooks: list[NotebookUI] = []

    @property
    def name(self) -> str:
        return self.server.flavor

    def write_notebook(self, name: str, cells: Sequence[Cell]) -> Path:
        return write_notebook(self.server.root_dir, name, cells)

    def open_notebook(self, name: str, cells: Sequence[Cell] | None = None,
                      timeout: float = KERNEL_READY_TIMEOUT) -> NotebookUI:
        if cells is not None:
            self.write_notebook(name, cells)
        ui = NotebookUI(self.server, self.page, name, self.artifacts)
        self.notebooks.append(ui)
        return ui.open(timeout)

    def close(self) -> None:
        self.server.shutdown_kernels()
