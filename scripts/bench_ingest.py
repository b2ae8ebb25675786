"""The orchestration behind scripts/bench-ingest (run that, not this): the hub alone on CPU 0,
a sender on CPU 1 raising the rate of one kind of record until the hub loses some or its core
is full; the knee is the last lossless rate, and the hub's CPU per record is measured there."""
import gzip
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from bench_protocols import cpu_seconds, free_ports

SECS = float(sys.argv[1]) if len(sys.argv) > 1 else 3
KINDS = sys.argv[2].split(",") if len(sys.argv) > 2 else ["logs", "spans", "statsd", "otlp-spans"]
LAB = f"{os.getcwd()}/target/release/lab"
# issue 17: CPU per record at the knee, and the knee itself.
FLOORS = {"logs": (3.0, 150_000), "spans": (3.0, 150_000), "statsd": (1.0, 500_000), "otlp-spans": (None, None)}
START = {"logs": 40_000, "spans": 40_000, "statsd": 150_000, "otlp-spans": 20_000}
STEP = 1.25
TICK = 0.005  # the sender sends a batch every 5 ms


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def hexid(n):
    return "".join(random.choice("0123456789abcdef") for _ in range(n))


# The records of the default lab, as the built-in services send them.
def log_doc(i):
    return json.dumps({"@timestamp": iso(time.time()), "@version": 1, "app": "web-api", "environment": "development",
                       "severity": "info", "type": "request-incoming",
                       "fields": {"path": f"/recipes/{i % 1000}", "method": "GET", "ip": "127.0.0.1", "ua": "wrk"},
                       "host": "bench"}, separators=(",", ":"))


def span(i):
    now = int(time.time() * 1e6)
    return {"traceId": hexid(16), "id": hexid(16), "name": "get_recipe", "kind": "SERVER", "timestamp": now,
            "duration": 800 + i % 500, "localEndpoint": {"serviceName": "recipe-api", "ipv4": "127.0.0.1", "port": 4000},
            "tags": {"http.method": "GET", "http.path": "/recipes/42", "http.status_code": "200"}}


def otlp_spans(n):
    now = time.time_ns()
    spans = [{"traceId": hexid(32), "spanId": hexid(16), "name": "GET /recipes/42", "kind": 2,
              "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 800_000),
              "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}},
                             {"key": "http.status_code", "value": {"intValue": "200"}}]} for _ in range(n)]
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "otel-api"}}]},
                               "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}]}]}


class Sender:
    """Batches of one kind, prepared before the clock starts: (bytes, records) each."""

    def __init__(self, kind, addrs):
        self.kind = kind
        self.addrs = addrs
        if kind == "logs":
            # As the services pack them: a JSON array per datagram, under 60,000 bytes.
            docs = [log_doc(i) for i in range(4000)]
            self.batches, group = [], []
            for d in docs:
                if group and sum(len(g) + 1 for g in group) + len(d) > 59_000:
                    self.batches.append((("[" + ",".join(group) + "]").encode(), len(group)))
                    group = []
                group.append(d)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        elif kind == "statsd":
            # statsd-client's 1,200-byte packets of newline-separated lines.
            lines = []
            for i in range(20_000):
                lines.append(random.choice([f"web-api.request_time:{i % 97}.5|ms", "web-api.requests:1|c",
                                            f"web-api.status.{200 + i % 3}:1|c", f"web-api.server.heap:{i}|g"]))
            self.batches, group = [], []
            for ln in lines:
                if group and sum(len(g) + 1 for g in group) + len(ln) > 1200:
                    self.batches.append(("\n".join(group).encode(), len(group)))
                    group = []
                group.append(ln)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        elif kind == "spans":
            # The services' reporter: 100 spans a POST.
            self.batches = [(json.dumps([span(i) for i in range(100)]).encode(), 100) for _ in range(40)]
            self.http = ("127.0.0.1", addrs["zipkin"], "/api/v2/spans", "application/json")
        elif kind == "otlp-spans":
            self.batches = [(json.dumps(otlp_spans(100)).encode(), 100) for _ in range(40)]
            self.http = ("127.0.0.1", addrs["otlp_http"], "/v1/traces", "application/json")
        self.conn = None

    def send(self, bodies):
        """Send these batches; HTTP ones pipelined on one kept-alive connection (Python's
        http.client, a request and its answer at a time, topped out near 40k spans/s: below the
        hub's knee), each answer then read and checked."""
        if self.kind in ("logs", "statsd"):
            for body in bodies:
                self.sock.sendto(body, ("127.0.0.1", self.addrs[self.kind]))
            return
        host, port, path, ctype = self.http
        if self.conn is None:
            self.conn = socket.create_connection((host, port), timeout=10)
            self.pending = b""
        head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {ctype}\r\n"
        self.conn.sendall(b"".join(f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies))
        # Answers carry no body (202, or 200 with a small JSON one for OTLP: read by its length).
        want = len(bodies)
        while want:
            end = self.pending.find(b"\r\n\r\n")
            if end < 0:
                chunk = self.conn.recv(1 << 16)
                if not chunk:
                    raise RuntimeError(f"{path}: the hub closed the connection")
                self.pending += chunk
                continue
            headers = self.pending[:end].decode("latin-1")
            status = headers.split(" ", 2)[1]
            length = 0
            for line in headers.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            if len(self.pending) < end + 4 + length:
                self.pending += self.conn.recv(1 << 16)
                continue
            self.pending = self.pending[end + 4 + length:]
            if not status.startswith("2"):
                raise RuntimeError(f"{path} answered {status}")
            want -= 1

    def run(self, rate, secs):
        """Send `rate` records a second for `secs`; (records sent, batches sent, seconds it took)."""
        sent, i = 0, 0
        t0 = time.perf_counter()
        while True:
            now = time.perf_counter() - t0
            if now >= secs:
                break
            due = rate * now
            bodies = []
            while sent < due:
                body, n = self.batches[i % len(self.batches)]
                i += 1
                bodies.append(body)
                sent += n
            if bodies:
                self.send(bodies)
            time.sleep(TICK)
        return sent, i, time.perf_counter() - t0


