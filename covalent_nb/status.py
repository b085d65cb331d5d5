"""``ct.status``: the statuses of dispatches and nodes by name, as Covalent's module offers them.

>>> import covalent_nb as ct
>>> ct.get_result(dispatch_id).status == ct.status.COMPLETED        # doctest: +SKIP
True
"""

from .states import ENDED, Status

__all__ = ["Status", "ENDED", "NEW_OBJECT", "PENDING_REPLACEMENT", "RUNNING", "COMPLETED", "FAILED",
           "CANCELLED", "INTERRUPTED"]

NEW_OBJECT = Status.NEW_OBJECT
PENDING_REPLACEMENT = Status.PENDING_REPLACEMENT
RUNNING = Status.RUNNING
COMPLETED = Status.COMPLETED
FAILED = Status.FAILED
CANCELLED = Status.CANCELLED
INTERRUPTED = Status.INTERRUPTED
