"""The orchestration behind scripts/bench-load (run that, not this)."""
import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from bench_protocols import HELLO, LAB, free_port, wait_listening  # noqa: E402

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
RPS_FLOOR, CPU_CEILING = 0.95, 1.2
ROUNDS = 3  # medians of interleaved rounds: single runs swing ±15% on this shared machine


def measure(cmd, parse):
    """Run `cmd`; return (parsed output, cpu seconds of the process, peak RSS in MiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"bench-load: {cmd[3]} exited {p.returncode}")
    return parse(out), ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024


def wrk(url, conns):
    def parse(out):
        return int(re.search(r"(\d+) requests in", out).group(1)), float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return measure(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{SECS}s", url], parse)


def oha(url, conns):
    """oha (crates.io) when it is on PATH: JSON output, its status counts summed for the total."""
    def parse(out):
        v = json.loads(out)
        total = sum(v["statusCodeDistribution"].values()) + sum(v.get("errorDistribution", {}).values())
        return total, v["summary"]["requestsPerSec"]
    fmt = ["--output-format", "json"] if "--output-format" in OHA_HELP else ["-j"]
    return measure(["taskset", "-c", "1", "oha", "--no-tui", *fmt, "-c", str(conns), "-z", f"{SECS}s", url], parse)


def oha_help():
    try:
        return subprocess.run(["oha", "--help"], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return None


OHA_HELP = oha_help()


def lab_load(url, conns, secs=SECS):
    def parse(out):
        v = json.loads(out)
        return int(v["requests"]["total"]), v["requests"]["total"] / v["duration"]
    return measure(["taskset", "-c", "1", LAB, "load", url, "-c", str(conns), "-d", f"{secs}s", "-w", "1", "--json"], parse)


def main():
    port = free_port()
    hello = subprocess.Popen(["taskset", "-c", "0", HELLO], env={**os.environ, "PORT": str(port)}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    rows, verdicts = [], []
    try:
        wait_listening(f"127.0.0.1:{port}")
        print(f"bench-load: {SECS}s per run, target {url} (hello, one thread, CPU 0), load tools on CPU 1 with one thread", flush=True)
        if not OHA_HELP:
            print("  oha: not on PATH, left out (scripts/install-deps --oha builds it from crates.io, ~10 min on 2 cores)", flush=True)
        for conns in (10, 100):
            tools = [("wrk", wrk), ("lab load", lab_load)] + ([("oha", oha)] if OHA_HELP else [])
            runs = {name: [] for name, _ in tools}
            for rnd in range(ROUNDS):  # interleaved, so drift on the machine hits all alike
                for name, fn in tools:
                    if rnd == 0:
                        fn(url, conns)  # warm the target
                    (total, rps), cpu, rss = fn(url, conns)
                    runs[name].append({"requests": total, "rps": rps, "cpu_s_per_100k": cpu / total * 1e5, "peak_rss_mib": rss})
                    print(f"  round {rnd + 1}  c={conns:<4} {name:<9} {rps:>10,.0f} req/s   "
                          f"{cpu / total * 1e5:.3f} CPU s/100k req   peak RSS {rss:.1f} MiB", flush=True)
            res = {}
            for name, rs in runs.items():
                res[name] = {"tool": name, "connections": conns, "rounds": rs,
                             **{k: statistics.median(r[k] for r in rs) for k in ("rps", "cpu_s_per_100k", "peak_rss_mib")}}
            rows += res.values()
            ratio = res["lab load"]["rps"] / res["wrk"]["rps"]
            cpu_ratio = res["lab load"]["cpu_s_per_100k"] / res["wrk"]["cpu_s_per_100k"]
            print(f"  median c={conns}: " + ", ".join(f"{n} {r['rps']:,.0f} req/s ({r['cpu_s_per_100k']:.3f} CPU s/100k)" for n, r in res.items()), flush=True)
            if "oha" in res:
                verdicts.append((f"c={conns}: lab load / oha req/s = {res['lab load']['rps'] / res['oha']['rps']:.2f}× (no floor; for reference)", True))
            verdicts.append((f"c={conns}: lab load / wrk req/s = {ratio:.2f}× (floor ≥ {RPS_FLOOR})", ratio >= RPS_FLOOR))
            verdicts.append((f"c={conns}: lab load / wrk CPU per request = {cpu_ratio:.2f}× (ceiling ≤ {CPU_CEILING})", cpu_ratio <= CPU_CEILING))
        if os.environ.get("BENCH_LONG") == "1":
            for secs in (10, 60):
                (total, rps), cpu, rss = lab_load(url, 100, secs)
                print(f"  lab load {secs:>2} s at c=100: {total:,} requests, peak RSS {rss:.1f} MiB", flush=True)
                rows.append({"tool": "lab load", "seconds": secs, "requests": total, "peak_rss_mib": rss})
    finally:
        hello.terminate()
        hello.wait()
    print()
    for text, ok in verdicts:
        print(f"  {'ok   ' if ok else 'BELOW'} {text}")
    os.makedirs("target", exist_ok=True)
    with open("target/bench-load.json", "w") as f:
        json.dump({"seconds": SECS, "rows": rows, "verdicts": [{"what": t, "ok": ok} for t, ok in verdicts]}, f, indent=2)
    print("\n  (also in target/bench-load.json)")
    sys.exit(0 if all(ok for _, ok in verdicts) else 1)


if __name__ == "__main__":
    main()
