"""`connector check` for a SCIM vendor: can it be reached with the token, what does it offer,
and is its listing plausible against what the state file links."""

from __future__ import annotations

from connector.config import ScimTargetConfig
from connector.targets.base import CheckReport
from connector.targets.scim.client import ScimClient, ScimError
from connector.targets.scim.reconcile import implausible
from connector.targets.tls import proven_by_connecting

_HINTS = {401: " (is the token right?)", 403: " (does the token have access?)"}


def label(config: ScimTargetConfig) -> str:
    if config.name == "default":
        return f"vendor {config.base_url}"
    return f"vendor {config.name} ({config.base_url})"


def check_vendor(
    config: ScimTargetConfig, client: ScimClient, linked: tuple[int, int]
) -> CheckReport:
    report = CheckReport()
    try:
        features = client.features()
        client.search("Users", 'userName eq "connector-check"')
        listed = {what: client.count(what) for what in ("Users", "Groups")}
    except ScimError as exc:
        report.lines.append(("FAIL", f"{label(config)}: {exc}{_HINTS.get(exc.status or 0, '')}"))
        return report
    bulk = "no"
    if features.bulk:
        used = "used" if config.bulk else "not used: bulk is off"
        bulk = f"yes (max {features.bulk_max_operations or '?'} operations; {used})"
    report.lines.append(
        (
            "ok",
            f"{label(config)}: PATCH {'yes' if features.patch else 'no'}, Bulk {bulk}, "
            f"filter {'yes' if features.filter else 'no'}, ETag {'yes' if features.etag else 'no'}",
        )
    )
    tls = config.tls
    if tls.client_cert_file or tls.server_pins or tls.federation is not None:
        report.lines.append(("ok", f"{label(config)}: {proven_by_connecting(tls)}"))
    for (what, count), links in zip(listed.items(), linked, strict=True):
        problem = implausible(
            what.lower(), links, count, max(0, links - count), config.safety.max_deletions
        )
        if problem:
            report.lines.append(("FAIL", f"{label(config)}: {problem}"))
        else:
            report.lines.append(
                ("", f"{count} {what.lower()} listed ({links} linked in the state file)")
            )
    return report
