"""Guards over free text in agent actions: prompt-injection scoring and PII detection (no Django needed)."""

from apps.governance.guards.injection import THRESHOLD, InjectionResult, scan_injection, scan_params
from apps.governance.guards.pii import Finding, PiiResult, scan_pii

__all__ = [
    "THRESHOLD",
    "Finding",
    "InjectionResult",
    "PiiResult",
    "scan_injection",
    "scan_params",
    "scan_pii",
]
