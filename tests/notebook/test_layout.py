"""Layout of lattice graphs: both engines, the cache, labels and sizes."""

from __future__ import annotations

import itertools

import pytest

import covalent_nb as ct
from covalent_nb.notebook import layout as L


@ct.electron
def load(i):
    return i


@ct.electron
def clean(x):
    return x


@ct.electron
def combine(a, b, scale=1):
    return (a + b) * scale


@ct.electron
def total(xs):
    return sum(xs)


@ct.lattice
def diamond(a, b):
    left = clean(load(a))
    right = clean(load(b))
    return combine(left, right, scale=3)


@ct.lattice
def fan_in(n):
    return total([clean(load(i)) for i in range(n)])


ENGINES = ["dot", "layered"]


def boxes_overlap(lay: L.Layout, i: int, j: int) -> bool:
    return (abs(lay.x[i] - lay.x[j]) * 2 < lay.w[i] + lay.w[j]
            and abs(lay.y[i] - lay.y[j]) * 2 < lay.h[i] + lay.h[j])


@pytest.fixture(autouse=True)
def fresh_cache():
    L.clear_cache()
    yield
    L.clear_cache()


def test_the_machine_has_graphviz_dot():
    # Both engines are tested here; without dot the dot tests below would
    # test nothing, so its absence is a failure (CI installs graphviz).
    assert L.dot_available()


@pytest.mark.parametrize("engine", ENGINES)
def test_every_node_is_placed_inside_the_box_without_overlaps(engine):
    graph = diamond.build_graph(1, 2)
    lay = L.layout_graph(graph, engine)
    n = len(graph)
    assert lay.engine == engine
    assert len(lay.x) == len(lay.y) == len(lay.w) == len(lay.h) == n
    for i in range(n):
        assert lay.w[i] / 2 <= lay.x[i] <= lay.width - lay.w[i] / 2
        assert lay.h[i] / 2 <= lay.y[i] <= lay.height - lay.h[i] / 2
    overlapping = [(i, j) for i, j in itertools.combinations(range(n), 2) if boxes_overlap(lay, i, j)]
    assert overlapping == []


@pytest.mark.parametrize("engine", ENGINES)
def test_edges_point_down_and_parameters_sit_right_above_their_consumer(engine):
    graph = diamond.build_graph(1, 2)
    lay = L.layout_graph(graph, engine)
    for source, target, *_ in graph.edges:
        assert lay.y[source] < lay.y[target], (graph.names[source], graph.names[target])
    # A parameter is one layer above its consumer (no row in between), not
    # stranded in the top row.
    rows = sorted(set(lay.y))
    for source, target, *_ in graph.edges:
        if graph.kinds[source] == "parameter":
            assert rows.index(lay.y[target]) - rows.index(lay.y[source]) == 1, graph.names[source]


@pytest.mark.parametrize("engine", ENGINES)
def test_parameter_and_postprocess_nodes_are_small_dots(engine):
    graph = diamond.build_graph(1, 2)
    lay = L.layout_graph(graph, engine)
    for i, kind in enumerate(graph.kinds):
        if kind in ("parameter", "postprocess"):
            assert lay.w[i] == lay.h[i] < 20
        else:
            assert lay.w[i] >= 48 and lay.h[i] == 30


@pytest.mark.parametrize("engine", ENGINES)
def test_a_wide_fan_in_is_laid_out_without_overlaps(engine):
    graph = fan_in.build_graph(60)
    lay = L.layout_graph(graph, engine)
    rows: dict = {}
    for i in range(len(graph)):
        rows.setdefault(lay.y[i], []).append(i)
    for row in rows.values():
        row.sort(key=lambda i: lay.x[i])
        for a, b in zip(row, row[1:]):
            assert lay.x[b] - lay.x[a] >= (lay.w[a] + lay.w[b]) / 2, (a, b)


def test_layout_is_computed_once_per_shape_and_engine():
    first = L.layout_graph(diamond.build_graph(1, 2), "layered")
    # Another trace of the same lattice has the same shape: same layout object.
    again = L.layout_graph(diamond.build_graph(1, 2), "layered")
    assert again is first
    # Other inputs give other parameter names, so another shape.
    other = L.layout_graph(diamond.build_graph(5, 6), "layered")
    assert other is not first
    assert L.layout_graph(diamond.build_graph(1, 2), "dot") is not first


def test_auto_uses_dot_for_small_graphs_and_layered_for_big_ones(monkeypatch):
    graph = fan_in.build_graph(10)
    assert L.layout_graph(graph, "auto").engine == "dot"
    monkeypatch.setattr(L, "DOT_MAX_NODES", len(graph) - 1)
    assert L.layout_graph(graph, "auto").engine == "layered"


