"""Soak under faults: the recorded busy hour in a loop through `callcenter listen`, with faults.

    .venv/bin/python scripts/soak.py [--duration 300] [--speed 15] [--db URL] [--json-out FILE]

The AMI simulator (in this process) plays ``burst`` (40 calls) in a loop to a `callcenter
listen` subprocess, next to a `callcenter web` subprocess on the same database. Every
``--fault-every`` seconds one fault, in turn: the connection dropped mid-frame, ``Shutdown``,
a stalled link (no frames, no Ping replies), one rejected Login. Meanwhile the listener's
/readyz (``METRICS_PORT``) and the web server's /healthz are polled.

Afterwards it checks, call by call, what the simulator played against what was stored:

* a call whose every frame reached the listener's socket is stored exactly once, with the
  disposition its recording's ``expected.json`` gives;
* a call cut by a fault is stored with that disposition too, or else falls inside an AMI gap
  the listener stored (the period it may have missed): never silently lost;
* nothing else is stored.

It also checks that /readyz answered 503 while the link was down and 200 after each fault, that
the web server answered every probe, and prints the listener's RSS after each loop (growth
from the second loop to the end; the target is under 20 MB over at least 10 loops). Exit
status 0 when every check passes; ``--json-out`` writes the figures for tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from callcenter.ami.simulator import SimSession, load_trace
from callcenter.ami.simulator_thread import SimulatorThread
from callcenter.ami.traces import trace_path
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models import AmiGap, Call

ROOT = Path(__file__).resolve().parents[1]
TRACE = "burst"
SECRET = "soak-ami-secret"
FAULTS = ("drop_mid_frame", "shutdown", "stall", "reject_login")
_LINKEDID = re.compile(r"\r\nLinkedid: ([^\r]+)\r\n")
#: A cut call counts as covered by a gap that starts this long after its last frame at most
#: (the Ping watchdog notices a stalled link within interval + timeout).
GAP_SLACK_S = 15.0


# -- what the simulator played ----------------------------------------------------------------


@dataclass
class Played:
    """One call of one play: its recording, and what of it reached the listener's socket."""

    original: str
    disposition: str
    frames_expected: int
    frames_sent: int = 0
    first_sent: float | None = None
    last_sent: float | None = None

    @property
    def complete(self) -> bool:
        return self.frames_sent == self.frames_expected


class Ledger:
    """Record each play's calls (``on_play``) and the frames sent whole (``on_frame``)."""

    def __init__(self, trace: str) -> None:
        path = trace_path(trace)
        expected = json.loads(
            path.with_name(path.name.removesuffix(".jsonl") + ".expected.json").read_text()
        )
        self.dispositions = {c["linkedid"]: c["disposition"] for c in expected["calls"]}
        frames = Counter(
            m.group(1)
            for _, raw in load_trace(trace).block.frames
            if (m := _LINKEDID.search(raw)) is not None
        )
        self.frames = {linkedid: frames[linkedid] for linkedid in self.dispositions}
        self.calls: dict[str, Played] = {}
        self.plays = 0

    def on_play(self, session: SimSession, trace: str, map_id: Callable[[str], str]) -> None:
        self.plays += 1
        for original, disposition in self.dispositions.items():
            self.calls[map_id(original)] = Played(original, disposition, self.frames[original])

    def on_frame(self, session: SimSession, raw: str) -> None:
        m = _LINKEDID.search(raw)
        if m is None:
            return
        played = self.calls.get(m.group(1))
        if played is None:
            return
        now = time.time()
        played.frames_sent += 1
        if played.first_sent is None:
            played.first_sent = now
        played.last_sent = now


# -- processes and probes ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, repr(exc)


