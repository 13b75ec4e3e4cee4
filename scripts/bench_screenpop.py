"""Benchmark the screen pop end to end: simulator → listener → web → Chromium's DOM.

    .venv/bin/python scripts/bench_screenpop.py [--pops 200] [--speed 40] [--mode serve|processes]

The AMI simulator (in this process) plays the recorded ``answered`` call in a loop to
`callcenter serve` (listener and panel in one process, the single-clinic shape), or with
``--mode processes`` to `callcenter listen` and `callcenter web` joined by Redis. Operator 101
is logged in in headless Chromium (Playwright, /usr/bin/chromium).

Latency of one pop: from the moment the simulator hands the ``AgentCalled`` frame for 101 to its
socket (``time.time()`` in the simulator's frame observer) to the moment the card's element
enters the page (``performance.timeOrigin + performance.now()`` in a MutationObserver), both on
this machine's wall clock. Prints p50 / p90 / p99 / max; the target is p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from callcenter.ami.simulator import SimSession
from callcenter.ami.simulator_thread import SimulatorThread
from callcenter.store import users
from callcenter.store.db import create_db_engine, create_session_factory, upgrade
from callcenter.store.models_patients import Patient, PatientNote, PatientPhone, Visit

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
AMI_SECRET = "bench-ami-secret"
PASSWORD = "bench password"
CALLER = "+79161234567"  # the caller of the recorded `answered` call
_LINKEDID = re.compile(r"\r\nLinkedid: ([^\r]+)\r\n")
_INTERFACE = re.compile(r"\r\nInterface: [^/\r]*/(\d+)@")

#: Records, in the page, when each card element first appears.
OBSERVER_JS = """
window.__pops = {};
new MutationObserver(function (mutations) {
  var now = performance.timeOrigin + performance.now();
  mutations.forEach(function (m) {
    m.addedNodes.forEach(function (n) {
      if (n.nodeType === 1 && n.matches("article.pop") && !(n.dataset.linkedid in window.__pops)) {
        window.__pops[n.dataset.linkedid] = now;
      }
    });
  });
}).observe(document, { childList: true, subtree: true });
// When each pop's WebSocket frame reached the page, to split server time from page time.
window.__frames = {};
(function () {
  var Native = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    var ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", function (e) {
      var now = performance.timeOrigin + performance.now();
      if (typeof e.data === "string" && e.data.indexOf('42/operator,["pop"') === 0) {
        var m = /"linkedid": ?"([^"]+)"/.exec(e.data);
        if (m && !(m[1] in window.__frames)) { window.__frames[m[1]] = now; }
      }
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (k) {
    window.WebSocket[k] = Native[k];
  });
})();
"""


# -- shared with bench_load.py ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


class RingClock:
    """Simulator frame observer: when each AgentCalled frame went out, by (linkedid, agent)."""

    def __init__(self) -> None:
        self.rings: dict[tuple[str, str], float] = {}

    def on_frame(self, session: SimSession, raw: str) -> None:
        if not raw.startswith("Event: AgentCalled\r\n"):
            return
        linkedid, agent = _LINKEDID.search(raw), _INTERFACE.search(raw)
        if linkedid is not None and agent is not None:
            self.rings.setdefault((linkedid.group(1), agent.group(1)), time.time())


def seed(url: str, *, operators: dict[str, str]) -> None:
    """Migrate; create operator accounts (username → extension) and the caller's patient card."""
    upgrade(url)
    engine = create_db_engine(url)
    now = datetime.now(UTC)
    try:
        with create_session_factory(engine).begin() as s:
            for username, extension in operators.items():
                users.create_user(
                    s, username=username, password=PASSWORD, role="operator", extension=extension
                )
            patient = Patient(full_name="Смирнова Ольга Николаевна", doctor="Петров И. И.")
            patient.phones.append(PatientPhone(phone=CALLER))
            s.add(patient)
            s.flush()
            s.add(
                PatientNote(
                    patient_id=patient.id, text="боится анестезии", author="admin", created_at=now
                )
            )
            for month in range(1, 11):
                s.add(
                    Visit(
                        patient_id=patient.id,
                        visit_date=date(2026, month, 12),
                        doctor="Петров И. И.",
                        service="консультация терапевта",
                        status="completed",
                    )
                )
    finally:
        engine.dispose()


