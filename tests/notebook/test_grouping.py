"""Which sibling nodes the graph draws as one group, and what a drawing holds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import covalent_nb as ct
from covalent_nb.notebook.grouping import (GROUP_MIN, PAGE_SIZE, decode_runs, encode_runs,
                                           find_groups, make_drawing)
from covalent_nb.states import NodeKind


@ct.electron
def load(i):
    return i


@ct.electron
def clean(x):
    return x


@ct.electron
def featurize(x, scale=1):
    return x * scale


@ct.electron
def total(xs):
    return sum(xs)


@ct.electron
def pick(xs, ys):
    return xs


@ct.electron
def split(data):
    return {"a": data, "b": data}


@ct.lattice
def fan_out(n):
    return total([featurize(i) for i in range(n)])


@ct.lattice
def chains(n):
    return total([featurize(clean(load(i))) for i in range(n)])


@ct.lattice
def two_places(n):
    # the same function in two list comprehensions feeding two different nodes
    first = total([featurize(i) for i in range(n)])
    second = pick([featurize(i, 2) for i in range(n)], first)
    return second


@ct.lattice
def getters(n):
    parts = split(n)
    return total([featurize(parts["a"], i) for i in range(n)])


def groups_of(lattice, *args):
    graph = lattice.build_graph(*args)
    return graph, find_groups(graph.names, graph.kinds, graph.edges)


def test_a_fan_out_is_one_group_of_its_mapped_nodes():
    graph, groups = groups_of(fan_out, 50)
    [group] = groups
    assert group.id == "g0" and group.name == "featurize" and group.kind == NodeKind.ELECTRON
    assert len(group.members) == 50
    assert all(graph.names[v] == "featurize" for v in group.members)
    assert list(group.members) == sorted(group.members)


def test_below_the_threshold_nothing_is_grouped():
    _, groups = groups_of(fan_out, GROUP_MIN - 1)
    assert groups == ()
    _, groups = groups_of(fan_out, GROUP_MIN)
    assert len(groups) == 1


def test_each_step_of_mapped_chains_is_a_group_of_the_same_size():
    graph, groups = groups_of(chains, 40)
    assert [(g.name, len(g.members)) for g in groups] == [("load", 40), ("clean", 40), ("featurize", 40)]
    # the unique nodes stay on their own
    grouped = {v for g in groups for v in g.members}
    assert not any(graph.names[v] == "total" for v in grouped)


def test_the_same_function_in_two_places_makes_two_groups():
    graph, groups = groups_of(two_places, 20)
    assert [(g.name, len(g.members)) for g in groups] == [("featurize", 20), ("featurize", 20)]
    first, second = (set(g.members) for g in groups)
    assert not first & second


def test_getters_feeding_a_group_are_a_group_of_bookkeeping_nodes():
    graph, groups = groups_of(getters, 12)
    kinds = {g.kind for g in groups}
    assert kinds == {NodeKind.ELECTRON, NodeKind.GETTER}
    getter_group = next(g for g in groups if g.kind == NodeKind.GETTER)
    assert len(getter_group.members) == 12


def test_groups_do_not_depend_on_the_hash_seed():
    code = (
        "import json, sys; sys.path.insert(0, {path!r})\n"
        "from test_grouping import two_places, groups_of\n"
        "print(json.dumps([[g.id, g.name, list(g.members)] for g in groups_of(two_places, 15)[1]]))\n"
    ).format(path=os.path.dirname(__file__))
    outputs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outputs.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                   text=True, check=True).stdout)
    assert len(outputs) == 1
    _, groups = groups_of(two_places, 15)
    assert json.loads(outputs.pop()) == [[g.id, g.name, list(g.members)] for g in groups]


@pytest.mark.parametrize("members", [[], [4], [0, 2, 4, 6], [1, 2, 3, 10, 20, 30, 31], [5, 9]])
def test_runs_round_trip(members):
    assert decode_runs(encode_runs(members)) == members


def test_a_fan_out_encodes_as_one_run():
    _, [group] = groups_of(fan_out, 1000)
    assert len(encode_runs(group.members)) == 1


def test_a_collapsed_drawing_has_one_item_per_group_and_no_member_parameters():
    graph, groups = groups_of(fan_out, 30)
    drawing = make_drawing(graph.kinds, graph.edges, groups)
    ids = [item.id for item in drawing.items]
    # the group, the list, total, the postprocess node: no parameter of a member is drawn
    assert ids.count("g0") == 1 and len(ids) == 4
    assert all(graph.kinds[int(i)] != NodeKind.PARAMETER for i in ids if i != "g0")
    group_item = ids.index("g0")
    assert all(drawing.item_of[v] == group_item for v in groups[0].members)
    # edges between items, once each: group -> list -> total -> postprocess
    assert len(drawing.pairs) == 3 and len(set(drawing.pairs)) == 3


def test_an_expanded_page_draws_its_members_and_keeps_the_rest_as_the_group():
    graph, groups = groups_of(fan_out, PAGE_SIZE + 30)
    members = groups[0].members
    first = make_drawing(graph.kinds, graph.edges, groups, {"g0": 0})
    drawn = {item.node for item in first.items if item.node >= 0}
    assert set(members[:PAGE_SIZE]) <= drawn and not set(members[PAGE_SIZE:]) & drawn
    assert sum(1 for item in first.items if item.group == 0) == 1  # the rest
    assert first.pages == {0: 0}
    # each shown member's parameter is drawn too
    params = {e[0] for e in graph.edges if e[1] in members[:PAGE_SIZE]
              and graph.kinds[e[0]] == NodeKind.PARAMETER}
    assert params <= drawn
    last = make_drawing(graph.kinds, graph.edges, groups, {"g0": 5})  # past the end: the last page
    assert last.pages == {0: 1}
    assert {item.node for item in last.items if item.node in members} == set(members[PAGE_SIZE:])


def test_a_getter_key_is_folded_into_its_label_not_drawn():
    graph = getters.build_graph(2)  # too small to group: every node on its own
    drawing = make_drawing(graph.kinds, graph.edges, ())
    drawn = {item.node for item in drawing.items}
    keys = [e[0] for e in graph.edges if graph.kinds[e[1]] == NodeKind.GETTER
            and graph.kinds[e[0]] == NodeKind.PARAMETER]
    assert keys and not set(keys) & drawn
