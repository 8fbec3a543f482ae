"""The redactor that the ``redaction*`` settings describe, for either half.

``SdkSettings`` and ``ServerSettings`` declare the same four settings (``redaction``,
``redaction_keys``, ``redaction_detectors``, ``redaction_hash_key``), so one
``THREADLINE_REDACTION_*`` environment configures a service and the server alike. Rules
are parsed here once, at start; a rule that does not parse is a ``ConfigError`` naming
the setting.
"""

from __future__ import annotations

from collections.abc import Iterable

from threadline.redaction.engine import Redactor
from threadline.redaction.rules import (
    BUILT_IN_KEY_RULES,
    RedactionRules,
    RuleError,
    parse_detectors,
    parse_key_rules,
)
from threadline.settings import ENV_PREFIX, ConfigError, SdkSettings, ServerSettings


def redactor_from_settings(
    settings: SdkSettings | ServerSettings,
    *,
    fallback_hash_key: str = "",
    cut_lengths: Iterable[int] = (),
) -> Redactor | None:
    """The configured redactor, or None when ``redaction`` is off.

    ``fallback_hash_key`` is used when ``redaction_hash_key`` is empty (the SDK passes
    ``user_id_key``, so one secret serves both). ``cut_lengths``: the lengths values
    may have been cut to before redaction (the SDK passes OpenTelemetry's span limits).
    """
    if not settings.redaction:
        return None
    try:
        key_rules = parse_key_rules(settings.redaction_keys)
    except RuleError as exc:
        raise _invalid("redaction_keys", exc) from exc
    try:
        detectors = parse_detectors(settings.redaction_detectors)
    except RuleError as exc:
        raise _invalid("redaction_detectors", exc) from exc
    rules = RedactionRules(key_rules=(*key_rules, *BUILT_IN_KEY_RULES), detectors=detectors)
    return Redactor(rules, settings.redaction_hash_key or fallback_hash_key, cut_lengths)


def _invalid(name: str, problem: RuleError) -> ConfigError:
    return ConfigError(f"{name} ({ENV_PREFIX}{name.upper()}): {problem}")
