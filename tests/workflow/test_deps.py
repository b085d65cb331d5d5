"""Hooks around tasks: DepsBash, DepsPip, DepsCall, and the bash Lepton."""

import sys

import pytest

import covalent_nb as ct
from covalent_nb.dispatch.freeze import dumps_by_value
from covalent_nb.workflow.deps import deps_from_dict


def test_deps_call_retval_keyword_passes_values_in_order():
    @ct.electron(call_before=[ct.DepsCall(lambda: 1, retval_keyword="extra"),
                              ct.DepsCall(lambda x: x * 10, args=(2,), retval_keyword="extra"),
                              ct.DepsCall(lambda: "solo", retval_keyword="other")])
    def task(x, extra=None, other=None):
        return x, extra, other

    @ct.lattice
    def flow(x):
        return task(x)

    assert ct.dispatch_sync(flow)(5).result == (5, [1, 20], "solo")


def test_call_before_and_after_run_around_the_task_and_print_into_its_record():
    @ct.electron(call_before=ct.DepsCall(print, args=("before",)),
                 call_after=[ct.DepsCall(print, args=("after",))])
    def task():
        print("during")
        return 1

    @ct.lattice
    def flow():
        return task()

    result = ct.dispatch_sync(flow)()
    assert result.get_node_result(0)["stdout"] == "before\nduring\nafter\n"


def test_deps_bash_runs_first_and_its_failure_fails_the_node(tmp_path):
    marker = tmp_path / "marker"

    @ct.electron(deps_bash=ct.DepsBash([f"echo ran > {marker}", "echo hello-from-bash"]))
    def reads():
        return marker.read_text().strip()

    @ct.electron(deps_bash=["exit 3"])
    def never():
        return "no"

    @ct.lattice
    def flow():
        return [reads(), never()]

    result = ct.dispatch_sync(flow)()
    assert result.get_node_result(0)["output"] == "ran"
    assert "hello-from-bash" in result.get_node_result(0)["stdout"]
    failed = result.get_node_result(1)
    assert failed["status"] == "FAILED" and "exited with status 3" in failed["error"]


def test_deps_pip_satisfied_costs_nothing_and_missing_fails_clearly_when_installs_are_off():
    assert ct.DepsPip(packages=["pytest", "cloudpickle>=1"]).missing() == []

    @ct.electron(deps_pip=ct.DepsPip(packages=["covalent-nb-no-such-package==9.9"]))
    def needs():
        return 1

    @ct.lattice
    def flow():
        return needs()

    ct.set_config(deps_pip_install=False)
    try:
        result = ct.dispatch_sync(flow)()
    finally:
        ct.set_config(deps_pip_install=True)
    error = result.get_node_result(0)["error"]
    assert result.status == "FAILED"
    assert "covalent-nb-no-such-package==9.9" in error
    assert f"{sys.executable} -m pip install covalent-nb-no-such-package==9.9" in error


def test_deps_pip_reads_a_requirements_file(tmp_path):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("# comment\npytest\n\nnetworkx>=2  # inline\n")
    assert ct.DepsPip(reqs_path=str(reqs)).requirements() == ["pytest", "networkx>=2"]


@pytest.mark.parametrize("hook", [
    ct.DepsBash(["echo a", "echo b"]),
    ct.DepsPip(packages=["numpy>=1"], reqs_path=None),
    ct.DepsCall(max, args=(1, 2), kwargs={}, retval_keyword="biggest"),
])
def test_hooks_round_trip_through_dicts(hook):
    data = hook.to_dict()
    assert data["type"] == type(hook).__name__
    again = type(hook).from_dict(data)
    assert again == hook and deps_from_dict(data) == hook
    if isinstance(hook, ct.DepsCall):
        assert again() == 2


def test_electron_rejects_what_it_does_not_support():
    with pytest.raises(NotImplementedError, match="files"):
        ct.electron(files=["a.txt"])
    with pytest.raises(TypeError, match="call_before takes"):
        ct.electron(call_before=[42])


def test_bash_lepton_fills_placeholders_and_returns_named_outputs():
    lepton = ct.Lepton(language="bash", command="SUM=$(( {0} + {b} )); WHO=world; echo noise",
                       named_outputs=["SUM", "WHO"])

    @ct.lattice
    def flow(a):
        return lepton(a, b=3)

    result = ct.dispatch_sync(flow)(4)
    assert result.result == ("7", "world")
    assert result.get_node_result(0)["stdout"] == "noise\n"


def test_bash_lepton_failure_and_other_languages_are_clear():
    failing = ct.Lepton(command="echo oops >&2; exit 4")

    @ct.lattice
    def flow():
        return failing()

    result = ct.dispatch_sync(flow)()
    assert "exited with status 4" in result.get_node_result(0)["error"]
    assert "oops" in result.get_node_result(0)["error"]
    with pytest.raises(NotImplementedError, match="only 'bash'"):
        ct.Lepton(language="C", library_name="libm.so", function_name="sqrt")


