"""covalent_nb's notebook widgets.

``LatticeGraph``
    The live graph of a dispatch (``ct.show(dispatch_id)`` returns one, and a
    ``Result`` displays as one).

``RedispatchPanel``
    The redispatch form opened by the graph's "Redispatch…" button in a live
    view (:func:`covalent_nb.notebook.panel.live_view`).  A graph displayed on
    its own opens whatever is registered with :meth:`LatticeGraph.on_open_panel`.
"""

from .notebook.graph_widget import LatticeGraph
from .notebook.panel import RedispatchPanel

__all__ = ["LatticeGraph", "RedispatchPanel"]
