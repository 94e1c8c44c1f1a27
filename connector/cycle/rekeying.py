"""Re-keys in a cycle: between recalling what a target holds and planning, find the accounts
that move to their person's new key (the rule is planning/rekey.py), per `lifecycle.rekey`.

`ask` and `auto` both plan the re-key; under `ask` the guard holds it until `connector approve`
(cycle/guarding.py). `never` finds nothing: the old account is deactivated as a leaver's, and
the new person's account is created (or their create refused by the vendor) as before.
"""

from __future__ import annotations

import structlog

from connector.config import Config
from connector.mapping.desired import Desired
from connector.people.scope import Scoped
from connector.planning.objects import Known
from connector.planning.rekey import RekeyFindings, find_rekeys, fingerprint, protected_accounts

log = structlog.get_logger(__name__)

CONSEQUENCE = {
    "ask": "held until `connector approve`; meanwhile neither account is changed",
    "auto": "the account moves to the new key now",
}


def protected_fingerprints(scoped: Scoped) -> frozenset[str]:
    """Fingerprints of the e-mail addresses and usernames of the people marked protected (in
    memory only, never stored or logged)."""
    names = (name for p in scoped.protected for name in (p.email, p.username) if name)
    return frozenset(fingerprint(name) for name in names)


def examine(desired: Desired, known: Known, scoped: Scoped) -> tuple[frozenset[str], RekeyFindings]:
    """(gone accounts that are a protected person's by their names, the re-key findings),
    changing nothing."""
    theirs = protected_accounts(
        desired.users,
        known,
        protected_fingerprints(scoped),
        excluded=desired.protected_ids | desired.held_ids,
    )
    findings = find_rekeys(
        desired.users, known, protected=desired.protected_ids | theirs, keep=desired.held_ids
    )
    return theirs, findings


def recognise_rekeys(
    config: Config, desired: Desired, known: Known, scoped: Scoped
) -> RekeyFindings:
    """Find this cycle's re-keys and put them in `desired` for the plan; an account that is a
    protected person's by its names joins `desired.protected_ids` (taken off as theirs)."""
    policy = config.lifecycle.rekey
    if policy == "never":
        return RekeyFindings()
    theirs, findings = examine(desired, known, scoped)
    if theirs:
        desired.protected_ids |= theirs
        log.warning(
            "rekey.refused_protected",
            accounts=len(theirs),
            consequence="never adopted; taken off the vendor as a protected person's",
        )
    desired.rekeys = findings.by_new()
    for rekey in findings.candidates:
        log.warning(
            "rekey.found",
            ref=rekey.new[:12],
            previous=rekey.old[:12],
            why=rekey.why,
            policy=policy,
            consequence=CONSEQUENCE[policy],
        )
    for ambiguous in findings.ambiguous:
        log.warning(
            "rekey.ambiguous",
            refs=[ext[:12] for ext in ambiguous.new],
            previous=[ext[:12] for ext in ambiguous.old],
            why=ambiguous.why,
            consequence="nobody is adopted; see `connector report rekeys`",
        )
    return findings
