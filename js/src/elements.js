// Cytoscape element descriptions of the graph payload Python sends (pure).

/**
 * Cytoscape elements of the graph.  `part` is "all", "main" (without the
 * aux nodes and their edges) or "aux" (only those): hidden parameter nodes
 * of a big graph are only created when first shown, which saves 40% of the
 * first paint of a 10,000-node map-reduce.
 */
export function buildElements(graph, states, replaced, hideParams, part = "all") {
  const { labels, x, y, w, h: hgt, aux, edges, edge_labels: edgeLabels } = graph;
  const auxSet = new Set(aux);
  const params = new Set(graph.uncounted || []);
  const wanted = (isAux) => part === "all" || (part === "aux") === isAux;
  const elements = [];
  for (let i = 0; i < labels.length; i++) {
    if (!wanted(auxSet.has(i))) continue;
    let classes = auxSet.has(i) ? "cnb-aux" : "";
    if (params.has(i)) classes += " cnb-param";
    if (replaced.has(i)) classes += " cnb-replaced";
    if (hideParams && auxSet.has(i)) classes += " cnb-hidden";
    elements.push({
      group: "nodes",
      data: { id: String(i), label: labels[i], state: states[i], w: w[i], h: hgt[i] },
      position: { x: x[i], y: y[i] },
      classes,
    });
  }
  for (let k = 0; k < edges.length / 2; k++) {
    const source = edges[2 * k];
    const target = edges[2 * k + 1];
    if (!wanted(auxSet.has(source) || auxSet.has(target))) continue;
    const data = { id: `e${k}`, source: String(source), target: String(target) };
    if (edgeLabels && edgeLabels[k]) data.label = edgeLabels[k];
    elements.push({ group: "edges", data });
  }
  return elements;
}
