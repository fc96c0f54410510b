"""Load and overload test of the two servers, side by side, on loopback only.

    python -m benchmarks.serving --checkpoint models/gan/generator.pt        # ~8 min on 2 cores
    python -m benchmarks.serving --checkpoint ... --quick                     # ~3 min

Starts, as child processes in their own process groups, ``dpsrgan serve`` (its own local Ray)
and ``mlflow models serve`` of the same checkpoint logged as our pyfunc to a temporary sqlite
store; both on 127.0.0.1 ports picked here, both with a 60 s request timeout, 1 worker.

1. **Latency and throughput**: for 64² and 256² photographs and concurrency 1/4/8/16, closed-loop
   clients send requests for at most ``--cell-seconds`` (and at most 3 × concurrency requests, 4× that at 64²);
   p50/p95/p99 latency and throughput of the 200s, and what else came back.
2. **Overload** (the issue's probe): 20 concurrent 1024² requests, and meanwhile one client
   sending a 64² request every 0.5 s, for ``--overload-seconds``. Reported: what the big and the
   small requests got and how fast, the server's peak RSS (process tree, sampled every 0.25 s),
   how long the server kept computing after the last answer (CPU of its process tree), work
   past deadlines (``dpsrgan serve``'s own account at ``/stats``), and SIGTERM-to-exit time.

Everything is bounded in count and time; the servers are stopped by their process group.
Results: ``benchmarks/results/serving-<machine>.{json,md}`` (the machine is shared: the load
average is recorded, and the numbers are a same-run comparison, not absolutes).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import requests
from PIL import Image

from benchmarks.common import machine_info, machine_slug

RESULTS = Path(__file__).parent / "results"
TIMEOUT_S = 60
CLIENT_TIMEOUT_S = 120
OBSERVE_AFTER_S = 25
"""After an overload's last answer, how long the server's CPU is watched before SIGTERM."""


def photo(side: int, seed: int = 0) -> bytes:
    """A photograph-like PNG (smooth gradients, blobs, mild noise): realistic compression and work."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    channels = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        cx, cy = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.08)
        channels.append(0.5 + 0.25 * (a * x + b * y) + 0.3 * c * blob + 0.02 * rng.standard_normal(x.shape))
    buffer = io.BytesIO()
    Image.fromarray((np.clip(np.stack(channels, -1), 0, 1) * 255).round().astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Server:
    """A child server process (its own process group) and how to send it one image."""

    name: str
    proc: subprocess.Popen
    base: str
    log: Path
    style: str  # "raw" (POST /upscale) or "pyfunc" (POST /invocations, JSON)

    def send(self, data: bytes) -> tuple[int, float]:
        """(status, seconds); a transport failure or client timeout is status 0."""
        start = time.perf_counter()
        try:
            if self.style == "raw":
                answer = requests.post(f"{self.base}/upscale", data=data, timeout=CLIENT_TIMEOUT_S)
            else:
                body = {"dataframe_records": [{"image_b64": base64.b64encode(data).decode()}]}
                answer = requests.post(f"{self.base}/invocations", json=body, timeout=CLIENT_TIMEOUT_S)
            status = answer.status_code
        except requests.RequestException:
            status = 0
        return status, time.perf_counter() - start

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        total = 0
        for process in self.tree():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> float | None:
        """SIGTERM to the server's main process (as ``docker stop`` and Kubernetes send it);
        seconds until its whole process tree is gone, or None if it had to be killed at 30 s."""
        tree = self.tree()
        if not tree:
            return 0.0
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(tree, timeout=30)
        if not alive:
            self.proc.wait(timeout=5)
            return round(time.monotonic() - start, 1)
        for process in alive:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc.wait(timeout=10)
        return None


def _wait_ready(server: Server, path: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: see {server.log}")
        try:
            if requests.get(server.base + path, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{server.name} not ready after {limit_s:.0f} s: see {server.log}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dpsrgan(checkpoint: Path, work: Path) -> Server:
    port, log = _free_port(), work / "dpsrgan-serve.log"
    command = [sys.executable, "-m", "dpsrgan.cli", "serve", "--model", str(checkpoint),
               "--port", str(port), "--timeout", str(TIMEOUT_S)]
    proc = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0"))
    server = Server("dpsrgan serve", proc, f"http://127.0.0.1:{port}", log, "raw")
    _wait_ready(server, "/healthz", 300)
    return server


def start_mlflow(checkpoint: Path, work: Path) -> Server:
    """Our pyfunc, logged to a temporary sqlite store, served the way the README shows."""
    import mlflow

    from dpsrgan.lifecycle.serving import log_pyfunc

    store = f"sqlite:///{work / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("serving-benchmark")
    with mlflow.start_run():
        uri = log_pyfunc(checkpoint).model_uri
    port, log = _free_port(), work / "mlflow-serve.log"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port), "-w", "1", "-t", str(TIMEOUT_S)]
    proc = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=work, env=dict(os.environ, MLFLOW_TRACKING_URI=store))
    server = Server("mlflow models serve", proc, f"http://127.0.0.1:{port}", log, "pyfunc")
    _wait_ready(server, "/ping", 300)
    return server


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(values, q))


