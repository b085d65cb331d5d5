"""Tracing: node ids, names and edges exactly as Covalent numbers them."""

import networkx as nx
import time

import pytest

import covalent_nb as ct


@ct.electron
def task_0(a):
    return a


@ct.electron
def task_1(a, b):
    return a + b


@ct.electron
def task_2(a, b):
    return a / b


@ct.lattice
def seed(a, b):
    res_0 = task_0(a)
    res_1 = task_1(res_0, b)
    res_2 = task_2(res_1, b)
    return res_2


@ct.electron
def task(x):
    return x


@ct.electron
def pair(x):
    return x, x + 1


@ct.electron
def mapping(x):
    return {"k": x}


def names(graph):
    return list(enumerate(graph.names))


def test_seed_ids_and_edges_are_covalents():
    graph = seed.build_graph(1, 2)
    assert names(graph) == [(0, "task_0"), (1, ":parameter:1"), (2, "task_1"), (3, ":parameter:2"),
                            (4, "task_2"), (5, ":parameter:2"), (6, ":postprocess:reconstruct")]
    assert graph.edges == [
        (1, 0, "a", "arg", 0), (0, 2, "a", "arg", 0), (3, 2, "b", "arg", 1),
        (2, 4, "a", "arg", 0), (5, 4, "b", "arg", 1), (4, 6, "retval", "arg", 0),
    ]
    assert graph.kinds[1] == "parameter" and graph.values[1] == 1


def test_every_plain_argument_gets_its_own_parameter_node():
    @ct.lattice
    def twice(b):
        return task_1(b, b)

    graph = twice.build_graph(7)
    assert names(graph) == [(0, "task_1"), (1, ":parameter:7"), (2, ":parameter:7"),
                            (3, ":postprocess:reconstruct")]


def test_list_argument_becomes_electron_list_node():
    @ct.lattice
    def flow():
        return task([5, 7])

    graph = flow.build_graph()
    assert names(graph) == [(0, "task"), (1, ":electron_list:"), (2, ":parameter:5"), (3, ":parameter:7"),
                            (4, ":postprocess:reconstruct")]
    assert (1, 0, "x", "arg", 0) in graph.edges
    assert (2, 1, "arg[0]", "arg", 0) in graph.edges and (3, 1, "arg[1]", "arg", 1) in graph.edges
    assert ct.dispatch_sync(flow)().result == [5, 7]


def test_tuple_and_set_keep_their_type_and_dict_becomes_electron_dict():
    @ct.lattice
    def flow():
        return task((1, 2)), task({3}), task({"a": 1, "b": task(2)})

    graph = flow.build_graph()
    assert graph.names.count(":electron_list:") == 3  # tuple, set, and the returned tuple
    assert ":electron_dict:" in graph.names
    assert ct.dispatch_sync(flow)().result == ((1, 2), {3}, {"a": 1, "b": 2})


def test_returned_list_gets_its_node_after_postprocess():
    @ct.lattice
    def flow(x):
        return [task(x), task(x)]

    graph = flow.build_graph(1)
    assert names(graph)[-2:] == [(4, ":postprocess:reconstruct"), (5, ":electron_list:")]
    assert (5, 4, "retval", "arg", 0) in graph.edges
    assert ct.dispatch_sync(flow)(3).result == [3, 3]


def test_unpacking_makes_getter_nodes():
    @ct.lattice
    def flow(x):
        p, q = pair(x)
        return task_1(p, q)

    graph = flow.build_graph(1)
    assert names(graph)[:6] == [(0, "pair"), (1, ":parameter:1"), (2, ":pair()[0]"), (3, ":parameter:0"),
                                (4, ":pair()[1]"), (5, ":parameter:1")]
    assert ct.dispatch_sync(flow)(10).result == 21


def test_getitem_and_getattr_make_getter_nodes_with_key_parameter():
    class Box:
        def __init__(self, v):
            self.v = v

    @ct.electron
    def boxed(x):
        return Box(x)

    @ct.lattice
    def flow(x):
        return task_1(mapping(x)["k"], boxed(x).v)

    graph = flow.build_graph(4)
    assert ":mapping.__getitem__" in graph.names and ":boxed.__getattr__" in graph.names
    getter = graph.names.index(":mapping.__getitem__")
    assert graph.names[getter + 1] == ":parameter:k"
    assert ct.dispatch_sync(flow)(4).result == 8


