"""The orchestration behind scripts/bench-telemetry (run that, not this): two labs of the same
chain, one without [hub] and one with it, loaded in turn from CPU 1 while the lab runs on CPU 0."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import bench_protocols  # its wrk() and cpu_seconds(); it runs nothing when imported
from bench_protocols import cpu_seconds, free_ports

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
LAB = f"{os.getcwd()}/target/release/lab"
CONNS = 50
FLOOR = 0.6  # issue 17: the chain with [hub] at least 0.6× the chain without it
# The services' sending side is measured at one fixed rate in both labs (well below what either
# reaches here), so a request costs the same wake-ups in each and the difference is telemetry.
RATE = float(os.environ.get("BENCH_TELEMETRY_RATE", "2000"))

CHAIN = """
name = "{name}"
[services.recipe-api]
builtin = "recipe-api"
port = {recipe}
[services.web-api]
builtin = "web-api"
port = {web}
env = {{ TARGET = "recipe-api" }}
"""
HUB = """
[hub]
logs_port = {logs}
statsd_port = {statsd}
zipkin_port = {zipkin}
http_port = {http}
carbon_port = {carbon}
otlp_http_port = 0
otlp_grpc_port = 0
flush_interval = "1s"
"""


def wrk(url, secs):
    return bench_protocols.wrk(url, secs, conns=CONNS)


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class Lab:
    def __init__(self, name, hub, workdir, hub_apart=False):
        # hub_apart: the hub moved to CPU 1 once up, so the services' own sending cost is
        # measured without the hub's ingest competing for their core.
        self.hub_apart = hub_apart
        recipe, web, *hubports = free_ports(7)
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        text = CHAIN.format(name=name, recipe=recipe, web=web)
        self.http = None
        if hub:
            logs, statsd, zipkin, http, carbon = hubports
            text += HUB.format(logs=logs, statsd=statsd, zipkin=zipkin, http=http, carbon=carbon)
            self.http = f"127.0.0.1:{http}"
        self.toml = os.path.join(self.dir, "lab.toml")
        with open(self.toml, "w") as f:
            f.write(text)
        self.name = name
        self.url = f"http://127.0.0.1:{web}/"

    def lab(self, *args, **kw):
        return subprocess.run([LAB, "-f", self.toml, "--no-color", *args], check=True, **kw)

    def up(self):
        # The supervisor and every process it starts inherit CPU 0.
        subprocess.run(["taskset", "-c", "0", LAB, "-f", self.toml, "--no-color", "up", "--detach"],
                       check=True, stdout=subprocess.DEVNULL)
        status = json.loads(self.lab("status", "--json", capture_output=True, text=True).stdout)
        self.pids = {i["service"]: i["pid"] for i in status["instances"]}
        if self.hub_apart:
            subprocess.run(["taskset", "-a", "-p", "-c", "1", str(self.pids["hub"])], check=True,
                           stdout=subprocess.DEVNULL)

    def down(self):
        subprocess.run([LAB, "-f", self.toml, "down"], stdout=subprocess.DEVNULL)

    def hub_status(self):
        return get_json(f"http://{self.http}/api/status") if self.http else None


def stored(status):
    """(log documents, spans, StatsD datagrams received, every dropped counter) from /api/status."""
    c = status.get("counters", {})
    st = status.get("stored") or {}
    dropped = {k: v for k, v in c.items() if k.startswith("hub.dropped.")}
    return st.get("logs", 0), st.get("spans", 0), c.get("hub.received.statsd_datagrams", 0), dropped


def measure(lab):
    wrk(lab.url, 1)  # warm-up
    before = {s: cpu_seconds(p) for s, p in lab.pids.items()}
    hub0 = lab.hub_status()
    t0 = time.time()
    total, p99, errors = wrk(lab.url, SECS)
    wall = time.time() - t0
    time.sleep(1.5)  # the hub's last batches and its StatsD flush land
    cpu = {s: (cpu_seconds(p) - before[s]) / max(total, 1) * 1e6 for s, p in lab.pids.items()}
    row = {"lab": lab.name, "requests": total, "rps": total / wall, "p99_ms": p99, "errors": errors,
           "cpu_us_per_request": cpu}
    if hub0 is not None:
        hub1 = lab.hub_status()
        l0, s0, d0, _ = stored(hub0)
        l1, s1, d1, dropped = stored(hub1)
        row["per_request"] = {"log_documents": (l1 - l0) / max(total, 1), "spans": (s1 - s0) / max(total, 1),
                              "statsd_datagrams": (d1 - d0) / max(total, 1)}
        row["dropped"] = dropped
    if lab.name in ("chain-nohub", "hub-on-cpu1"):
        row["fixed_rate_cpu_us"] = fixed_rate(lab)
    return row


def fixed_rate(lab):
    """CPU µs per request of the two services while `lab load` holds RATE requests/s from CPU 1."""
    before = {s: cpu_seconds(lab.pids[s]) for s in ("web-api", "recipe-api")}
    out = subprocess.run(["taskset", "-c", "1", LAB, "load", lab.url, "-R", str(RATE), "-c", "50",
                          "-d", f"{SECS}s", "-w", "1", "--json", "--no-record"],
                         check=True, capture_output=True, text=True).stdout
    total = json.loads(out)["requests"]["total"]
    return {s: (cpu_seconds(lab.pids[s]) - before[s]) / max(total, 1) * 1e6 for s in before}


def main():
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as work:
        labs = [Lab("chain-nohub", False, work), Lab("chain-hub", True, work),
                Lab("hub-on-cpu1", True, work, hub_apart=True)]
        print(f"bench-telemetry: web-api → recipe-api, {SECS}s per case, {ROUNDS} rounds interleaved, "
              f"the lab on CPU 0, wrk -t1 -c{CONNS} on CPU 1", flush=True)
        rows = {l.name: [] for l in labs}
        for r in range(ROUNDS):
            for lab in labs:
                lab.up()
                try:
                    row = measure(lab)
                finally:
                    lab.down()
                rows[lab.name].append(row)
                cpu = "  ".join(f"{s} {v:.1f}" for s, v in sorted(row["cpu_us_per_request"].items()))
                extra = ""
                if "per_request" in row:
                    pr = row["per_request"]
                    extra = (f"  stored/req: {pr['log_documents']:.2f} logs, {pr['spans']:.2f} spans, "
                             f"{pr['statsd_datagrams']:.2f} StatsD datagrams; dropped "
                             f"{sum(row['dropped'].values())}")
                print(f"  round {r + 1} {lab.name:<12} {row['rps']:>9,.0f} req/s  p99 {row['p99_ms']:6.2f} ms"
                      f"  CPU µs/req: {cpu}{extra}" + (f"  {row['errors']} errors" if row["errors"] else ""),
                      flush=True)
        med = {n: statistics.median(x["rps"] for x in v) for n, v in rows.items()}
        p99 = {n: statistics.median(x["p99_ms"] for x in v) for n, v in rows.items()}
        ratio = med["chain-hub"] / med["chain-nohub"]
        cpu_med = {n: {s: statistics.median(x["cpu_us_per_request"][s] for x in v)
                       for s in v[0]["cpu_us_per_request"]} for n, v in rows.items()}
        print()
        for n in med:
            print(f"  median {n:<12} {med[n]:>9,.0f} req/s  p99 {p99[n]:6.2f} ms  CPU µs/req "
                  + "  ".join(f"{s} {v:.1f}" for s, v in sorted(cpu_med[n].items())))
        fixed = {n: {s: statistics.median(x["fixed_rate_cpu_us"][s] for x in rows[n])
                     for s in ("web-api", "recipe-api")} for n in ("chain-nohub", "hub-on-cpu1")}
        send = {s: fixed["hub-on-cpu1"][s] - fixed["chain-nohub"][s] for s in ("web-api", "recipe-api")}
        contended = {s: cpu_med["chain-hub"][s] - cpu_med["chain-nohub"][s] for s in ("web-api", "recipe-api")}
        print(f"  the services' own telemetry (sending side), CPU µs per request at a fixed {RATE:,.0f} req/s, "
              f"with the hub on CPU 1 minus without a hub: "
              + ", ".join(f"{s} +{v:.1f} ({fixed['chain-nohub'][s]:.1f} → {fixed['hub-on-cpu1'][s]:.1f})"
                          for s, v in send.items()))
        print(f"  (at full load with the hub on their core, they spend "
              + ", ".join(f"{s} +{v:.1f}" for s, v in contended.items())
              + ": fewer requests per wake-up at the lower rate)")
        print(f"  the hub's ingest, CPU µs per request: {cpu_med['chain-hub'].get('hub', float('nan')):.1f}")
        dropped = sum(sum(x.get("dropped", {}).values()) for x in rows["chain-hub"])
        ok = ratio >= FLOOR and dropped == 0
        print(f"\n  {'ok  ' if ratio >= FLOOR else 'FAIL'}  the chain with [hub] at {ratio:.2f}× the chain without "
              f"(floor {FLOOR}×)")
        print(f"  {'ok  ' if dropped == 0 else 'FAIL'}  nothing dropped by the hub ({dropped})")
        with open("target/bench-telemetry.json", "w") as f:
            json.dump({"rows": rows, "median_rps": med, "ratio": ratio, "sending_cpu_us": send,
                       "sending_cpu_us_contended": contended}, f, indent=1)
        print("  (also in target/bench-telemetry.json)")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
