"""Benchmark Hookline on this machine and print each case with its target: ``python benchmarks/run.py``.

Sets up its own Redis database (12 of REDIS_URL's server, or an embedded one), a fresh SQLite file (or
DATABASE_URL), a receiver under gunicorn, and writes benchmarks/results.json. Figures that matter are ratios
to a baseline measured in the same run, because shared machines are noisy.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from rq import Queue  # noqa: E402

from benchmarks.harness import (  # noqa: E402
    RoundTrips, env_for, percentile, rss_kib, running_workers, start_gunicorn, stop, wait_finished,
)
from webapp import keys  # noqa: E402
from webapp.embedded_redis import answers, free_port, start_embedded_redis  # noqa: E402

RESULTS: list[dict] = []


def record(case: str, figure: str, value: float, baseline: float | None, target: str, met: bool | None,
           ratio: float | None = None) -> None:
    if ratio is None and baseline:
        ratio = value / baseline
    RESULTS.append({"case": case, "figure": figure, "value": round(value, 3),
                    "baseline": None if baseline is None else round(baseline, 3),
                    "ratio": None if ratio is None else round(ratio, 3), "target": target, "met": met})
    print(f"  {figure}: {value:.3f}" + (f" (baseline {baseline:.3f}, ratio {ratio:.2f})" if baseline else "")
          + f"  target {target}: {'met' if met else 'NOT met' if met is not None else 'info'}", flush=True)


class Bench:
    def __init__(self, n: int, memory_n: int):
        self.n, self.memory_n = n, memory_n
        self.work = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
        self.processes = []
        redis_url = "redis://127.0.0.1:6379/12"
        if not answers(redis_url):
            redis_url, process = start_embedded_redis(self.work / "redis", persist=False, db=12)
            self.processes.append(process)
        self.web_port, self.receiver_port = free_port(), free_port()
        import os

        self.settings = {
            "REDIS_URL": redis_url, "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{self.work / 'bench.db'}"),
            "SECRET_KEY": "bench", "BASE_URL": f"http://127.0.0.1:{self.web_port}", "WEBHOOK_ALLOW_PRIVATE": "1",
            "WEBHOOK_TIMEOUT": "5", "BENCH_REDIS_URL": redis_url,
        }
        os.environ.update({key: str(value) for key, value in self.settings.items()})
        self.env = env_for(self.settings)
        from webapp import create_app

        self.app = create_app()
        self.redis = self.app.extensions["redis"]
        self.redis.flushdb()

    # -- setup ---------------------------------------------------------------------------------------
    def seed(self) -> None:
        from flask_migrate import upgrade

        from webapp.accounts import create_user, get_or_create_organization
        from webapp.alert_rules import save_issue_rule
        from webapp.eventstore import store_event
        from webapp.integrations import register_internal_app
        from webapp.projects import create_project

        with self.app.app_context():
            upgrade()
            create_user("owner@bench.test", "bench-password", "bench", "owner")
            self.org = get_or_create_organization("bench")
            self.project = create_project(self.org, "Web")
            hook = f"http://127.0.0.1:{self.receiver_port}/hook"
            self.sentry_app = register_internal_app(self.org, "Receiver", hook, ["issue", "error"])
            self.rule = save_issue_rule(self.project, {"name": "Bench rule", "trigger": "every_event",
                                                       "frequency_minutes": "1"},
                                        [{"sentry_app_id": self.sentry_app.id, "settings": []}])
            _, stored = store_event(self.project, sample_event("seed"))
            self.event_pk = stored.event_id
            self.ids = (self.sentry_app.id, self.rule.id, self.event_pk, self.project.id, self.project.public_key)

    def start_receiver(self) -> None:
        self.processes.append(start_gunicorn("benchmarks.receiver:app", self.receiver_port, self.env, workers=1, threads=8))

    def enqueue_deliveries(self, count: int, prefix: str = "msg_") -> None:
        """Queue ``count`` real deliveries, half resource webhooks, half issue alerts, in one pipeline."""
        from webapp.dispatch.delivery import CRASH_RETRY, DELIVER_JOB

        app_id, rule_id, event_pk, _, _ = self.ids
        queue = Queue(keys.WEBHOOK_QUEUE, connection=self.redis)
        jobs = []
        for i in range(count):
            if i % 2:
                args = (app_id, "issue.created", {"issue": {"id": str(i), "title": f"issue {i}"}}, None,
                        f"{prefix}{uuid.uuid4().hex}")
                jobs.append(Queue.prepare_data(DELIVER_JOB, args, timeout=60, result_ttl=600, retry=CRASH_RETRY))
            else:
                jobs.append(Queue.prepare_data("webapp.dispatch.tasks.send_alert_event", (event_pk, rule_id, app_id, []),
                                               timeout=60, result_ttl=600, retry=CRASH_RETRY))
        with self.app.app_context():
            queue.enqueue_many(jobs)

    def reset_queue_state(self) -> None:
        self.redis.delete(f"rq:finished:{keys.WEBHOOK_QUEUE}", f"rq:queue:{keys.WEBHOOK_QUEUE}", "bench:received")

    # -- cases ---------------------------------------------------------------------------------------
    def case_throughput(self) -> None:
        print("1. Delivery throughput", flush=True)
        bodies = self.signed_bodies(self.n)
        session = requests.Session()
        url = f"http://127.0.0.1:{self.receiver_port}/hook"
        started = time.perf_counter()
        for body, headers in bodies:
            session.post(url, data=body, headers=headers, timeout=5)
        baseline = self.n / (time.perf_counter() - started)
        best, self.per_worker = 0.0, {}
        for workers in (1, 2, 4):
            self.reset_queue_state()
            with running_workers(workers, self.env, self.redis):
                self.enqueue_deliveries(self.n)
                elapsed = wait_finished(self.redis, keys.WEBHOOK_QUEUE, self.n)
            rate = self.n / elapsed
            self.per_worker[workers] = rate
            best = max(best, rate)
            record("delivery throughput", f"deliveries/s with {workers} worker process(es)", rate, baseline,
                   ">= 0.6 x baseline (best config)", None)
        record("delivery throughput", "best configuration / baseline", best / baseline, 1.0,
               ">= 0.6 (stretch 1.0)", best / baseline >= 0.6, ratio=best / baseline)

    def signed_bodies(self, count: int):
        from webapp.dispatch.payloads import build_envelope
        from webapp.dispatch.signing import build_headers, new_message_id

        body = json.dumps(build_envelope("created", str(uuid.uuid4()), {"issue": {"id": "1", "title": "x" * 200}})).encode()
        return [(body, build_headers("issue", body, ["s" * 64], new_message_id())) for _ in range(count)]

    def case_latency(self) -> None:
        print("2. Latency, trigger to receipt (1 worker, light load)", flush=True)
        from webapp.dispatch.delivery import enqueue_delivery_job

        self.reset_queue_state()
        sent = {}
        with running_workers(1, self.env, self.redis), self.app.app_context():
            for i in range(200):
                message_id = f"msg_lat_{i}_{uuid.uuid4().hex[:8]}"
                sent[message_id] = time.time()
                enqueue_delivery_job((self.ids[0], "issue.created", {"issue": {"id": str(i)}}, None, message_id))
                time.sleep(0.02)
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, 200, timeout=60)
        received = {key.decode(): float(value) for key, value in self.redis.hgetall("bench:received").items()}
        latencies = [(received[m] - t) * 1000 for m, t in sent.items() if m in received]
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        record("latency", "p50 ms", p50, None, "<= 20 ms", p50 <= 20)
        record("latency", "p99 ms", p99, None, "<= 100 ms", p99 <= 100)

    def case_cost(self) -> None:
        print("3. Cost per delivery (in-process SimpleWorker)", flush=True)
        from webapp.dispatch import webhooks
        from webapp.dispatch.queues import make_worker
        from webapp.extensions import db

        self.reset_queue_state()
        count = 200
        self.enqueue_deliveries(count)
        calls = {"n": 0, "redis": 0}
        original = webhooks.send_and_save_webhook_request

        with self.app.app_context():
            engine = db.engine
        with RoundTrips(engine) as total:
            def counted(*args, **kwargs):
                before = total.redis
                result = original(*args, **kwargs)
                calls["n"] += 1
                calls["redis"] += total.redis - before
                return result

            webhooks.send_and_save_webhook_request = counted
            import webapp.dispatch.delivery as delivery_module

            delivery_module.send_and_save_webhook_request = counted
            try:
                before_commands = self.commands()
                make_worker(self.app, [keys.WEBHOOK_QUEUE]).work(burst=True, logging_level="WARNING")
                commands = self.commands() - before_commands
            finally:
                webhooks.send_and_save_webhook_request = original
                delivery_module.send_and_save_webhook_request = original
        record("cost per delivery", "Redis round trips for log + health + last delivery", calls["redis"] / calls["n"],
               None, "1 pipelined round trip", calls["redis"] / calls["n"] <= 1.0)
        record("cost per delivery", "Redis round trips per delivery, RQ included", total.redis / count, None, "info", None)
        record("cost per delivery", "Redis commands per delivery, RQ included", commands / count, None, "info", None)
        record("cost per delivery", "SQL statements per delivery", total.sql / count, None, "info", None)

    def commands(self) -> int:
        return sum(stats["calls"] for name, stats in self.redis.info("commandstats").items())

    def case_fanout(self) -> None:
        print("4. Fan-out: one change to 50 apps (2 workers)", flush=True)
        from webapp.accounts import get_or_create_organization
        from webapp.dispatch.fanout import notify_resource_change
        from webapp.integrations import register_internal_app

        with self.app.app_context():
            org = get_or_create_organization("fanout")
            for i in range(50):
                register_internal_app(org, f"App {i}", f"http://127.0.0.1:{self.receiver_port}/hook", ["issue"])
            org_id = org.id
        self.reset_queue_state()
        with running_workers(2, self.env, self.redis), self.app.app_context():
            started = time.perf_counter()
            notify_resource_change(org_id, "issue.created", {"issue": {"id": "1", "title": "fan-out"}})
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, 50)
            elapsed = time.perf_counter() - started
        single = 1 / self.per_worker[1]
        budget = 1.5 * (50 * single / 2)
        record("fan-out", "seconds to deliver 50", elapsed, budget, "<= 1.5 x (50 x single delivery / 2 workers)",
               elapsed <= budget)

    def case_ingestion(self) -> None:
        print("5. Ingestion under gunicorn (2 workers) vs a bare endpoint in the same server", flush=True)
        web = start_gunicorn("benchmarks.wsgi:application", self.web_port, self.env, workers=2)
        base = f"http://127.0.0.1:{self.web_port}"
        _, _, _, project_id, key = self.ids
        envelope_url = f"{base}/api/{project_id}/envelope/"
        headers = {"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip",
                   "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=sentry.python/2.0, sentry_key={key}"}
        try:
            count = self.n
            bare_rate = hammer(f"{base}/bare/", headers, count)
            self.redis.delete(f"rq:queue:{keys.WEBHOOK_QUEUE}")
            rate = hammer(envelope_url, headers, count)
            record("ingestion", "envelopes accepted/s", rate, bare_rate, ">= 0.5 x bare endpoint", rate / bare_rate >= 0.5)
            self.redis.delete(f"rq:queue:{keys.WEBHOOK_QUEUE}")
            self.reset_queue_state()
            latencies = []
            delivered = keys.request_log(self.ids[0], "error.created")
            self.redis.delete(delivered)
            with running_workers(1, self.env, self.redis):
                session = requests.Session()
                for i in range(30):
                    started = time.time()
                    session.post(envelope_url, data=envelope_body(uuid.uuid4().hex, "e2e"), headers=headers, timeout=5)
                    deadline = time.time() + 10
                    while self.redis.llen(delivered) <= i and time.time() < deadline:
                        time.sleep(0.002)  # until the worker has delivered this event's error.created
                    latencies.append((time.time() - started) * 1000)
            record("ingestion", "end to end, envelope POST to error.created in the log, p50 ms",
                   percentile(latencies, 50), None, "info", None)
        finally:
            stop([web])

    def case_dashboard(self) -> None:
        print("6. Dashboard server time with full buffers (100 apps, every list at 100 entries)", flush=True)
        from webapp.accounts import get_or_create_organization
        from webapp.dispatch.events import EVENT_TYPES
        from webapp.integrations import register_internal_app
        from webapp.models import Membership, User

        with self.app.app_context():
            org = get_or_create_organization("dash")
            from webapp.extensions import db

            owner = db.session.query(User).filter_by(email="owner@bench.test").one()
            db.session.add(Membership(user_id=owner.id, organization_id=org.id, role="owner"))
            db.session.commit()
            apps = [register_internal_app(org, f"Dash {i:03}", f"http://127.0.0.1:{self.receiver_port}/hook", ["issue"])
                    for i in range(100)]
            app_ids, slug = [a.id for a in apps], apps[0].slug
        self.fill_buffers(app_ids, EVENT_TYPES, org.id)
        client = self.app.test_client()
        page = client.get("/login").get_data(as_text=True)
        import re

        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        client.post("/login", data={"email": "owner@bench.test", "password": "bench-password", "csrf_token": token})
        for name, path in [("request log page", f"/orgs/dash/apps/{slug}"), ("apps list", "/orgs/dash/apps")]:
            times = []
            for _ in range(40):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            p95 = percentile(times, 95)
            record("dashboard", f"{name} p95 server ms", p95, None, "<= 50 ms", p95 <= 50)

    def fill_buffers(self, app_ids, event_types, org_id) -> None:
        from datetime import date, timedelta

        entry = json.dumps({"date": "2026-11-01T12:00:00.000000Z", "response_code": 500, "webhook_url": "http://x/hook",
                            "event_type": "issue.created", "organization_id": org_id, "request_id": "r" * 32,
                            "duration_ms": 12, "attempt": 1, "request_headers": "h" * 900, "request_body": "b" * 1024,
                            "response_body": "e" * 1024})
        pipe = self.redis.pipeline(transaction=False)
        for app_id in app_ids:
            for event_type in event_types:
                for key in (keys.request_log(app_id, event_type), keys.request_log_errors(app_id, event_type)):
                    pipe.lpush(key, *[entry] * 100)
            for offset in range(30):
                day = (date.today() - timedelta(days=offset)).isoformat()
                pipe.hset(keys.integration_health(app_id, org_id, day),
                          mapping={"success_count": 50, "error_count": 3, "timeout_count": 1})
            pipe.execute()

    def case_memory(self) -> None:
        print(f"7. Worker memory after 1,000 and {self.memory_n:,} deliveries", flush=True)
        self.reset_queue_state()
        with running_workers(1, self.env, self.redis) as (worker,):
            self.enqueue_deliveries(1000)
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, 1000)
            first = rss_kib(worker.pid)
            self.enqueue_deliveries(self.memory_n - 1000)
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, self.memory_n)
            last = rss_kib(worker.pid)
        record("memory", f"worker RSS KiB after {self.memory_n:,} deliveries", last, first,
               "within 10 % of RSS after 1,000", last <= first * 1.10)

    def close(self) -> None:
        stop(self.processes)


def sample_event(message: str) -> dict:
    return {"event_id": uuid.uuid4().hex, "level": "error", "platform": "python",
            "exception": {"values": [{"type": "ValueError", "value": message, "stacktrace": {"frames": [
                {"filename": "shop/payments.py", "module": "shop.payments", "function": "charge", "lineno": 42,
                 "in_app": True}]}}]},
            "tags": {"customer": "big-co"}, "release": "web@1.0", "environment": "production"}


def envelope_body(event_id: str, message: str = "card declined") -> bytes:
    event = json.dumps({**sample_event(message), "event_id": event_id}).encode()
    header = json.dumps({"event_id": event_id, "sent_at": "2026-11-22T00:00:00Z"}).encode()
    item = json.dumps({"type": "event", "length": len(event)}).encode()
    return gzip.compress(header + b"\n" + item + b"\n" + event + b"\n")


def hammer(url: str, headers: dict, count: int, threads: int = 8) -> float:
    """POST ``count`` distinct envelopes from ``threads`` threads; return accepted (2xx) per second."""
    bodies = [envelope_body(uuid.uuid4().hex) for _ in range(count)]
    accepted = [0] * threads

    def run(index: int) -> None:
        session = requests.Session()
        for body in bodies[index::threads]:
            if session.post(url, data=body, headers=headers, timeout=10).ok:
                accepted[index] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(accepted) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=1000, help="deliveries per throughput run (default 1000)")
    parser.add_argument("--memory-deliveries", type=int, default=10_000)
    args = parser.parse_args()
    started = time.monotonic()
    bench = Bench(args.n, args.memory_deliveries)
    try:
        bench.seed()
        bench.start_receiver()
        for case in (bench.case_throughput, bench.case_latency, bench.case_cost, bench.case_fanout,
                     bench.case_ingestion, bench.case_dashboard, bench.case_memory):
            case()
    finally:
        bench.close()
    print_table()
    out = ROOT / "benchmarks" / "results.json"
    out.write_text(json.dumps(RESULTS, indent=2) + "\n")
    print(f"\nWrote {out.relative_to(ROOT)} in {time.monotonic() - started:.0f} s.")
    return 0


def print_table() -> None:
    print("\n| case | figure | value | baseline | ratio | target | met |\n|---|---|---|---|---|---|---|")
    for row in RESULTS:
        cells = [row["case"], row["figure"], row["value"], row["baseline"] if row["baseline"] is not None else "",
                 row["ratio"] if row["ratio"] is not None else "", row["target"],
                 {True: "yes", False: "NO", None: "—"}[row["met"]]]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
