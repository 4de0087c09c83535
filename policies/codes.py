"""Reason codes: stable strings other tools match on. Add new ones; never reuse one for another meaning."""

from __future__ import annotations

QUIET_HOURS = "QUIET_HOURS"
DAILY_CALL_CAP = "DAILY_CALL_CAP"
SEVEN_IN_SEVEN = "SEVEN_IN_SEVEN"
RECENT_CONVERSATION = "RECENT_CONVERSATION"
FIRST_CONTACT_MUST_BE_SMS = "FIRST_CONTACT_MUST_BE_SMS"
REMINDER_CAP = "REMINDER_CAP"
DISPUTE_OPEN = "DISPUTE_OPEN"
OPTED_OUT = "OPTED_OUT"
NO_AI_VOICE_CONSENT = "NO_AI_VOICE_CONSENT"
NO_SMS_CONSENT = "NO_SMS_CONSENT"
INVALID_NUMBER = "INVALID_NUMBER"
UNKNOWN_TIMEZONE = "UNKNOWN_TIMEZONE"
# Added by duebot beyond the fixed list.
MISSING_OPT_OUT_NOTICE = "MISSING_OPT_OUT_NOTICE"  # an SMS text was supplied without the pack's notice
GATE_UNAVAILABLE = "GATE_UNAVAILABLE"  # Redis (live counters) unreachable or erroring
UNKNOWN_PACK = "UNKNOWN_PACK"  # pack name/file missing or invalid
INVALID_REQUEST = "INVALID_REQUEST"  # request failed validation (API paths that fail closed)
RULE_ERROR = "RULE_ERROR"  # a rule raised: we cannot know it would allow, so we do not
AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"  # the decision could not be recorded, so it is not acted on

ALL = (
    QUIET_HOURS, DAILY_CALL_CAP, SEVEN_IN_SEVEN, RECENT_CONVERSATION, FIRST_CONTACT_MUST_BE_SMS, REMINDER_CAP,
    DISPUTE_OPEN, OPTED_OUT, NO_AI_VOICE_CONSENT, NO_SMS_CONSENT, INVALID_NUMBER, UNKNOWN_TIMEZONE,
    MISSING_OPT_OUT_NOTICE, GATE_UNAVAILABLE, UNKNOWN_PACK, INVALID_REQUEST, RULE_ERROR, AUDIT_UNAVAILABLE,
)
