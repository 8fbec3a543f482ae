"""The operation names a writer has already registered, so most commits skip the step.

Each commit registers its spans' (service, operation) names in ``rollup_names`` (the
first ``rollups.OPERATION_CAP`` of a service are kept, later ones count as ``OTHER``):
one statement grouping the batch's names and joining them with the kept ones, about
4% of a commit of 10,000 spans (``docs/performance.md``). A service's names hardly
change from one batch to the next, so the writer remembers the names it has registered
in a committed transaction, and a batch holding none but those skips the statement:
running it again would change no row. Names only leave ``rollup_names`` through work
the writer runs as a task (an erasure), so any task forgets them all. A flood of
distinct names (ids in span names) is remembered only up to ``MAX_REMEMBERED``; past
it, batches register as before.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

# Names remembered at most: a few hundred services' kept names, several times over.
MAX_REMEMBERED: Final = 50_000

Name = tuple[str | None, str | None]


def batch_names(table: pa.Table) -> frozenset[Name]:
    """The distinct (service, operation) names of a batch's spans."""
    names = table.select(["service_name", "name"]).group_by(["service_name", "name"]).aggregate([])
    services = names.column("service_name").to_pylist()
    operations = names.column("name").to_pylist()
    return frozenset(zip(services, operations, strict=True))


class KnownNames:
    """Names registered in committed transactions since the writer last ran a task.

    Used by the writer's thread alone.
    """

    def __init__(self) -> None:
        self._names: set[Name] = set()

    def all_known(self, names: frozenset[Name]) -> bool:
        """Whether registering ``names`` again would change nothing."""
        return names <= self._names

    def committed(self, names: frozenset[Name]) -> None:
        """``names`` were registered in a transaction that committed."""
        if len(self._names) + len(names) <= MAX_REMEMBERED:
            self._names |= names

    def forget(self) -> None:
        """A task ran: it may have removed kept names."""
        self._names.clear()