def rss_mb(pid: int) -> float:
    """Resident set size of a process, in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Probes:
    """Poll the listener's /readyz and the web server's /healthz from a thread."""

    ready_url: str
    web_url: str
    readyz: list[tuple[float, int]] = field(default_factory=list)
    web_ok: int = 0
    web_failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._run, name="probes", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(0.05):
            status, _ = http_get(self.ready_url)
            self.readyz.append((time.time(), status))
            n += 1
            if n % 10 == 0:
                web_status, body = http_get(self.web_url)
                if web_status == 200:
                    self.web_ok += 1
                else:
                    self.web_failures.append(f"{web_status} {body[:100]}")

    def latest(self) -> int:
        return self.readyz[-1][1] if self.readyz else 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def process_env(**overrides: str) -> dict[str, str]:
    prefixes = ("AMI_", "DATABASE_", "LOG_", "REDIS_", "WEB_", "METRICS_", "HUEY_", "SECRET_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(overrides)
    return env


# -- the run ----------------------------------------------------------------------------------


def inject(fault: str, sims: SimulatorThread, probes: Probes) -> dict[str, Any]:
    """Cause one fault; wait for the link to go down (503) and come back (200)."""
    sim = sims.sim
    assert sim is not None
    at = time.time()
    failures_before = sim.stats.login_failures
    if fault == "drop_mid_frame":
        sims.call(sim.drop_mid_frame)
    elif fault == "shutdown":
        sims.call(sim.send_shutdown)
    elif fault == "stall":
        sims.call(sim.stall)
    elif fault == "reject_login":

        def reject() -> None:
            sim.reject_logins = True
            sim.drop_mid_frame()

        sims.call(reject)
        try:
            wait_until(lambda: sim.stats.login_failures > failures_before, 30, "a rejected Login")
        finally:
            sims.call(lambda: setattr(sim, "reject_logins", False))
    result: dict[str, Any] = {"fault": fault, "at": at, "saw_503": False, "ready_again_s": None}
    try:
        wait_until(lambda: any(t >= at and s == 503 for t, s in probes.readyz[-200:]), 30, "503")
        result["saw_503"] = True
        down_at = next(t for t, s in probes.readyz if t >= at and s == 503)
        wait_until(
            lambda: any(t > down_at and s == 200 for t, s in probes.readyz[-200:]), 60, "200"
        )
        up_at = next(t for t, s in probes.readyz if t > down_at and s == 200)
        result["ready_again_s"] = round(up_at - at, 2)
    except TimeoutError as exc:
        result["error"] = str(exc)
    return result


Gap = tuple[float, float | None, str]


def stored(url: str) -> tuple[Counter[str], dict[str, str], list[Gap]]:
    """Return (rows per linkedid, disposition per linkedid, gaps: epoch start, end, reason)."""
    engine = create_db_engine(url)
    try:
        with create_session_factory(engine)() as session:
            rows = list(session.execute(select(Call.linkedid, Call.disposition)))
            gaps = [
                (_epoch(g.started_at), _epoch(g.ended_at) if g.ended_at else None, g.reason)
                for g in session.scalars(select(AmiGap))
            ]
    finally:
        engine.dispose()
    return Counter(r[0] for r in rows), {r[0]: r[1] for r in rows}, gaps


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def verify(ledger: Ledger, url: str) -> dict[str, Any]:
    """Compare what the simulator played with what the listener stored."""
    counts, dispositions, gaps = stored(url)
    lost, wrong, cut_stored, cut_in_gap = [], [], 0, 0
    played = {k: v for k, v in ledger.calls.items() if v.frames_sent > 0}
    for linkedid, call in played.items():
        got = dispositions.get(linkedid)
        if got is not None and got != call.disposition:
            wrong.append(f"{linkedid} ({call.original}): stored {got}, expected {call.disposition}")
        elif got is not None:
            cut_stored += 0 if call.complete else 1
        elif call.complete:
            lost.append(f"{linkedid} ({call.original}, {call.disposition}): fully played")
        else:
            assert call.first_sent is not None and call.last_sent is not None
            first, last = call.first_sent, call.last_sent
            if any(first - 1.0 <= start <= last + GAP_SLACK_S for start, _, _ in gaps):
                cut_in_gap += 1
            else:
                lost.append(f"{linkedid} ({call.original}): cut by a fault, no gap covers it")
    return {
        "played": len(played),
        "complete": sum(1 for c in played.values() if c.complete),
        "cut_stored": cut_stored,
        "cut_in_gap": cut_in_gap,
        "stored": len(counts),
        "gaps": len(gaps),
        # The listener's own stop opens a last gap that only a later run could close.
        "open_gaps": sum(1 for _, end, reason in gaps if end is None and reason != "stopped"),
        "lost": lost,
        "wrong": wrong,
        "duplicates": sorted(k for k, n in counts.items() if n > 1),
        "unexpected": sorted(set(counts) - set(played)),
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = args.db or f"sqlite:///{workdir / 'soak.db'}"
    upgrade(url)
    ledger = Ledger(TRACE)
    sims = SimulatorThread(
        traces=[TRACE],
        speed=args.speed,
        loop_forever=True,
        loop_gap_s=args.speed * 1.0,  # one real second between loops
        secret=SECRET,
        on_play=ledger.on_play,
        on_frame=ledger.on_frame,
    )
    sim = sims.start()
    ops_port, web_port = free_port(), free_port()
    common = {"DATABASE_URL": url, "HUEY_PATH": str(workdir / "huey.db"), "LOG_JSON": "true"}
    listen_env = process_env(
        **common,
        AMI_HOST="127.0.0.1",
        AMI_PORT=str(sim.port),
        AMI_SECRET=SECRET,
        AMI_PING_INTERVAL="1",
        AMI_PING_TIMEOUT="1",
        AMI_BACKOFF_INITIAL="0.5",
        AMI_BACKOFF_MAX="2",
        METRICS_PORT=str(ops_port),
    )
    web_env = process_env(**common, WEB_PORT=str(web_port), SECRET_KEY="soak-secret-key")
    listen_log = open(workdir / "listen.log", "w")  # noqa: SIM115 (closed in finally)
    web_log = open(workdir / "web.log", "w")  # noqa: SIM115
    cmd = [sys.executable, "-m", "callcenter"]
    listen = subprocess.Popen(
        [*cmd, "listen"], cwd=ROOT, env=listen_env, stdout=subprocess.DEVNULL, stderr=listen_log
    )
    web = subprocess.Popen(
        [*cmd, "web"], cwd=ROOT, env=web_env, stdout=subprocess.DEVNULL, stderr=web_log
    )
    probes = Probes(
        ready_url=f"http://127.0.0.1:{ops_port}/readyz",
        web_url=f"http://127.0.0.1:{web_port}/healthz",
    )
    faults: list[dict[str, Any]] = []
    rss: list[tuple[int, float]] = []
    exit_codes: dict[str, int | None] = {}
    try:
        wait_until(lambda: http_get(probes.web_url)[0] == 200, 60, "the web server")
        wait_until(lambda: http_get(probes.ready_url)[0] == 200, 60, "the listener ready")
        probes.start()
        started = time.monotonic()
        end = started + args.duration
        next_fault = started + args.fault_every
        loops_seen = sim.stats.plays_completed
        n = 0
        while time.monotonic() < end:
            if sim.stats.plays_completed != loops_seen:
                loops_seen = sim.stats.plays_completed
                rss.append((loops_seen, round(rss_mb(listen.pid), 1)))
                print(f"loop {loops_seen}: listener RSS {rss[-1][1]:.1f} MB", flush=True)
            if time.monotonic() >= next_fault and time.monotonic() < end - 10:
                fault = FAULTS[n % len(FAULTS)]
                n += 1
                result = inject(fault, sims, probes)
                faults.append(result)
                print(f"fault {fault}: {json.dumps(result)}", flush=True)
                next_fault = time.monotonic() + args.fault_every
            time.sleep(0.1)
        # Stop between two loops, so that no call is in flight when the listener stops.
        wait_until(lambda: probes.latest() == 200, 60, "the link back")
        wait_until(lambda: sim.stats.plays_completed > loops_seen, 120, "the loop to end")
        rss.append((sim.stats.plays_completed, round(rss_mb(listen.pid), 1)))
        time.sleep(0.3)
        listen.send_signal(signal.SIGTERM)
        exit_codes["listen"] = listen.wait(60)
        probes.stop()
        exit_codes["web_healthz_after"] = http_get(probes.web_url)[0]
    finally:
        probes.stop()
        for proc in (listen, web):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        exit_codes.setdefault("listen", listen.returncode)
        exit_codes["web"] = web.returncode
        listen_log.close()
        web_log.close()
        sims.stop()
    result = verify(ledger, url)
    baseline = rss[1] if len(rss) > 2 else rss[0] if rss else (0, 0.0)
    final = rss[-1] if rss else (0, 0.0)
    result.update(
        duration_s=args.duration,
        speed=args.speed,
        loops=sim.stats.plays_completed,
        plays_started=ledger.plays,
        faults=faults,
        fault_kinds=sorted({f["fault"] for f in faults}),
        readyz_samples=len(probes.readyz),
        readyz_503=sum(1 for _, s in probes.readyz if s == 503),
        web_ok=probes.web_ok,
        web_failures=probes.web_failures,
        rss_mb=rss,
        rss_loops=final[0] - baseline[0],
        rss_growth_mb=round(final[1] - baseline[1], 1),
        exit_codes=exit_codes,
    )
    return result


def passed(result: dict[str, Any], *, min_loops: int, max_growth_mb: float) -> list[str]:
    """Return the failed checks (empty when the soak passed)."""
    problems = []
    for key in ("lost", "wrong", "duplicates", "unexpected", "web_failures"):
        if result[key]:
            problems.append(f"{key}: {result[key][:5]}")
    if result["open_gaps"]:
        problems.append(f"{result['open_gaps']} AMI gap(s) never closed")
    for fault in result["faults"]:
        if not fault["saw_503"] or fault["ready_again_s"] is None:
            problems.append(f"readyz did not go 503 then 200 around {fault}")
    if result["exit_codes"].get("listen") != 0:
        problems.append(f"callcenter listen exited with {result['exit_codes'].get('listen')}")
    if result["exit_codes"].get("web_healthz_after") != 200:
        problems.append("the web server stopped answering")
    if result["loops"] < min_loops:
        problems.append(f"only {result['loops']} loops (want {min_loops})")
    if result["rss_growth_mb"] >= max_growth_mb:
        problems.append(f"RSS grew {result['rss_growth_mb']} MB (limit {max_growth_mb})")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=300.0, help="seconds (default %(default)s)")
    p.add_argument("--speed", type=float, default=15.0, help="trace speed (default ×%(default)s)")
    p.add_argument("--fault-every", type=float, default=12.0, help="seconds between faults")
    p.add_argument("--db", default=None, help="database URL (default: a temporary SQLite file)")
    p.add_argument("--min-loops", type=int, default=10)
    p.add_argument("--max-rss-growth-mb", type=float, default=20.0)
    p.add_argument("--json-out", type=Path, default=None, help="write the figures here")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, db)")
    args = p.parse_args(argv)
    if args.speed <= 0:
        p.error("--speed must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"soak: {args.duration:g}s, {TRACE} at ×{args.speed:g}, work dir {workdir}", flush=True)
    result = run(args, workdir)
    problems = passed(result, min_loops=args.min_loops, max_growth_mb=args.max_rss_growth_mb)
    result["problems"] = problems
    print(
        f"played {result['played']} calls in {result['loops']} loops "
        f"({result['plays_started']} plays started): {result['complete']} complete, "
        f"{result['cut_stored']} cut but stored, {result['cut_in_gap']} cut and inside one of "
        f"{result['gaps']} AMI gaps; stored {result['stored']}; lost {len(result['lost'])}, "
        f"wrong {len(result['wrong'])}, duplicates {len(result['duplicates'])}, "
        f"unexpected {len(result['unexpected'])}"
    )
    print(
        f"faults: {', '.join(f['fault'] for f in result['faults'])}; /readyz 503 in "
        f"{result['readyz_503']} of {result['readyz_samples']} probes; web answered "
        f"{result['web_ok']} probes, failed {len(result['web_failures'])}"
    )
    print(
        f"listener RSS growth: {result['rss_growth_mb']:+.1f} MB over {result['rss_loops']} "
        f"loops (target < 20 MB over >= 10)"
    )
    print("SOAK PASSED" if not problems else "SOAK FAILED:\n  " + "\n  ".join(problems))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result, indent=1))
    if not args.keep and not problems:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
