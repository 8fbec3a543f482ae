"""Redaction of personal data and secrets in spans, shared by the SDK and the server.

Neutral ground like :mod:`threadline.conventions`: it imports neither half. The SDK
redacts finished spans before export (:mod:`threadline.sdk.redaction_processor`); the
server applies the same rules at ingest to spans from SDKs that are not Threadline's
(:mod:`threadline.server.ingest.redact`). See docs/privacy.md.
"""

from threadline.redaction.detectors import MASK
from threadline.redaction.engine import REDACTED_FIELDS, Redactor, merge_redacted
from threadline.redaction.keyed_hash import KeyedHash, is_hashed
from threadline.redaction.luhn import is_card_number, luhn_valid
from threadline.redaction.rules import (
    BUILT_IN_KEY_PATTERNS,
    DEFAULT_DETECTORS,
    Action,
    DetectorRule,
    KeyRule,
    RedactionRules,
    RuleError,
    parse_detectors,
    parse_key_rules,
    rules_from_text,
)

__all__ = [
    "BUILT_IN_KEY_PATTERNS",
    "DEFAULT_DETECTORS",
    "MASK",
    "REDACTED_FIELDS",
    "Action",
    "DetectorRule",
    "KeyRule",
    "KeyedHash",
    "RedactionRules",
    "Redactor",
    "RuleError",
    "is_card_number",
    "is_hashed",
    "luhn_valid",
    "merge_redacted",
    "parse_detectors",
    "parse_key_rules",
    "rules_from_text",
]