def test_deps_module_ships_a_local_module_by_value(tmp_path, monkeypatch):
    import subprocess
    import sys as _sys

    import cloudpickle

    (tmp_path / "cnb_local_helpers.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import cnb_local_helpers

    @ct.electron(deps_module="cnb_local_helpers")
    def uses(x):
        return cnb_local_helpers.triple(x)

    assert uses.metadata["deps_module"] == ["cnb_local_helpers"]
    # nothing process-wide: cloudpickle's by-value registry is left alone
    assert "cnb_local_helpers" not in cloudpickle.list_registry_pickle_by_value()
    payload = dumps_by_value(uses.function)  # what a Dask worker receives
    # A process that cannot import the module still runs the function: it travelled by value.
    code = "import pickle, sys; print(pickle.loads(sys.stdin.buffer.read())(5))"
    done = subprocess.run([_sys.executable, "-c", code], input=payload, capture_output=True, check=True)
    assert done.stdout.strip() == b"15"
    with pytest.raises(ImportError, match="cannot be imported"):
        ct.electron(deps_module="cnb_no_such_module_anywhere")


def _tiny_wheel(directory) -> str:
    """Build a minimal, valid wheel by hand (no build backend, no network)."""
    import base64
    import hashlib
    import zipfile

    name, version = "cnb_probe_pkg", "0.1"
    files = {
        f"{name}/__init__.py": "ANSWER = 42\n",
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: covalent_nb-tests\n"
                                             "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record_lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record_lines.append(f"{path},sha256={digest},{len(text.encode())}")
    record = f"{name}-{version}.dist-info/RECORD"
    record_lines.append(f"{record},,")
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(record, "\n".join(record_lines) + "\n")
    return str(wheel)


def test_deps_pip_installs_a_missing_requirement_with_pip_and_keeps_pips_output(tmp_path):
    import subprocess

    wheel = _tiny_wheel(tmp_path)

    @ct.electron(deps_pip=ct.DepsPip(packages=[wheel]))
    def uses_it():
        import cnb_probe_pkg

        return cnb_probe_pkg.ANSWER

    @ct.lattice
    def flow():
        return uses_it()

    try:
        result = ct.dispatch_sync(flow)()
        record = result.get_node_result(0)
        assert result.status == "COMPLETED", record["error"]
        assert record["output"] == 42
        assert "Successfully installed cnb-probe-pkg-0.1" in record["stdout"]
        assert ct.DepsPip(packages=["cnb_probe_pkg==0.1"]).missing() == []  # now satisfied: no pip run
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "cnb_probe_pkg"],
                       capture_output=True)


def test_lattice_hooks_are_the_default_of_electrons_without_their_own():
    @ct.electron
    def plain():
        return "plain"

    @ct.electron(call_before=ct.DepsCall(print, args=("own hook",)))
    def own():
        return "own"

    @ct.lattice(call_before=[ct.DepsCall(print, args=("lattice hook",))])
    def flow():
        return [plain(), own()]

    result = ct.dispatch_sync(flow)()
    stdout = {result.graph.names[i]: result.get_node_result(i)["stdout"]
              for i, k in enumerate(result.graph.kinds) if k != "parameter"}
    assert stdout["plain"] == "lattice hook\n"
    assert stdout["own"] == "own hook\n"
    assert stdout[":postprocess:reconstruct"] == ""


def test_deps_module_and_status_as_covalent_names_them():
    @ct.electron(deps_module=ct.DepsModule("json"))
    def uses_json(x):
        return x

    assert uses_json.metadata["deps_module"] == ["json"]
    assert repr(ct.DepsModule("json")) == "DepsModule('json')"
    with pytest.raises(TypeError, match="DepsModule takes a module or a module name"):
        ct.DepsModule(3)

    @ct.lattice
    def flow(x):
        return uses_json(x)

    assert ct.dispatch_sync(flow)(1).status == ct.status.COMPLETED == "COMPLETED"
    assert ct.status.FAILED is ct.Status.FAILED


def test_hooks_in_a_graphs_metadata_read_as_covalent_code_reads_them():
    @ct.electron(deps_bash=["echo hi"], deps_pip=ct.DepsPip(packages=["numpy"]))
    def task(x):
        return x

    @ct.lattice
    def flow(x):
        return task(x)

    graph = flow.build_graph(1)
    deps = graph.get_node_value(0, "metadata")["hooks"]["deps"]
    bash = ct.DepsBash().from_dict(deps["bash"])  # as Covalent's docs write it
    assert bash.commands == ["echo hi"] and bash == deps["bash"]
    assert deps["bash"]["attributes"]["commands"] == ["echo hi"]
    assert deps["pip"]["type"] == "DepsPip" and ct.DepsPip().from_dict(deps["pip"]).packages == ["numpy"]