def latency_cell(server: Server, side: int, concurrency: int, cell_seconds: float) -> dict[str, Any]:
    """Closed loop: ``concurrency`` clients, each sending the next request when answered."""
    payloads = [photo(side, seed) for seed in range(4)]
    budget = max(6, 3 * concurrency) * (4 if side <= 64 else 1)  # small images: enough samples
    taken = iter(range(budget))
    lock, answers = threading.Lock(), []
    stop_at = time.monotonic() + cell_seconds

    def client(index: int) -> None:
        while time.monotonic() < stop_at:
            with lock:
                number = next(taken, None)
            if number is None:
                return
            answers.append(server.send(payloads[(index + number) % len(payloads)]))

    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, range(concurrency)))
    wall = time.monotonic() - start
    seconds = [elapsed for status, elapsed in answers if status == 200]  # refusals are fast: counted apart
    ok = len(seconds)
    statuses: dict[str, int] = {}
    for status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "server": server.name, "side": side, "concurrency": concurrency, "requests": len(answers),
        "p50_ms": _ms(_percentile(seconds, 50)), "p95_ms": _ms(_percentile(seconds, 95)),
        "p99_ms": _ms(_percentile(seconds, 99)), "ok_per_s": round(ok / wall, 2), "statuses": statuses,
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass
class Sampler:
    """Peak RSS and CPU of a server's process tree, sampled in a thread."""

    server: Server
    peak_rss: int = 0
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (time, percent of one core)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        known: dict[int, psutil.Process] = {}
        while not self._stop.is_set():
            rss, busy = 0, 0.0
            for process in self.server.tree():
                process = known.setdefault(process.pid, process)
                try:
                    rss += process.memory_info().rss
                    busy += process.cpu_percent(None)
                except psutil.NoSuchProcess:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self.cpu.append((time.monotonic(), busy))
            time.sleep(0.25)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def busy_until(self, after: float, threshold: float = 30.0) -> float:
        """Last sample time (after ``after``) when the tree used more than ``threshold``% CPU."""
        busy = [moment for moment, percent in self.cpu if moment > after and percent > threshold]
        return max(busy, default=after)


def overload(server: Server, window_s: float, bigs: int = 20, big_side: int = 1024) -> dict[str, Any]:
    """The issue's probe: ``bigs`` concurrent ``big_side``² requests, a 64² one every 0.5 s."""
    baseline = server.rss()
    sampler = Sampler(server)
    big, small = photo(big_side, 11), photo(64, 12)
    start = time.monotonic()
    smalls: list[tuple[float, int, float]] = []  # (sent at, status, seconds)

    def small_client() -> None:
        while time.monotonic() - start < window_s:
            sent = time.monotonic() - start
            status, seconds = server.send(small)
            smalls.append((round(sent, 1), status, seconds))
            time.sleep(max(0.0, 0.5 - seconds))

    with ThreadPoolExecutor(bigs + 1) as pool:
        small_future = pool.submit(small_client)
        big_answers = list(pool.map(lambda _: server.send(big), range(bigs)))
        small_future.result()
    last_answer = time.monotonic()
    _wait_idle(sampler, last_answer, limit_s=OBSERVE_AFTER_S)
    busy_after = sampler.busy_until(last_answer) - last_answer
    replica = _replica_stats(server)
    stop_s = server.stop()  # SIGTERM now, with whatever it is still doing
    sampler.stop()
    return {
        "server": server.name, "big_side": big_side, "bigs": bigs, "window_s": window_s,
        "big": _outcomes(big_answers), "small": _outcomes([(status, seconds) for _, status, seconds in smalls]),
        "small_timeline": [(sent, status, round(seconds, 2)) for sent, status, seconds in smalls],
        "idle_rss_mb": round(baseline / 2**20), "peak_rss_mb": round(sampler.peak_rss / 2**20), "busy_after_last_answer_s": round(busy_after, 1),
        "observed_after_last_answer_s": OBSERVE_AFTER_S, "replica_stats": replica, "sigterm_exit_s": stop_s,
    }