class Stack:
    """`callcenter serve`, or `callcenter listen` + `callcenter web` with Redis, as subprocesses."""

    def __init__(self, *, mode: str, db_url: str, ami_port: int, workdir: Path, redis_url: str):
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        prefixes = ("AMI_", "DATABASE_", "LOG_", "REDIS_", "WEB_", "METRICS_", "HUEY_", "SECRET_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(
            DATABASE_URL=db_url,
            HUEY_PATH=str(workdir / "huey.db"),
            AMI_HOST="127.0.0.1",
            AMI_PORT=str(ami_port),
            AMI_SECRET=AMI_SECRET,
            SECRET_KEY="bench-secret-key",
            WEB_PORT=str(self.web_port),
            LOG_LEVEL="WARNING",
        )
        if mode == "processes":
            env["REDIS_URL"] = redis_url
            commands = ["listen", "web"]
        else:
            commands = ["serve"]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for command in commands:
            with open(workdir / f"{command}.log", "w") as log:
                self.procs[command] = subprocess.Popen(
                    [sys.executable, "-m", "callcenter", command],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
        self.web_pid = self.procs["web" if mode == "processes" else "serve"].pid
        wait_until(lambda: http_status(f"{self.url}/healthz") == 200, 60, "the web server")

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the web server's process so far."""
        fields = Path(f"/proc/{self.web_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- the benchmark ----------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> list[float]:
    from playwright.sync_api import sync_playwright

    db_url = f"sqlite:///{workdir / 'bench.db'}"
    seed(db_url, operators={"operator101": "101"})
    clock = RingClock()
    sims = SimulatorThread(
        traces=["answered"],
        speed=args.speed,
        loop_forever=True,
        loop_gap_s=args.speed * args.gap,
        secret=AMI_SECRET,
        on_frame=clock.on_frame,
    )
    sim = sims.start()
    stack = Stack(
        mode=args.mode, db_url=db_url, ami_port=sim.port, workdir=workdir, redis_url=args.redis_url
    )
    latencies: list[float] = []
    wire: list[float] = []
    missed = 0
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page()
            page.add_init_script(OBSERVER_JS)
            page.goto(f"{stack.url}/auth/login")
            page.fill("input[name=username]", "operator101")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_selector("#pops", state="attached")
            page.wait_for_selector(".conn-up", timeout=30_000)  # Socket.IO connected
            time.sleep(0.5)
            ready_at = time.time()
            cpu0, wall0 = stack.cpu_seconds(), time.monotonic()
            deadline = time.monotonic() + args.timeout
            seen: dict[str, float] = {}
            arrived: dict[str, float] = {}
            while len(latencies) < args.pops and time.monotonic() < deadline:
                time.sleep(0.5)
                seen.update(page.evaluate("window.__pops"))
                arrived.update(page.evaluate("window.__frames"))
                latencies.clear()
                wire.clear()
                missed = 0
                now = time.time()
                for (linkedid, agent), rang in list(clock.rings.items()):
                    if agent != "101" or rang < ready_at:
                        continue
                    if linkedid in seen:
                        latencies.append(seen[linkedid] / 1000.0 - rang)
                        if linkedid in arrived:
                            wire.append(arrived[linkedid] / 1000.0 - rang)
                    elif now - rang > 5.0:
                        missed += 1
            cpu = (stack.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
            page.screenshot(path=str(workdir / "panel.png"))
            browser.close()
    finally:
        stack.stop()
        sims.stop()
    latencies = latencies[: args.pops]
    ms = [1000 * v for v in latencies]
    if not ms:
        print("no pops measured; see the logs in", workdir)
        return []
    print(
        f"{len(ms)} pops ({args.mode}, answered ×{args.speed:g}), missed {missed}: "
        f"p50 {statistics.median(ms):.1f} ms, p90 {percentile(ms, 90):.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms (target p99 < 100 ms); "
        f"web process CPU {100 * cpu:.0f}% of a core"
    )
    if wire:
        w = [1000 * v for v in wire]
        print(
            f"  of which until the frame reached the page ({len(w)} pops): p50 "
            f"{statistics.median(w):.1f} ms, p99 {percentile(w, 99):.1f} ms"
        )
    print(
        "  by order, p50 per quarter:",
        [
            round(statistics.median(ms[i : i + max(1, len(ms) // 4)]), 1)
            for i in range(0, len(ms), max(1, len(ms) // 4))
        ],
    )
    return ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pops", type=int, default=200)
    p.add_argument("--speed", type=float, default=40.0, help="trace speed (default ×%(default)s)")
    p.add_argument("--gap", type=float, default=0.2, help="real seconds between two calls")
    p.add_argument("--mode", choices=["serve", "processes"], default="serve")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="--mode processes")
    p.add_argument("--timeout", type=float, default=600.0, help="give up after this many s")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, screenshot)")
    args = p.parse_args(argv)
    if args.speed <= 0 or args.pops < 1:
        p.error("--speed and --pops must be positive")
    workdir = Path(tempfile.mkdtemp(prefix="bench-screenpop-"))
    ms = run(args, workdir)
    if args.keep or not ms:
        print("work dir:", workdir)
    else:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ms else 1


if __name__ == "__main__":
    sys.exit(main())
