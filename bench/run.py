#!/usr/bin/env python3
"""`make bench`: the wrapper's cost, side by side, in one run (issue 6).

Every workload of bench/swbench.c runs in up to four configurations:

  kernel  no preload, kernel loopback TCP/UDP on 127.0.0.1 (for pipe, process start and
          memory: simply "no preload")
  unix    the same workload on raw AF_UNIX sockets, socket files in a fresh directory: the
          physical limit of a wrapper that carries inet sockets over Unix sockets
  cwrap   Debian's libsocket-wrapper (cwrap 1.3.5) preloaded, fresh SOCKET_WRAPPER_DIR
  ours    build/libsocket_wrapper.so preloaded, fresh SOCKET_WRAPPER_DIR

Wrapped runs put the server on interface 10 (127.0.0.10) and the client on interface 11.
The server is a forked child of the client, so both sides run under the preload. Repetitions
are interleaved (rep 1 of every configuration, then rep 2, ...) so that drift of the machine
hits all columns alike; the table shows medians. Then tests/test_bench_scale.py runs (10000
epoll connections, SOCKET_WRAPPER_MAX_SOCKETS=256000) and its timings are reported.

Only the standard library is used. Results: build/bench/results.json (every sample), and
build/bench/table.md (the table as printed).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CONFIGS = ("kernel", "unix", "cwrap", "ours")
HEADERS = {
    "kernel": "kernel / no preload",
    "unix": "raw AF_UNIX",
    "cwrap": "cwrap 1.3.5",
    "ours": "ours",
}
RUN_TIMEOUT = 30  # seconds; every process of one run is killed after it (SIGALRM in swbench)


@dataclass
class Target:
    """ours compared with ref: ratio ours/ref OP limit, or difference ours-ref <= limit."""

    ref: str
    kind: str  # "ratio" | "delta"
    limit: float
    text: str

    def check(self, ours: float, ref: float, higher_better: bool) -> tuple[bool, str]:
        if self.kind == "ratio":
            r = ours / ref
            ok = r >= self.limit if higher_better else r <= self.limit
            return ok, f"{r:.3f}x"
        d = ours - ref
        return d <= self.limit, f"{d:+.0f}"


@dataclass
class Row:
    key: str
    title: str
    unit: str
    higher_better: bool
    configs: tuple[str, ...]
    target: Target | None
    workload: str = ""  # swbench workload; "" = derived (memory rows)
    dirbase: str = ""  # "" = default temp dir
    extra_env: dict[str, str] = field(default_factory=dict)
    use_cpu: bool = False  # one-process workloads: cost from CPU time, not wall time
    samples: dict[str, list[float]] = field(default_factory=dict)
    cpu_samples: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    info: dict[str, list[float]] = field(default_factory=dict)

    def median(self, cfg: str, cpu: bool = False) -> float | None:
        s = (self.cpu_samples if cpu else self.samples).get(cfg)
        return statistics.median(s) if s else None


# --------------------------------------------------------------------------- environment


def is_cwrap(path: str) -> bool:
    name = os.path.basename(path)
    return (
        name.startswith("libsocket_wrapper.so")
        and "noop" not in name
        and "/usr/local/" not in path
        and not path.startswith(str(REPO))
        and os.path.isfile(path)
    )


def find_cwrap() -> str | None:
    """Debian's libsocket-wrapper: dpkg's file list, else the usual paths, else ldconfig."""
    cands: list[str] = []
    try:
        out = subprocess.run(["dpkg-query", "-L", "libsocket-wrapper"], capture_output=True,
                             text=True, timeout=10).stdout
        cands += out.split()
    except (OSError, subprocess.TimeoutExpired):
        pass
    cands += sorted(glob.glob("/usr/lib/*/libsocket_wrapper.so*"))
    cands += sorted(glob.glob("/usr/lib/libsocket_wrapper.so*"))
    try:
        out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                             timeout=10).stdout
        cands += [ln.split("=>")[-1].strip() for ln in out.splitlines() if "=>" in ln]
    except (OSError, subprocess.TimeoutExpired):
        pass
    for c in cands:
        if is_cwrap(c):
            return os.path.realpath(c)
    return None


def clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOCKET_WRAPPER_", "BENCH_")) and k != "LD_PRELOAD"
    }


def fs_type(path: str) -> str:
    """File system type of the mount holding path (from /proc/self/mounts)."""
    best, kind = "", "?"
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(
                    best
                ):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# --------------------------------------------------------------------------- running


class Runner:
    def __init__(self, args: argparse.Namespace, libs: dict[str, str | None]) -> None:
        self.args = args
        self.libs = libs
        self.swbench = str(Path(args.bin_dir) / "swbench")

    def run_once(self, row: Row, cfg: str) -> tuple[dict[str, float], dict[str, float]]:
        """One run of row's workload in cfg; returns (parsed output, side info)."""
        base = row.dirbase or tempfile.gettempdir()
        d = tempfile.mkdtemp(prefix="swb-", dir=base)
        try:
            env = clean_env()
            env["BENCH_TIMEOUT"] = str(RUN_TIMEOUT)
            family = "unix" if cfg == "unix" else "inet"
            workload = row.workload
            if cfg == "unix":
                env["BENCH_DIR"] = d
            if cfg in ("cwrap", "ours"):
                lib = self.libs[cfg]
                assert lib is not None
                env["SOCKET_WRAPPER_DIR"] = d
                if workload == "spawn":
                    env["BENCH_CHILD_PRELOAD"] = lib  # only the child is wrapped
                else:
                    env["LD_PRELOAD"] = lib
                env["BENCH_HOST"] = "127.0.0.10"
                env["BENCH_SERVER_IFACE"] = "10"
                env["BENCH_CLIENT_IFACE"] = "11"
                for k, v in row.extra_env.items():
                    env[k] = v.replace("{dir}", d)
            argv = [self.swbench, workload, family, f"{self.args.duration:g}"]
            out = run_bounded(argv, env, RUN_TIMEOUT + 10)
            info: dict[str, float] = {}
            pcap = os.path.join(d, "trace.pcap")
            if os.path.exists(pcap):
                info["pcap_bytes"] = float(os.path.getsize(pcap))
            return out, info
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def measure(self, rows: list[Row]) -> None:
        for rep in range(self.args.reps):
            for row in rows:
                for cfg in row.configs:
                    if cfg in row.errors:
                        continue
                    if cfg in ("cwrap", "ours") and self.libs[cfg] is None:
                        row.errors[cfg] = "library not found"
                        continue
                    try:
                        out, info = self.run_once(row, cfg)
                    except RuntimeError as exc:
                        row.errors[cfg] = str(exc)
                        print(f"  {row.key}/{cfg}: {exc}", file=sys.stderr)
                        continue
                    value = out["cpu_value"] if row.use_cpu else out["value"]
                    row.samples.setdefault(cfg, []).append(value)
                    if out.get("cpu_value"):
                        row.cpu_samples.setdefault(cfg, []).append(out["cpu_value"])
                    for k, v in info.items():
                        row.info.setdefault(f"{cfg}:{k}", []).append(v)
                    if "pcap_bytes" in info and out.get("secs"):
                        row.info.setdefault(f"{cfg}:pcap_MiB_per_s", []).append(
                            info["pcap_bytes"] / out["secs"] / 2**20
                        )
            print(f"  rep {rep + 1}/{self.args.reps} done", file=sys.stderr, flush=True)

    def memory(self, idle: Row, one: Row, per: Row) -> None:
        n = self.args.rss_sockets
        for _ in range(self.args.reps):
            for cfg in CONFIGS:
                if cfg in ("cwrap", "ours") and self.libs[cfg] is None:
                    for r in (idle, one, per):
                        r.errors[cfg] = "library not found"
                    continue
                d = tempfile.mkdtemp(prefix="swb-", dir=tempfile.gettempdir())
                try:
                    env = clean_env()
                    env["BENCH_RSS_SOCKETS"] = str(n)
                    env["BENCH_TIMEOUT"] = str(RUN_TIMEOUT)
                    if cfg in ("cwrap", "ours"):
                        env["LD_PRELOAD"] = str(self.libs[cfg])
                        env["SOCKET_WRAPPER_DIR"] = d
                    fam = "unix" if cfg == "unix" else "inet"
                    if cfg == "unix":
                        env["BENCH_DIR"] = d
                    try:
                        out = run_bounded([self.swbench, "rss", fam, "0"], env, RUN_TIMEOUT + 10)
                    except RuntimeError as exc:
                        for r in (idle, one, per):
                            r.errors[cfg] = str(exc)
                        continue
                finally:
                    shutil.rmtree(d, ignore_errors=True)
                if cfg != "unix":
                    idle.samples.setdefault(cfg, []).append(out["rss_start"])
                    one.samples.setdefault(cfg, []).append(out["rss_one"])
                per.samples.setdefault(cfg, []).append(
                    (out["rss_n"] - out["rss_one"]) * 1024.0 / out["n"]
                )


