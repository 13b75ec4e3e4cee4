"""Load benchmark: 50 operators' Socket.IO clients while the busy hour plays at ×10.

    .venv/bin/python scripts/bench_load.py [--clients 50] [--speed 10] [--duration 40]
                                           [--mode serve|processes]

`callcenter serve` (listener + panel in one process), or with ``--mode processes``
`callcenter listen` + `callcenter web` joined by Redis, gets the recorded ``burst`` (40 calls in
35 s, ring-all over 101, 102, 103) from the AMI simulator in a loop at ×``--speed``. The
clients are logged in as operators 101, 102 and 103 in turn (a third of them on each
extension) and speak Socket.IO over WebSocket, as the browsers do: a small Engine.IO v4 client
on ``websockets``, all in one asyncio loop of this process.

Pop latency: from the simulator handing the ``AgentCalled`` frame for an extension to its socket
to a client of that extension receiving the ``pop`` (both ``time.time()`` in this process).
Prints pops delivered per second, p50 / p99 latency (target p99 < 250 ms at 50 clients) and the
web server process's CPU (user + system time over wall time; in serve mode that process also
runs the listener).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_screenpop import (  # noqa: E402 (the script's own directory first)
    AMI_SECRET,
    PASSWORD,
    RingClock,
    Stack,
    percentile,
    seed,
)

from callcenter.ami.simulator_thread import SimulatorThread  # noqa: E402

EXTENSIONS = ("101", "102", "103")
NS = "/operator"


def log_in(base: str, username: str) -> str:
    """Log in through the form; return the session cookie header."""
    http = requests.Session()
    page = http.get(f"{base}/auth/login", timeout=10).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    answer = http.post(
        f"{base}/auth/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
        timeout=10,
    )
    if "/auth/login" in answer.url:
        raise RuntimeError(f"login as {username} failed")
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


class Client:
    """One operator's Socket.IO connection (Engine.IO v4 over WebSocket, namespace /operator)."""

    def __init__(self, n: int, extension: str, cookie: str) -> None:
        self.n, self.extension, self.cookie = n, extension, cookie
        self.connected = asyncio.Event()
        self.pops: dict[str, float] = {}  # linkedid → time.time() of its first pop
        self.error: str | None = None

    async def run(self, ws_url: str, stop: asyncio.Event) -> None:
        try:
            async with connect(
                ws_url, additional_headers={"Cookie": self.cookie}, max_size=2**22
            ) as ws:
                opening = await ws.recv()
                if not str(opening).startswith("0"):
                    raise RuntimeError(f"unexpected Engine.IO opening {opening!r}")
                await ws.send(f"40{NS},")
                reader = asyncio.ensure_future(self._read(ws))
                await stop.wait()
                reader.cancel()
        except Exception as exc:  # reported with the figures
            self.error = repr(exc)
            self.connected.set()

    async def _read(self, ws: Any) -> None:
        async for message in ws:
            now = time.time()
            if message == "2":  # Engine.IO ping
                await ws.send("3")
            elif message.startswith(f"42{NS},"):
                event, *data = json.loads(message[len(NS) + 3 :])
                if event == "pop" and data and data[0].get("state") == "ringing":
                    self.pops.setdefault(data[0]["linkedid"], now)
            elif message.startswith(f"40{NS},"):
                self.connected.set()
            elif message.startswith(f"44{NS},"):
                self.error = f"refused: {message}"
                self.connected.set()


async def drive(args: argparse.Namespace, stack: Stack, clock: RingClock) -> dict[str, Any]:
    cookies = {ext: log_in(stack.url, f"operator{ext}") for ext in EXTENSIONS}
    clients = [
        Client(n, EXTENSIONS[n % 3], cookies[EXTENSIONS[n % 3]]) for n in range(args.clients)
    ]
    ws_url = stack.url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(c.run(ws_url, stop)) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 60)
    errors = [c.error for c in clients if c.error]
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[:3]}")
    started = time.time()
    cpu0, wall0 = stack.cpu_seconds(), time.monotonic()
    await asyncio.sleep(args.duration)
    cpu = (stack.cpu_seconds() - cpu0) / (time.monotonic() - wall0)
    measured_until = time.time() - 2.0  # rings in the last 2 s may still be on their way
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)

    latencies: list[float] = []
    worst: list[tuple[float, float]] = []  # (slowest pop of a ring in ms, ring time - start)
    expected = delivered = 0
    for (linkedid, agent), rang in list(clock.rings.items()):
        if not started <= rang <= measured_until:
            continue
        ring_ms: list[float] = []
        for client in clients:
            if client.extension != agent:
                continue
            expected += 1
            got = client.pops.get(linkedid)
            if got is not None:
                delivered += 1
                ring_ms.append(1000 * (got - rang))
        latencies.extend(ring_ms)
        if ring_ms:
            worst.append((max(ring_ms), rang - started))
    window = measured_until - started
    return {
        "clients": len(clients),
        "rings": sum(1 for r in clock.rings.values() if started <= r <= measured_until),
        "expected": expected,
        "delivered": delivered,
        "pops_per_s": delivered / window if window > 0 else 0.0,
        "latencies": latencies,
        "worst_rings": sorted(worst, reverse=True)[:3],
        "cpu": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--speed", type=float, default=10.0, help="trace speed (default ×%(default)s)")
    p.add_argument("--duration", type=float, default=40.0, help="seconds measured")
    p.add_argument("--mode", choices=["serve", "processes"], default="serve")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/12", help="--mode processes")
    args = p.parse_args(argv)
    if args.clients < 1 or args.speed <= 0 or args.duration <= 3:
        p.error("--clients, --speed must be positive and --duration above 3 s")
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    db_url = f"sqlite:///{workdir / 'bench.db'}"
    seed(db_url, operators={f"operator{ext}": ext for ext in EXTENSIONS})
    clock = RingClock()
    # Rings before the clients are connected are not counted.
    sims = SimulatorThread(
        traces=["burst"],
        speed=args.speed,
        loop_forever=True,
        secret=AMI_SECRET,
        on_frame=clock.on_frame,
    )
    sim = sims.start()
    stack = Stack(
        mode=args.mode, db_url=db_url, ami_port=sim.port, workdir=workdir, redis_url=args.redis_url
    )
    try:
        result = asyncio.run(drive(args, stack, clock))
    finally:
        stack.stop()
        sims.stop()
    ms = result["latencies"]
    if not ms:
        print("no pops measured; logs in", workdir)
        return 1
    print(
        f"{result['clients']} clients ({args.mode}), burst ×{args.speed:g} for "
        f"{args.duration:g}s: {result['rings']} rings, {result['delivered']} of "
        f"{result['expected']} pops delivered ({result['pops_per_s']:.0f} pops/s); latency "
        f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max "
        f"{max(ms):.1f} ms (target p99 < 250 ms); web server CPU {100 * result['cpu']:.0f}% "
        f"of a core{' (listener included)' if args.mode == 'serve' else ''}"
    )
    print(
        "  slowest rings (all their clients' pops):",
        ", ".join(f"{ms:.0f} ms at +{at:.1f}s" for ms, at in result["worst_rings"]),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
