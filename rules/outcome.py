"""What one engine step produces, and the accumulator that gathers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rules.alerts import Alert, AlertKind, Episodes
from rules.model import Decision


@dataclass(frozen=True, slots=True)
class Outcome:
    """Decisions and alerts of one step, in the order they arose.

    Attributes:
        decisions: access decisions (the answer to an access event is the last one).
        alerts: raised and cleared alerts.
    """

    decisions: tuple[Decision, ...] = ()
    alerts: tuple[Alert, ...] = ()

    @property
    def decision(self) -> Decision | None:
        """The answer to the access event of this step, if it was one."""
        return self.decisions[-1] if self.decisions else None


class StepContext:
    """Collects the outputs of one step while the state is threaded through pure functions.

    It lives only inside `rules.engine.step` and never escapes it, so the engine stays a pure
    function from the caller's point of view.
    """

    def __init__(self, episodes: Episodes, now: datetime) -> None:
        """Start a step at local time `now` with the currently raised episodes."""
        self.episodes = episodes
        self.now = now
        self.decisions: list[Decision] = []
        self.alerts: list[Alert] = []

    def signal(
        self,
        kind: AlertKind,
        key: str,
        condition: bool,
        counts: Mapping[str, int] | None = None,
        evidence: tuple[str, ...] = (),
    ) -> None:
        """Report the current truth of a condition; an alert is kept only when it changes."""
        self.episodes, alert = self.episodes.update(
            kind, key, condition, at=self.now, counts=counts, evidence=evidence
        )
        if alert is not None:
            self.alerts.append(alert)

    def outcome(self) -> Outcome:
        """Freeze what the step produced."""
        return Outcome(tuple(self.decisions), tuple(self.alerts))