PIN_CPU: int | None = None  # set by main(): the CPU every run is pinned to (None: not pinned)


def pin() -> None:
    if PIN_CPU is not None:
        os.sched_setaffinity(0, {PIN_CPU})


def run_bounded(argv: list[str], env: dict[str, str], timeout: float) -> dict[str, float]:
    """Runs argv in its own process group; kills that group (by its id) on timeout."""
    p = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, preexec_fn=pin,
    )
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate()
        raise RuntimeError(f"timed out after {timeout:.0f}s: {' '.join(argv)}") from None
    if p.returncode != 0:
        last = (err.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"exit {p.returncode}: {last}")
    res: dict[str, float] = {}
    for tok in out.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            res[k] = float(v)
    return res


# --------------------------------------------------------------------------- scale tests


def pytest_python() -> str | None:
    venv = REPO / ".venv" / "bin" / "python"
    for py in (str(venv), sys.executable):
        if not os.path.exists(py):
            continue
        try:
            ok = subprocess.run(
                [py, "-c", "import pytest"], capture_output=True, timeout=30
            ).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return py
    return None


def run_scale(args: argparse.Namespace, lib: str) -> dict[str, Any]:
    out_dir = Path(args.bin_dir)
    timings = out_dir / "scale.json"
    junit = out_dir / "scale.xml"
    for f in (timings, junit):
        f.unlink(missing_ok=True)
    py = pytest_python()
    if py is None:
        return {"error": "pytest not found (make venv, or pip install pytest)"}
    env = clean_env()
    env["BENCH_SCALE_JSON"] = str(timings)
    env["CWRAP_TEST_LIBRARY"] = lib
    argv = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
            f"--junitxml={junit}", "tests/test_bench_scale.py"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        text, _ = p.communicate(timeout=args.scale_timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        text, _ = p.communicate()
        text += f"\n(timed out after {args.scale_timeout}s)"
    res: dict[str, Any] = {"seconds": time.monotonic() - t0, "pytest_rc": p.returncode,
                           "tests": {}}
    if timings.exists():
        try:
            res["timings"] = json.loads(timings.read_text())
        except ValueError:
            res["timings"] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            status, msg = "passed", ""
            for tag in ("failure", "error", "skipped"):
                el = case.find(tag)
                if el is not None:
                    status = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                    msg = (el.get("message") or "").strip().splitlines()[0][:300] \
                        if el.get("message") else ""
                    break
            res["tests"][case.get("name", "?")] = {"status": status, "message": msg}
    if p.returncode not in (0, 5):
        res["output_tail"] = text.strip().splitlines()[-15:]
    return res


# --------------------------------------------------------------------------- report


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def evaluate(row: Row) -> dict[str, Any]:
    med = {c: row.median(c) for c in row.configs}
    ours, cw, ux = med.get("ours"), med.get("cwrap"), med.get("unix")
    res: dict[str, Any] = {"median": med}
    if ours is not None and cw:
        res["ours_over_cwrap"] = ours / cw
    if ours is not None and ux:
        res["ours_over_unix"] = ours / ux
    cpu_ours, cpu_ux = row.median("ours", cpu=True), row.median("unix", cpu=True)
    if cpu_ours is not None and cpu_ux:
        res["median_cpu"] = {c: row.median(c, cpu=True) for c in row.configs}
        res["ours_over_unix_cpu"] = cpu_ours / cpu_ux
    if row.target is not None:
        ref = med.get(row.target.ref)
        if ours is not None and ref is not None and (ref != 0 or row.target.kind == "delta"):
            ok, shown = row.target.check(ours, ref, row.higher_better)
            res["target_met"] = ok
            res["target_value"] = shown
    return res


def table(rows: list[Row], evals: dict[str, dict[str, Any]]) -> list[str]:
    head = ["workload", "unit", "better", *(HEADERS[c] for c in CONFIGS),
            "ours/cwrap", "ours/unix", "ours/unix, CPU time", "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        ev = evals[row.key]
        cells = [row.title, row.unit, "higher" if row.higher_better else "lower"]
        for c in CONFIGS:
            if c not in row.configs:
                cells.append("")
            elif c in row.errors and row.median(c) is None:
                cells.append("error")
            else:
                cells.append(fmt(row.median(c)))
        for k in ("ours_over_cwrap", "ours_over_unix", "ours_over_unix_cpu"):
            cells.append(f"{ev[k]:.2f}x" if k in ev else "")
        cells.append(row.target.text if row.target else "")
        if "target_met" in ev:
            cells.append(("yes" if ev["target_met"] else "**NO**") + f" ({ev['target_value']})")
        else:
            cells.append("-" if row.target else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def scale_lines(scale: dict[str, Any]) -> list[str]:
    if "error" in scale:
        return [f"Scale tests not run: {scale['error']}"]
    t = scale.get("timings", {})
    tests = scale.get("tests", {})
    lines = ["| scale test (ours, tests/test_bench_scale.py) | result | timing |", "|---|---|---|"]
    e = t.get("epoll_10000", {})
    st = tests.get("test_epoll_10000_connections", {"status": "not run", "message": ""})
    timing = ", ".join(
        f"{label} {e[k]:.2f} s" for k, label in
        (("connect_s", "10000 connects"), ("answer_s", "10000 requests answered"),
         ("close_s", "all closed")) if k in e
    )
    res = st["status"] + (f": {st['message']}" if st["message"] else "")
    lines.append(f"| 1 epoll server, 10000 concurrent connections from 4 clients | {res} | "
                 f"{timing or '-'} |")
    m = t.get("max_sockets", {})
    st = tests.get("test_max_sockets_256000", {"status": "not run", "message": ""})
    parts = []
    for k, label in (("limit_1000_s", "MAX_SOCKETS=1000: 1000 ok, then ENFILE"),
                     ("default_65535_s", "unset: 65535 ok, then ENFILE"),
                     ("limit_256000_s", "MAX_SOCKETS=256000: 256000 ok, then ENFILE"),
                     ("within_rlimit_s", f"MAX_SOCKETS=256000: {m.get('within_rlimit_n', '?')} "
                                         "ok (rlimit bound)")):
        if k in m:
            parts.append(f"{label} {m[k]:.2f} s")
    res = st["status"] + (f": {st['message']}" if st["message"] else "")
    lines.append(f"| SOCKET_WRAPPER_MAX_SOCKETS=256000 honoured | {res} | "
                 f"{'; '.join(parts) or '-'} |")
    return lines


def build_rows(tmp_fs: str, shm: bool) -> list[Row]:
    all4 = CONFIGS
    nop = ("kernel", "cwrap", "ours")
    rows = [
        Row("pingpong", "TCP 1-byte ping-pong", "ns/round trip", False, all4,
            Target("unix", "ratio", 1.03, "<= 1.03x unix"), "pingpong"),
        Row("bulk", "TCP bulk stream, 64 KiB writes", "MiB/s", True, all4,
            Target("unix", "ratio", 0.95, ">= 0.95x unix"), "bulk"),
        Row("connect_tmp", f"connect/accept/close, dir in {tempfile.gettempdir()} ({tmp_fs})",
            "cycles/s", True, all4, Target("unix", "ratio", 0.5, ">= 0.5x unix"), "connect"),
    ]
    if shm:
        rows.append(Row("connect_shm", "connect/accept/close, dir in /dev/shm (tmpfs)",
                        "cycles/s", True, ("unix", "cwrap", "ours"),
                        Target("unix", "ratio", 0.5, ">= 0.5x unix"), "connect",
                        dirbase="/dev/shm"))
    rows += [
        Row("udp", "UDP 64-byte ping-pong", "ns/round trip", False, all4,
            Target("unix", "ratio", 1.10, "<= 1.10x unix"), "udp"),
        Row("sockclose", "socket()+close()", "ns", False, all4,
            Target("unix", "ratio", 1.15, "<= 1.15x unix"), "sockclose", use_cpu=True),
        Row("pipe", "pipe write()+read() (not a socket)", "ns", False, nop,
            Target("kernel", "ratio", 1.01, "<= 1.01x no preload"), "pipe", use_cpu=True),
        Row("spawn", "process start (fork+exec /bin/true)", "us", False, nop,
            Target("kernel", "delta", 30.0, "<= +30 us over no preload"), "spawn", use_cpu=True),
        Row("bulk_pcap", "TCP bulk stream with pcap on", "MiB/s", True, ("cwrap", "ours"),
            Target("cwrap", "ratio", 3.0, ">= 3x cwrap"), "bulk",
            extra_env={"SOCKET_WRAPPER_PCAP_FILE": "{dir}/trace.pcap"}),
    ]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", default=str(REPO / "build" / "bench"))
    ap.add_argument("--lib", default=str(REPO / "build" / "libsocket_wrapper.so"))
    ap.add_argument("--cwrap", default=None, help="cwrap library (default: find Debian's)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=0.3, help="seconds per run")
    ap.add_argument("--cpu", type=int, default=None,
                    help="CPU to pin every run to (default: the last one this process may use; "
                         "-1: no pinning)")
    ap.add_argument("--rss-sockets", type=int, default=10000)
    ap.add_argument("--only", default="", help="comma-separated row keys (default: all)")
    ap.add_argument("--no-scale", action="store_true", help="skip tests/test_bench_scale.py")
    ap.add_argument("--scale-timeout", type=float, default=150)
    ap.add_argument("--json", default=None, help="default: BIN_DIR/results.json")
    args = ap.parse_args()

    ours = os.path.realpath(args.lib)
    if not os.path.isfile(ours):
        print(f"bench: {ours} not found; run make", file=sys.stderr)
        return 2
    if args.cwrap and not os.path.isfile(args.cwrap):
        print(f"bench: --cwrap {args.cwrap}: no such file", file=sys.stderr)
        return 2
    cw = os.path.realpath(args.cwrap) if args.cwrap else find_cwrap()
    if cw is None:
        print("bench: Debian's libsocket-wrapper not found (apt-get install libsocket-wrapper); "
              "the cwrap column stays empty", file=sys.stderr)
    libs: dict[str, str | None] = {"ours": ours, "cwrap": cw}
    global PIN_CPU
    allowed = sorted(os.sched_getaffinity(0))
    PIN_CPU = allowed[-1] if args.cpu is None else (None if args.cpu < 0 else args.cpu)
    pinned = "not pinned" if PIN_CPU is None else f"all processes of a run pinned to CPU {PIN_CPU}"
    tmp_fs = fs_type(tempfile.gettempdir())
    shm = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)

    rows = build_rows(tmp_fs, shm)
    mem_idle = Row("rss_idle", "RSS of an idle process (at main)", "KiB", False,
                   ("kernel", "cwrap", "ours"),
                   Target("kernel", "delta", 2048.0, "<= +2048 KiB over no preload"))
    mem_one = Row("rss_one", "RSS after its first socket()", "KiB", False,
                  ("kernel", "cwrap", "ours"),
                  Target("kernel", "delta", 2048.0, "<= +2048 KiB over no preload"))
    mem_per = Row("rss_per_socket", f"RSS growth per socket ({args.rss_sockets} sockets)",
                  "bytes", False, CONFIGS,
                  Target("unix", "delta", 256.0, "<= 256 B over unix"))
    only = {k for k in args.only.split(",") if k}
    if only:
        rows = [r for r in rows if r.key in only]

    t0 = time.monotonic()
    load0 = os.getloadavg()
    print(f"bench: ours {ours}\nbench: cwrap {cw}\nbench: {args.reps} reps x "
          f"{args.duration:g} s per run, temp dir {tempfile.gettempdir()} ({tmp_fs})",
          file=sys.stderr, flush=True)
    runner = Runner(args, libs)
    runner.measure(rows)
    if not only or only & {"rss_idle", "rss_one", "rss_per_socket"}:
        runner.memory(mem_idle, mem_one, mem_per)
        rows += [mem_idle, mem_one, mem_per]
    bench_s = time.monotonic() - t0
    load1 = os.getloadavg()
    scale: dict[str, Any] = {"error": "skipped (--no-scale)"} if args.no_scale \
        else run_scale(args, ours)

    evals = {r.key: evaluate(r) for r in rows}
    lines = table(rows, evals)
    cmd = "make bench"
    header = [
        f"Medians of {args.reps} runs of {args.duration:g} s each; {os.cpu_count()} CPUs "
        f"({cpu_model()}), Linux {platform.release()}; {pinned} (cross-CPU wakeups of idle "
        "virtual CPUs would otherwise dominate the latency rows). Ratios are ours divided by "
        "the other column in the row's unit; `better` says which direction wins. Wrapped "
        "runs: server on 127.0.0.10, client on interface 11, both sides preloaded. "
        "One-process workloads "
        "(socket+close, pipe, process start) are timed in CPU time (of the process and its "
        "children), the others in wall-clock time; `ours/unix, CPU time` is the ratio of the "
        "same workloads measured in CPU time of client and server (ns of CPU per op, ops or "
        "MiB per CPU second), which load from other jobs disturbs less. Load average "
        f"{load0[0]:.2f} before, {load1[0]:.2f} after the measurements.",
        "",
    ]
    # The benchmark itself adds about 1 to the load: only the load before it counts.
    busy = load0[0] > 0.5 * (os.cpu_count() or 1)
    if busy:
        header += ["**Warning: the machine was busy with other work during this run; "
                   "the numbers are noisy. Run again on an idle machine.**", ""]
    out_lines = header + lines + [""] + scale_lines(scale)
    print()
    print("\n".join(out_lines))
    missed = [r for r in rows if evals[r.key].get("target_met") is False]
    errors = {f"{r.key}/{c}": e for r in rows for c, e in r.errors.items()
              if e != "library not found"}
    print()
    if missed:
        print("Targets missed: " + "; ".join(
            f"{r.title}: {evals[r.key]['target_value']} (target {r.target.text})"
            for r in missed if r.target))
    else:
        print("All targets met.")
    scale_bad = [n for n, t in scale.get("tests", {}).items() if t["status"] in ("failed", "error")]
    if errors:
        print("Errors: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    if scale_bad:
        print("Scale tests failed: " + ", ".join(scale_bad))
        for line in scale.get("output_tail", []):
            print("  " + line)
    print(f"(benchmark {bench_s:.0f} s, scale tests {scale.get('seconds', 0):.0f} s)")

    out_dir = Path(args.bin_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "table.md").write_text("\n".join(out_lines) + "\n")
    results = {
        "command": cmd,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release(),
                    "tempdir": tempfile.gettempdir(), "tempdir_fs": tmp_fs,
                    "loadavg_before": load0, "loadavg_after": load1, "busy": busy,
                    "pinned_cpu": PIN_CPU},
        "libraries": libs,
        "reps": args.reps,
        "duration_s": args.duration,
        "rows": {
            r.key: {
                "title": r.title, "unit": r.unit,
                "better": "higher" if r.higher_better else "lower",
                "samples": r.samples, "cpu_samples": r.cpu_samples, "errors": r.errors,
                "info": r.info,
                "target": None if r.target is None else {
                    "ref": r.target.ref, "kind": r.target.kind, "limit": r.target.limit,
                    "text": r.target.text},
                **evals[r.key],
            }
            for r in rows
        },
        "scale": scale,
        "targets_missed": [r.key for r in missed],
    }
    json_path = Path(args.json) if args.json else out_dir / "results.json"
    json_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"results: {json_path}")
    return 1 if errors or scale_bad else 0


if __name__ == "__main__":
    sys.exit(main())
