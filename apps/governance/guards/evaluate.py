"""Evaluate the guards on the labelled set: ``python -m apps.governance.guards.evaluate [--data DIR]``.

Prints precision / recall / F1 and the confusion counts of the injection detector on the full set,
the development split and the held-out split (every 5th line of each file, never used for tuning),
recall per attack style, false positives per benign style, throughput, and per-kind precision /
recall of the PII detector. ``manage.py bench_guards`` calls :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from apps.governance.guards.injection import THRESHOLD, scan_injection
from apps.governance.guards.pii import KINDS, scan_pii

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[3] / "tests" / "governance" / "guards" / "data"
HELD_OUT_EVERY = 5


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    style: str
    held_out: bool


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def line(self) -> str:
        return (
            f"precision={self.precision:.3f} recall={self.recall:.3f} f1={self.f1:.3f} "
            f"(tp={self.tp} fp={self.fp} tn={self.tn} fn={self.fn})"
        )


@dataclass
class InjectionReport:
    full: Scores = field(default_factory=Scores)
    dev: Scores = field(default_factory=Scores)
    held_out: Scores = field(default_factory=Scores)
    # Keyed by (label, style).
    style_hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    style_totals: Counter[tuple[str, str]] = field(default_factory=Counter)
    errors: list[tuple[Example, float, tuple[str, ...]]] = field(default_factory=list)
    seconds: float = 0.0
    count: int = 0

    @property
    def throughput(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def _read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_injection_set(data_dir: Path = DEFAULT_DATA_DIR) -> list[Example]:
    examples: list[Example] = []
    for name in ("injection.jsonl", "benign.jsonl"):
        for index, row in enumerate(_read_jsonl(data_dir / name)):
            examples.append(
                Example(
                    text=row["text"],
                    label=row["label"],
                    style=row.get("style", "unknown"),
                    held_out=index % HELD_OUT_EVERY == HELD_OUT_EVERY - 1,
                )
            )
    return examples


def evaluate_injection(examples: Sequence[Example], threshold: float = THRESHOLD) -> InjectionReport:
    report = InjectionReport(count=len(examples))
    started = time.perf_counter()
    results = [scan_injection(example.text) for example in examples]
    report.seconds = time.perf_counter() - started
    for example, result in zip(examples, results, strict=True):
        predicted = result.score >= threshold
        actual = example.label == "injection"
        key = ("tp" if actual else "fp") if predicted else ("fn" if actual else "tn")
        for scores in (report.full, report.held_out if example.held_out else report.dev):
            setattr(scores, key, getattr(scores, key) + 1)
        report.style_totals[(example.label, example.style)] += 1
        if predicted:
            report.style_hits[(example.label, example.style)] += 1
        if predicted != actual:
            report.errors.append((example, result.score, result.flags))
    return report


def evaluate_pii(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, Scores]:
    per_kind = {kind: Scores() for kind in KINDS}
    for row in _read_jsonl(data_dir / "pii.jsonl"):
        expected = set(row["kinds"])
        found = set(scan_pii(row["text"]).kinds)
        for kind in KINDS:
            scores = per_kind[kind]
            if kind in expected and kind in found:
                scores.tp += 1
            elif kind in found:
                scores.fp += 1
            elif kind in expected:
                scores.fn += 1
            else:
                scores.tn += 1
    return per_kind


def _style_name(style: str) -> str:
    return "indirect" if style.startswith("indirect_") else style


def write_report(
    report: InjectionReport, pii: dict[str, Scores], out: TextIO, show_errors: bool = False
) -> None:
    w = out.write
    w(f"Injection detector (threshold {THRESHOLD}):\n")
    w(f"  full set    {report.full.line()}\n")
    w(f"  dev split   {report.dev.line()}\n")
    w(f"  held-out    {report.held_out.line()}   [every {HELD_OUT_EVERY}th line]\n")
    w(
        f"  throughput  {report.throughput:,.0f} texts/s "
        f"({report.count} texts in {report.seconds * 1000:.1f} ms)\n"
    )
    grouped: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for (label, style), total in report.style_totals.items():
        grouped[(label, _style_name(style))][0] += report.style_hits[(label, style)]
        grouped[(label, _style_name(style))][1] += total
    w("  recall per attack style:\n")
    for (label, style), (hits, total) in sorted(grouped.items()):
        if label == "injection":
            w(f"    {style:<18} {hits / total:.2f}  ({hits}/{total})\n")
    w("  false positives per benign style:\n")
    for (label, style), (hits, total) in sorted(grouped.items()):
        if label == "benign":
            w(f"    {style:<18} {hits}/{total}\n")
    w("PII detector (per kind, over lines of pii.jsonl):\n")
    for kind, scores in pii.items():
        w(f"  {kind:<8} {scores.line()}\n")
    if show_errors and report.errors:
        w("Misclassified:\n")
        for example, score, flags in report.errors:
            w(f"  [{example.label}/{example.style}] score={score:.2f} flags={','.join(flags)}\n")
            w(f"      {example.text[:160]!r}\n")


def run(
    data_dir: Path = DEFAULT_DATA_DIR, out: TextIO = sys.stdout, show_errors: bool = False
) -> InjectionReport:
    report = evaluate_injection(load_injection_set(data_dir))
    write_report(report, evaluate_pii(data_dir), out, show_errors=show_errors)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="directory with the jsonl files")
    parser.add_argument("--show-errors", action="store_true", help="list misclassified texts")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = build_parser().parse_args(argv)
    run(args.data, out=out, show_errors=args.show_errors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
