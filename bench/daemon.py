"""The running daemon at scale: what a school feels and what an operator pays.

    python -m bench.daemon --persons 100000 [--changes 20] [--out bench/DAEMON.md]

One town (students in a roster CSV, staff in a real slapd) is synced into a real scim2-server
(in bulk), then `connector run` is started with the default `daemon.interval_seconds` and
measured while it runs:

- quiet cycles: CPU per cycle (from /proc/PID/stat at each `sync.finished`) and the daemon's
  peak RSS (VmHWM) - nothing changes meanwhile;
- change-to-vendor latency: `--changes` changes per source kind, at random moments (a
  student's family name in the roster file, a teacher's `sn` in the directory by an LDAP
  modify, a pupil's familyName in the SS 12000 API of bench/sis.py's town), each timed from the
  moment it was written to the moment the vendor shows it (a GET of that user, polled every
  POLL_SECONDS); p50 and p95 per kind; beside them what the daemon's own
  `connector_change_latency_seconds` counted (from its /metrics);
- the full reconcile's listing: the connector's own listing (ScimClient.list_all at the
  target's concurrency and page size, in this process) against a bare concurrent paging loop
  (httpx, the same concurrency, page size and server), as request rates.

The results are a ScenarioResult for bench/run.py's report (`daemon` scenario).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import generate as gen
from bench.run import (
    SCIM_TOKEN,
    Bench,
    bench_env,
    staff_dn,
)
from bench.sis import SisTown
from connector.demo.localscim import free_port

POLL_SECONDS = 0.5
QUIET_CYCLES = 3
PAGE_SIZE = 200


@dataclass(slots=True)
class DaemonFigures:
    persons: int
    interval_seconds: float
    quiet_cpu_seconds: list[float] = field(default_factory=list)
    peak_rss_bytes: int = 0
    rss_bytes: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    listing: dict[str, float] = field(default_factory=dict)
    first_sync_seconds: float = 0.0
    # The daemon's own connector_change_latency_seconds, by source: count and sum.
    metric_latency: dict[str, dict[str, float]] = field(default_factory=dict)

    def percentile(self, kind: str, share: float) -> float | None:
        values = sorted(self.latencies.get(kind, []))
        if not values:
            return None
        return values[min(len(values) - 1, round(share * (len(values) - 1)))]

    def as_dict(self) -> dict[str, Any]:
        return {
            "persons": self.persons,
            "interval_seconds": self.interval_seconds,
            "quiet_cpu_seconds": [round(c, 3) for c in self.quiet_cpu_seconds],
            "peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1),
            "rss_mib": round(self.rss_bytes / 2**20, 1),
            "latency_seconds": {
                kind: {
                    "count": len(values),
                    "p50": self.percentile(kind, 0.5),
                    "p95": self.percentile(kind, 0.95),
                    "max": max(values) if values else None,
                    "missed": self.missed.get(kind, 0),
                }
                for kind, values in self.latencies.items()
            },
            "listing": self.listing,
            "first_sync_seconds": round(self.first_sync_seconds, 1),
            "metric_latency": self.metric_latency,
        }


class RunningDaemon:
    """`connector run` on the town's config, its log and its /proc figures."""

    def __init__(self, bench: Bench, extra_env: dict[str, str] | None = None) -> None:
        self.log_path = bench.logs / "daemon.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector", "--config", str(bench.config_path), "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **bench_env(bench.slapd), **(extra_env or {})},
        )

    def finished(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{") and '"sync.finished"' in line:
                events.append(json.loads(line))
        return events

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> tuple[int, int]:
        """(peak RSS, RSS) in bytes."""
        found = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                found[name] = int(value.split()[0]) * 1024
        return found["VmHWM"], found["VmRSS"]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=120)
        finally:
            self._log.close()


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def measure_quiet(daemon: RunningDaemon, figures: DaemonFigures, interval: float) -> None:
    """CPU between consecutive quiet cycles' ends (everything the daemon did in between)."""
    wait_for(
        lambda: any(e.get("quiet") for e in daemon.finished()),
        timeout=600 + 3 * interval,
        what="the first quiet cycle",
    )
    seen = len(daemon.finished())
    last_cpu = daemon.cpu_seconds()
    while len(figures.quiet_cpu_seconds) < QUIET_CYCLES:
        wait_for(partial(_more_than, daemon, seen), 3 * interval + 60, "a quiet cycle")
        events = daemon.finished()
        cpu = daemon.cpu_seconds()
        if all(e.get("quiet") for e in events[seen:]):
            figures.quiet_cpu_seconds.append(cpu - last_cpu)
        seen, last_cpu = len(events), cpu
    figures.peak_rss_bytes, figures.rss_bytes = daemon.memory()


def _more_than(daemon: RunningDaemon, cycles: int) -> bool:
    return len(daemon.finished()) > cycles


class VendorWatch:
    """The vendor's users by userName, and a GET of one by id."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {SCIM_TOKEN}"}, timeout=60
        )
        self.ids: dict[str, str] = {}
        start = 1
        while True:
            page = self.http.get("/Users", params={"startIndex": start, "count": 1000}).json()
            for user in page.get("Resources", []):
                self.ids[user["userName"]] = user["id"]
            start += len(page.get("Resources", []))
            if not page.get("Resources") or start > page["totalResults"]:
                break

    def family_name(self, user_name: str) -> str | None:
        answer = self.http.get(f"/Users/{self.ids[user_name]}")
        return (answer.json().get("name") or {}).get("familyName") if answer.is_success else None


def measure_latency(
    bench: Bench,
    figures: DaemonFigures,
    changes: int,
    interval: float,
    seed: int,
    sis: SisTown | None = None,
) -> None:
    """Changes at random moments (a few seconds apart, so they fall anywhere in a cycle),
    each polled at the vendor until it shows; students by the roster, staff by the directory,
    pupils by the SS 12000 API."""
    rng = random.Random(seed)
    watch = VendorWatch(bench.scim.base_url)
    students = [s for s in bench.data.students.values() if not s.protected]
    staff = list(bench.data.staff.values())
    pupils = [p for p in sis.pupils if not p.protected] if sis else []
    plan = ["roster"] * changes + ["directory"] * changes + ["ss12000"] * changes * bool(sis)
    rng.shuffle(plan)
    pending: dict[str, tuple[str, str, float]] = {}  # userName -> (kind, wanted, written at)
    lock = threading.Lock()
    done = threading.Event()
    figures.latencies = {kind: [] for kind in dict.fromkeys(sorted(plan))}

    def poll() -> None:
        while not done.is_set() or pending:
            with lock:
                waiting = dict(pending)
            for user_name, (kind, wanted, written) in waiting.items():
                if watch.family_name(user_name) == wanted:
                    with lock:
                        figures.latencies[kind].append(time.monotonic() - written)
                        del pending[user_name]
                elif time.monotonic() - written > 10 * interval + 120:
                    with lock:
                        figures.missed[kind] = figures.missed.get(kind, 0) + 1
                        del pending[user_name]
            time.sleep(POLL_SECONDS)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    for number, kind in enumerate(plan):
        if kind == "roster":
            student = students.pop(rng.randrange(len(students)))
            student.family_name = f"Ändrad{number}"
            gen.write_roster(bench.data, bench.roster)
            user_name, wanted = student.email.lower(), student.family_name
        elif kind == "ss12000" and sis is not None:
            pupil = pupils.pop(rng.randrange(len(pupils)))
            sis.rename(pupil, f"Ändrad{number}")
            user_name, wanted = pupil.user_name, pupil.family_name
        else:
            person = staff.pop(rng.randrange(len(staff)))
            person.family_name = f"Ändrad{number}"
            bench.slapd.modify(staff_dn(bench.slapd, person.uid), {"sn": person.family_name})
            user_name, wanted = person.email.lower(), person.family_name
        with lock:
            pending[user_name] = (kind, wanted, time.monotonic())
        time.sleep(rng.uniform(0.2, 0.5) * interval)
    done.set()
    poller.join(timeout=10 * interval + 300)


def read_metric_latency(listen: str, figures: DaemonFigures) -> None:
    """What the daemon's own connector_change_latency_seconds counted, by source."""
    text = httpx.get(f"http://{listen}/metrics", timeout=30).text
    for line in text.splitlines():
        found = METRIC_LINE.match(line)
        if found:
            counted = figures.metric_latency.setdefault(found["source"], {})
            counted[found["what"]] = round(float(found["value"]), 3)


METRIC_LINE = re.compile(
    r'^connector_change_latency_seconds_(?P<what>count|sum)\{source="(?P<source>[^"]+)",'
    r'target="[^"]*"\} (?P<value>\S+)$'
)


def measure_listing(bench: Bench, figures: DaemonFigures) -> None:
    """The connector's listing against a bare concurrent loop: pages per second."""
    os.environ.update(bench_env(bench.slapd))
    from connector.config.loader import load_config
    from connector.targets import build_targets

    config = load_config(bench.config_path)
    target = build_targets(config)[0]
    concurrency = bench.concurrency
    try:
        client = target.client  # type: ignore[attr-defined]
        start = time.monotonic()
        listed = sum(
            1 for _ in client.list_all("Users", page_size=PAGE_SIZE, concurrency=concurrency)
        )
        connector_seconds = time.monotonic() - start
    finally:
        target.close()
    start = time.monotonic()
    bare = bare_listing(bench.scim.base_url, concurrency)
    bare_seconds = time.monotonic() - start
    pages = -(-listed // PAGE_SIZE)
    figures.listing = {
        "users": listed,
        "bare_users": bare,
        "pages": pages,
        "concurrency": concurrency,
        "connector_seconds": round(connector_seconds, 2),
        "bare_seconds": round(bare_seconds, 2),
        "connector_pages_per_second": round(pages / connector_seconds, 1),
        "bare_pages_per_second": round(pages / bare_seconds, 1),
        "ratio": round(bare_seconds / connector_seconds, 3),
    }


def bare_listing(base_url: str, concurrency: int) -> int:
    """Every user, PAGE_SIZE a page, `concurrency` pages at a time: the least a client can do."""
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
        first = http.get("/Users", params={"startIndex": 1, "count": PAGE_SIZE}).json()
        total = first["totalResults"]

        def page(start: int) -> int:
            answer = http.get("/Users", params={"startIndex": start, "count": PAGE_SIZE})
            return len(answer.json()["Resources"])

        with ThreadPoolExecutor(concurrency) as pool:
            rest = sum(pool.map(page, range(1 + PAGE_SIZE, total + 1, PAGE_SIZE)))
    return len(first["Resources"]) + rest


def run_daemon_scenario(
    workdir: Path,
    persons: int,
    *,
    seed: int = 1,
    concurrency: int = 8,
    changes: int = 20,
    interval: float | None = None,
    sis_persons: int | None = None,
) -> DaemonFigures:
    """`interval`: the daemon's (None: the default, as a municipality runs it); `sis_persons`:
    pupils in the SS 12000 town (None: a tenth of `persons`; 0: no such town)."""
    if sis_persons is None:
        sis_persons = max(persons // 10, 50)
    with contextlib.ExitStack() as stack:
        bench = stack.enter_context(
            Bench(workdir, persons, seed=seed, concurrency=concurrency, verify=False, bulk=True)
        )
        taken = {school.code for school in bench.data.schools}
        sis = (
            stack.enter_context(SisTown(sis_persons, seed=seed + 1000, taken_codes=taken))
            if sis_persons
            else None
        )
        config = yaml.safe_load(bench.config_path.read_text(encoding="utf-8"))
        from connector.config.service import DaemonConfig

        extra_env = sis.env() if sis else {}
        os.environ.update(extra_env)  # the first sync (a `sync` process) reads it too
        if sis is not None:
            config["sources"].append(sis.source())
        listen = f"127.0.0.1:{free_port()}"
        config["health"] = {"listen": listen}
        config["daemon"] = {"shutdown_timeout_seconds": 60}
        if interval is not None:
            config["daemon"]["interval_seconds"] = interval
        interval = interval or DaemonConfig().interval_seconds
        bench.config_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        figures = DaemonFigures(persons=persons, interval_seconds=interval)
        first = bench.first_sync()
        assert first.measured is not None
        figures.first_sync_seconds = first.measured.wall_seconds
        daemon = RunningDaemon(bench, extra_env)
        try:
            measure_quiet(daemon, figures, interval)
            measure_latency(bench, figures, changes, interval, seed, sis)
            read_metric_latency(listen, figures)
        finally:
            daemon.stop()
        measure_listing(bench, figures)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.daemon", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=20, help="changes per source kind")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-daemon"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, help="the daemon's (default: its default)")
    parser.add_argument(
        "--sis-persons", type=int, help="pupils in the SS 12000 town (default: a tenth; 0: none)"
    )
    args = parser.parse_args(argv)
    figures = run_daemon_scenario(
        args.workdir,
        args.persons,
        seed=args.seed,
        concurrency=args.concurrency,
        changes=args.changes,
        interval=args.interval,
        sis_persons=args.sis_persons,
    )
    print(json.dumps(figures.as_dict(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