def _wait_idle(sampler: Sampler, after: float, limit_s: float) -> None:
    """Until the server's CPU has been under 30% of a core for 2 s, or ``limit_s``."""
    while time.monotonic() - after < limit_s:
        time.sleep(0.5)
        recent = [percent for moment, percent in sampler.cpu if moment > time.monotonic() - 2]
        if len(recent) >= 6 and max(recent) < 30:
            return


def _replica_stats(server: Server) -> dict[str, Any] | None:
    if server.style != "raw":
        return None
    try:
        return requests.get(f"{server.base}/stats", timeout=10).json()
    except (requests.RequestException, ValueError):
        return None


def _outcomes(answers: list[tuple[int, float]]) -> dict[str, Any]:
    """Counts per status and latency quantiles (seconds) of a list of (status, seconds)."""
    statuses: dict[str, int] = {}
    for status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    seconds = [elapsed for _, elapsed in answers]
    return {
        "count": len(answers), "statuses": statuses,
        "median_s": round(statistics.median(seconds), 2) if seconds else None,
        "max_s": round(max(seconds), 2) if seconds else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=Path("models/gan/generator.pt"))
    parser.add_argument("--machine", default=f"serving-{machine_slug()}")
    parser.add_argument("--quick", action="store_true", help="concurrency 1 and 8 only, shorter cells and overload")
    parser.add_argument("--cell-seconds", type=float, default=10.0)
    parser.add_argument("--overload-seconds", type=float, default=70.0)
    parser.add_argument("--overload-sides", default="1024,512",
                        help="big request sides of the overload runs (the issue's probe used 1024)")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file (train one, or dpsrgan.save_generator(dpsrgan.Generator(), path))")
    concurrencies = (1, 8) if args.quick else (1, 4, 8, 16)
    cell_seconds = 6.0 if args.quick else args.cell_seconds
    window = 40.0 if args.quick else args.overload_seconds
    began, load_start = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="dpsrgan-serving-bench-") as tmp:
        work = Path(tmp)
        servers = [start_dpsrgan(args.checkpoint, work), start_mlflow(args.checkpoint, work)]
        try:
            for server in servers:
                for side in (64, 256):
                    server.send(photo(side, 99))  # warm-up, not timed
            cells = [latency_cell(server, side, concurrency, cell_seconds)
                     for side in (64, 256) for concurrency in concurrencies for server in servers]
            overloads = []
            for index, side in enumerate(int(side) for side in args.overload_sides.split(",")):
                if index:  # each overload run ends with SIGTERM: fresh servers for the next
                    servers = [start_dpsrgan(args.checkpoint, work), start_mlflow(args.checkpoint, work)]
                overloads += [overload(server, window if index == 0 else window / 2, big_side=side)
                              for server in servers]
        finally:
            for server in servers:
                server.stop()
    results = {
        "command": "python -m benchmarks.serving " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(began)), "duration_s": round(time.time() - began),
        "machine": machine_info(), "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "machine_name": args.machine, "checkpoint": str(args.checkpoint), "timeout_s": TIMEOUT_S, "latency": cells, "overload": overloads,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.machine}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{args.machine}.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def _statuses(statuses: dict[str, int]) -> str:
    names = {"0": "no answer"}
    return ", ".join(f"{names.get(code, code)} × {count}" for code, count in sorted(statuses.items()))