def counts(http, kind):
    st = get_json(f"http://{http}/api/status")
    c, stored = st.get("counters", {}), st.get("stored") or {}
    dropped = sum(v for k, v in c.items() if k.startswith("hub.dropped."))
    got = {"logs": stored.get("logs", 0), "spans": stored.get("spans", 0),
           "otlp-spans": stored.get("spans", 0), "statsd": c.get("hub.received.statsd_datagrams", 0)}[kind]
    return got, dropped


def idle(pid, settle=0.3, most=10):
    """Wait until the hub's CPU time stops rising (its queues drained)."""
    deadline = time.time() + most
    last = cpu_seconds(pid)
    while time.time() < deadline:
        time.sleep(settle)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            return
        last = now


def main():
    random.seed(17)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as work:
        logs, statsd, zipkin, http, otlp_http = free_ports(5)
        toml = os.path.join(work, "lab.toml")
        with open(toml, "w") as f:
            f.write(f'name = "bench-ingest"\n[hub]\nlogs_port = {logs}\nstatsd_port = {statsd}\n'
                    f'zipkin_port = {zipkin}\nhttp_port = {http}\notlp_http_port = {otlp_http}\n'
                    f'otlp_grpc_port = 0\nflush_interval = "1s"\n')
        hub = subprocess.Popen(["taskset", "-c", "0", LAB, "-f", toml, "--no-color", "hub"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.sched_setaffinity(0, {1})
        perf = None
        addrs = {"logs": logs, "statsd": statsd, "zipkin": zipkin, "otlp_http": otlp_http}
        try:
            deadline = time.time() + 30
            while True:
                try:
                    counts(f"127.0.0.1:{http}", "logs")
                    break
                except OSError:
                    if time.time() > deadline or hub.poll() is not None:
                        sys.exit("bench-ingest: the hub did not answer within 30 s")
                    time.sleep(0.1)
            # BENCH_INGEST_PERF=FILE: record the hub with perf while it runs (to find its costs).
            if os.environ.get("BENCH_INGEST_PERF"):
                perf = subprocess.Popen(["perf", "record", "-g", "-F", "2000", "-p", str(hub.pid), "-o",
                                         os.environ["BENCH_INGEST_PERF"]], stderr=subprocess.DEVNULL)
            print(f"bench-ingest: the hub alone on CPU 0, the sender on CPU 1; each rate for {SECS:g} s, "
                  f"×{STEP} until a record is lost or the hub's core is full", flush=True)
            results, failed = {}, False
            for kind in KINDS:
                sender = Sender(kind, addrs)
                rate, knee = START[kind], None
                print(f"\n  {kind}:", flush=True)
                while True:
                    idle(hub.pid)
                    got0, drop0 = counts(f"127.0.0.1:{http}", kind)
                    cpu0, t0 = cpu_seconds(hub.pid), time.time()
                    sent, batches, took = sender.run(rate, SECS)
                    idle(hub.pid)
                    wall = time.time() - t0
                    cpu = cpu_seconds(hub.pid) - cpu0
                    got, drop = counts(f"127.0.0.1:{http}", kind)
                    stored = got - got0
                    # StatsD is counted in datagrams received (each of several lines).
                    expect = batches if kind == "statsd" else sent
                    lossless = drop == drop0 and stored >= expect
                    achieved = sent / took
                    busy = cpu / took
                    us = cpu / max(sent, 1) * 1e6
                    print(f"    {rate:>9,.0f}/s asked  {achieved:>9,.0f}/s sent  hub {us:5.2f} µs/record, "
                          f"{busy * 100:4.0f}% of its core  {'lossless' if lossless else f'LOST (stored {stored:,} of {expect:,}, dropped +{drop - drop0})'}",
                          flush=True)
                    if not lossless:
                        break
                    knee = {"rate": achieved, "us_per_record": us, "core": busy}
                    if achieved < rate * 0.9:
                        knee["sender_limited"] = True
                        print("    (the sender could go no faster)", flush=True)
                        break
                    if busy >= 0.95:
                        break
                    rate *= STEP
                results[kind] = knee
                us_floor, knee_floor = FLOORS[kind]
                if knee is None:
                    print(f"  FAIL  {kind}: lost records at the first rate", flush=True)
                    failed = True
                    continue
                line = f"knee ≥ {knee['rate']:,.0f}/s, {knee['us_per_record']:.2f} µs of hub CPU per record there"
                if us_floor is None:
                    print(f"  ----  {kind}: {line} (no floor)")
                    continue
                ok = knee["us_per_record"] <= us_floor and knee["rate"] >= knee_floor
                failed |= not ok
                print(f"  {'ok  ' if ok else 'FAIL'}  {kind}: {line} (floors ≤ {us_floor} µs, ≥ {knee_floor:,}/s)")
            with open("target/bench-ingest.json", "w") as f:
                json.dump(results, f, indent=1)
            print("\n  (also in target/bench-ingest.json)")
            sys.exit(1 if failed else 0)
        finally:
            if perf:
                perf.send_signal(2)
                perf.wait()
            hub.terminate()
            hub.wait(timeout=20)


if __name__ == "__main__":
    main()
