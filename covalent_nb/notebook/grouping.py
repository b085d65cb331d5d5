"""Which nodes of a lattice graph are drawn as one group, and what the drawing holds.

A fan-out (``[featurize(x) for x in data]``) makes thousands of sibling nodes
that do the same thing in the same place of the workflow.  Drawn one box
each they are unreadable and slow; drawn as one *group node* ("featurize
×5,000: 4,998 done, 2 running") the workflow's shape shows again.

Siblings are found by colour refinement (the 1-dimensional Weisfeiler-Lehman
test) on the graph without its parameter nodes: a node starts with its
function name and kind; each round, a node's colour becomes its colour
together with the multisets of its parents' and children's colours (with the
argument name of the edge, except for edges into lists, dicts and the
postprocess node, whose ``arg[i]`` names only number the items).  Nodes that
end with the same colour are structurally alike.  A colour class becomes a
group when it has at least :data:`GROUP_MIN` members, after it is split by
*place*: members must reach the same nearest non-grouped nodes downstream and
upstream, so two list comprehensions of the same function feeding two
different nodes stay two groups.

Everything here is deterministic (node order, no hashing of Python objects
whose hash varies per process) and depends on the graph's shape only, so the
result is cached with the layout.

A drawing is the graph with each group collapsed to one item, or with one
*page* of its members (:data:`PAGE_SIZE` nodes) drawn individually and the
rest still as the group item.  Parameter nodes whose consumers are all inside
a collapsed group are not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from ..states import NodeKind

__all__ = [
    "Group", "Drawing", "Item", "find_groups", "make_drawing", "encode_runs", "decode_runs",
    "GROUP_MIN", "PAGE_SIZE",
]

#: A class of structurally alike siblings is drawn as one group from this size on.
GROUP_MIN = 6
#: Members drawn individually per page of an expanded group.
PAGE_SIZE = 100
_ROUNDS = 12

# Edges into these kinds are named arg[0], arg[1]...: positions, not roles.
_COLLECTORS = frozenset({NodeKind.ELECTRON_LIST, NodeKind.ELECTRON_DICT, NodeKind.POSTPROCESS})


@dataclass(frozen=True)
class Group:
    """Structurally alike sibling nodes drawn as one item.

    ``id`` is ``"g<k>"`` (k in order of the groups' first members), ``kind``
    the members' node kind, ``name`` their function's name (or the first
    member's name for bookkeeping nodes), ``members`` their node ids, ascending.
    """

    id: str
    kind: str
    name: str
    members: tuple[int, ...]


def find_groups(names: Sequence[str], kinds: Sequence[str], edges: Sequence[tuple],
                min_size: int = GROUP_MIN) -> tuple[Group, ...]:
    """The groups of a graph given as node names, kinds and ``(source, target, name, ...)`` edges."""
    n = len(names)
    real = [k != NodeKind.PARAMETER for k in kinds]
    parents: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    children: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    for edge in edges:
        source, target = edge[0], edge[1]
        if not (real[source] and real[target]):
            continue
        role = "" if kinds[target] in _COLLECTORS else str(edge[2] if len(edge) > 2 else "")
        parents[target].append((source, role))
        children[source].append((target, role))

    # Colour refinement.  Colours are small ints given in order of first
    # appearance, so the result never depends on hash randomisation.
    colour = _intern([(names[v], kinds[v]) if real[v] else None for v in range(n)])
    sizes: dict[int, int] = {}
    for v, c in enumerate(colour):
        if real[v]:
            sizes[c] = sizes.get(c, 0) + 1
    if max(sizes.values(), default=0) < min_size:  # refinement only splits classes
        return ()
    classes = len(set(colour))
    for _ in range(_ROUNDS):
        signature = [
            (colour[v], _multiset(colour, parents[v]), _multiset(colour, children[v]))
            if real[v] else None
            for v in range(n)
        ]
        colour = _intern(signature)
        now = len(set(colour))
        if now == classes:
            break
        classes = now

    by_colour: dict[int, list[int]] = {}
    for v in range(n):
        if real[v] and kinds[v] != NodeKind.POSTPROCESS:
            by_colour.setdefault(colour[v], []).append(v)
    big = {c for c, members in by_colour.items() if len(members) >= min_size}
    if not big:
        return ()
    in_big = [real[v] and colour[v] in big for v in range(n)]

    # Place: the nearest nodes outside every big class, downstream and upstream.
    order = _topological(n, parents, children)
    down = _anchors(children, in_big, order[::-1])
    up = _anchors(parents, in_big, order)
    split: dict[tuple, list[int]] = {}
    for c in sorted(big, key=lambda c: by_colour[c][0]):
        for v in by_colour[c]:
            split.setdefault((c, down[v], up[v]), []).append(v)
    groups = []
    for members in sorted(split.values(), key=lambda m: m[0]):
        if len(members) < min_size:
            continue
        first = members[0]
        groups.append(Group(f"g{len(groups)}", kinds[first], names[first], tuple(members)))
    return tuple(groups)


def _multiset(colour: Sequence[int], links: Sequence[tuple[int, str]]) -> tuple:
    if not links:
        return ()
    if len(links) == 1:
        u, r = links[0]
        return ((colour[u], r),)
    return tuple(sorted([(colour[u], r) for u, r in links]))


def _intern(values: Sequence) -> list[int]:
    table: dict = {}
    return [table.setdefault(value, len(table)) for value in values]


def _topological(n: int, parents: Sequence[Sequence[tuple[int, str]]],
                 children: Sequence[Sequence[tuple[int, str]]]) -> list[int]:
    """A topological order (list nodes are numbered after their users, so ids are not one)."""
    missing = [len(parents[v]) for v in range(n)]
    order = [v for v in range(n) if not missing[v]]
    for v in order:  # grows while it is walked
        for c, _ in children[v]:
            missing[c] -= 1
            if not missing[c]:
                order.append(c)
    return order


def _anchors(links: Sequence[Sequence[tuple[int, str]]], in_big: Sequence[bool],
             order: Sequence[int]) -> list[frozenset]:
    """For each node, the nearest nodes along *links* that are not in a big class.

    Big-class nodes are walked through; *order* visits a node after the nodes
    it links to.
    """
    anchors: list[frozenset] = [frozenset()] * len(in_big)
    cache: dict[tuple, frozenset] = {}
    for v in order:
        if not in_big[v]:
            continue
        key = tuple(sorted({u if not in_big[u] else -1 - u for u, _ in links[v]}))
        found = cache.get(key)
        if found is None:
            out: set = set()
            for u in key:
                if u >= 0:
                    out.add(u)
                else:
                    out |= anchors[-1 - u]
            found = cache.setdefault(key, frozenset(out))
        anchors[v] = found
    return anchors


def encode_runs(members: Sequence[int]) -> list[list[int]]:
    """Ascending ids as ``[start, step, count]`` runs (a fan-out's members are evenly spaced)."""
    runs: list[list[int]] = []
    k = 0
    m = len(members)
    while k < m:
        start = members[k]
        if k + 1 == m:
            runs.append([start, 1, 1])
            break
        step = members[k + 1] - start
        j = k + 1
        while j + 1 < m and members[j + 1] - members[j] == step:
            j += 1
        runs.append([start, step, j - k + 1])
        k = j + 1
    return runs


def decode_runs(runs: Sequence[Sequence[int]]) -> list[int]:
    """The ids that :func:`encode_runs` encoded."""
    out: list[int] = []
    for start, step, count in runs:
        out.extend(range(start, start + step * count, step) if step else [start] * count)
    return out


# -- the drawing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One thing drawn: a node (``node`` is its id) or a group (``group`` is its index)."""

    id: str
    node: int = -1
    group: int = -1


@dataclass(frozen=True)
class Drawing:
    """What is drawn: the items, the edges between them (item indices), and per node its item.

    ``item_of[v]`` is the index of the item that shows node *v* (-1: not drawn).
    ``pages`` maps a group index to the page shown individually (expanded groups only).
    """

    items: tuple[Item, ...]
    pairs: tuple[tuple[int, int], ...]
    edge_of: tuple[int, ...]  # per pair: the index of the first graph edge it stands for
    item_of: tuple[int, ...]
    pages: Mapping[int, int] = field(default_factory=dict)


def make_drawing(kinds: Sequence[str], edges: Sequence[tuple], groups: Sequence[Group],
                 expanded: Optional[Mapping[str, int]] = None) -> Drawing:
    """Collapse *groups* (all but the pages in *expanded*: group id -> page number)."""
    n = len(kinds)
    expanded = expanded or {}
    owner = [-1] * n           # group index of a collapsed member
    pages: dict[int, int] = {}
    for gi, group in enumerate(groups):
        page = expanded.get(group.id)
        shown: set = set()
        if page is not None:
            pages_total = max(1, -(-len(group.members) // PAGE_SIZE))
            page = min(max(0, int(page)), pages_total - 1)
            pages[gi] = page
            shown = set(group.members[page * PAGE_SIZE:(page + 1) * PAGE_SIZE])
        for v in group.members:
            if v not in shown:
                owner[v] = gi

    # A parameter is drawn only if some consumer of it is drawn individually
    # and is not a getter (whose label shows the key: split["X_train"]).
    consumers_shown = [False] * n
    for edge in edges:
        s, t = edge[0], edge[1]
        if kinds[s] == NodeKind.PARAMETER and owner[t] < 0 and kinds[t] != NodeKind.GETTER:
            consumers_shown[s] = True

    items: list[Item] = []
    item_of = [-1] * n
    group_item: dict[int, int] = {}
    for v in range(n):
        g = owner[v]
        if g >= 0:
            if g not in group_item:
                group_item[g] = len(items)
                items.append(Item(groups[g].id, group=g))
            item_of[v] = group_item[g]
        elif kinds[v] != NodeKind.PARAMETER or consumers_shown[v]:
            item_of[v] = len(items)
            items.append(Item(str(v), node=v))

    seen: dict[tuple[int, int], int] = {}
    for k, edge in enumerate(edges):
        a, b = item_of[edge[0]], item_of[edge[1]]
        if a < 0 or b < 0 or a == b:
            continue
        seen.setdefault((a, b), k)
    return Drawing(tuple(items), tuple(seen), tuple(seen.values()), tuple(item_of), pages)
