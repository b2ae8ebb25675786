"""scripts/bench-failover's body: see that script for what it measures."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

SECS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
LAB = os.path.abspath("target/release/lab")
STOP_AT, STOP_FOR = 5, 5

TOML = """
[proxy]
engine = "{engine}"

[services.recipe-api]
builtin = "recipe-api"

[services.web-api]
builtin = "web-api"
replicas = 2
env = {{ TARGET = "recipe-api" }}

[proxy.frontends.web]
service = "web-api"
stats_uri = "/admin?stats"
check = {{ interval = "1s", rise = 2, fall = 3 }}
"""


def lab(d, *args, **kw):
    return subprocess.run([LAB, *args], cwd=d, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, **kw)


def run(engine):
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as d:
        open(os.path.join(d, "lab.toml"), "w").write(TOML.format(engine=engine))
        up = lab(d, "up", "--detach", "--ports", "ephemeral")
        if up.returncode != 0:
            sys.exit(f"lab up failed ({engine}):\n{up.stdout}{up.stderr}")
        try:
            for _ in range(200):
                st = json.loads(lab(d, "status", "--json").stdout)
                if all(i["health"] == "healthy" for i in st["instances"]):
                    break
                time.sleep(0.05)  # readiness poll, bounded
            front = next(i["address"] for i in st["instances"] if i["service"] == "proxy")
            victim = next(i["pid"] for i in st["instances"] if i["service"] == "web-api" and i["instance"] == 1)
            load = subprocess.Popen([LAB, "load", f"http://{front}/", "-c", "20", "-d", f"{SECS}s", "--json", "--no-record"],
                                    cwd=d, stdout=subprocess.PIPE, text=True)
            time.sleep(STOP_AT)  # the experiment's timeline
            os.kill(victim, signal.SIGSTOP)
            time.sleep(STOP_FOR)
            os.kill(victim, signal.SIGCONT)
            out, _ = load.communicate()
            r = json.loads(out)
            return r
        finally:
            lab(d, "down", "--grace", "2s")


def main():
    rows = {"builtin": [], "haproxy": []}
    for _ in range(2):
        for engine in rows:
            rows[engine].append(run(engine))
    ok = True
    print(f"one of two web-api SIGSTOPped for {STOP_FOR} s from second {STOP_AT} of {SECS} s, lab load -c 20")
    print(f"{'engine':8} {'req/s':>8} {'lowest s':>9} {'lowest/avg':>10} {'failed':>7}")
    for engine, rs in rows.items():
        for r in rs:
            failed = r["errors"] + r["timeouts"] + r["non2xx"]
            avg, low = r["requests"]["average"], r["requests"]["min"]
            share = low / avg if avg else 0
            print(f"{engine:8} {avg:8.0f} {low:9.0f} {share:10.2f} {failed:7}")
            if engine == "builtin" and (failed or share < 0.5):
                ok = False
    print("floor (builtin: lowest second >= 50% of the average, 0 failed):", "met" if ok else "NOT MET")
    sys.exit(0 if ok else 1)


main()