def test_arithmetic_on_outputs_makes_operator_nodes():
    @ct.lattice
    def flow(x):
        return task(x) * 2 + 1

    graph = flow.build_graph(3)
    assert [k for k in graph.kinds if k == "operator"] == ["operator", "operator"]
    assert ct.dispatch_sync(flow)(3).result == 7


def test_wait_adds_waiting_edges_without_data():
    @ct.electron
    def first():
        time.sleep(0.05)  # without the wait edge, second would start (and end) first

    @ct.electron
    def second():
        pass

    @ct.lattice
    def flow():
        a = first()
        b = second()
        ct.wait(b, [a])
        return b

    graph = flow.build_graph()
    assert (0, 1, "!waiting_edge", None, None) in graph.edges
    result = ct.dispatch_sync(flow)()
    assert result.status == "COMPLETED"
    # tasks run on a frozen copy, so the order shows in their times, not in a notebook list
    assert result.get_node_result(1)["start_time"] >= result.get_node_result(0)["end_time"]


def test_networkx_view_and_node_values():
    graph = seed.build_graph(1, 2)
    nxg = graph.get_internal_graph_copy()
    assert isinstance(nxg, nx.MultiDiGraph)
    assert sorted(nxg.nodes) == list(range(7))
    assert nxg.nodes[4]["name"] == "task_2"
    assert nxg.get_edge_data(2, 4)[0] == {"edge_name": "a", "param_type": "arg", "arg_index": 0}
    assert graph.get_node_value(1, "value") == 1
    assert graph.get_node_value(0, "status") == "NEW_OBJECT"
    metadata = graph.get_node_value(0, "metadata")
    assert set(metadata["hooks"]) == {"deps", "call_before", "call_after"}
    assert set(metadata["hooks"]["deps"]) == {"bash", "pip"}
    with pytest.raises(KeyError, match="node 99 does not exist"):
        graph.get_node_value(99, "name")


def test_dispatched_graph_reports_status_and_output():
    result = ct.dispatch_sync(seed)(1, 2)
    graph = result.lattice.transport_graph
    assert graph.get_node_value(4, "status") == "COMPLETED"
    assert graph.get_node_value(4, "output") == 1.5


def test_sublattice_is_one_node_with_its_own_result():
    @ct.lattice
    def inner(x):
        return task_1(x, 1)

    @ct.lattice
    def outer(x):
        return task(ct.electron(inner)(x))

    graph = outer.build_graph(2)
    assert graph.names[0] == ":sublattice:inner" and graph.kinds[0] == "sublattice"
    result = ct.dispatch_sync(outer)(2)
    assert result.result == 3
    child = result.get_node_result(0)["sublattice_result"]
    assert child.result == 3 and child.status == "COMPLETED"


