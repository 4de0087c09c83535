"""Rule packs: versioned YAML data naming which registered rules apply, with their parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from duebot.policies.rules import REGISTRY, Rule
from duebot.settings import ENCRYPTION_ALGORITHMS, LANGUAGES, load_settings

PACK_DIR = Path(__file__).resolve().parent / "packs"
BUILTIN = ("cn", "us")
DEFAULT_PACK = "cn"
# Rules no pack may drop: an operator copies a pack to tighten it, never to stop honouring an opt-out.
MANDATORY_RULES = ("opt_out", "quiet_hours")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class PackError(ValueError):
    """Unknown or invalid pack: the gate fails closed with UNKNOWN_PACK."""


ADDRESS_FORMS = ("full_name", "first_name")
# What a collection conversation must say, as the evidence assessment knows it (evidence/three_elements.py).
SCRIPT_ELEMENTS = ("identity_confirmed", "amount", "deadline", "consequence", "collector_notice")
DEFAULT_SCRIPT = ("identity_confirmed", "amount", "deadline")  # the court's three (seed 000 §1.3.3)
PROFILE_TEXTS = ("brand", "callback_number", "crisis_helpline")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Profile:
    """Who the operator is to a pack's subscribers: defaults for imported accounts, how a person is addressed,
    and the texts the bot says (brand, callback number, crisis helpline) per conversation language."""

    language: str
    currency: str
    timezone: str | None
    address: str
    texts: Mapping[str, Mapping[str, str]]

    def text(self, key: str, language: str | None) -> str:
        """`key` in `language`, else in the pack's own language."""
        by_language = self.texts[key]
        return by_language.get(language or "", by_language.get(self.language, next(iter(by_language.values()))))


@dataclass(frozen=True)
class Pack:
    name: str
    version: int
    rules: tuple[Rule, ...]
    default_region: str | None
    retention_years: float
    opt_out_keywords: tuple[str, ...] = ()
    sms_opt_out_notice: str | None = None  # the pack's own language's notice (the first of the mapping)
    source: str = ""
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    sms_opt_out_notices: Mapping[str, str] = field(default_factory=dict, compare=False)  # per language
    # The cipher the account store seals this pack's accounts with (duebot/crypto.py); None: DUEBOT_ENCRYPTION.
    encryption: str | None = None
    profile: Profile | None = None  # None in a gate-only pack: the conversation uses the default pack's
    script_elements: tuple[str, ...] = DEFAULT_SCRIPT

    def notice_for(self, language: str | None) -> str | None:
        """The opt-out notice for a conversation held in `language` ("en", "zh"), else the pack's own."""
        return self.sms_opt_out_notices.get(language or "", self.sms_opt_out_notice)

    # Cached: read once per decision. cached_property writes the instance dict directly, so frozen is fine.
    @cached_property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @cached_property
    def time_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.time_based)

    @cached_property
    def zoneless_rules(self) -> tuple[Rule, ...]:
        """The rules that can still run when the subscriber's zone is unknown."""
        return tuple(r for r in self.rules if not r.needs_zones)


