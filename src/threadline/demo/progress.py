"""The live line shown while simulated users shop: requests, errors, journeys, time."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from threadline.demo.users import Tally


class UsersProgress:
    """A Rich progress bar over the run's duration, with the counts beside it."""

    def __init__(self, console: Console, users: int, duration_s: float) -> None:
        self._duration_s = duration_s
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[requests]} requests"),
            TextColumn("[red]{task.fields[errors]} errors"),
            TextColumn("{task.fields[journeys]} journeys"),
            TextColumn("{task.fields[active]} users active"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: TaskID = self._progress.add_task(
            f"{users} users shopping",
            total=duration_s,
            requests=0,
            errors=0,
            journeys=0,
            active=users,
        )

    def __enter__(self) -> UsersProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def show(self, tally: Tally, elapsed_s: float) -> None:
        self._progress.update(
            self._task,
            completed=min(elapsed_s, self._duration_s),
            requests=tally.requests,
            errors=tally.errors,
            journeys=tally.journeys,
            active=tally.users_active,
        )
