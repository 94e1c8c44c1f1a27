"""`connector report rekeys`: accounts that could move to their person's new key (re-keying,
planning/rekey.py), by opaque refs and why - never names, and of protected persons only a
count."""

from __future__ import annotations

from connector.planning.rekey import RekeyFindings
from connector.reports.render import table

POLICY = {
    "ask": "each is held until `connector approve` releases it",
    "auto": "each moves at the next sync",
    "never": "none is adopted: the old account is deactivated, a new one is created",
}


def render_rekeys(findings: RekeyFindings, protected: int, policy: str) -> str:
    parts = []
    if findings.candidates:
        rows = [(r.old[:12], r.new[:12], f"same {r.why}") for r in findings.candidates]
        parts.append(
            f"Accounts whose person is gone that a new person's names match "
            f"(lifecycle.rekey: {policy}: {POLICY[policy]}):\n"
            + table(("ACCOUNT OF", "MOVES TO", "WHY"), rows)
        )
    if findings.ambiguous:
        rows = [
            (", ".join(e[:12] for e in a.new), ", ".join(e[:12] for e in a.old), f"same {a.why}")
            for a in findings.ambiguous
        ]
        parts.append(
            "Ambiguous: names that match more than one way; nobody is adopted:\n"
            + table(("NEW PERSONS", "ACCOUNTS", "WHY"), rows)
        )
    if protected:
        parts.append(
            f"{protected} account(s) whose person is gone carry the names of a person now "
            "marked protected: never adopted, taken off the vendor as theirs."
        )
    if not parts:
        return "No re-key candidates: no new person's names match an account whose person is gone."
    return "\n\n".join(parts)
