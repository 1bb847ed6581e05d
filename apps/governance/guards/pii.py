"""PII detector: regex candidates validated by well-kept libraries.

Candidates are found with permissive regular expressions and kept only when a checksum or numbering
plan validates them: IBANs (``stdnum.iban``), EU VAT numbers (``stdnum.eu.vat``), national IDs
(``stdnum.us.ssn``, ``stdnum.fr.nir``, ``stdnum.es.dni``/``nie``, ``stdnum.de.idnr``), payment cards
(``stdnum.luhn`` plus an issuer prefix), phone numbers (``phonenumbers.PhoneNumberMatcher``) and
e-mail addresses.

Results carry kinds and character positions only — never the matched values — so they are safe to
put in decision logs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni, nie
from stdnum.eu import vat
from stdnum.fr import nir
from stdnum.us import ssn

__all__ = ["DEFAULT_REGIONS", "KINDS", "Finding", "PiiResult", "scan_pii"]

KINDS = ("email", "iban", "card", "vat", "us_ssn", "fr_nir", "es_dni", "es_nie", "de_idnr", "phone")
# Regions used to read phone numbers written without an international prefix; "+…"/"00…" numbers
# are recognised whatever the region.
DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "FR", "DE", "ES")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PiiResult:
    kinds: tuple[str, ...]
    findings: tuple[Finding, ...]

    def __bool__(self) -> bool:
        return bool(self.findings)


_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}[ \-]?[A-Z0-9]+(?:[ \-][A-Z0-9]+){0,8}(?![A-Za-z0-9])")
_VAT = re.compile(
    r"(?<![A-Za-z0-9])(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|IT|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK|XI)"
    r"[ \-]?[0-9A-Z]+(?:[ .\-][0-9A-Z]+){0,4}(?![A-Za-z0-9])"
)
_CARD = re.compile(r"(?<![\d\-])[2-6]\d{3}(?:[ \-]?\d){9,15}(?![\d\-])")
_SSN = re.compile(r"(?<![\d\-])\d{3}-\d{2}-\d{4}(?![\d\-])|(?<!\d)\d{9}(?!\d)")
_NIR = re.compile(
    r"(?<![\d])[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}(?!\d)"
)
_DNI = re.compile(r"(?<![\w])\d{8}[ \-]?[A-Za-z](?![\w])")
_NIE = re.compile(r"(?<![\w])[XYZxyz][ \-]?\d{7}[ \-]?[A-Za-z](?![\w])")
_IDNR = re.compile(r"(?<!\d)\d{2} ?\d{3} ?\d{3} ?\d{3}(?!\d)")
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social security|soc\.? sec)", re.IGNORECASE)
_IDNR_CONTEXT = re.compile(
    r"\b(?:steuer[- ]?id|steuer-?identifikationsnummer|identifikationsnummer|idnr|tax id|steuernummer|tin)\b",
    re.IGNORECASE,
)
_PHONE_CONTEXT = re.compile(
    r"\b(?:tel|tél|phone|call|mobile|mobil|cell|fax|ph|telefon|telephone|téléphone|teléfono|móvil|portable"
    r"|handy|whatsapp|reach me|contact)\b",
    re.IGNORECASE,
)
_SEPARATORS = re.compile(r"[\s\-.()/]")


def _compact(value: str) -> str:
    return re.sub(r"[\s\-.]", "", value)


def _prefixes(candidate: str) -> Iterator[str]:
    """The candidate, then shorter versions cut at separators (regexes can swallow a following token)."""
    yield candidate
    cut = len(candidate)
    while True:
        cut = max(candidate.rfind(" ", 0, cut), candidate.rfind("-", 0, cut), candidate.rfind(".", 0, cut))
        if cut <= 0:
            return
        yield candidate[:cut]


_IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2}[ \-]?$")
_SSN_SHAPE = re.compile(r"^\d{3}-\d{2}-\d{4}$")


def _card_ok(text: str, value: str, start: int) -> bool:
    if _IBAN_HEAD.search(text, max(0, start - 5), start):
        return False  # the tail of an (invalid) IBAN, not a card
    digits = _compact(value)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


def _vat_ok(value: str) -> bool:
    compact = _compact(value)
    return len(compact) >= 8 and any(ch.isdigit() for ch in compact[2:]) and vat.is_valid(compact)


def _context(text: str, start: int, pattern: re.Pattern[str], window: int = 40) -> bool:
    return bool(pattern.search(text, max(0, start - window), start))


_Validator = Callable[[str, str, int], bool]


def _ssn_ok(text: str, value: str, start: int) -> bool:
    if "-" not in value and not _context(text, start, _SSN_CONTEXT):
        return False
    return ssn.is_valid(value)


def _idnr_ok(text: str, value: str, start: int) -> bool:
    return _context(text, start, _IDNR_CONTEXT) and idnr.is_valid(value)


_CANDIDATES: Sequence[tuple[str, re.Pattern[str], _Validator, bool]] = (
    # kind, pattern, validator(text, value, start), try shorter prefixes
    ("email", _EMAIL, lambda _t, _v, _s: True, False),
    ("iban", _IBAN, lambda _t, v, _s: iban.is_valid(v), True),
    ("card", _CARD, _card_ok, True),
    ("fr_nir", _NIR, lambda _t, v, _s: nir.is_valid(v), False),
    ("vat", _VAT, lambda _t, v, _s: _vat_ok(v), True),
    ("es_dni", _DNI, lambda _t, v, _s: dni.is_valid(v.upper()), False),
    ("es_nie", _NIE, lambda _t, v, _s: nie.is_valid(v.upper()), False),
    ("us_ssn", _SSN, _ssn_ok, False),
    ("de_idnr", _IDNR, _idnr_ok, False),
)


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(start < s_end and s_start < end for s_start, s_end in spans)


def _phones(text: str, regions: Sequence[str], taken: list[tuple[int, int]]) -> Iterator[Finding]:
    for index, region in enumerate(regions):
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            raw = match.raw_string.lstrip("(")
            international = raw.startswith(("+", "00"))
            if index and international:
                continue  # already found by the first region
            if not international and not (
                _SEPARATORS.search(match.raw_string) or _context(text, match.start, _PHONE_CONTEXT)
            ):
                continue  # a bare run of digits is more often an order or invoice number
            if _SSN_SHAPE.match(match.raw_string) or _overlaps(taken, match.start, match.end):
                continue
            taken.append((match.start, match.end))
            yield Finding("phone", match.start, match.end)


def scan_pii(text: str, regions: Sequence[str] = DEFAULT_REGIONS) -> PiiResult:
    """Find PII kinds and their positions in ``text``; the values themselves are never returned."""
    if not text:
        return PiiResult((), ())
    findings: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern, validate, shorten in _CANDIDATES:
        for match in pattern.finditer(text):
            candidates = _prefixes(match.group(0)) if shorten else iter((match.group(0),))
            for value in candidates:
                value = value.rstrip(" -.")
                start, end = match.start(), match.start() + len(value)
                if _overlaps(taken, start, end):
                    break
                if validate(text, value, start):
                    taken.append((start, end))
                    findings.append(Finding(kind, start, end))
                    break
    findings.extend(_phones(text, regions, taken))
    findings.sort(key=lambda f: (f.start, f.end, f.kind))
    return PiiResult(kinds=tuple(sorted({f.kind for f in findings})), findings=tuple(findings))
