"""The one error every document people edit raises when it is invalid.

Sampling rules, SLOs, funnels and probes are each validated whole before anything is
saved; their errors (``RuleError``, ``SloError``, ``FunnelError``,
``ProbeDefinitionError``) are this class under their own names, so a caller that
takes any of them (the API's ``PUT``, a file read at start) answers alike: the path
of the bad value in ``field``, what is wrong with it in ``problem``.
"""

from __future__ import annotations


class InvalidDocument(ValueError):
    """A document is invalid; ``field`` is the path of the bad value."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
