"""covalent_nb's notebook widgets.

``LatticeGraph``
    The live graph of a dispatch (``ct.show(dispatch_id)`` returns one, and a
    ``Result`` displays as one).

``RedispatchPanel``
    The redispatch form opened by the graph's "Redispatch…" button.  It lives
    in its own module; import it here and add it to ``__all__``.  To answer the
    button, set ``LatticeGraph.default_open_panel`` to a callable taking the
    graph widget (see :meth:`LatticeGraph.on_open_panel`).
"""

from .notebook.graph_widget import LatticeGraph
from .notebook.panel import RedispatchPanel, install_graph_button

install_graph_button()  # the graph's "Redispatch…" button opens the panel

__all__ = ["LatticeGraph", "RedispatchPanel"]
