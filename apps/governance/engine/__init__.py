"""The governance engine: deterministic decisions on proposed agent actions (pure Python + CEL, no ORM).

    compiled = compile_ruleset(rules, allowlist={"db.query", "db.update"})
    decision = evaluate(compiled, action, context, rate_counter=counter)

Semantics (issue 4, decided):

- Zero trust: an action is allowed only when its tool is in the allowlist, at least one `allow` rule
  matches and no `deny` / `require_approval` rule matches; otherwise it is denied, with the reason.
- Precedence: deny > require_approval > redact > allow. Among rules of the deciding effect, the
  first by layer (vendor, partner, client) and then by position decides.
- Errors fail closed: a condition that errors at run time counts as matched for deny,
  require_approval and redact rules and as not matched for allow rules (a rule may opt into
  `fail_mode: open`, where an error never matches); the decision records every error.
- Shadow rules are evaluated and reported in `decision.shadow`, never in the decision itself.
- Deterministic: the same compiled ruleset, action and context give the same decision (the only
  outside input is `rate()`, which reads counters the caller passes in, at most once per key and
  window in one decision).

Speed (targets for 1,000 rules: p50 ≤ 20 µs, p99 ≤ 200 µs, compile ≤ 300 ms; `manage.py
bench_governance` measures them). Each distinct condition is compiled once per ruleset; rulesets are
cached in-process by a hash of their content; a bitmask index on variant/tool/operation/entity, split
on the most selective dimension, finds the candidate rules of an action (memoised per combination),
so only their conditions run. What costs is handing values to CEL (a string ~1 µs, a map ~2.5 µs
plus ~1 µs a key) rather than running a condition (~0.2 µs), so:

- Every condition is also compiled *flattened*: each field path it reads becomes one variable
  (`action.params.amount > 5` runs as `__v0 > 5`, `has(action.params.x)` as `__h1`,
  `action.target_ids.size()` as `__n2`), looked up in Python: CEL gets the values a condition
  reads, not the maps around them.
- The simplest flattened conditions (comparisons, `in`, `!`, `&&`, `||`, `rate()`) are also compiled
  to Python that answers only where CEL's answer is certain (same kinds, in range, no NaN) and
  otherwise leaves the condition to CEL; the CEL context is built only if some condition needs it.
- Exactness: a missing field leaves its variable undefined, so the flattened condition errors where
  the original would, and a condition that errors runs again in its original form, so errors and
  their messages are the original ones. Whatever the fast path cannot vouch for (a condition it
  cannot rewrite, a value CEL might refuse) sends the evaluation the original way: the pruned
  variables in one CEL context and the original programs. tests/governance/test_engine_flatten.py
  and test_differential.py hold the two paths to each other and to plain `cel.evaluate`.

Layout: `compiler` (compile_ruleset, the cache), `index` (compiled rules, the selector index, plans),
`paths` (what a condition reads, pruning, flattening), `native` (simple flattened conditions as
Python), `slots` (looking up slot values), `evaluation` (evaluate, action_hash, rate()) and `decisions`
(Decision, ShadowOutcome, resolving effects).
"""

from .compiler import clear_cache, compile_ruleset, ruleset_key
from .decisions import APPROVER_RANK, EFFECT_ORDER, LAYER_RANK, ZERO_TRUST, Decision, ShadowOutcome
from .evaluation import RateCounter, action_hash, evaluate
from .index import CompiledRule, CompiledRuleset
from .native import NativeCheck
from .paths import read_paths
from .slots import SlotReader

__all__ = [
    "APPROVER_RANK",
    "EFFECT_ORDER",
    "LAYER_RANK",
    "ZERO_TRUST",
    "CompiledRule",
    "CompiledRuleset",
    "Decision",
    "NativeCheck",
    "RateCounter",
    "ShadowOutcome",
    "SlotReader",
    "action_hash",
    "clear_cache",
    "compile_ruleset",
    "evaluate",
    "read_paths",
    "ruleset_key",
]