def test_wrong_arguments_name_the_lattice_and_signature():
    with pytest.raises(TypeError, match=r"lattice seed\(\) is missing required argument\(s\) 'b'; "
                                        r"its signature is seed\(a, b\)"):
        seed.build_graph(1)
    with pytest.raises(TypeError, match="takes 2 positional argument"):
        ct.dispatch(seed)(1, 2, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'c'"):
        ct.dispatch(seed)(1, c=2)


def test_wrong_arguments_to_an_electron_name_it():
    @ct.lattice
    def flow():
        return task_1(1)

    with pytest.raises(TypeError, match=r"electron task_1\(\) is missing required argument"):
        ct.dispatch(flow)()


def test_electron_and_lattice_called_directly_are_plain_python():
    assert task_1(1, 2) == 3
    assert seed(1, 2) == 1.5


def test_branching_on_an_output_while_tracing_explains_what_to_do():
    @ct.lattice
    def branchy(x):
        if task(x):
            return task(1)
        return task(2)

    with pytest.raises(TypeError, match="not known while the lattice is being traced.*sublattice"):
        ct.dispatch(branchy)(1)

    @ct.lattice
    def loopy(x):
        return [task(v) for v in task(x)]

    with pytest.raises(TypeError, match="can only be iterated while tracing by unpacking"):
        ct.dispatch(loopy)([1, 2])


@ct.lattice
def _unpacks(x):
    p, q = pair(x)
    return task_1(p, q)


@ct.lattice
def _indexes(x):
    return mapping(x)["k"]


@ct.lattice
def _attribute(x):
    return task(x).real


@ct.lattice
def _dict_argument(x):
    return task({"a": x, "b": task(2)})


@ct.lattice
def _operators(x):
    return task(x) * 2 + 1


@ct.lattice
def _inner(x):
    return task(x)


@ct.lattice
def _sublattice(x):
    return task(ct.electron(_inner)(x))


@ct.lattice
def _waits():
    a = task(1)
    b = task(2)
    ct.wait(b, [a])
    return b


@ct.lattice
def _returns_dict(x):
    return {"v": task(x)}


@pytest.mark.parametrize("flow, args, nodes, edges", [
    (_unpacks, (1,),
     ["pair", ":parameter:1", ":pair()[0]", ":parameter:0", ":pair()[1]", ":parameter:1", "task_1",
      ":postprocess:reconstruct"],
     [(1, 0, "x", "arg", 0), (0, 2, "obj", "arg", 0), (3, 2, "key", "arg", 1), (0, 4, "obj", "arg", 0),
      (5, 4, "key", "arg", 1), (2, 6, "a", "arg", 0), (4, 6, "b", "arg", 1), (6, 7, "retval", "arg", 0)]),
    (_indexes, (1,),
     ["mapping", ":parameter:1", ":mapping.__getitem__", ":parameter:k", ":postprocess:reconstruct"],
     [(1, 0, "x", "arg", 0), (0, 2, "obj", "arg", 0), (3, 2, "key", "arg", 1), (2, 4, "retval", "arg", 0)]),
    (_attribute, (1,),
     ["task", ":parameter:1", ":task.__getattr__", ":parameter:real", ":postprocess:reconstruct"],
     [(1, 0, "x", "arg", 0), (0, 2, "obj", "arg", 0), (3, 2, "key", "arg", 1), (2, 4, "retval", "arg", 0)]),
    (_dict_argument, (1,),
     ["task", ":parameter:2", "task", ":electron_dict:", ":parameter:1", ":postprocess:reconstruct"],
     [(1, 0, "x", "arg", 0), (4, 3, "a", "kwarg", None), (0, 3, "b", "kwarg", None), (3, 2, "x", "arg", 0),
      (2, 5, "retval", "arg", 0)]),
    (_operators, (3,),
     ["task", ":parameter:3", "task_*_2", ":parameter:2", "task_*_2_+_1", ":parameter:1",
      ":postprocess:reconstruct"],
     [(1, 0, "x", "arg", 0), (0, 2, "arg[0]", "arg", 0), (3, 2, "arg[1]", "arg", 1), (2, 4, "arg[0]", "arg", 0),
      (5, 4, "arg[1]", "arg", 1), (4, 6, "retval", "arg", 0)]),
    (_sublattice, (2,),
     [":sublattice:_inner", ":parameter:2", "task", ":postprocess:reconstruct"],
     [(1, 0, "x", "arg", 0), (0, 2, "x", "arg", 0), (2, 3, "retval", "arg", 0)]),
    (_waits, (),
     ["task", ":parameter:1", "task", ":parameter:2", ":postprocess:reconstruct"],
     [(1, 0, "x", "arg", 0), (3, 2, "x", "arg", 0), (0, 2, "!waiting_edge", None, None),
      (2, 4, "retval", "arg", 0)]),
    (_returns_dict, (1,),
     ["task", ":parameter:1", ":postprocess:reconstruct", ":electron_dict:"],
     [(1, 0, "x", "arg", 0), (0, 3, "v", "kwarg", None), (3, 2, "retval", "arg", 0)]),
])
def test_every_node_kind_has_covalents_ids_and_edges(flow, args, nodes, edges):
    graph = flow.build_graph(*args)
    assert graph.names == nodes
    assert graph.edges == edges


# -- electron outputs inside structures ---------------------------------------------------
import collections
import dataclasses

Pair = collections.namedtuple("Pair", "left right")


@dataclasses.dataclass
class Holder:
    value: int
    label: str = "x"


@ct.electron
def twice(x):
    return 2 * x


@ct.electron
def echo(v):
    return v


def test_outputs_inside_namedtuples_dataclasses_and_dicts_with_other_keys_arrive_as_values():
    @ct.lattice
    def flow(n):
        a = twice(n)
        return (echo(Pair(a, 1)), echo(Holder(a)), echo({1: a, (2, 3): twice(a)}),
                {5: a}, Pair(twice(1), a))

    result = ct.dispatch_sync(flow)(3)
    assert result.status == "COMPLETED", result.error
    pair, holder, keyed, returned, built = result.result
    assert tuple(pair) == (6, 1) and type(pair).__name__ == "Pair" and pair.left == 6
    assert (holder.value, holder.label) == (6, "x") and type(holder).__name__ == "Holder"
    assert keyed == {1: 6, (2, 3): 12} and returned == {5: 6} and tuple(built) == (2, 6)


def test_an_output_inside_an_unsupported_object_is_refused_at_trace_time_not_passed_as_a_placeholder():
    class Box:
        def __init__(self, v):
            self.v = v

    @ct.lattice
    def flow(n):
        return echo(Box(twice(n)))

    with pytest.raises(TypeError, match=r"a Box holds an electron's output.*list, tuple, set, dict, namedtuple or "
                                        r"dataclass"):
        ct.dispatch(flow)(1)


def test_structures_of_different_types_with_equal_parts_are_not_reused_for_each_other():
    Other = collections.namedtuple("Other", "left right")

    @ct.lattice
    def as_pair(n):
        return echo(Pair(twice(n), 1))

    @ct.lattice
    def as_other(n):
        return echo(Other(twice(n), 1))

    first = ct.dispatch_sync(as_pair)(2)
    second = ct.dispatch_sync(as_other)(2)
    gather = lambda r: next(i for i in range(len(r.graph)) if r.graph.kinds[i] == "electron_list")
    assert first.get_node_result(gather(first))["key"] != second.get_node_result(gather(second))["key"]


def _nested(levels, innermost):
    outer = current = []
    for _ in range(levels - 1):
        inner = []
        current.append(inner)
        current = inner
    current.append(innermost)
    return outer


def _depth(value):
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth, value


@ct.electron
def depth_of(x):
    return _depth(x)


@pytest.mark.parametrize("levels", [600, 3000])
def test_an_argument_nested_hundreds_of_levels_deep_traces_and_arrives_whole(levels):
    @ct.lattice
    def flow(x):
        return depth_of(x)

    result = ct.dispatch_sync(flow)(_nested(levels, "core"))
    assert result.status == ct.status.COMPLETED, result.error
    assert result.result == (levels, "core")
    # the first ct.tracing.MAX_NESTING levels unfold into collector nodes as Covalent's do
    lists = [n for n in result.graph.names if n == ":electron_list:"]
    assert len(lists) == 100


def test_a_list_that_contains_itself_traces_and_keeps_its_cycle():
    # The outer list unfolds into a collector node as any list does; where the list comes
    # back to itself, the rest is passed as one value, so the cycle arrives intact one level in.
    @ct.electron
    def shape(x):
        return len(x), x[0], x[1][1] is x[1], x[1][0]

    @ct.lattice
    def flow(x):
        return shape(x)

    loop = [1]
    loop.append(loop)
    result = ct.dispatch_sync(flow)(loop)
    assert result.status == ct.status.COMPLETED, result.error
    assert result.result == (2, 1, True, 1)


def test_an_output_buried_deeper_than_the_unfolding_limit_is_refused_with_a_clear_error():
    @ct.lattice
    def flow():
        return depth_of(_nested(150, task(1)))

    with pytest.raises(TypeError, match="nested more than 100 levels deep and holds an electron's output"):
        ct.dispatch(flow)()
