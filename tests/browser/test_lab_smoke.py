"""The harness itself, end to end: a real server, a real kernel, a real browser.

A notebook shows an ipywidgets slider and prints text; the page must render
both, a value typed into the slider must reach the kernel's widget model, and
the kernel must be the very Python running pytest (so it imports the
covalent_nb under test). Once in JupyterLab, once in Notebook 7.
"""

import os
import sys

import pytest

pytestmark = pytest.mark.browser

CELLS = [
    """
    import sys
    print("kernel python:", sys.executable)
    """,
    """
    import ipywidgets as widgets
    slider = widgets.IntSlider(value=7, min=0, max=10, description="smoke-slider")
    slider
    """,
    'print("hello from the smoke notebook")',
]


def test_widget_and_text_render(jupyter_frontend):
    nb = jupyter_frontend.open_notebook("smoke.ipynb", CELLS)
    nb.run_all()

    nb.wait_for_output("hello from the smoke notebook")
    kernel_line = nb.wait_for_output("kernel python:")
    kernel_python = kernel_line.split("kernel python:", 1)[1].strip()
    assert os.path.realpath(kernel_python) == os.path.realpath(sys.executable)

    slider = nb.wait_for_selector(".widget-slider", state="visible")
    assert "smoke-slider" in slider.inner_text()
    readout = slider.locator(".widget-readout")
    assert readout.inner_text().strip() == "7"

    # browser -> kernel: type a new value into the readout, as a person would,
    # then read it back in Python
    readout.click()
    nb.page.keyboard.press("Control+A")
    nb.page.keyboard.type("9")
    nb.page.keyboard.press("Enter")
    nb.run_cell('print("slider value in the kernel:", slider.value)')
    nb.wait_for_output("slider value in the kernel: 9")

    nb.screenshot("smoke")
