"""PII detector: each kind valid vs invalid, positions only, and the labelled PII set."""

import pytest

from apps.governance.guards.evaluate import evaluate_pii
from apps.governance.guards.pii import Finding, scan_pii


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Pay to IBAN DE89 3704 0044 0532 0130 00 please.", "iban"),
        ("IBAN GB82WEST12345698765432", "iban"),
        ("Card 4111 1111 1111 1111 exp 12/27", "card"),
        ("Amex 3782-822463-10005", "card"),
        ("VAT ID DE136695976", "vat"),
        ("TVA FR40303265045", "vat"),
        ("Call +44 20 7946 0958", "phone"),
        ("Telefon: 030 901820", "phone"),
        ("Write to sophie.martin@acme.example", "email"),
        ("SSN 536-90-4399", "us_ssn"),
        ("NIR 2 95 10 99 126 111 93", "fr_nir"),
        ("DNI 54362315K", "es_dni"),
        ("NIE X2482300W", "es_nie"),
        ("Steuer-ID: 36 574 261 809", "de_idnr"),
    ],
)
def test_valid_values_are_found(text, kind):
    assert kind in scan_pii(text).kinds


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Pay to IBAN DE89 3704 0044 0532 0130 01 please.", "iban"),
        ("Card 4111 1111 1111 1112 exp 12/27", "card"),
        ("VAT ID DE136695977", "vat"),
        ("SSN 000-12-3456", "us_ssn"),
        ("DNI 54362315A", "es_dni"),
        ("Reference 36 574 261 809", "de_idnr"),  # valid checksum but no tax-id context
        ("Follow @acme_support on social media", "email"),
    ],
)
def test_invalid_values_are_rejected(text, kind):
    assert kind not in scan_pii(text).kinds


@pytest.mark.parametrize(
    "text",
    [
        "Invoice INV-2024-0012 dated 2024-03-15, amount 1234.56 EUR.",
        "Version 10.2.3.4 deployed on host 192.168.10.24.",
        "Order number 4000 1234 5678 9011 has shipped.",
        "IBAN DE89 3704 0044 0532 0130 01 (typo).",
        "",
    ],
)
def test_business_numbers_are_not_pii(text):
    assert scan_pii(text).kinds == ()


def test_findings_carry_kind_and_positions_only():
    text = "Mail a@acme.example, IBAN DE89370400440532013000, tel +49 30 901820."
    result = scan_pii(text)
    assert result.kinds == ("email", "iban", "phone")
    for finding in result.findings:
        assert isinstance(finding, Finding)
        assert set(finding.__slots__) == {"kind", "start", "end"}
    iban = next(f for f in result.findings if f.kind == "iban")
    assert text[iban.start : iban.end] == "DE89370400440532013000"
    assert [f.start for f in result.findings] == sorted(f.start for f in result.findings)


def test_iban_is_not_also_reported_as_card_or_vat():
    assert scan_pii("IBAN DE89 3704 0044 0532 0130 00").kinds == ("iban",)


def test_pii_set_per_kind():
    per_kind = evaluate_pii()
    for kind, scores in per_kind.items():
        assert scores.tp >= 1, kind
        assert scores.precision == 1.0, kind
        assert scores.recall == 1.0, kind
