"""Head sampling as ``configure()`` installs it: ``ParentBased(RuleSampler)`` plus the poller.

Spans with a parent follow the parent's decision (W3C ``sampled`` flag), so a trace
is kept or dropped whole across services; only root spans consult the rules. The
rules in force start as the local ones (``sampling_rules_file`` or the
``[sampling]`` table of ``threadline.toml``; without either, every trace is
sampled) and are then replaced by the server's whenever they change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from opentelemetry.sdk.trace.sampling import ParentBased, Sampler

from threadline.conventions import API_PREFIX
from threadline.sampling_rules import RuleError, SamplingRules, configured_rules
from threadline.sdk.sampling.poller import RulePoller
from threadline.sdk.sampling.rule_sampler import RuleSampler
from threadline.settings import ConfigError, SdkSettings

SAMPLING_PATH: Final = f"{API_PREFIX}/sampling"


@dataclass(frozen=True, slots=True)
class HeadSampling:
    """The sampler to give the ``TracerProvider`` and the poller that keeps it current."""

    rule_sampler: RuleSampler
    sampler: Sampler
    poller: RulePoller | None

    def start(self) -> None:
        if self.poller is not None:
            self.poller.start()

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()


def head_sampling(settings: SdkSettings) -> HeadSampling:
    """Build (without starting) head sampling for ``settings``; bad local rules raise."""
    if settings.sampling_poll_s < 0:
        raise ConfigError(
            "sampling_poll_s (THREADLINE_SAMPLING_POLL_S): must be 0 (off) or more, "
            f"got {settings.sampling_poll_s!r}"
        )
    try:
        local = configured_rules(settings.sampling_rules_file)
    except RuleError as exc:
        raise ConfigError(f"sampling rules: {exc}") from exc
    rule_sampler = RuleSampler(
        settings.service_name, local or SamplingRules(), environment=settings.environment
    )
    poller = None
    if settings.sampling_poll_s > 0:
        poller = RulePoller(rules_url(settings), rule_sampler.update, settings.sampling_poll_s)
    return HeadSampling(rule_sampler, ParentBased(root=rule_sampler), poller)


def rules_url(settings: SdkSettings) -> str:
    """Where the rules are polled: ``sampling_url``, else ``<endpoint>/api/sampling``."""
    return settings.sampling_url or settings.endpoint.rstrip("/") + SAMPLING_PATH