def test_without_the_dot_binary_auto_falls_back_and_dot_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine with only pip
    assert not L.dot_available()
    graph = diamond.build_graph(1, 2)
    assert L.layout_graph(graph, "auto").engine == "layered"
    with pytest.raises(RuntimeError, match="dot"):
        L.layout_graph(graph, "dot")


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="neato"):
        L.layout_graph(diamond.build_graph(1, 2), "neato")


def test_both_engines_give_the_same_kind_of_picture():
    graph = diamond.build_graph(1, 2)
    dot = L.layout_graph(graph, "dot")
    layered = L.layout_graph(graph, "layered")
    # Same node sizes and the same number of layers (distinct rows).
    assert dot.w == layered.w and dot.h == layered.h
    assert len(set(dot.y)) == len(set(layered.y))


def test_labels_show_parameter_values_and_are_cut_when_long():
    assert L.display_label(":parameter:42", "parameter") == "42"
    assert L.display_label(":postprocess:reconstruct", "postprocess") == "postprocess"
    assert L.display_label(":electron_list:", "electron_list") == "list"
    long = L.display_label("a_function_with_a_really_long_name", "electron")
    assert len(long) == 24 and long.endswith("…")
    assert L.display_label(":parameter:a\nb", "parameter") == "a b"


def test_box_width_follows_the_label():
    short, _ = L.node_size("f", "electron")
    wide, _ = L.node_size("x" * 20, "electron")
    assert short == 48 and wide > short


def test_empty_graph():
    lay = L.compute_layout([], [], [], "layered")
    assert lay.x == () and lay.width > 0


# -- drawings: compact labels, told-apart names, direction --------------------------------------

@ct.electron
def split(data):
    return {"X_train": data, "y_train": data}


@ct.electron
def fit(X, y, c):
    return c


@ct.electron
def evaluate(model, X):
    return 1.0


@ct.electron
def report(scores, extra):
    return scores


@ct.lattice
def ml(cs):
    parts = split(cs)
    models = [fit(parts["X_train"], parts["y_train"], c) for c in cs]
    scores = [evaluate(m, parts["X_train"]) for m in models]
    return report(scores, {"best": models[0]})


@ct.lattice
def chain(x):
    for _ in range(12):
        x = clean(x)
    return x


def test_bookkeeping_nodes_read_as_code_and_repeated_names_are_told_apart():
    graph = ml.build_graph([0.1, 1.0, 10.0])
    labels = dict(zip(range(len(graph)), L.compact_labels(graph, range(len(graph)))))
    by_kind = lambda kind: [labels[v] for v, k in enumerate(graph.kinds) if k == kind]  # noqa: E731
    assert set(by_kind("getter")) == {'split["X_train"]', 'split["y_train"]'}
    assert "[3 items]" in by_kind("electron_list")
    assert by_kind("electron_dict") == ["{1 key}"]
    assert by_kind("postprocess") == ["result"]
    fits = [labels[v] for v, n in enumerate(graph.names) if n == "fit"]
    assert fits == ["fit(c=0.1)", "fit(c=1.0)", "fit(c=10.0)"]  # the argument that differs
    evaluates = [labels[v] for v, n in enumerate(graph.names) if n == "evaluate"]
    assert evaluates == ["evaluate #1", "evaluate #2", "evaluate #3"]  # no argument differs
    # only the nodes asked for are told apart
    first_fit = graph.names.index("fit")
    assert L.compact_labels(graph, [first_fit]) == ["fit"]


def test_labels_lose_control_characters_and_ansi_codes():
    assert L.printable("\x1b[31mred\x1b[0m\x00 \x07x\ud800") == "red x"
    assert L.display_label(":parameter:a\x1b[1mb\x00", "parameter") == "ab"


def test_a_chain_reads_left_to_right_and_a_fan_out_top_down():
    for engine in ENGINES:
        graph = chain.build_graph(1)
        sizes = [L.item_size(n, "e") for n in graph.names]
        pairs = [(e[0], e[1]) for e in graph.edges]
        across = L.compute_positions(sizes, pairs, engine, "auto")
        assert across.direction == "LR" and across.width > across.height
        assert across.x[2] > across.x[0]  # the second clean is right of the first
        fan = fan_in.build_graph(8)
        sizes = [L.item_size(n, "p" if k == "parameter" else "e") for n, k in zip(fan.names, fan.kinds)]
        down = L.compute_positions(sizes, [(e[0], e[1]) for e in fan.edges], engine, "auto")
        assert down.direction == "TB"
    with pytest.raises(ValueError):
        L.compute_positions([(10, 10)], [], "layered", "BT")


def test_item_sizes_keep_12px_labels_inside_and_groups_roomy():
    w, h = L.item_size("featurize_the_rows", "e")
    assert w >= 7 * len("featurize_the_rows") and h >= 30
    assert L.item_size("x", "p") == (14, 14)
    gw_, gh_ = L.item_size("featurize", "g")
    assert gw_ >= 250 and gh_ >= 54
