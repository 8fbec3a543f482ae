"""Sampling on the server: the rules it serves and, when enabled, tail sampling.

``rule_store`` keeps the rule document (``GET/PUT /api/sampling``); ``tail`` decides
on whole traces after they go quiet; ``wiring`` connects both to the app. The rule
model is :mod:`threadline.sampling_rules`, shared with the SDK.
"""
