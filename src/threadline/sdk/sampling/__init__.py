"""Head sampling inside the service: rules, rate limits, journeys, rules polled from the server.

``head`` builds what ``configure()`` installs: ``ParentBased(RuleSampler)`` and the
``RulePoller``. ``rule_sampler`` decides for root spans, ``token_bucket`` holds a
rule's rate limit, ``poller`` keeps the rules in step with ``/api/sampling``. The
rule model itself lives in :mod:`threadline.sampling_rules`, shared with the server.
"""
