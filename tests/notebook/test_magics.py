"""The magics through a real IPython shell: every option, every error.

Each test runs cells in IPython's own ``InteractiveShell`` (what a kernel
runs) with ``%load_ext covalent_nb``, and reads what the user would see:
the displayed outputs, stdout, and, for a mistake, the one ``UsageError``
line on stderr.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import cloudpickle
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import covalent_nb as ct
from covalent_nb.dispatch.runtime import RUNTIME
from covalent_nb.dispatch.hashing import hash_function
from covalent_nb.notebook import graph_widget
from covalent_nb.notebook.handle import DispatchHandle
from covalent_nb.notebook.panel import LiveView

from seed_source import SEED_LATTICE_MAGIC, SEED_TASKS

WIDGET = "application/vnd.jupyter.widget-view+json"

TASKS = SEED_TASKS + """
def plain(a, b):
    return a - b

limit = 3
"""

WORKFLOW = SEED_LATTICE_MAGIC


class Run:
    """What one cell did: its ExecutionResult and everything it printed or displayed."""

    def __init__(self, result, captured):
        self.result = result
        self.stdout = captured.stdout
        self.stderr = captured.stderr
        self.outputs = captured.outputs

    @property
    def value(self):
        return self.result.result

    @property
    def error(self):
        return self.result.error_in_exec or self.result.error_before_exec


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    yield shell
    shell.run_cell("%unload_ext covalent_nb", store_history=False)


@pytest.fixture
def ip(shell):
    """The shell with a clean namespace, the extension loaded and the tasks defined."""
    shell.reset(new_session=False)
    assert run(shell, "%load_ext covalent_nb").error is None
    assert run(shell, TASKS).error is None
    return shell


def run(shell, code: str) -> Run:
    with capture_output() as captured:
        result = shell.run_cell(textwrap.dedent(code).strip("\n") + "\n", store_history=True)
    return Run(result, captured)


def usage_error(shell, code: str) -> str:
    """Run a cell that must fail as a magic mistake; return its one line."""
    done = run(shell, code)
    assert isinstance(done.error, UsageError), (done.error, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # one line, no traceback
    assert lines[0].startswith("UsageError: ")
    assert "Traceback" not in done.stderr and "covalent_nb/" not in done.stderr
    return lines[0][len("UsageError: "):]


def graph_outputs(done: Run) -> list:
    return [o for o in done.outputs if WIDGET in o.data]


def picture_outputs(done: Run) -> list:
    """The static pictures shown under the graphs (graph_widget.show_live)."""
    return [o for o in done.outputs if "cnb-static-graph" in o.data.get("text/html", "")]


# -- loading ---------------------------------------------------------------------------

def test_load_ext_registers_the_four_magics_and_unload_removes_them(shell):
    shell.reset(new_session=False)
    magics = shell.magics_manager.magics
    assert run(shell, "%load_ext covalent_nb").error is None
    assert {"dispatch", "redispatch", "dispatches"} <= set(magics["line"])
    assert "lattice" in magics["cell"]
    assert run(shell, "%unload_ext covalent_nb").error is None
    assert not {"dispatch", "redispatch", "dispatches"} & set(magics["line"])
    assert "lattice" not in magics["cell"]
    assert run(shell, "%load_ext covalent_nb").error is None
    assert "lattice" in magics["cell"]


def test_the_extension_loads_from_ipython_config_in_a_fresh_process(tmp_path):
    # A profile listing covalent_nb in InteractiveShellApp.extensions, as a
    # user would configure it; a fresh process also has no dispatch yet.
    profile = tmp_path / "profile_default"
    profile.mkdir()
    (profile / "ipython_config.py").write_text("c.InteractiveShellApp.extensions = ['covalent_nb']\n")
    script = textwrap.dedent("""
        table = %dispatches
        print(table)
        %redispatch --reuse
    """)
    (tmp_path / "cells.ipy").write_text(script)
    done = subprocess.run([sys.executable, "-m", "IPython", "--ipython-dir", str(tmp_path),
                           "--no-banner", "--colors=NoColor", str(tmp_path / "cells.ipy")],
                          capture_output=True, text=True, timeout=120,
                          env={"COVALENT_NB_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path)})
    output = done.stdout + done.stderr
    assert ("UsageError: %redispatch: there is no dispatch in this kernel yet; run %dispatch first, "
            "or give a dispatch id") in output, output
    assert "no dispatches yet" in output, output  # the store's history is empty too


# -- %%lattice ---------------------------------------------------------------------------

def test_lattice_defines_what_the_decorator_would(ip):
    done = run(ip, WORKFLOW)
    assert done.error is None and done.outputs == [] and done.stdout == ""
    workflow = ip.user_ns["workflow"]
    assert isinstance(workflow, ct.Lattice) and workflow.__name__ == "workflow"
    function = workflow.workflow_function
    assert function.__module__ == "__main__" and function.__globals__ is ip.user_ns
    assert str(inspect.signature(function)) == "(a, b)"
    # the same def written by hand hashes the same: code, not where it came from
    # (under the same name: a function's name is part of its key, as code may use it as data)
    assert run(ip, """
        @ct.lattice
        def workflow(a, b):
            res_0 = task_0(a)
            res_1 = task_1(res_0, b)
            return task_2(res_1, b)
    """).error is None
    by_hand = ip.user_ns["workflow"]
    assert by_hand is not workflow and hash_function(workflow) == hash_function(by_hand)
    # picklable by value (cloudpickle) and its source is readable
    clone = cloudpickle.loads(cloudpickle.dumps(workflow))
    assert clone(1, 2) == 1.5
    assert "def workflow(a, b):" in inspect.getsource(function)
    # the last expression is the return value
    assert ct.dispatch_sync(workflow)(1, 2).result == 1.5


def test_lattice_with_no_trailing_expression_returns_none(ip):
    assert run(ip, "%%lattice quiet(a)\nx = task_0(a)\n").error is None
    assert ip.user_ns["quiet"](5) is None
    assert run(ip, "%%lattice only_comments()\n# nothing yet\n").error is None
    assert ip.user_ns["only_comments"]() is None


def test_lattice_header_takes_any_python_parameter_list(ip):
    done = run(ip, '%%lattice fancy(a, b=(1, 2), c=")", *rest, d=None, **more)\n(a, b, c, rest, d, more)\n')
    assert done.error is None
    fancy = ip.user_ns["fancy"]
    assert str(inspect.signature(fancy.workflow_function)) == \
        "(a, b=(1, 2), c=')', *rest, d=None, **more)"
    assert fancy(0, d=4) == (0, (1, 2), ")", (), 4, {})


def test_lattice_line_numbers_match_the_cell(ip):
    assert run(ip, "%%lattice broken(a)\nx = task_0(a)\ny = undefined_name\ny\n").error is None
    message = usage_error(ip, "%dispatch broken(1)")
    assert message == ("%dispatch: NameError: name 'undefined_name' is not defined "
                       "(in broken, line 3)")


def test_lattice_executor_option(ip):
    assert run(ip, "%%lattice here(a) --executor local\ntask_0(a)\n").error is None
    assert ip.user_ns["here"].metadata["executor"] == "local"
    assert run(ip, "%%lattice there(a) --executor=dask\ntask_0(a)\n").error is None
    assert ip.user_ns["there"].metadata["executor"] == "dask"
    # an executor object from the notebook, by its variable's name
    run(ip, "mine = ct.executor.LocalExecutor(max_workers=1)")
    assert run(ip, "%%lattice own(a) --executor mine\ntask_0(a)\n").error is None
    assert ip.user_ns["own"].metadata["executor"] is ip.user_ns["mine"]
    assert ct.dispatch_sync(ip.user_ns["own"])(7).result == 7
    assert usage_error(ip, "%%lattice x(a) --executor gpu\ntask_0(a)\n") == (
        "%%lattice: unknown executor 'gpu'; use local or dask, or the name of an executor "
        "object defined in the notebook")
    run(ip, "label = 'gpu'")
    assert "unknown executor 'label'" in usage_error(ip, "%%lattice x(a) --executor label\ntask_0(a)\n")


def test_lattice_run_dispatches_with_defaults_shows_the_graph_and_stores_the_id(ip):
    done = run(ip, "%%lattice ready(a=2, b=3) --run -o ready_id\ntask_1(task_0(a), b)\n")
    assert done.error is None
    dispatch_id = ip.user_ns["ready_id"]
    assert isinstance(dispatch_id, str)
    assert ct.get_result(dispatch_id, wait=True).result == 5
    [shown] = graph_outputs(done)
    # the static picture for saved notebooks, under the graph (and its refresh, when the
    # dispatch ended while the cell was still captured)
    *_, picture = picture_outputs(done)
    assert "<svg" in picture.data["image/svg+xml"] and dispatch_id in picture.data["text/html"]
    assert "image/svg+xml" not in shown.data  # one picture only, the one refreshed at the end
    # --run alone, and the long spelling of -o
    assert run(ip, "%%lattice again(a=1) --run\ntask_0(a)\n").error is None
    assert run(ip, "%%lattice third(a=1) --run --output=third_id\ntask_0(a)\n").error is None
    assert ct.get_result(ip.user_ns["third_id"], wait=True).result == 1


def test_lattice_option_errors(ip):
    body = "\ntask_0(a)\n"
    assert usage_error(ip, "%%lattice needs(a, b=1) --run" + body) == (
        "%%lattice --run: a has no default; give defaults in the header or run "
        "%dispatch needs(...) with values")
    assert "a, b have no default" in usage_error(ip, "%%lattice needs2(a, b) --run" + body)
    assert usage_error(ip, "%%lattice w(a=1) -o out" + body) == (
        "%%lattice: -o stores the id of the dispatch that --run starts; add --run, or use "
        "h = %dispatch w(...)")
    assert usage_error(ip, "%%lattice w(a=1) --run -o 1x" + body) == \
        "%%lattice: -o takes a variable name, not '1x'"
    assert usage_error(ip, "%%lattice w(a) --fast" + body) == (
        "%%lattice: unknown option '--fast'; the options are --executor, --output, --run, -o")
    assert usage_error(ip, "%%lattice w(a) --run --run" + body) == "%%lattice: --run is given twice"
    assert usage_error(ip, "%%lattice w(a) --executor" + body) == "%%lattice: --executor needs a value"
    assert usage_error(ip, "%%lattice w(a) --run=yes" + body) == "%%lattice: --run takes no value"
    assert usage_error(ip, "%%lattice w(a) --executor 'local" + body) == \
        "%%lattice: cannot read the options (No closing quotation)"
    assert "w" not in ip.user_ns  # nothing was defined by a failed cell


def test_lattice_header_and_body_errors(ip):
    assert usage_error(ip, "%%lattice\ntask_0(1)\n") == (
        "%%lattice needs the workflow's name and parameters on its first line, e.g. "
        "%%lattice workflow(a, b)")
    assert usage_error(ip, "%%lattice workflow\ntask_0(1)\n") == (
        "%%lattice: write the parameters after the name, e.g. %%lattice workflow(a, b) "
        "(or workflow() for none)")
    assert usage_error(ip, "%%lattice class(a)\ntask_0(a)\n") == \
        "%%lattice: 'class' is a Python keyword; choose another name"
    assert usage_error(ip, "%%lattice w(a, a)\ntask_0(a)\n").startswith(
        "%%lattice: the parameter list of w is not valid Python (")
    assert usage_error(ip, "%%lattice w(a b)\ntask_0(a)\n").startswith(
        "%%lattice: the parameter list of w is not valid Python (")
    assert usage_error(ip, "%%lattice w(a\ntask_0(a)\n").startswith(
        "%%lattice: the parameter list of w is not valid Python (")
    assert usage_error(ip, "%%lattice w(a)\nx = task_0(a)\ny = = 2\n") == (
        "%%lattice: syntax error in the body of w, line 3 of the cell: invalid syntax")


# -- %dispatch ----------------------------------------------------------------------------

def test_dispatch_shows_the_live_graph_and_returns_a_handle(ip):
    run(ip, WORKFLOW)
    done = run(ip, "%dispatch workflow(1, 2)")
    assert done.error is None
    handle = done.value
    assert isinstance(handle, DispatchHandle)
    assert handle.result(timeout=30).result == 1.5
    assert str(handle) == handle.dispatch_id and handle.status == ct.Status.COMPLETED
    assert repr(handle) == f"DispatchHandle({handle.dispatch_id!r}, lattice='workflow')"
    [shown] = graph_outputs(done)
    assert handle.dispatch_id in shown.data["text/plain"]
    # the handle is the value of the magic, so it can be kept
    assert run(ip, "h = %dispatch workflow(a=limit, b=limit - 1)").error is None
    assert ip.user_ns["h"].result().result == 2.5


def test_dispatch_arguments_are_python_expressions_evaluated_in_the_notebook(ip):
    run(ip, WORKFLOW)
    run(ip, "pair = {'b': 4}\nfirst = [2]")
    done = run(ip, "%dispatch workflow(*first, **pair)  # a comment")
    assert done.error is None and done.value.result().result == 1.5
    # a dict literal survives (no $/{} expansion of the line)
    assert run(ip, "%%lattice ident(x)\ntask_0(x)\n").error is None
    assert run(ip, "%dispatch ident({'k': 1})").value.result().result == {"k": 1}


def test_dispatch_without_the_graph_widget_prints_a_text_line(ip, monkeypatch, tmp_path):
    run(ip, WORKFLOW)
    # as on a machine where the widget's front end was never built
    monkeypatch.setattr(graph_widget, "BUNDLE", tmp_path / "graph.js")
    done = run(ip, "%dispatch workflow(1, 2)")
    assert done.error is None and graph_outputs(done) == []
    handle = done.value
    assert done.stdout.startswith(f"dispatch {handle.dispatch_id} of workflow: ")
    assert "no live graph: RuntimeError: the graph widget's front end is not built" in done.stdout
    assert handle.result().result == 1.5


def test_dispatch_errors(ip):
    run(ip, WORKFLOW)
    assert usage_error(ip, "%dispatch") == \
        "%dispatch needs a call of a lattice, e.g. %dispatch workflow(1, 2) or %dispatch --reuse workflow(1, 2)"
    assert usage_error(ip, "%dispatch --reuse") == usage_error(ip, "%dispatch")
    assert usage_error(ip, "%dispatch workflow(1,") == (
        "%dispatch: 'workflow(1,' is not a Python call ('(' was never closed); write e.g. "
        "%dispatch workflow(1, 2)")
    assert usage_error(ip, "%dispatch workflow") == \
        "%dispatch: 'workflow' is not a call; add the arguments, e.g. %dispatch workflow(1, 2)"
    assert usage_error(ip, "%dispatch nowhere(1)") == (
        "%dispatch: name 'nowhere' is not defined; define the workflow with %%lattice or "
        "@ct.lattice first")
    assert usage_error(ip, "%dispatch task_0(1)") == (
        "%dispatch: task_0 is an electron, not a lattice; decorate it with @ct.lattice or "
        "define it with %%lattice")
    assert usage_error(ip, "%dispatch plain(1, 2)") == (
        "%dispatch: plain is a function, not a lattice; decorate it with @ct.lattice or "
        "define it with %%lattice")
    assert usage_error(ip, "%dispatch workflow(1)") == (
        "%dispatch: lattice workflow() is missing required argument(s) 'b'; its signature is "
        "workflow(a, b)")
    assert usage_error(ip, "%dispatch workflow(1, missing)") == (
        "%dispatch: evaluating the arguments raised NameError: name 'missing' is not defined")
    assert usage_error(ip, "%dispatch (1 / 0)(1)") == (
        "%dispatch: evaluating 1 / 0 raised ZeroDivisionError: division by zero")


# -- %redispatch --------------------------------------------------------------------------

@pytest.fixture
def dispatched(ip):
    run(ip, WORKFLOW)
    assert run(ip, "first = %dispatch workflow(1, 2)").error is None
    handle = ip.user_ns["first"]
    assert handle.result().result == 1.5
    return handle


def test_redispatch_the_last_dispatch_with_replacement_reuse_and_new_inputs(ip, dispatched):
    done = run(ip, "%redispatch --replace task_2=task_2_redefined --reuse 1, 4")
    assert done.error is None and len(graph_outputs(done)) == 1
    result = done.value.result()
    assert result.parent_dispatch_id == dispatched.dispatch_id
    assert result.result == 20  # the how-to's case III
    assert result.reused_nodes == [0]  # res_0 reused, res_1 recomputed (b changed)


def test_redispatch_without_arguments_reuses_the_parents_inputs(ip, dispatched):
    result = run(ip, "%redispatch --replace=task_2=task_2_redefined --reuse").value.result()
    assert result.result == 6 and result.reuse_summary()["reused"] == 2
    plain = run(ip, f"%redispatch {dispatched.dispatch_id}").value.result()
    assert plain.result == 1.5 and plain.reuse_summary()["reused"] == 0  # reuse is off by default


def test_redispatch_names_its_parent_by_id_variable_or_handle(ip, dispatched):
    run(ip, "%dispatch workflow(3, 3)")  # now the last dispatch is another one
    by_id = run(ip, f"%redispatch {dispatched.dispatch_id} --reuse a=1, b=2").value.result()
    assert by_id.parent_dispatch_id == dispatched.dispatch_id and by_id.result == 1.5
    run(ip, f"saved = {dispatched.dispatch_id!r}")
    by_var = run(ip, "%redispatch $saved --replace task_2=plain").value.result()
    assert by_var.parent_dispatch_id == dispatched.dispatch_id and by_var.result == 1  # (1+2)-2
    by_handle = run(ip, "%redispatch $first --reuse").value.result()
    assert by_handle.parent_dispatch_id == dispatched.dispatch_id


def test_redispatch_takes_the_short_id_dispatches_shows_with_replacements_and_several_arguments(ip, dispatched):
    run(ip, "%dispatch workflow(3, 3)")  # now the last dispatch is another one
    short = dispatched.dispatch_id[:8]
    assert short in run(ip, "%dispatches").stdout + repr(run(ip, "%dispatches").value)
    done = run(ip, f"%redispatch {short} --replace task_2=task_2_redefined --reuse 1, 4")
    assert done.error is None, done.error
    result = done.value.result()
    assert result.parent_dispatch_id == dispatched.dispatch_id and result.result == 20


def test_redispatch_errors(ip, dispatched):
    parent = dispatched.dispatch_id
    assert usage_error(ip, "%redispatch 00000000-0000-4000-8000-000000000000") == (
        "%redispatch: no dispatch 00000000-0000-4000-8000-000000000000 in this kernel or its "
        "store; %dispatches lists them")
    assert usage_error(ip, "%redispatch $nothing") == \
        "%redispatch: there is no variable 'nothing' in the notebook"
    assert usage_error(ip, "%redispatch $limit") == \
        "%redispatch: limit holds a int, not a dispatch id or handle"
    assert usage_error(ip, "%redispatch --fast") == \
        "%redispatch: unknown option '--fast'; the options are --replace OLD=NEW and --reuse"
    assert usage_error(ip, "%redispatch --replace") == \
        "%redispatch: --replace needs OLD=NEW, e.g. --replace task_2=task_2_redefined"
    assert usage_error(ip, "%redispatch --replace task_2") == (
        "%redispatch: --replace takes OLD=NEW (an electron name, then the name of its "
        "replacement), not 'task_2'")
    assert usage_error(ip, "%redispatch --reuse --reuse") == "%redispatch: --reuse is given twice"
    assert usage_error(ip, "%redispatch --replace task_2=plain --replace task_2=task_0") == \
        "%redispatch: task_2 is replaced twice"
    assert usage_error(ip, "%redispatch --replace task_9=plain") == (
        "%redispatch: --replace task_9=plain: task_9 is not an electron of workflow; its "
        "electrons are task_0, task_1, task_2")
    assert usage_error(ip, "%redispatch --replace task_2=ghost") == (
        "%redispatch: --replace task_2=ghost: there is no 'ghost' in the notebook; define it "
        "first or check the spelling")
    assert usage_error(ip, "%redispatch --replace task_2=limit") == \
        "%redispatch: --replace task_2=limit: limit is a int, not a function or an electron"
    assert usage_error(ip, "%redispatch --replace task_2=ct.nothing_here") == \
        "%redispatch: --replace task_2=ct.nothing_here: ct has no attribute 'nothing_here'"
    assert usage_error(ip, "%redispatch --replace task_2=task_0") == (
        "%redispatch: replacement task_0(a) cannot take the arguments of task_2(a, b) (node 4: "
        "2 positional, keywords none): too many positional arguments")
    assert usage_error(ip, "%redispatch 1, 4 --reuse") == (
        "%redispatch: options go before the arguments, e.g. %redispatch --replace "
        "task_2=task_2_redefined --reuse 1, 4")
    assert usage_error(ip, "%redispatch 1, 4)") == (
        "%redispatch: cannot read the arguments '1, 4)' (unmatched ')'); write them as between "
        "the parentheses of a call, e.g. 1, 4 or a=1, b=4")
    assert usage_error(ip, "%redispatch 1) + (2") == \
        "%redispatch: '1) + (2' is not an argument list; write e.g. 1, 4 or a=1, b=4"
    assert usage_error(ip, "%redispatch 1, nope") == \
        "%redispatch: evaluating the arguments raised NameError: name 'nope' is not defined"
    assert usage_error(ip, "%redispatch 1, 2, 3") == (
        "%redispatch: lattice workflow() takes 2 positional argument(s) but 3 were given; its "
        "signature is workflow(a, b)")
    # no failed %redispatch started anything
    assert RUNTIME.registry.last_dispatch_id() == parent


def test_negative_arguments_are_not_options(ip, dispatched):
    assert run(ip, "%redispatch -1, -limit").value.result().result == pytest.approx((-1 - 3) / -3)


# -- %dispatches ---------------------------------------------------------------------------

def test_dispatches_lists_the_history_newest_first_with_lineage(ip, dispatched):
    child = run(ip, "%redispatch --replace task_2=task_2_redefined --reuse").value
    child.result()
    done = run(ip, "%dispatches")
    assert done.error is None
    table = done.value
    text = str(table)
    lines = text.splitlines()
    assert lines[0].split() == ["id", "lattice", "status", "start", "duration", "parent",
                                "reused", "recomputed"]
    newest = lines[2].split()
    assert newest[:4] == ["↳", child.dispatch_id[:8], "workflow", "COMPLETED"]
    assert newest[-3:] == [dispatched.dispatch_id[:8], "2", "2"]  # parent, reused, recomputed
    assert lines[3].split()[0] == dispatched.dispatch_id[:8]
    assert table.records[0]["id"] == child.dispatch_id
    assert table.records[1]["parent"] is None
    page = table._repr_html_()
    assert page.startswith('<table class="cnb-history">')
    assert f'<tr data-id="{child.dispatch_id}" data-status="COMPLETED">' in page
    assert f'title="{dispatched.dispatch_id}"' in page
    # -n keeps the newest N
    assert [r["id"] for r in run(ip, "%dispatches -n 1").value.records] == [child.dispatch_id]


def test_dispatches_marks_a_failed_dispatch_and_names_its_failed_electron(ip, dispatched):
    failed = run(ip, "%redispatch --replace task_2=task_1 'a', 2").value
    assert failed.result().status == "FAILED"  # 'a' + 2
    table = run(ip, "%dispatches -n 2").value
    lines = str(table).splitlines()
    assert lines[2].split()[:5] == ["↳", failed.dispatch_id[:8], "workflow", "✖", "FAILED"]
    assert lines[3].startswith("    ✖ task_1 (node 2): TypeError: can only concatenate str")
    assert lines[4].split()[0] == dispatched.dispatch_id[:8]
    page = table._repr_html_()
    assert f'<tr class="cnb-history-failure" data-failed-id="{failed.dispatch_id}">' in page
    assert "cnb-badge-failed" in page and "<code>task_1</code> (node 2): " in page


def test_dispatches_errors(ip):
    assert usage_error(ip, "%dispatches -n 0") == \
        "%dispatches: -n takes a positive whole number, not '0'"
    assert usage_error(ip, "%dispatches -n many") == \
        "%dispatches: -n takes a positive whole number, not 'many'"
    assert usage_error(ip, "%dispatches --all") == \
        "%dispatches: unknown option '--all'; the options are -n"


def test_the_live_view_opens_the_panel_from_the_graph_button(ip, dispatched):
    done = run(ip, "%dispatch workflow(2, 2)")
    [shown] = graph_outputs(done)
    view = done.value.view
    assert isinstance(view, LiveView) and shown.data[WIDGET]["model_id"] == view.model_id
    assert view.slot.children == ()
    view.graph._handle_custom_msg({"event": "open_panel"}, [])  # what the button sends
    [panel] = view.slot.children
    from covalent_nb.widgets import RedispatchPanel

    assert isinstance(panel, RedispatchPanel)
    assert panel.parent.dispatch_id == done.value.dispatch_id
    view.graph._handle_custom_msg({"event": "open_panel"}, [])
    assert view.slot.children == (panel,)  # pressing again keeps the open panel


def test_a_graph_shown_while_running_saves_the_final_picture(tmp_path):
    """%dispatch shows the graph at once; when the dispatch ends, the output is refreshed,
    so a notebook saved without widget state shows the final colours, not the first."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import time\nimport covalent_nb as ct\n%load_ext covalent_nb\n"
            "@ct.electron\ndef slow(x):\n    time.sleep(0.5)\n    return x\n"
            "@ct.lattice\ndef flow(x):\n    return slow(x)\n"),
        nbformat.v4.new_code_cell("run = %dispatch flow(1)"),
        nbformat.v4.new_code_cell("run.result().status"),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown = [o for o in nb.cells[1].outputs if o.output_type == "display_data"]
    assert len(shown) == 2  # the widget, then its picture
    assert "image/svg+xml" not in shown[0]["data"]
    svg = shown[1]["data"]["image/svg+xml"]
    assert "completed 2" in svg and "pending 0" in svg and "running 0" in svg
    assert svg in shown[1]["data"]["text/html"]
    assert "COMPLETED" in nb.cells[2].outputs[0]["data"]["text/plain"]
