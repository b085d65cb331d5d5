"""Run the widget front end's JS unit tests (``npm test`` in js/) under pytest.

The JS tests cover the pure functions of the view (state decoding, diffing,
legend counts, styles, fit).  Node is required: without it this test fails,
it does not skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

JS = Path(__file__).resolve().parents[2] / "js"


def test_npm_test_passes():
    npm = shutil.which("npm")
    assert npm, "npm (Node.js) is required to run the widget's JS tests"
    proc = subprocess.run([npm, "test"], cwd=JS, capture_output=True, text=True, timeout=240)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    # node's test runner summary: make sure tests actually ran.
    assert "# pass " in output and "# fail 0" in output, output
    passed = int(output.split("# pass ")[1].split()[0])
    assert passed >= 20, output
