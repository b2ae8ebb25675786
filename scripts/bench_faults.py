"""The orchestration behind scripts/bench-faults (run that, not this): what the fault edges cost
the default-shaped chain when no fault is in effect, and whether `lab fault clear` gives the
chain its speed back. Three cases a round, interleaved, the lab on CPU 0 and wrk on CPU 1:
  chain          web-api → recipe-api, no [faults]
  edges          the same with [faults] edges = true (web-api's TARGET is recipe-api's edge)
  edges-cleared  the edges lab again, after `lab fault latency recipe-api 50ms` and `lab fault clear`
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import bench_protocols  # its wrk() and cpu_seconds(); it runs nothing when imported
from bench_protocols import cpu_seconds, free_ports
from bench_telemetry import CHAIN  # the same web-api → recipe-api chain

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
LAB = f"{os.getcwd()}/target/release/lab"
CONNS = 50
EDGE_GOAL = 0.95  # issue 18's goal: an edge with no fault costs < 5% of the chain's req/s
CLEAR_FLOOR = 0.95  # issue 18's bar: after `lab fault clear`, the chain as fast as before

EDGES = """
[faults]
edges = true
"""


class Lab:
    def __init__(self, name, edges, workdir):
        recipe, web = free_ports(2)
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "lab.toml"), "w") as f:
            f.write(CHAIN.format(name=name, recipe=recipe, web=web) + (EDGES if edges else ""))
        self.toml = os.path.join(self.dir, "lab.toml")
        self.url = f"http://127.0.0.1:{web}/"

    def lab(self, *args):
        return subprocess.run([LAB, "-f", self.toml, "--no-color", *args], check=True,
                              capture_output=True, text=True).stdout

    def up(self):
        # The supervisor and every process it starts inherit CPU 0.
        subprocess.run(["taskset", "-c", "0", LAB, "-f", self.toml, "--no-color", "up", "--detach",
                        "--ports", "auto"], check=True, stdout=subprocess.DEVNULL)
        status = json.loads(self.lab("status", "--json"))
        self.pids = {i["service"]: i["pid"] for i in status["instances"]}

    def down(self):
        subprocess.run([LAB, "-f", self.toml, "down"], stdout=subprocess.DEVNULL)


def measure(lab):
    bench_protocols.wrk(lab.url, 1, conns=CONNS)  # warm-up
    before = {s: cpu_seconds(p) for s, p in lab.pids.items()}
    t0 = time.time()
    total, p99, errors = bench_protocols.wrk(lab.url, SECS, conns=CONNS)
    wall = time.time() - t0
    cpu = {s: (cpu_seconds(p) - before[s]) / max(total, 1) * 1e6 for s, p in lab.pids.items()}
    return {"requests": total, "rps": total / wall, "p99_ms": p99, "errors": errors,
            "cpu_us_per_request": cpu}


def main():
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as work:
        plain, edged = Lab("chain", False, work), Lab("edges", True, work)
        print(f"bench-faults: web-api → recipe-api, {SECS}s per case, {ROUNDS} rounds interleaved, "
              f"the lab on CPU 0, wrk -t1 -c{CONNS} on CPU 1", flush=True)
        rows = {"chain": [], "edges": [], "edges-cleared": []}
        for r in range(ROUNDS):
            plain.up()
            try:
                rows["chain"].append(measure(plain))
            finally:
                plain.down()
            edged.up()
            try:
                rows["edges"].append(measure(edged))
                edged.lab("fault", "latency", "recipe-api", "50ms")
                bench_protocols.wrk(edged.url, 1, conns=CONNS)  # traffic through the fault
                edged.lab("fault", "clear")
                rows["edges-cleared"].append(measure(edged))
            finally:
                edged.down()
            for n in rows:
                row = rows[n][-1]
                cpu = "  ".join(f"{s} {v:.1f}" for s, v in sorted(row["cpu_us_per_request"].items()))
                print(f"  round {r + 1} {n:<14} {row['rps']:>9,.0f} req/s  p99 {row['p99_ms']:6.2f} ms"
                      f"  CPU µs/req: {cpu}" + (f"  {row['errors']} errors" if row["errors"] else ""),
                      flush=True)
        med = {n: statistics.median(x["rps"] for x in v) for n, v in rows.items()}
        cpu_med = {n: {s: statistics.median(x["cpu_us_per_request"][s] for x in v)
                       for s in v[0]["cpu_us_per_request"]} for n, v in rows.items()}
        print()
        for n in med:
            print(f"  median {n:<14} {med[n]:>9,.0f} req/s  CPU µs/req "
                  + "  ".join(f"{s} {v:.1f}" for s, v in sorted(cpu_med[n].items())))
        edge_ratio = med["edges"] / med["chain"]
        clear_ratio = med["edges-cleared"] / med["edges"]
        edge_cpu = cpu_med["edges"].get("edges", float("nan"))
        print(f"\n  {'ok  ' if edge_ratio >= EDGE_GOAL else 'MISS'}  the chain with fault edges (no fault) at "
              f"{edge_ratio:.2f}× the chain without (goal ≥ {EDGE_GOAL}×); the edges process spends "
              f"{edge_cpu:.1f} µs of CPU a request")
        print(f"  {'ok  ' if clear_ratio >= CLEAR_FLOOR else 'FAIL'}  after `lab fault clear` at {clear_ratio:.2f}× "
              f"the same lab before the fault (floor {CLEAR_FLOOR}×)")
        with open("target/bench-faults.json", "w") as f:
            json.dump({"rows": rows, "median_rps": med, "edge_ratio": edge_ratio,
                       "clear_ratio": clear_ratio}, f, indent=1)
        print("  (also in target/bench-faults.json)")
        # The edges' cost is a goal, reported; the floor is that a cleared fault leaves nothing.
        sys.exit(0 if clear_ratio >= CLEAR_FLOOR else 1)


if __name__ == "__main__":
    main()
