"""The orchestration behind scripts/bench-proxy (run that, not this): two labs on CPU 0, one
with the builtin proxy and one with HAProxy in front of recipe-api, loaded from CPU 1."""
import json
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from bench_protocols import LAB, cpu_seconds, wait_listening, wrk  # noqa: E402
import time  # noqa: E402

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = 3
FLOOR = 0.90  # builtin req/s ≥ 90% of HAProxy's

LAB_TOML = """
name = "bench-proxy-{engine}"
[proxy]
engine = "{engine}"
[services.recipe-api]
builtin = "recipe-api"
[proxy.frontends.recipes]
service = "recipe-api"
"""


def up(engine, work):
    d = os.path.join(work, engine)
    os.makedirs(d)
    toml = os.path.join(d, "lab.toml")
    with open(toml, "w") as f:
        f.write(LAB_TOML.format(engine=engine))
    subprocess.run(["taskset", "-c", "0", LAB, "-f", toml, "--no-color", "up", "--detach", "--ports", "ephemeral"],
                   check=True, stdout=subprocess.DEVNULL)
    status = json.loads(subprocess.run([LAB, "-f", toml, "status", "--json"], check=True,
                                       capture_output=True, text=True).stdout)
    inst = {i["service"]: i for i in status["instances"]}
    return toml, inst


def run_case(name, url, pids):
    wrk(url, 1)  # warm-up
    before = sum(cpu_seconds(p) for p in pids)
    t0 = time.time()
    total, p99, errors = wrk(url, SECS)
    wall = time.time() - t0
    cpu = sum(cpu_seconds(p) for p in pids) - before
    return {"case": name, "rps": total / wall, "p99_ms": p99, "cpu_us_per_request": cpu / total * 1e6, "errors": errors}


def main():
    work = tempfile.mkdtemp(prefix="bench-proxy-")
    labs = {}
    try:
        for engine in ("builtin", "haproxy"):
            labs[engine] = up(engine, work)
        direct = labs["builtin"][1]["recipe-api"]
        cases = [
            ("direct", f"http://{direct['address']}/recipes/42", []),
            ("builtin proxy", f"http://{labs['builtin'][1]['proxy']['address']}/recipes/42", [labs["builtin"][1]["proxy"]["pid"]]),
            ("haproxy", f"http://{labs['haproxy'][1]['proxy']['address']}/recipes/42", [labs["haproxy"][1]["proxy"]["pid"]]),
        ]
        for _, url, _ in cases:
            wait_listening(url.split("/")[2])
        print(f"bench-proxy: {SECS}s per case, {ROUNDS} rounds (median), 64 connections; recipe-api and the proxy "
              f"(one thread each) on CPU 0, wrk on CPU 1", flush=True)
        results = {name: [] for name, _, _ in cases}
        for r in range(ROUNDS):
            for name, url, pids in cases:
                row = run_case(name, url, pids)
                results[name].append(row)
                cpu = f"   proxy {row['cpu_us_per_request']:5.2f} µs CPU/req" if pids else ""
                print(f"  round {r + 1}  {name:<14} {row['rps']:>9,.0f} req/s   p99 {row['p99_ms']:7.3f} ms{cpu}"
                      + (f"   {row['errors']} errors" if row["errors"] else ""), flush=True)
    finally:
        for toml, _ in labs.values():
            subprocess.run([LAB, "-f", toml, "down"], stdout=subprocess.DEVNULL)

    med = {name: {k: statistics.median(r[k] for r in rows) for k in ("rps", "p99_ms", "cpu_us_per_request")}
           for name, rows in results.items()}
    errors = sum(r["errors"] for rows in results.values() for r in rows)
    print("\n  median of rounds:")
    for name in results:
        m = med[name]
        print(f"  {name:<14} {m['rps']:>9,.0f} req/s   p99 {m['p99_ms']:7.3f} ms   "
              f"{m['rps'] / med['direct']['rps']:.2f}× direct")
    ratio = med["builtin proxy"]["rps"] / med["haproxy"]["rps"]
    cpu_ratio = med["builtin proxy"]["cpu_us_per_request"] / med["haproxy"]["cpu_us_per_request"]
    verdicts = [
        (f"builtin / haproxy throughput = {ratio:.2f}× (floor ≥ {FLOOR:.2f}×)", ratio >= FLOOR),
        (f"(builtin / haproxy proxy CPU per request = {cpu_ratio:.2f}×)", True),
        (f"errors: {errors}", errors == 0),
    ]
    print()
    for text, ok in verdicts:
        print(f"  {'ok   ' if ok else 'BELOW'} {text}")
    os.makedirs("target", exist_ok=True)
    with open("target/bench-proxy.json", "w") as f:
        json.dump({"seconds": SECS, "rounds": results, "median": med,
                   "verdicts": [{"what": t, "ok": ok} for t, ok in verdicts]}, f, indent=2)
    print("\n  (also in target/bench-proxy.json)")
    sys.exit(0 if all(ok for _, ok in verdicts) else 1)


if __name__ == "__main__":
    main()