def _latency_table(cells: list[dict[str, Any]]) -> list[str]:
    servers = list(dict.fromkeys(cell["server"] for cell in cells))
    header = "| input | clients | " + " | ".join(f"{name}: p50 / p95 / p99 ms | 200s/s" for name in servers) + " |"
    lines = [header, "|---|---|" + "---|---|" * len(servers)]
    keys = list(dict.fromkeys((cell["side"], cell["concurrency"]) for cell in cells))
    for side, concurrency in keys:
        row = [f"{side}²", str(concurrency)]
        for name in servers:
            cell = next(c for c in cells if (c["server"], c["side"], c["concurrency"]) == (name, side, concurrency))
            others = {code: n for code, n in cell["statuses"].items() if code != "200"}
            extra = f" ({_statuses(others)})" if others else ""
            shown = "–" if cell["p50_ms"] is None else f"{cell['p50_ms']:.0f} / {cell['p95_ms']:.0f} / {cell['p99_ms']:.0f}"
            row += [shown + extra, f"{cell['ok_per_s']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _overload_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| | " + " | ".join(run["server"] for run in runs) + " |", "|---|" + "---|" * len(runs)]

    def row(label: str, shown) -> None:
        lines.append(f"| {label} | " + " | ".join(shown(run) for run in runs) + " |")

    row("big requests got", lambda r: f"{_statuses(r['big']['statuses'])}; median {r['big']['median_s']} s, max {r['big']['max_s']} s")
    row("small requests got", lambda r: f"{_statuses(r['small']['statuses'])}; median {r['small']['median_s']} s, max {r['small']['max_s']} s")
    row("kept computing after the last answer", lambda r: (
        f"{r['busy_after_last_answer_s']} s" if r["busy_after_last_answer_s"] < r["observed_after_last_answer_s"] - 1
        else f"≥ {r['observed_after_last_answer_s']} s (still busy when observation ended)"))
    row("work past a deadline (replica's own account)", lambda r: (
        f"at most {r['replica_stats']['max_past_deadline_s']:.2f} s; {r['replica_stats']['stopped_unfinished']} job(s) "
        f"stopped unfinished, {r['replica_stats']['refused_busy']} refused as unable to finish in time"
        if r["replica_stats"] else "not reported (no cancellation: see the row above)"))
    row("RSS of the server's process tree: idle → peak", lambda r: f"{r['idle_rss_mb']:,} → {r['peak_rss_mb']:,} MB")
    row("RSS of the model replica at the end (its own account)", lambda r: (
        f"{r['replica_stats']['rss_bytes'] / 2**20:,.0f} MB" if r["replica_stats"] else "n/a (one process)"))
    row("SIGTERM after the overload → every process gone", lambda r: (
        f"{r['sigterm_exit_s']} s" if r["sigterm_exit_s"] is not None else "not within 30 s (killed)"))
    return lines


def _overload_sections(runs: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for side in dict.fromkeys(run["big_side"] for run in runs):
        same = [run for run in runs if run["big_side"] == side]
        lines += [f"## Overload: {same[0]['bigs']} × {side}² at once, and a 64² request every 0.5 s for "
                  f"{same[0]['window_s']:.0f} s", "", *_overload_table(same), ""]
    return lines


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    start, end = results["load_average_start"][0], results["load_average_end"][0]
    lines = [
        f"# Serving load test: {results['machine_name']}",
        "",
        f"`{results['command']}` — {results['date_utc']} UTC, {results['duration_s']} s.",
        f"CPU: {machine['cpu']}, {machine['cpus']} CPUs (flags: {', '.join(machine['flags']) or 'none of interest'}); "
        f"torch {machine['torch']}. Load average (1 min) {start:.1f} at the start, {end:.1f} at the end: the "
        "machine is shared with other work, so read the two servers side by side (same run, cells "
        "interleaved) rather than as absolutes.",
        f"Model: {results['checkpoint']}. Both servers on 127.0.0.1, one worker / one replica, "
        f"{results['timeout_s']} s request timeout; `dpsrgan serve` with its defaults (batch ≤ 4, queue 16, "
        "1 MP input limit), `mlflow models serve -w 1 -t 60` of the same weights as our pyfunc.",
        "",
        "## Latency and throughput",
        "",
        "Closed-loop clients (each sends its next request when answered), photograph-like PNGs; "
        "latency of the 200 answers, throughput of 200s per second; other answers are counted in brackets.",
        "",
        *_latency_table(results["latency"]),
        "",
        *_overload_sections(results["overload"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