def parse_pack(doc: object, source: str = "<memory>") -> Pack:
    if not isinstance(doc, dict):
        raise PackError(f"{source}: a pack must be a YAML mapping")
    name, version = doc.get("pack"), doc.get("version")
    if not isinstance(name, str) or not _NAME.match(name):
        raise PackError(f"{source}: 'pack' must be a short lowercase name, got {name!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PackError(f"{source}: 'version' must be a positive integer, got {version!r}")
    retention = doc.get("retention_years")
    if not isinstance(retention, int | float) or isinstance(retention, bool) or retention <= 0:
        raise PackError(f"{source}: 'retention_years' must be a positive number, got {retention!r}")
    region = doc.get("default_region")
    if region is not None and (not isinstance(region, str) or len(region) != 2):
        raise PackError(f"{source}: 'default_region' must be an ISO 3166 alpha-2 code, got {region!r}")
    keywords = doc.get("opt_out_keywords", [])
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise PackError(f"{source}: 'opt_out_keywords' must be a list of non-empty strings")
    notice, notices = _notices(doc.get("sms_opt_out_notice"), source)
    encryption = doc.get("encryption")
    if encryption is not None and encryption not in ENCRYPTION_ALGORITHMS:
        raise PackError(f"{source}: 'encryption' must be one of {', '.join(ENCRYPTION_ALGORITHMS)}, "
                        f"got {encryption!r}")
    # rules read the document (SmsOptOutNotice): with a per-language mapping they see the pack's own notice
    # the gate's notice rule accepts the notice of any of the pack's conversation languages
    rule_doc = {**doc, "sms_opt_out_notice": notice, "sms_opt_out_notices": list(notices.values())} \
        if notices else doc

    entries = doc.get("rules")
    if not isinstance(entries, list) or not entries:
        raise PackError(f"{source}: 'rules' must be a non-empty list")
    rules: list[Rule] = []
    names: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{source}: rules[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("rule"), str):
            raise PackError(f"{where}: each rule needs 'rule: <name>'")
        rule_name = entry["rule"]
        cls = REGISTRY.get(rule_name)
        if cls is None:
            raise PackError(f"{where}: unknown rule {rule_name!r} (known: {', '.join(sorted(REGISTRY))})")
        params = entry.get("params") or {}
        if not isinstance(params, dict):
            raise PackError(f"{where}: 'params' must be a mapping")
        try:
            rules.append(cls.from_params(params, rule_doc))
        except (TypeError, ValueError) as exc:
            raise PackError(f"{where} ({rule_name}): {exc}") from None
        names.append(rule_name)
    missing = [r for r in MANDATORY_RULES if r not in names]
    if missing:
        raise PackError(f"{source}: pack must include rules {missing}")
    profile = _profile(doc["profile"], source) if doc.get("profile") is not None else None
    script = doc.get("script_elements", list(DEFAULT_SCRIPT))
    if not isinstance(script, list) or not script or any(e not in SCRIPT_ELEMENTS for e in script):
        raise PackError(f"{source}: 'script_elements' must be a non-empty list of {', '.join(SCRIPT_ELEMENTS)}")
    return Pack(name, version, tuple(rules), region, float(retention), tuple(keywords), notice, source, doc,
                MappingProxyType(notices), encryption=encryption, profile=profile, script_elements=tuple(script))


def _profile(value: object, source: str) -> Profile:
    where = f"{source}: profile"
    if not isinstance(value, dict):
        raise PackError(f"{where} must be a mapping")
    language, currency, timezone = value.get("language"), value.get("currency"), value.get("timezone")
    if language not in LANGUAGES:
        raise PackError(f"{where}.language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise PackError(f"{where}.currency must be three capital letters (ISO 4217), got {currency!r}")
    if timezone is not None:
        try:
            ZoneInfo(str(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise PackError(f"{where}.timezone: unknown zone {timezone!r}") from None
    if value.get("address") not in ADDRESS_FORMS:
        raise PackError(f"{where}.address must be one of {', '.join(ADDRESS_FORMS)}, got {value.get('address')!r}")
    texts: dict[str, Mapping[str, str]] = {}
    for key in PROFILE_TEXTS:
        by_language = value.get(key)
        if not isinstance(by_language, dict) or not by_language or not all(
                k in LANGUAGES and isinstance(v, str) and v.strip() for k, v in by_language.items()):
            raise PackError(f"{where}.{key} must map languages ({', '.join(LANGUAGES)}) to non-empty texts")
        texts[key] = MappingProxyType(dict(by_language))
    return Profile(language, currency, timezone, value["address"], MappingProxyType(texts))


def _notices(value: object, source: str) -> tuple[str | None, dict[str, str]]:
    """`sms_opt_out_notice` is one string (every conversation gets it, as before) or a mapping from conversation
    language to notice, the pack's own language first: {zh: 回复TD退订, en: Reply STOP to opt out.}."""
    if value is None:
        return None, {}
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(v, str) and v.strip()
                                                 for k, v in value.items()):
        return next(iter(value.values())), dict(value)
    raise PackError(f"{source}: 'sms_opt_out_notice' must be a string or a mapping of language to notice")


def load_pack_file(path: str | Path) -> Pack:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackError(f"cannot read pack {path}: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: invalid YAML: {exc}") from None
    return parse_pack(doc, str(path))


@lru_cache(maxsize=32)
def load_pack(name_or_path: str = DEFAULT_PACK) -> Pack:
    """A built-in pack by name ('cn', 'us') or an operator's pack file by path. Parsed once, then cached."""
    if name_or_path in BUILTIN:
        return load_pack_file(PACK_DIR / f"{name_or_path}.yml")
    if name_or_path.endswith((".yml", ".yaml")) or "/" in name_or_path:
        return load_pack_file(name_or_path)
    raise PackError(f"unknown pack {name_or_path!r}: use one of {', '.join(BUILTIN)} or a path to a .yml file")


def profile_of(name_or_path: str | None) -> Profile:
    """The operator profile of a pack; the default pack's for an unknown pack or one without a profile."""
    try:
        profile = load_pack(name_or_path or DEFAULT_PACK).profile
    except PackError:
        profile = None
    return profile or _required_profile(DEFAULT_PACK)


def script_of(name: str | None) -> tuple[str, ...]:
    """The script elements a conversation under pack `name` must contain; the court's three when unknown. By name
    only (built-in or registered in DUEBOT_GATE_PACKS): the name comes from evidence records, never a path."""
    registered = load_settings().api.registered_packs
    try:
        if name in BUILTIN:
            return load_pack(name).script_elements
        if name in registered:
            return load_pack(str(registered[name])).script_elements
    except PackError:
        pass
    return DEFAULT_SCRIPT


def _required_profile(name: str) -> Profile:
    profile = load_pack(name).profile
    if profile is None:
        raise PackError(f"pack {name}: the default pack needs a profile")
    return profile
