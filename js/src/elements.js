// Cytoscape element descriptions of the graph payload Python sends (pure).

const AUX_ROLES = "pa";

/**
 * Cytoscape elements of the drawn items.  `itemStates[k]` is item k's state
 * (a group's: see groups.js); `groupData[k]` the extra data of a group item.
 * `part` is "all", "main" (without the aux items and their edges) or "aux"
 * (only those): hidden parameter nodes of a big graph are only created when
 * first shown, which saves 40% of the first paint of a 10,000-node map-reduce.
 */
export function buildElements(graph, itemStates, replaced, hideParams, part = "all", groupData = {}) {
  const { ids, roles, labels, x, y, w, h: hgt, edges, edge_labels: edgeLabels } = graph;
  const isAux = (k) => AUX_ROLES.includes(roles[k]);
  const wanted = (aux) => part === "all" || (part === "aux") === aux;
  const elements = [];
  for (let k = 0; k < ids.length; k++) {
    const aux = isAux(k);
    if (!wanted(aux)) continue;
    const role = roles[k];
    let classes = `cnb-role-${role}`;
    if (aux) classes += " cnb-aux";
    if (role === "p") classes += " cnb-param";
    if (role === "g") classes += " cnb-group";
    const node = role === "g" ? -1 : Number(ids[k]);
    if (node >= 0 && replaced.has(node)) classes += " cnb-replaced";
    if (hideParams && aux) classes += " cnb-hidden";
    const data = { id: ids[k], label: labels[k], name: labels[k], state: itemStates[k], w: w[k], h: hgt[k], item: k, node };
    if (role === "g") Object.assign(data, { group: true }, groupData[k] || {});
    elements.push({ group: "nodes", data, position: { x: x[k], y: y[k] }, classes });
  }
  for (let e = 0; e < edges.length / 2; e++) {
    const s = edges[2 * e];
    const t = edges[2 * e + 1];
    const aux = isAux(s) || isAux(t);
    if (!wanted(aux)) continue;
    const data = { id: `e${e}`, source: ids[s], target: ids[t] };
    if (edgeLabels && edgeLabels[e]) data.label = edgeLabels[e];
    const edge = { group: "edges", data };
    if (aux) edge.classes = hideParams ? "cnb-aux cnb-hidden" : "cnb-aux";
    elements.push(edge);
  }
  return elements;
}
