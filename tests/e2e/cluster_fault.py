"""The cluster's fault test: three NATS JetStream servers and three `cxm serve` nodes on a fresh
PostgreSQL database, ~200k events through the Segment batch API with unique messageIds (5 % of
batches sent twice, 1 % of ids reused across batches), and, mid-load, `kill -9` of the NATS
leader of the busiest stream and of one cxm node, each restarted a few seconds later.

It asserts what the cluster promises: every messageId answered 200 is stored exactly once and
nothing else is; partition epochs only grow and no two owners wrote one partition in one
epoch; the projections rebuilt from the log equal the
live ones; every tenant's audit chain verifies; ingest answers again within 15 s of each kill.
It prints throughput with one node and with three, and the failover times, as JSON.

Standard library only: usage `cluster_fault.py CXM_BIN DATABASE_ADMIN_URL [--events N]`.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

NATS = shutil.which("nats-server") or "/usr/sbin/nats-server"
PARTITIONS = 16
TENANTS = 6
BATCH = 100
WORKERS = 6
RESEND = 0.05
REUSE = 0.01
# ports of our own, away from the machine's NATS on 4222
NATS_PORTS = [14222, 14223, 14224]
ROUTE_PORTS = [16222, 16223, 16224]
MONITOR_PORTS = [18222, 18223, 18224]


def log(*a):
    print("cluster fault:", *a, file=sys.stderr, flush=True)


def http_json(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Cluster:
    def __init__(self, work, bin_, db_url):
        self.work, self.bin, self.db_url = work, bin_, db_url
        self.nats = [None, None, None]
        self.nodes = [None, None, None]
        self.ports = [free_port() for _ in range(3)]

    # nats
    def start_nats(self, i):
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in ROUTE_PORTS)
        args = [NATS, "-n", f"nats-{i}", "-a", "127.0.0.1", "-p", str(NATS_PORTS[i]),
                "-m", str(MONITOR_PORTS[i]), "-js", "-sd", f"{self.work}/nats-{i}",
                "--cluster_name", "cxm-fault", "--cluster", f"nats://127.0.0.1:{ROUTE_PORTS[i]}",
                "--routes", routes]
        out = open(f"{self.work}/nats-{i}.log", "ab")
        self.nats[i] = subprocess.Popen(args, stdout=out, stderr=out)

    def nats_urls(self):
        return ",".join(f"nats://127.0.0.1:{p}" for p in NATS_PORTS)

    def wait_nats(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if all(http_json(f"http://127.0.0.1:{p}/healthz")["status"] == "ok" for p in MONITOR_PORTS):
                    meta = http_json(f"http://127.0.0.1:{MONITOR_PORTS[0]}/jsz")
                    if meta.get("meta_cluster", {}).get("leader"):
                        return
            except Exception:
                pass
            time.sleep(0.2)
        raise SystemExit("the nats cluster did not form")

    def stream_leader(self, stream):
        for p in MONITOR_PORTS:
            try:
                j = http_json(f"http://127.0.0.1:{p}/jsz?streams=true")
            except Exception:
                continue
            for acc in j.get("account_details", []):
                for s in acc.get("stream_detail", []):
                    if s["name"] == stream and s.get("cluster", {}).get("leader"):
                        return int(s["cluster"]["leader"].split("-")[1])
        return None

    # cxm
    def cxm(self, *args, check=True):
        r = subprocess.run([self.bin, "--database-url", self.db_url, *args], capture_output=True, text=True,
                           env=self.env())
        if check and r.returncode != 0:
            raise SystemExit(f"cxm {' '.join(args)} failed: {r.stderr[-2000:]}")
        return r

    def env(self):
        e = dict(os.environ)
        e.pop("CXM_DATA_DIR", None)
        e["CXM_LOG"] = "info"
        e["CXM_DATA_DIR"] = f"{self.work}/data"
        # one sealing key for every node of the cluster
        e["CXM_MASTER_KEY"] = "ab" * 32
        return e

    def start_node(self, i):
        args = [self.bin, "--database-url", self.db_url, "serve", "--node-id", f"cxm-{i}",
                "--partitions", str(PARTITIONS), "--nats-url", self.nats_urls(),
                "--listen", f"127.0.0.1:{self.ports[i]}", "--rate-limit", "0"]
        out = open(f"{self.work}/cxm-{i}.log", "ab")
        self.nodes[i] = subprocess.Popen(args, stdout=out, stderr=out, env=self.env())

    def wait_node(self, i, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.nodes[i].poll() is not None:
                raise SystemExit(f"cxm-{i} exited: see {self.work}/cxm-{i}.log\n" + tail(f"{self.work}/cxm-{i}.log"))
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.ports[i]}/readyz", timeout=1)
                return
            except Exception:
                time.sleep(0.1)
        raise SystemExit(f"cxm-{i} did not become ready")

    def stop_all(self):
        for p in self.nodes + self.nats:
            if p and p.poll() is None:
                p.kill()
                p.wait()


def tail(path, n=3000):
    try:
        return open(path, errors="replace").read()[-n:]
    except OSError:
        return ""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def psql(db_url, sql):
    r = subprocess.run(["psql", db_url, "-XAtq", "-F", "\t", "-c", sql], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"psql failed: {r.stderr}")
    return [line.split("\t") for line in r.stdout.splitlines() if line]


def make_batches(tenants, n_events, rng, prefix):
    """Batches of BATCH events, each for one tenant; REUSE of the ids repeat an earlier id of the
    same tenant, so they are duplicates the cluster must store once."""
    batches = []
    seen = {t["tenant"]: [] for t in tenants}
    for b in range(n_events // BATCH):
        t = tenants[b % len(tenants)]
        msgs = []
        for j in range(BATCH):
            earlier = seen[t["tenant"]]
            if earlier and rng.random() < REUSE:
                mid = rng.choice(earlier)
            else:
                mid = f"{prefix}-{b}-{j}"
                earlier.append(mid)
            user = f"u{rng.randrange(3000)}"
            kind = rng.random()
            if kind < 0.15:
                msgs.append({"type": "identify", "userId": user, "messageId": mid,
                             "traits": {"email": f"{user}@{t['tenant'][-6:]}.example", "plan": rng.choice(["a", "b"])}})
            elif kind < 0.25:
                msgs.append({"type": "page", "anonymousId": f"anon-{user}", "userId": user if rng.random() < 0.5 else None,
                             "name": "Pricing", "messageId": mid})
            else:
                msgs.append({"type": "track", "userId": user, "event": rng.choice(["Order Completed", "Ticket Opened", "Signed In"]),
                             "properties": {"value": rng.randrange(100)}, "messageId": mid})
        body = json.dumps({"batch": msgs, "writeKey": t["write_key"]}).encode()
        batches.append((t["tenant"], [m["messageId"] for m in msgs], body))
    return batches


class Load:
    """Sends batches from worker threads, each batch to the next node as a load balancer would,
    retrying on a refused connection or a 5xx (as the SDKs do) until it is answered 200."""

    def __init__(self, cluster, nodes):
        self.cluster = cluster
        self.nodes = nodes
        self.lock = threading.Lock()
        self.answered = set()  # (tenant, messageId)
        self.ok_times = []  # (time answered, tenant)
        self.retries = 0
        self.statuses = {}
        self.rng = random.Random(7)

    def send(self, batches):
        q = list(reversed(batches))
        qlock = threading.Lock()

        def worker(w):
            conns = {}
            turn = w
            while True:
                with qlock:
                    if not q:
                        return
                    item = q.pop()
                tenant, ids, body = item
                sent_at = time.time()
                copies = 2 if self.rng.random() < RESEND else 1
                for _ in range(copies):
                    deadline = time.time() + 120
                    while True:
                        i = self.nodes[turn % len(self.nodes)]
                        turn += 1
                        status = None
                        try:
                            c = conns.get(i)
                            if c is None:
                                c = http.client.HTTPConnection("127.0.0.1", self.cluster.ports[i], timeout=30)
                                conns[i] = c
                            c.request("POST", "/v1/batch", body, {"Content-Type": "application/json"})
                            r = c.getresponse()
                            r.read()
                            status = r.status
                        except (OSError, http.client.HTTPException):
                            conns.pop(i, None)
                        with self.lock:
                            self.statuses[status] = self.statuses.get(status, 0) + 1
                        if status == 200:
                            with self.lock:
                                for m in ids:
                                    self.answered.add((tenant, m))
                                self.ok_times.append((sent_at, time.time(), tenant))
                            break
                        if status is not None and status < 500:
                            raise SystemExit(f"batch refused with {status}")
                        with self.lock:
                            self.retries += 1
                        if time.time() > deadline:
                            raise SystemExit("a batch was not accepted within 120 s")
                        time.sleep(0.2)

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(WORKERS)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.time() - started


def resumed_after(ok_times, at, tenants):
    """Seconds from `at` until every tenant had a batch sent after `at` answered (the slowest
    tenant), retries included."""
    worst = 0.0
    for t in tenants:
        after = [done for sent, done, tt in ok_times if tt == t and sent >= at]
        if not after:
            return None
        worst = max(worst, min(after) - at)
    return worst


def wait_applied(db_url, expected, timeout=240):
    deadline = time.time() + timeout
    last = -1
    while time.time() < deadline:
        n = int(psql(db_url, "SELECT count(*) FROM events")[0][0])
        if n >= expected:
            return n
        if n != last:
            last = n
        time.sleep(1)
    raise SystemExit(f"only {last} of {expected} events were applied in {timeout} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("admin_url")
    ap.add_argument("--events", type=int, default=200_000)
    a = ap.parse_args()
    bin_ = os.path.realpath(a.bin)
    work = tempfile.mkdtemp(prefix="cxm-fault-")
    dbname = f"cxm_fault_{os.getpid()}"
    base = a.admin_url.rsplit("/", 1)[0]
    db_url = f"{base}/{dbname}"
    subprocess.run(["psql", a.admin_url, "-Xqc", f"CREATE DATABASE {dbname}"], check=True)
    cluster = Cluster(work, bin_, db_url)
    ok = False
    try:
        report = run(cluster, a.events)
        print(json.dumps(report, indent=2))
        ok = True
    except BaseException:
        # what the partitions looked like when it failed, before the database goes
        for sql in ["SELECT partition, owner, epoch, applied_seq, expires_at > now() FROM cluster_leases ORDER BY 1",
                    "SELECT partition, epoch, owner, count(*), min(first_seq), max(last_seq) FROM cluster_applies GROUP BY 1, 2, 3 ORDER BY 1, 2"]:
            for row in psql(db_url, sql):
                log(" ".join(row))
        raise
    finally:
        cluster.stop_all()
        subprocess.run(["psql", a.admin_url, "-Xqc", f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)"])
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"logs kept in {work}")


def run(cluster, n_events):
    rng = random.Random(42)
    for i in range(3):
        cluster.start_nats(i)
    cluster.wait_nats()
    tenants = []
    for k in range(TENANTS):
        r = cluster.cxm("tenant", "create", f"fault-{k}", "--json")
        t = json.loads(r.stdout)
        tenants.append({"tenant": t["tenant_id"], "write_key": t["write_key"], "secret_key": t["secret_key"]})
    # one node first, then three, without faults: the throughput figures (answered, and
    # applied into PostgreSQL)
    cluster.start_node(0)
    cluster.wait_node(0)
    one_events = n_events // 5
    first = make_batches(tenants, one_events, rng, "one")
    load1 = Load(cluster, [0])
    started = time.time()
    secs1 = load1.send(first)
    applied1 = wait_applied(cluster.db_url, len(load1.answered))
    apply_secs1 = time.time() - started
    log(f"one node: {one_events} events answered in {secs1:.1f} s, applied in {apply_secs1:.1f} s")
    cluster.start_node(1)
    cluster.start_node(2)
    cluster.wait_node(1)
    cluster.wait_node(2)
    # the newcomers take their share of the partitions on their next rounds
    deadline = time.time() + 30
    while time.time() < deadline:
        owners = {r[0] for r in psql(cluster.db_url, "SELECT owner FROM cluster_leases WHERE expires_at > now()")}
        if len(owners) == 3:
            break
        time.sleep(0.5)
    clean_events = n_events * 3 // 10
    clean = make_batches(tenants, clean_events, rng, "clean")
    load2 = Load(cluster, [0, 1, 2])
    started = time.time()
    secs2 = load2.send(clean)
    wait_applied(cluster.db_url, applied1 + len(load2.answered))
    apply_secs2 = time.time() - started
    log(f"three nodes: {clean_events} events answered in {secs2:.1f} s, applied in {apply_secs2:.1f} s")
    # decisions answered on every node while the load runs: the audit chain must not fork
    decisions = {}

    def decide():
        for t in tenants:
            req("POST", cluster.ports[0], "/api/v1/agents", t["secret_key"], {"name": "fault-bot"})
        i = 0
        while not stop_decisions.is_set():
            t = tenants[i % len(tenants)]
            port = cluster.ports[i % 3]
            i += 1
            s = req("POST", port, "/api/v1/decisions", t["secret_key"],
                    {"agent": "fault-bot", "action": "refund", "customer": f"user_id:u{i % 50}", "context": {"amount": 10}})
            decisions[str(s)] = decisions.get(str(s), 0) + 1
            time.sleep(0.05)

    stop_decisions = threading.Event()
    dthread = threading.Thread(target=decide, daemon=True)
    dthread.start()

    rest = make_batches(tenants, n_events - one_events - clean_events, rng, "three")
    load3 = Load(cluster, [0, 1, 2])
    faults = {}
    busiest = busiest_stream(tenants)

    def inject():
        total = len(rest)
        while len(load3.ok_times) < total * 0.3:
            time.sleep(0.05)
        leader = cluster.stream_leader(busiest)
        if leader is None:
            leader = 0
        at = time.time()
        cluster.nats[leader].kill()
        cluster.nats[leader].wait()
        faults["nats_killed"] = {"server": f"nats-{leader}", "stream": busiest, "at": at}
        log(f"killed nats-{leader}, leader of {busiest}")
        time.sleep(4)
        cluster.start_nats(leader)
        while len(load3.ok_times) < total * 0.6:
            time.sleep(0.05)
        # the node whose death interrupts the most tenants: a node holding only empty
        # partitions would show nothing to apply again (leases land where they land)
        held = {}
        for r in psql(cluster.db_url, "SELECT partition, owner FROM cluster_leases WHERE expires_at > now()"):
            held.setdefault(r[1], []).append(int(r[0]))
        busy_parts = tenant_partitions(tenants)
        victim = max(range(len(cluster.nodes)),
                     key=lambda i: (len([p for p in held.get(f"cxm-{i}", []) if p in busy_parts]), i))
        owned = sorted(held.get(f"cxm-{victim}", []))
        seqs = dict((int(r[0]), int(r[1])) for r in psql(cluster.db_url, "SELECT partition, applied_seq FROM cluster_leases"))
        at = time.time()
        cluster.nodes[victim].send_signal(signal.SIGKILL)
        cluster.nodes[victim].wait()
        faults["cxm_killed"] = {"node": f"cxm-{victim}", "at": at, "partitions": owned}
        log(f"killed cxm-{victim} holding partitions {owned}")
        # the others take its partitions once its leases run out; time until they apply again
        busy = [p for p in owned if p in tenant_partitions(tenants)]
        applied_again = None
        deadline = time.time() + 60
        while busy and time.time() < deadline:
            now = dict((int(r[0]), (int(r[1]), r[2])) for r in psql(cluster.db_url, "SELECT partition, applied_seq, owner FROM cluster_leases"))
            if all(now[p][0] > seqs.get(p, 0) and now[p][1] != f"cxm-{victim}" for p in busy):
                applied_again = time.time() - at
                break
            time.sleep(0.25)
        faults["cxm_killed"]["applying_again_s"] = applied_again
        time.sleep(max(0.0, 5 - (time.time() - at)))
        cluster.start_node(victim)
        cluster.wait_node(victim)
        faults["cxm_killed"]["restarted_after_s"] = time.time() - at

    ithread = threading.Thread(target=inject, daemon=True)
    ithread.start()
    secs3 = load3.send(rest)
    ithread.join(timeout=120)
    stop_decisions.set()
    dthread.join(timeout=10)
    log(f"three nodes with faults: {len(rest) * BATCH} events in {secs3:.1f} s; statuses {load3.statuses}")

    answered = load1.answered | load2.answered | load3.answered
    sent = set()
    for tenant, ids, _ in first + clean + rest:
        for m in ids:
            sent.add((tenant, m))
    t0 = time.time()
    stored_n = wait_applied(cluster.db_url, len(answered))
    drain = time.time() - t0

    # every answered id stored exactly once, and nothing that was never sent
    dups = psql(cluster.db_url, "SELECT tenant_id, message_id, count(*) FROM events GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5")
    assert not dups, f"stored twice: {dups}"
    stored = set((r[0], r[1]) for r in psql(cluster.db_url, "SELECT tenant_id, message_id FROM events"))
    missing = answered - stored
    assert not missing, f"{len(missing)} answered events are not stored, e.g. {sorted(missing)[:3]}"
    phantom = stored - sent
    assert not phantom, f"stored but never sent: {sorted(phantom)[:3]}"
    assert stored_n == len(stored)

    # epochs only grow; one owner per (partition, epoch), the one it was granted to (what was
    # applied once is the stored-once check above: a redelivery may repeat positions)
    granted = dict(((int(r[0]), int(r[1])), r[2]) for r in psql(cluster.db_url, "SELECT partition, epoch, owner FROM cluster_lease_log"))
    applies = psql(cluster.db_url, "SELECT partition, epoch, owner, first_seq, last_seq FROM cluster_applies ORDER BY partition, id")
    last = {}
    owners = {}
    for p, e, o, f, l in applies:
        p, e, f, l = int(p), int(e), int(f), int(l)
        pe, pl = last.get(p, (0, 0))
        assert e >= pe, f"partition {p}: epoch went back from {pe} to {e}"
        assert granted.get((p, e)) == o, f"partition {p} epoch {e} written by {o}, granted to {granted.get((p, e))}"
        assert owners.setdefault((p, e), o) == o, f"partition {p} epoch {e} had two writers"
        last[p] = (e, max(pl, l))
    epochs = {}
    for (p, e), o in granted.items():
        epochs[p] = max(epochs.get(p, 0), e)

    check = cluster.cxm("rebuild", "--check")
    rebuilt = json.loads(check.stdout)
    assert rebuilt["equal"] is True
    audit = cluster.cxm("audit", "verify")

    nk = faults.get("nats_killed", {})
    ck = faults.get("cxm_killed", {})
    affected = [t["tenant"] for t in tenants if stream_of(t["tenant"]) == nk.get("stream")]
    all_tenants = [t["tenant"] for t in tenants]
    nats_resume = resumed_after(load3.ok_times, nk["at"], affected or all_tenants) if nk else None
    cxm_resume = resumed_after(load3.ok_times, ck["at"], all_tenants) if ck else None
    assert nats_resume is not None and nats_resume <= 15, f"ingest took {nats_resume} s to resume after the nats kill"
    assert cxm_resume is not None and cxm_resume <= 15, f"ingest took {cxm_resume} s to resume after the cxm kill"
    assert ck.get("applying_again_s") is not None, "the dead node's partitions were not applied again within 60 s"
    assert decisions.get("201", 0) + decisions.get("200", 0) > 0, f"no decision was answered: {decisions}"
    return {
        "events_sent": len(sent),
        "events_answered_distinct": len(answered),
        "events_stored": stored_n,
        "batches": len(first) + len(clean) + len(rest),
        "retried_requests": load1.retries + load2.retries + load3.retries,
        "statuses_under_faults": {str(k): v for k, v in load3.statuses.items()},
        "one_node": {"answered_events_per_s": round(one_events / secs1), "applied_events_per_s": round(one_events / apply_secs1)},
        "three_nodes": {"answered_events_per_s": round(clean_events / secs2), "applied_events_per_s": round(clean_events / apply_secs2)},
        "three_nodes_under_faults_answered_events_per_s": round(len(rest) * BATCH / secs3),
        "drain_after_load_s": round(drain, 1),
        "nats_leader_kill": {"server": nk.get("server"), "stream": nk.get("stream"), "ingest_resumed_s": round(nats_resume, 2)},
        "cxm_node_kill": {"node": ck.get("node"), "partitions": ck.get("partitions"), "ingest_resumed_s": round(cxm_resume, 2),
                          "applying_again_s": round(ck["applying_again_s"], 2)},
        "max_epoch": max(epochs.values()) if epochs else 0,
        "applies": len(applies),
        "decisions": decisions,
        "rebuild_equal": True,
        "audit": audit.stdout.strip()[:200],
    }


def partition_of(tenant):
    import hashlib
    d = hashlib.sha256(tenant.encode()).digest()
    return int.from_bytes(d[:8], "big") % PARTITIONS


def stream_of(tenant):
    return f"CXM_EV_{partition_of(tenant) % 4}"


def tenant_partitions(tenants):
    return {partition_of(t["tenant"]) for t in tenants}


def busiest_stream(tenants):
    counts = {}
    for t in tenants:
        s = stream_of(t["tenant"])
        counts[s] = counts.get(s, 0) + 1
    return max(sorted(counts), key=lambda s: counts[s])


def req(method, port, path, key, body):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request(method, path, json.dumps(body), {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
        r = c.getresponse()
        r.read()
        return r.status
    except (OSError, http.client.HTTPException):
        return None


if __name__ == "__main__":
    main()
