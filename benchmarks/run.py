"""Benchmark Hookline on this machine and print each case with its target: ``python benchmarks/run.py``.

Sets up its own Redis database (12 of REDIS_URL's server, or an embedded one; ``--embedded-redis`` always
starts a private one, so other users of the server cannot skew the command counts), a fresh SQLite file (or
DATABASE_URL), a receiver under gunicorn (gthread, 64 threads; ``?delay_ms=N`` makes it slow) and a hung
receiver (a thread that accepts, reads and never answers), and writes benchmarks/results.json. Figures that
matter are ratios to a baseline measured in the same run, or latencies, because shared machines are noisy.

Worker processes are ``python worker.py`` (WORKER_CONCURRENCY slot threads each, see
webapp/dispatch/engine.py); deliveries are queued as production queues them (``enqueue_specs`` of
``delivery_spec``), so each carries its app's RQ rate limit (WEBHOOK_APP_CONCURRENCY, 4: at most 4 attempts
of one app queued or running; the rest wait in RQ's rate-limit registry).

Cases (default sizes: ``-n 1000``, ``--throughput-n 3000``, ``--memory-deliveries 10000``, ``--hung-seconds 15``; about 3 minutes):

1. Throughput to a fast receiver: a bare ``requests.Session`` loop (baseline, timed once its signed bodies are
   built), then Hookline with 1 and 2 worker processes at WORKER_CONCURRENCY 32, 8 and 4, ``--throughput-n``
   deliveries (3,000: a sustained rate, not the first second's start-up; timed from the moment they are queued,
   in one MULTI pipeline, and the rate with the queueing included shown for information) (half resource
   webhooks, half issue alerts) spread over 8 apps on the same receiver (the per-app cap would hold one app to 4 in flight), and the
   1-process runs' worker CPU ms per delivery at 32 and 256 slots (a median of three runs each). The best
   configuration and the baseline are then run twice more, alternately, and their medians compared. Target:
   best / baseline >= 1.5 (stretch 2.0).
2. A receiver answering in 100 ms: 1 process at WORKER_CONCURRENCY 32, ``n`` deliveries over 8 apps.
   Target: >= 0.7 x 32 / 0.1 s = 224 deliveries/s. Then 1 process at 256 slots, 64 apps, a receiver of
   2 x 256 threads: >= 0.7 x 256 / 0.1 s if the cores allow; a bare pycurl multi loop keeping 256 POSTs in flight
   to the same receiver shows what they allow, and the same 256 slots over 2 processes (each organisation still
   held to 64 in flight) what one process's single core of Python leaves on the table. Each row gives the
   workers' CPU and how busy the machine's cores were.
3. 20 hung apps (1 delivery/s each) and a healthy app (a delivery every 100 ms) for ``--hung-seconds``:
   1 process at WORKER_CONCURRENCY 32, WEBHOOK_TIMEOUT 1. Target: the healthy app's p99 enqueue -> receipt
   <= 250 ms.
4. Noisy neighbour: ``n`` deliveries queued for one organisation's app (20 ms receiver), then another
   organisation's app gets 20 deliveries 100 ms apart. Target: their p99 enqueue -> receipt <= 1 s.
5. Latency under light load (1 process): 200 deliveries 20 ms apart. Targets: p50 <= 20 ms, p99 <= 100 ms.
6. Fan-out: one ``notify_resource_change`` + commit to 50 apps (1 process). Target: <= 1.5 x 50 / the
   1-process throughput of case 1.
7. Cost per delivery (an in-process burst worker): Redis round trips and SQL statements per delivery.
8. Memory: RSS of 1 process (WORKER_CONCURRENCY 32) after 1,000 and after ``--memory-deliveries``. Targets:
   flat (<= 1.1 x after 1,000) and <= 1.5 x 89,492 KiB (the single-threaded worker's RSS after 10,000).
9. Ingestion under gunicorn vs a bare endpoint (target >= 0.5 x), and end-to-end envelope -> error.created
   (target p50 <= 50 ms).
10. Dashboard server time with full buffers.
12. Requests without a valid key (gunicorn, 2 workers): server CPU per refused request for each hostile body
    (gzip and brotli bombs of 4.9 KB that inflate to 5 MiB, 1 MiB sent plain), the worst against the target
    <= 5 ms; and another project's accepted envelopes (``REFUSAL_SAMPLES`` at 25/s) idle and beside 50 such
    requests a second. Target: p99 beside them <= 2 x idle p99.
13. Redis memory: 1 process takes 250 deliveries/s (half resource webhooks, half issue alerts) until the first
    finished jobs have expired at the shipped ``JOB_RESULT_TTL``; every ``rq:*`` key's MEMORY USAGE (and the
    expired keys not yet reclaimed) is summed five times, 2 s apart, and the largest scaled to 1,000
    deliveries/s. Target: <= 100 MB.

``--cases 1,3`` runs a subset. A case that fails (a wait that times out, a process that dies) is reported
with its reason as a NOT met row; the others still run, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import brotli  # noqa: E402
import requests  # noqa: E402
from rq import Queue  # noqa: E402

from benchmarks.harness import (  # noqa: E402
    BenchError, RoundTrips, busy_share, check_alive, cpu_seconds, env_for, machine_ticks, percentile, rate_limited_waiting,
    reset_redis, rss_kib,
    running_workers, start_gunicorn, stop, wait_delivered, wait_finished, wait_received,
)
from benchmarks.hostile import EndlessTrailersServer  # noqa: E402
from benchmarks.hung import HungServer  # noqa: E402
from webapp.core import keys  # noqa: E402
from webapp.core.embedded_redis import answers, free_port, start_embedded_redis  # noqa: E402

RESULTS: list[dict] = []

FAST_APPS = 8           # apps sharing the fast receiver in the throughput and memory cases
# (worker processes, WORKER_CONCURRENCY) of the throughput case. With a backlog each slot runs one app's waiting
# deliveries in turn, so a fast receiver needs few slots: more only contend for the GIL.
THROUGHPUT_CONFIGS = ((1, 32), (2, 32), (1, 8), (2, 8), (2, 4), (1, 256))
CPU_CONFIGS = ((1, 32), (1, 256))  # whose worker CPU per delivery is held to its target
THROUGHPUT_ROUNDS = 3   # runs of the baseline and of the best configuration, whose medians are compared
REFERENCE_CLIENT_MS = 0.8  # requests' CPU per POST on the machine where the CPU target was set (0.77-0.85 ms)
FANOUT_RUNS = 5         # fan-outs measured (after one that warms the worker up)
SLOW_APPS = 8           # apps on the 100 ms receiver
SLOW_MS = 100
HUNG_APPS = 20
HUNG_CONCURRENCY = 32  # hung apps are held to one attempt each once they time out
NOISY_MS = 20
NEIGHBOUR_DELIVERIES = 20
HOSTILE_APPS = 8        # one organisation's apps on slow (1.9 s) or hostile (endless trailers) receivers
HOSTILE_SLOW_MS = 1900
HOSTILE_SECONDS = 10.0  # how long the victim app of another organisation is measured beside them
WIDE_CONCURRENCY = 256  # the 100 ms receiver at 256 slots: 64 apps in 4 organisations (cap 4 each)
WIDE_APPS = 64
FANOUT_HUNG = 20        # of the 50 apps of the second fan-out row, hung
PREVIOUS_RSS_KIB = 89_492  # the single-threaded worker's RSS after 10,000 deliveries, measured on main before the engine
REFUSAL_REQUESTS = 200  # requests without a key per hostile body, whose server CPU is averaged
REFUSAL_RATE = 50       # requests without a key a second, beside another project's accepted envelopes
REFUSAL_SAMPLES = 300   # accepted envelopes timed idle and under those requests, at 25 a second
REDIS_RATE = 250        # deliveries/s queued steadily in the Redis memory case (a loaded machine's one process keeps up)
REDIS_TARGET_RATE = 1000
REDIS_TARGET_MB = 100
REDIS_SAMPLES = 5       # samples of what Redis holds, 2 s apart, once the oldest finished jobs have expired
# What Redis keeps of each finished job, by key prefix (the registry: a sorted set of all of them, per queue).
FINISHED_KINDS = {b"rq:job:": "job hashes", b"rq:results:": "result streams", b"rq:finished:": "finished registries"}


def record(case: str, figure: str, value: float | None, baseline: float | None, target: str, met: bool | None,
           ratio: float | None = None) -> None:
    if ratio is None and baseline and value is not None:
        ratio = value / baseline
    RESULTS.append({"case": case, "figure": figure, "value": None if value is None else round(value, 3),
                    "baseline": None if baseline is None else round(baseline, 3),
                    "ratio": None if ratio is None else round(ratio, 3), "target": target, "met": met})
    shown = "—" if value is None else f"{value:.3f}"
    print(f"  {figure}: {shown}" + (f" (baseline {baseline:.3f}, ratio {ratio:.2f})" if baseline and ratio else "")
          + f"  target {target}: {'met' if met else 'NOT met' if met is not None else 'info'}", flush=True)


def bare_multi_rate(url: str, in_flight: int, count: int) -> float:
    """POST ``count`` small bodies to ``url`` with one pycurl multi handle keeping ``in_flight`` of them going;
    return requests/s. The cheapest client there is here: the ceiling a receiver and the machine allow."""
    import pycurl

    multi = pycurl.CurlMulti()
    body = json.dumps({"issue": {"id": "1", "title": "x" * 200}}).encode()
    handles = []
    for _ in range(in_flight):
        curl = pycurl.Curl()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.POSTFIELDS, body)
        curl.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json", "Expect:"])
        curl.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
        handles.append(curl)
    started, begun, done = time.perf_counter(), 0, 0
    for curl in handles[:count]:
        multi.add_handle(curl)
        begun += 1
    while done < count:
        multi.perform()
        while True:
            queued, ok, failed = multi.info_read()
            for curl in ok + [item[0] for item in failed]:
                multi.remove_handle(curl)
                done += 1
                if begun < count:
                    multi.add_handle(curl)
                    begun += 1
            if not queued:
                break
        multi.select(0.05)
    elapsed = time.perf_counter() - started
    for curl in handles:
        curl.close()
    multi.close()
    return count / elapsed


class Bench:
    def __init__(self, n: int, memory_n: int, hung_seconds: float, embedded_redis: bool, throughput_n: int = 3000):
        self.n, self.memory_n, self.hung_seconds = n, memory_n, hung_seconds
        self.throughput_n = throughput_n
        self.work = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
        self.processes = []
        self.per_worker: dict[int, float] = {}
        redis_url = "redis://127.0.0.1:6379/12"
        if embedded_redis or not answers(redis_url):
            redis_url, process = start_embedded_redis(self.work / "redis", persist=False, db=12)
            self.processes.append(process)
        self.hung = HungServer().start()
        self.web_port, self.receiver_port = free_port(), free_port()
        self.settings = {
            "REDIS_URL": redis_url, "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{self.work / 'bench.db'}"),
            "SECRET_KEY": "benchmark-secret-key-of-32-bytes-or-more",
            "BASE_URL": f"http://127.0.0.1:{self.web_port}", "WEBHOOK_ALLOW_PRIVATE": "1",
            "WEBHOOK_TIMEOUT": "5", "BENCH_REDIS_URL": redis_url,
            "INGEST_RATE_LIMIT": "1000000",  # the ingestion case measures throughput, not the quota
            # The cases count finished jobs in RQ's finished registry, so they keep them for the run; the Redis
            # memory case (13) runs with the shipped default.
            "JOB_RESULT_TTL": "3600",
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

        from webapp.accounts.people import create_user, get_or_create_organization
        from webapp.alerts.alert_rules import save_issue_rule
        from webapp.alerts.eventstore import store_event
        from webapp.apps.internal_apps import register_internal_app
        from webapp.apps.projects import create_project

        hook = f"http://127.0.0.1:{self.receiver_port}/hook"

        def apps(org_slug: str, name: str, url: str, count: int) -> list[int]:
            org = get_or_create_organization(org_slug)
            return [register_internal_app(org, f"{name} {i}", url, ["issue"]).id for i in range(count)]

        with self.app.app_context():
            upgrade()
            create_user("owner@bench.test", "bench-password", "bench", "owner")
            self.org = get_or_create_organization("bench")
            self.project = create_project(self.org, "Web")
            self.sentry_app = register_internal_app(self.org, "Receiver", hook, ["issue", "error"])
            self.rule = save_issue_rule(self.project, {"name": "Bench rule", "trigger": "every_event",
                                                       "frequency_minutes": "1"},
                                        [{"sentry_app_id": self.sentry_app.id, "settings": []}])
            _, stored = store_event(self.project, sample_event("seed"))
            self.event_pk = stored.event_id
            self.ids = (self.sentry_app.id, self.rule.id, self.event_pk, self.project.id,
                        self.project.client_keys[0].public_key)
            # The extra apps live in organisations of their own, so ingestion's fan-out (organisation
            # "bench") still reaches one app.
            self.fast_apps = [self.sentry_app.id] + apps("fast", "Fast", hook, FAST_APPS - 1)
            # An issue alert reaches an app of the rule's own organisation only: organisation "fast" has its
            # own rule for its apps (else their alerts would be dropped as another organisation's, unsent).
            fast_rule = save_issue_rule(create_project(get_or_create_organization("fast"), "Fast"),
                                        {"name": "Fast rule", "trigger": "every_event", "frequency_minutes": "1"},
                                        [{"sentry_app_id": app_id, "settings": []} for app_id in self.fast_apps[1:]])
            self.alert_rules = {app_id: fast_rule.id for app_id in self.fast_apps[1:]}
            self.alert_rules[self.sentry_app.id] = self.rule.id
            self.slow_apps = apps("slow", "Slow", f"{hook}?delay_ms={SLOW_MS}", SLOW_APPS)
            self.hung_apps = apps("hung", "Hung", f"http://127.0.0.1:{self.hung.port}/hook", HUNG_APPS)
            self.healthy_app = apps("hung", "Healthy", hook, 1)[0]
            self.noisy_app = apps("noisy", "Noisy", f"{hook}?delay_ms={NOISY_MS}", 1)[0]
            self.neighbour_app = apps("neighbour", "Neighbour", hook, 1)[0]
            self.app_cap = self.app.config["WEBHOOK_APP_CONCURRENCY"]

    def start_receiver(self) -> None:
        self.processes.append(start_gunicorn("benchmarks.receiver:app", self.receiver_port, self.env, workers=1,
                                             threads=64, log=self.work / "receiver.log"))

    def workers(self, count: int, **overrides):
        """``running_workers`` for ``count`` processes with these settings (WORKER_CONCURRENCY, WEBHOOK_TIMEOUT...)."""
        from webapp.dispatch.engine import slot_plan

        config = {**self.app.config, **{key: int(value) for key, value in overrides.items()
                                        if key in ("WORKER_CONCURRENCY", "MAIL_CONCURRENCY")}}
        return running_workers(count, env_for({**self.settings, **overrides}), self.redis, len(slot_plan(config)),
                               self.work)

    def enqueue_deliveries(self, count: int, app_ids: list[int], alerts: bool = True, prefix: str = "msg_") -> None:
        """Queue ``count`` real deliveries round-robin over ``app_ids`` in one pipeline, as production does.

        Resource webhooks are ``delivery_spec`` jobs (with the app's rate limit); with ``alerts`` every other
        one is an issue alert (``send_alert_event``, a ``task_spec`` job, as the ingestion pipeline queues them).
        """
        from webapp.core.outbox import enqueue_specs
        from webapp.dispatch.queues import app_caps, delivery_spec, task_spec

        event_pk = self.ids[2]
        specs = []
        with self.app.app_context():
            caps = app_caps(app_ids)  # once for the batch, as enqueue_delivery_jobs does (a round trip)
            for i in range(count):
                app_id = app_ids[i % len(app_ids)]
                if alerts and i % 2 == 0:
                    rule_id = self.alert_rules[app_id]
                    specs.append(task_spec("webapp.dispatch.tasks.send_alert_event", (event_pk, rule_id, app_id, []),
                                           app_cap=(app_id, caps[app_id])))
                else:
                    specs.append(delivery_spec((app_id, "issue.created", {"issue": {"id": str(i), "title": f"issue {i}"}},
                                                None, f"{prefix}{uuid.uuid4().hex}"), cap=caps[app_id]))
            enqueue_specs(specs, connection=self.redis)

    def enqueue_measured(self, app_ids: list[int], sent: dict[str, float], tag: str) -> None:
        """Queue one delivery to each app, noting its webhook-id and the time it was queued in ``sent``."""
        from webapp.dispatch.delivery import enqueue_delivery_jobs

        batch = []
        for app_id in app_ids:
            message_id = f"msg_lat_{tag}_{uuid.uuid4().hex[:12]}"
            batch.append((app_id, "issue.created", {"issue": {"id": "1", "title": tag}}, None, message_id))
            sent[message_id] = time.time()
        enqueue_delivery_jobs(batch)

    @staticmethod
    def latencies(sent: dict[str, float], received: dict[str, float]) -> list[float]:
        return [(received[m] - t) * 1000 for m, t in sent.items() if m in received]

    # -- cases ---------------------------------------------------------------------------------------
    def case_throughput(self) -> None:
        count = self.throughput_n
        bodies = self.signed_bodies(count)
        url = f"http://127.0.0.1:{self.receiver_port}/hook"

        client_cpu: list[float] = []  # the bare loop's own CPU ms per POST, each run: this machine's speed

        def bare_loop() -> float:
            session = requests.Session()
            cpu_started, started = time.process_time(), time.perf_counter()
            for body, headers in bodies:
                session.post(url, data=body, headers=headers, timeout=5)
            elapsed = time.perf_counter() - started
            client_cpu.append((time.process_time() - cpu_started) * 1000 / count)
            return count / elapsed

        queueing: list[float] = []  # seconds each run took to queue its deliveries (one MULTI pipeline)

        def hookline(workers: int, concurrency: int) -> tuple[float, float]:
            """Return deliveries/s and the worker processes' CPU seconds for ``n`` deliveries.

            Timed from the moment the deliveries are queued, as the bare loop is timed from the moment its
            signed bodies are ready: one MULTI pipeline queues them all, and the workers see none until it ends
            (``queueing`` keeps how long that took, shown beside the rate).
            """
            reset_redis(self.redis)
            with self.workers(workers, WORKER_CONCURRENCY=concurrency) as processes:
                cpu_before = sum(cpu_seconds(process.pid) for process in processes)
                before_queueing = time.perf_counter()
                self.enqueue_deliveries(count, self.fast_apps)
                started = time.perf_counter()
                queueing.append(started - before_queueing)
                wait_finished(self.redis, keys.WEBHOOK_QUEUE, count, timeout=60 + count / 20, processes=processes)
                elapsed = time.perf_counter() - started
                cpu = sum(cpu_seconds(process.pid) for process in processes) - cpu_before
            return count / elapsed, cpu

        def pycurl_loop() -> float:
            import pycurl

            curl = pycurl.Curl()
            curl.setopt(pycurl.URL, url)
            curl.setopt(pycurl.WRITEFUNCTION, lambda chunk: None)
            started = time.perf_counter()
            for body, headers in bodies:
                curl.setopt(pycurl.POSTFIELDS, body)
                curl.setopt(pycurl.HTTPHEADER, [f"{name}: {value}" for name, value in headers.items()])
                curl.perform()
            curl.close()
            return count / (time.perf_counter() - started)

        baselines = [bare_loop()]
        record("delivery throughput", "baseline: one requests.Session posting in a loop, deliveries/s (first run)",
               baselines[0], None, "info", None)
        curl_rate = pycurl_loop()
        record("delivery throughput", "for information: one pycurl handle posting in a loop (the nearest to the "
               "physical limit here), deliveries/s", curl_rate, baselines[0], "info", None)
        rates = {}
        cpu_runs: dict[tuple[int, int], list[float]] = {}  # worker CPU ms per delivery, per run
        spread = (f"spread over {FAST_APPS} apps on one receiver, since the per-app cap ({self.app_cap}) would hold a "
                  f"single app to {self.app_cap} in flight; {FAST_APPS} x {self.app_cap} = {FAST_APPS * self.app_cap} at most")
        for workers, concurrency in THROUGHPUT_CONFIGS:
            rate, cpu = hookline(workers, concurrency)
            rates[workers, concurrency] = rate
            if concurrency == 32:
                self.per_worker[workers] = rate
            record("delivery throughput", f"deliveries/s, {workers} worker process(es) x WORKER_CONCURRENCY {concurrency}, "
                   + (spread if workers == 1 else f"same {FAST_APPS} apps"),
                   rate, baselines[0], "info (one run each)", None)
            if (workers, concurrency) in CPU_CONFIGS:
                cpu_runs[workers, concurrency] = [cpu * 1000 / count]
        # One run of each is at the mercy of a noisy neighbour for its second or so: the best configuration and
        # the baseline are measured THROUGHPUT_ROUNDS times in all, alternately, and their medians compared.
        best_config = max(rates, key=rates.get)
        bests = [rates[best_config]]
        for _ in range(THROUGHPUT_ROUNDS - 1):
            baselines.append(bare_loop())
            bests.append(hookline(*best_config)[0])
        # CPU per delivery swings between runs as much as the rate does (0.19 to 0.68 ms at 32 slots in one quiet
        # hour: how often 32 threads hand the GIL over depends on how their waits line up): a median of
        # THROUGHPUT_ROUNDS runs each, not one.
        scaled: dict[tuple[int, int], float] = {}
        for config, runs_ms in cpu_runs.items():
            for _ in range(THROUGHPUT_ROUNDS - 1):
                runs_ms.append(hookline(*config)[1] * 1000 / count)
            per_delivery = statistics.median(runs_ms)
            record("delivery throughput", f"worker process CPU ms per delivery (1 process x WORKER_CONCURRENCY "
                   f"{config[1]}; user + system, all threads), median of {len(runs_ms)} runs "
                   f"({', '.join(f'{ms:.2f}' for ms in runs_ms)})", per_delivery, None, "<= 0.5 ms",
                   per_delivery <= 0.5)
            scaled[config] = per_delivery
        # The 0.5 ms target was set on a machine where requests spent 0.77-0.85 ms of CPU per POST; machines (and
        # one machine from hour to hour) differ by more than the margin. The bare loop's own CPU per POST, measured
        # in this run, says how fast this one is; the figure scaled to REFERENCE_CLIENT_MS is shown beside it.
        machine = statistics.median(client_cpu)
        record("delivery throughput", f"machine speed: the bare requests loop's own CPU ms per POST in this run, "
               f"median of {len(client_cpu)} ({', '.join(f'{ms:.2f}' for ms in client_cpu)}); the CPU target was set "
               f"where it was {REFERENCE_CLIENT_MS}", machine, None, "info", None)
        for config, per_delivery in scaled.items():
            record("delivery throughput", f"for information: worker CPU ms per delivery at {config[1]} slots, scaled "
                   f"to a machine where requests spends {REFERENCE_CLIENT_MS} ms per POST (x {REFERENCE_CLIENT_MS} / "
                   f"{machine:.2f})", per_delivery * REFERENCE_CLIENT_MS / machine, None, "info", None)
        baseline, best = statistics.median(baselines), statistics.median(bests)

        def runs(rates: list[float]) -> str:
            return ", ".join(f"{rate:.0f}" for rate in rates)

        record("delivery throughput", f"baseline, median of {len(baselines)} runs ({runs(baselines)})", baseline, None,
               "info", None)
        record("delivery throughput", f"best configuration ({best_config[0]} x {best_config[1]}), median of "
               f"{len(bests)} runs taken alternately with the baseline's ({runs(bests)})", best, baseline,
               "info", None)
        record("delivery throughput", "best configuration / baseline (medians)", best / baseline, 1.5,
               ">= 1.5 (stretch 2.0)", best / baseline >= 1.5, ratio=best / baseline)
        with_queueing = count / (count / best + statistics.median(queueing))
        record("delivery throughput", f"for information: the best configuration's median rate had its clock started "
               f"before queueing the {count:,} deliveries (median {statistics.median(queueing):.2f} s in one MULTI "
               f"pipeline, which the workers wait for), / baseline", with_queueing / baseline, None, "info", None,
               ratio=with_queueing / baseline)
        record("delivery throughput", "for information: best configuration / the bare pycurl loop", best / curl_rate,
               None, "info", None, ratio=best / curl_rate)

    def signed_bodies(self, count: int):
        from webapp.dispatch.payloads import build_envelope
        from webapp.dispatch.signing import build_headers, new_message_id

        body = json.dumps(build_envelope("created", str(uuid.uuid4()), {"issue": {"id": "1", "title": "x" * 200}})).encode()
        return [(body, build_headers("issue", body, ["s" * 64], new_message_id())) for _ in range(count)]

    def case_slow_receiver(self) -> None:
        target = 0.7 * 32 / (SLOW_MS / 1000)
        with self.workers(1, WORKER_CONCURRENCY=32) as processes:
            self.enqueue_deliveries(self.n, self.slow_apps, alerts=False)
            started = time.perf_counter()  # from the moment they are queued, as in the throughput case
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, self.n, timeout=60 + self.n / 10, processes=processes)
            rate = self.n / (time.perf_counter() - started)
        record("slow receiver", f"deliveries/s to a receiver answering in {SLOW_MS} ms, 1 process x "
               f"WORKER_CONCURRENCY 32, {SLOW_APPS} apps (cap {self.app_cap} each)", rate, target,
               f">= 0.7 x 32 / {SLOW_MS / 1000:g} s = {target:.0f}/s", rate >= target)
        self.slow_receiver_wide()

    def slow_receiver_wide(self) -> None:
        """The same receiver at WIDE_CONCURRENCY slots: WIDE_APPS apps in 4 organisations, a receiver of 2 x 256 threads."""
        from webapp.accounts.people import get_or_create_organization
        from webapp.apps.internal_apps import register_internal_app

        port = free_port()
        self.processes.append(start_gunicorn("benchmarks.receiver:app", port, self.env, workers=2, threads=256,
                                             log=self.work / "wide-receiver.log"))
        url = f"http://127.0.0.1:{port}/hook?delay_ms={SLOW_MS}"
        with self.app.app_context():
            orgs = [get_or_create_organization(f"wide-{index}") for index in range(4)]
            app_ids = [register_internal_app(orgs[index % 4], f"Wide {index}", url, ["issue"]).id
                       for index in range(WIDE_APPS)]
        target = 0.7 * WIDE_CONCURRENCY / (SLOW_MS / 1000)
        count = 4 * self.n
        rate, cpu, busy = self.wide_run(app_ids, count, 1, WIDE_CONCURRENCY)
        ceiling = bare_multi_rate(url, WIDE_CONCURRENCY, count)
        record("slow receiver", f"for information: a bare pycurl multi loop keeping {WIDE_CONCURRENCY} POSTs in flight "
               f"to the same receiver (no Redis, no database, no signing), deliveries/s: what the receiver and the "
               f"machine allow", ceiling, None, "info", None)
        record("slow receiver", f"deliveries/s to a receiver answering in {SLOW_MS} ms, 1 process x WORKER_CONCURRENCY "
               f"{WIDE_CONCURRENCY}, {WIDE_APPS} apps in 4 organisations; the worker used {cpu:.0%} of a core, the "
               f"machine {busy:.0%} of its {os.cpu_count()} cores (shared with the receiver and Redis)", rate, target,
               f">= 0.7 x {WIDE_CONCURRENCY} / {SLOW_MS / 1000:g} s = {target:.0f}/s if the cores allow", rate >= target)
        # What bounds one process: its Python runs on one core at a time (the GIL). The same slots split over two
        # processes (each organisation still held to a quarter of 256 in flight) show what the cores allow.
        split, split_cpu, split_busy = self.wide_run(app_ids, count, 2, WIDE_CONCURRENCY // 2,
                                                     WEBHOOK_ORG_CONCURRENCY=WIDE_CONCURRENCY // 4)
        record("slow receiver", f"for information: the same over 2 processes x WORKER_CONCURRENCY {WIDE_CONCURRENCY // 2} "
               f"(WEBHOOK_ORG_CONCURRENCY {WIDE_CONCURRENCY // 4}, as at 256), deliveries/s; the workers used "
               f"{split_cpu:.0%} of a core together, the machine {split_busy:.0%} of its {os.cpu_count()} cores",
               split, rate, "info", None)

    def wide_run(self, app_ids: list[int], count: int, processes: int, concurrency: int,
                 **settings) -> tuple[float, float, float]:
        """Deliver ``count`` to ``app_ids`` (queued at once) with ``processes`` workers; return deliveries/s, the
        workers' CPU as a share of one core, and the share of the machine's cores busy meanwhile.

        On clean queues: the finished registry is what ``wait_finished`` counts (the 32-slot run before this one
        left its ``n`` there, which once made this row count them as its own).
        """
        reset_redis(self.redis)
        with self.workers(processes, WORKER_CONCURRENCY=concurrency, **settings) as running:
            self.enqueue_deliveries(count, app_ids, alerts=False)
            cpu_before, ticks_before = sum(cpu_seconds(process.pid) for process in running), machine_ticks()
            started = time.perf_counter()  # from the moment they are queued, as in the throughput case
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, count, timeout=60 + count / 10, processes=running)
            elapsed = time.perf_counter() - started
            cpu = sum(cpu_seconds(process.pid) for process in running) - cpu_before
            busy = busy_share(ticks_before, machine_ticks())
        return count / elapsed, cpu / elapsed, busy

    def case_hung(self) -> None:
        from webapp.dispatch.engine import slot_plan

        plan = slot_plan({**self.app.config, "WORKER_CONCURRENCY": HUNG_CONCURRENCY})
        first, retries = plan.count(keys.WEBHOOK_QUEUE), plan.count(keys.RETRY_QUEUE)
        sizing = (f"WORKER_CONCURRENCY {HUNG_CONCURRENCY} = {first} first-attempt + {retries} retry slots; "
                  f"a hung app is held to 1 attempt in flight once it has timed out (first attempts and retries "
                  f"together), so the {HUNG_APPS} hung apps hold at most {HUNG_APPS} slots")
        sent: dict[str, float] = {}
        accepted_before = self.hung.accepted
        with self.workers(1, WORKER_CONCURRENCY=HUNG_CONCURRENCY, WEBHOOK_TIMEOUT=1) as processes, \
                self.app.app_context():
            from webapp.dispatch.delivery import enqueue_delivery_jobs

            ticks = int(self.hung_seconds * 10)
            started = time.monotonic()
            for tick in range(ticks):
                self.enqueue_measured([self.healthy_app], sent, "healthy")
                # Two hung apps per 100 ms tick: each of the 20 gets one delivery a second, spread evenly.
                enqueue_delivery_jobs([(app_id, "issue.created", {"issue": {"id": str(tick)}}, None,
                                        f"msg_hung_{uuid.uuid4().hex}")
                                       for app_id in self.hung_apps[tick % 10::10]])
                pause = started + (tick + 1) * 0.1 - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            received = wait_received(self.redis, sent, timeout=30, processes=processes)
        latencies = self.latencies(sent, received)
        record("hung apps", f"healthy app, enqueue -> receipt p50 ms ({HUNG_APPS} hung apps, {len(latencies)} samples)",
               percentile(latencies, 50), None, "info", None)
        p99 = percentile(latencies, 99)
        record("hung apps", f"healthy app, enqueue -> receipt p99 ms, WEBHOOK_TIMEOUT 1; {sizing}", p99, None,
               "<= 250 ms", p99 <= 250)
        record("hung apps", f"connections the hung receiver accepted in {self.hung_seconds:g} s",
               self.hung.accepted - accepted_before, None, "info", None)

    def case_noisy_neighbour(self) -> None:
        sent: dict[str, float] = {}
        with self.workers(1, WORKER_CONCURRENCY=32) as processes, self.app.app_context():
            self.enqueue_deliveries(self.n, [self.noisy_app], alerts=False)
            for _ in range(NEIGHBOUR_DELIVERIES):
                self.enqueue_measured([self.neighbour_app], sent, "neighbour")
                time.sleep(0.1)
            received = wait_received(self.redis, sent, timeout=30, processes=processes)
            left = self.n + NEIGHBOUR_DELIVERIES - self.redis.zcard(f"rq:finished:{keys.WEBHOOK_QUEUE}")
        p99 = percentile(self.latencies(sent, received), 99)
        record("noisy neighbour", f"other organisation's app, enqueue -> receipt p99 ms, while {self.n:,} deliveries "
               f"for one app ({NOISY_MS} ms receiver, cap {self.app_cap}) drain; 1 process x 32", p99, None,
               "<= 1000 ms", p99 <= 1000)
        record("noisy neighbour", "backlog deliveries still unsent when the neighbour's last one arrived", left, None,
               "info", None)

    def case_hostile_neighbours(self) -> None:
        """One organisation's 8 apps on slow (1.9 s) or hostile (endless trailers) receivers; a victim in another."""
        from webapp.accounts.people import get_or_create_organization
        from webapp.apps.internal_apps import register_internal_app

        trailers = EndlessTrailersServer().start()
        try:
            with self.app.app_context():
                slow_org, trailers_org = get_or_create_organization("hostile-slow"), get_or_create_organization("hostile")
                slow = [register_internal_app(slow_org, f"Slow {i}", f"http://127.0.0.1:{self.receiver_port}/hook?"
                                              f"delay_ms={HOSTILE_SLOW_MS}", ["issue"]).id for i in range(HOSTILE_APPS)]
                hostile = [register_internal_app(trailers_org, f"Trailers {i}", f"http://127.0.0.1:{trailers.port}/hook",
                                                 ["issue"]).id for i in range(HOSTILE_APPS)]
            for label, app_ids in (("answering 200 after 1.9 s", slow), ("sending endless trailers", hostile)):
                reset_redis(self.redis)
                self.redis.delete(keys.LAST_DELIVERY)
                p99, cpu_share = self.victim_beside(app_ids)
                record("hostile neighbours", f"victim app of another organisation, enqueue -> receipt p99 ms, beside "
                       f"{HOSTILE_APPS} apps of one organisation {label} (20 deliveries each queued, then more every "
                       f"second); 1 process x 32, WEBHOOK_TIMEOUT 5", p99, None, "<= 250 ms", p99 <= 250)
                if app_ids is hostile:
                    record("hostile neighbours", "worker CPU over that time, share of one core (endless trailers)",
                           cpu_share * 100, None, "<= 20 %", cpu_share <= 0.20)
        finally:
            trailers.stop()

    def victim_beside(self, app_ids: list[int]) -> tuple[float, float]:
        """Measure the victim (``neighbour_app``) every 100 ms while ``app_ids`` get a backlog and a stream."""
        from webapp.dispatch.delivery import enqueue_delivery_jobs

        sent: dict[str, float] = {}
        with self.workers(1, WORKER_CONCURRENCY=32) as processes, self.app.app_context():
            enqueue_delivery_jobs([(app_id, "issue.created", {"issue": {"id": str(i)}}, None, f"msg_h_{uuid.uuid4().hex}")
                                   for i in range(20) for app_id in app_ids])
            cpu_before, started = cpu_seconds(processes[0].pid), time.monotonic()
            ticks = int(HOSTILE_SECONDS * 10)
            for tick in range(ticks):
                self.enqueue_measured([self.neighbour_app], sent, "victim")
                if tick % 10 == 0:
                    enqueue_delivery_jobs([(app_id, "issue.created", {"issue": {"id": "t"}}, None,
                                            f"msg_h_{uuid.uuid4().hex}") for app_id in app_ids])
                pause = started + (tick + 1) * 0.1 - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            cpu_share = (cpu_seconds(processes[0].pid) - cpu_before) / (time.monotonic() - started)
            received = wait_received(self.redis, sent, timeout=30, processes=processes)
        return percentile(self.latencies(sent, received), 99), cpu_share

    def case_latency(self) -> None:
        sent: dict[str, float] = {}
        with self.workers(1, WORKER_CONCURRENCY=32) as processes, self.app.app_context():
            for _ in range(200):
                self.enqueue_measured([self.ids[0]], sent, "light")
                time.sleep(0.02)
            received = wait_received(self.redis, sent, timeout=60, processes=processes)
        latencies = self.latencies(sent, received)
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        record("latency", "enqueue -> receipt p50 ms (1 process x 32, a delivery every 20 ms)", p50, None, "<= 20 ms", p50 <= 20)
        record("latency", "enqueue -> receipt p99 ms", p99, None, "<= 100 ms", p99 <= 100)

    def case_fanout(self) -> None:
        """One change to 50 apps: the median of FANOUT_RUNS, after one that warms the worker up (reported too)."""
        from webapp.accounts.people import get_or_create_organization
        from webapp.apps.internal_apps import register_internal_app
        from webapp.core.extensions import db
        from webapp.dispatch.fanout import notify_resource_change

        if 1 not in self.per_worker:
            raise BenchError("needs the 1-process throughput of case 1")
        for slug, url, measured in (("fanout", f"http://127.0.0.1:{self.receiver_port}/hook", True),
                                    ("fanout-slow", f"http://127.0.0.1:{self.receiver_port}/hook?delay_ms={SLOW_MS}",
                                     False)):
            with self.app.app_context():
                org = get_or_create_organization(slug)
                app_ids = [register_internal_app(org, f"App {i}", url, ["issue"]).id for i in range(50)]
                org_id = org.id
            reset_redis(self.redis)
            times = []
            with self.workers(1, WORKER_CONCURRENCY=32) as processes, self.app.app_context():
                for _ in range(1 + FANOUT_RUNS):
                    self.redis.delete(keys.LAST_DELIVERY)
                    started = time.perf_counter()
                    notify_resource_change(org_id, "issue.created", {"issue": {"id": "1", "title": "fan-out"}})
                    db.session.commit()  # the outbox queues the 50 deliveries on commit
                    wait_delivered(self.redis, app_ids, timeout=60, processes=processes)
                    times.append(time.perf_counter() - started)
                    time.sleep(0.5)  # its runners have ended when the next begins
            first, elapsed = times[0], statistics.median(times[1:])
            if measured:
                budget = 1.5 * 50 / self.per_worker[1]
                record("fan-out", f"seconds from notify_resource_change + commit to 50 apps delivered (1 process), "
                       f"median of {FANOUT_RUNS}", elapsed, budget, "<= 1.5 x 50 / 1-process throughput",
                       elapsed <= budget)
                record("fan-out", "the same, the first one after the worker started (cold)", first, None, "info",
                       None)
            else:
                record("fan-out", f"the same to 50 apps answering in {SLOW_MS} ms, median of {FANOUT_RUNS} (1 "
                       f"process x 32: at best {50 * SLOW_MS / 32 / 1000:.2f} s)", elapsed, None, "info", None)
        self.fanout_with_hung()

    def fanout_with_hung(self) -> None:
        """One change to 50 apps of which FANOUT_HUNG hang (not known to hang: their last delivery forgotten)."""
        from datetime import datetime

        from webapp.accounts.people import get_or_create_organization
        from webapp.apps.internal_apps import register_internal_app
        from webapp.core.extensions import db
        from webapp.dispatch.fanout import notify_resource_change

        with self.app.app_context():
            org = get_or_create_organization("fanout-hung")
            hung_url, url = f"http://127.0.0.1:{self.hung.port}/hook", f"http://127.0.0.1:{self.receiver_port}/hook"
            app_ids = [register_internal_app(org, f"App {i}", hung_url if i % 5 < 2 else url, ["issue"]).id
                       for i in range(50)]  # every 5 apps: 2 hung, 3 healthy, so hung ones come first in line
            healthy = [app_id for i, app_id in enumerate(app_ids) if i % 5 >= 2]
            org_id = org.id
        reset_redis(self.redis)
        latencies = []
        with self.workers(1, WORKER_CONCURRENCY=32, WEBHOOK_TIMEOUT=1) as processes, self.app.app_context():
            for _ in range(FANOUT_RUNS):
                self.redis.delete(keys.LAST_DELIVERY)
                started = time.time()
                notify_resource_change(org_id, "issue.created", {"issue": {"id": "1", "title": "fan-out"}})
                db.session.commit()
                wait_delivered(self.redis, healthy, timeout=60, processes=processes)
                for value in self.redis.hmget(keys.LAST_DELIVERY, [str(app_id) for app_id in healthy]):
                    date = datetime.fromisoformat(json.loads(value)["date"].replace("Z", "+00:00"))
                    latencies.append((date.timestamp() - started) * 1000)
                time.sleep(1.5)  # the hung attempts end (WEBHOOK_TIMEOUT 1) before the next fan-out
        if os.environ.get("BENCH_DEBUG"):
            print(sorted(round(latency) for latency in latencies))
        p99 = percentile(latencies, 99)
        record("fan-out", f"{FANOUT_HUNG} of the 50 apps hang (not yet known to): the 30 healthy apps' notify -> "
               f"delivered p99 ms over {FANOUT_RUNS} fan-outs (1 process x 32, WEBHOOK_TIMEOUT 1)", p99, None,
               "<= 250 ms", p99 <= 250)

    def case_cost(self) -> None:
        from webapp.core.extensions import db
        from webapp.dispatch import webhooks
        from webapp.dispatch.queues import make_worker

        count = 200
        self.enqueue_deliveries(count, [self.ids[0]])
        calls = {"n": 0, "redis": 0}
        original = webhooks.send_and_save_webhook_request

        with self.app.app_context():
            engine = db.engine
        import webapp.dispatch.delivery as delivery_module
        import webapp.dispatch.tasks as tasks_module

        with RoundTrips(engine) as total:
            def counted(*args, **kwargs):
                before = total.redis
                result = original(*args, **kwargs)
                calls["n"] += 1
                calls["redis"] += total.redis - before
                return result

            for module in (webhooks, delivery_module, tasks_module):
                module.send_and_save_webhook_request = counted
            try:
                before_commands = self.commands()
                make_worker(self.app, [keys.WEBHOOK_QUEUE]).work(burst=True, logging_level="WARNING")
                commands = self.commands() - before_commands
            finally:
                for module in (webhooks, delivery_module, tasks_module):
                    module.send_and_save_webhook_request = original
        done = self.redis.zcard(f"rq:finished:{keys.WEBHOOK_QUEUE}")
        if done < count or not calls["n"]:
            raise BenchError(f"the burst worker finished {done}/{count} jobs")
        record("cost per delivery", "Redis round trips for log + health + last delivery", calls["redis"] / calls["n"],
               None, "1 pipelined round trip", calls["redis"] / calls["n"] <= 1.0)
        record("cost per delivery", "Redis round trips per delivery, RQ (with its rate limit) included",
               total.redis / count, None, "info", None)
        record("cost per delivery", "Redis commands per delivery, RQ included (server-wide count)", commands / count,
               None, "info", None)
        record("cost per delivery", "SQL statements per delivery", total.sql / count, None, "info", None)

        self.rq_floor()

    def rq_floor(self) -> None:
        """RQ's own CPU per job: an in-process burst worker over rate-limited jobs that do nothing.

        This is the floor under every delivery while each delivery is one RQ job (dequeue, execution
        registry, rate-limit release, result), whatever the delivery itself costs.
        """
        from webapp.core.outbox import JobSpec, enqueue_specs
        from webapp.dispatch.queues import make_worker

        count = 1000
        reset_redis(self.redis)
        specs = [JobSpec(func="benchmarks.receiver.noop_job", args=[], queue=keys.WEBHOOK_QUEUE, timeout=30,
                         rate_limit=[f"bench-floor:{i % FAST_APPS}", self.app_cap]) for i in range(count)]
        with self.app.app_context():
            enqueue_specs(specs, connection=self.redis)
        started = time.process_time()
        make_worker(self.app, [keys.WEBHOOK_QUEUE]).work(burst=True, logging_level="WARNING")
        cpu_ms = (time.process_time() - started) * 1000 / count
        done = self.redis.zcard(f"rq:finished:{keys.WEBHOOK_QUEUE}")
        if done < count:
            raise BenchError(f"the burst worker finished {done}/{count} empty jobs")
        record("cost per delivery", "RQ's own CPU ms per job (empty rate-limited job, one thread)", cpu_ms, None,
               "info", None)
        record("cost per delivery", "ceiling: empty RQ jobs/s per CPU core (RQ bookkeeping alone)", 1000 / cpu_ms,
               None, "info", None)

    def commands(self) -> int:
        return sum(stats["calls"] for name, stats in self.redis.info("commandstats").items())

    def case_memory(self) -> None:
        first_batch = min(1000, self.memory_n)
        with self.workers(1, WORKER_CONCURRENCY=32) as (worker,):
            self.enqueue_deliveries(first_batch, self.fast_apps)
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, first_batch, timeout=60 + first_batch / 20, processes=[worker])
            first = rss_kib(worker.pid)
            self.enqueue_deliveries(self.memory_n - first_batch, self.fast_apps)
            wait_finished(self.redis, keys.WEBHOOK_QUEUE, self.memory_n, timeout=60 + self.memory_n / 20,
                          processes=[worker])
            last = rss_kib(worker.pid)
        record("memory", f"worker RSS KiB after {first_batch:,} deliveries (1 process x WORKER_CONCURRENCY 32)", first,
               None, "info", None)
        record("memory", f"worker RSS KiB after {self.memory_n:,} deliveries, vs after {first_batch:,}", last, first,
               f"<= 1.1 x RSS after {first_batch:,} (flat)", last <= first * 1.10)
        limit = 1.5 * PREVIOUS_RSS_KIB
        record("memory", f"worker RSS KiB after {self.memory_n:,} deliveries, vs {PREVIOUS_RSS_KIB:,} KiB (the "
               "single-threaded worker after 10,000, measured on main before the engine change)", last,
               PREVIOUS_RSS_KIB, f"<= 1.5 x {PREVIOUS_RSS_KIB:,} = {limit:,.0f} KiB", last <= limit)

    def case_redis_memory(self) -> None:
        """What Redis holds for a steady stream of deliveries at the shipped JOB_RESULT_TTL, scaled to 1,000/s.

        1. One process (WORKER_CONCURRENCY 32) takes REDIS_RATE deliveries a second (half resource webhooks, half
           issue alerts, over 8 apps), queued in tenths of a second, until the first finished jobs have expired
           and RQ's registry clean-up (the housekeeper's, every 5 s) has run: a steady state.
        2. Every ``rq:*`` key's MEMORY USAGE is summed REDIS_SAMPLES times, 2 s apart, with the expired keys Redis
           has not reclaimed yet (its active expiry lags); the largest sum is what one delivery/s costs times the
           rate. Held memory grows linearly with the rate (each delivery's records live JOB_RESULT_TTL s), so it
           is scaled to 1,000/s. Hookline's own keys (request logs, health) are bounded per app, not per
           delivery, and are left out. Jobs still waiting at the end (reported) would only add to the figure.
        """
        from webapp.core.config import SETTINGS

        retention = SETTINGS["JOB_RESULT_TTL"][1]
        warm_up = retention + 5 + 2  # the first jobs expired and the registries cleaned once
        self.app.config["JOB_RESULT_TTL"] = retention
        samples: list[tuple[int, dict, int, int]] = []
        queued = 0
        try:
            with self.workers(1, WORKER_CONCURRENCY=32, JOB_RESULT_TTL=retention) as (worker,):
                started = time.monotonic()
                next_sample = started + warm_up
                while len(samples) < REDIS_SAMPLES:
                    self.enqueue_deliveries(REDIS_RATE // 10, self.fast_apps, prefix="msg_mem_")
                    queued += REDIS_RATE // 10
                    if time.monotonic() >= next_sample:
                        samples.append(self.redis_held())
                        next_sample += 2
                    check_alive([worker])
                    time.sleep(max(0.0, started + queued / REDIS_RATE - time.monotonic()))
                backlog = self.backlog()
        finally:
            self.app.config["JOB_RESULT_TTL"] = int(self.settings["JOB_RESULT_TTL"])
        held, kinds, finished, stale = max(samples, key=lambda sample: sample[0])
        per_rate = held / REDIS_RATE  # bytes held per delivery/s sustained
        at_target = per_rate * REDIS_TARGET_RATE / 1e6
        # A job hash and a result stream each, and an entry of the registry's sorted set.
        job, result, registry = (kinds.get(kind, (1, 0)) for kind in FINISHED_KINDS.values())
        per_finished = job[1] / job[0] + result[1] / result[0] + registry[1] / max(1, finished)
        record("redis memory", f"Redis KB held per delivery/s sustained (JOB_RESULT_TTL {retention} s; {REDIS_RATE}/s "
               f"for {time.monotonic() - started:.0f} s, the largest of {REDIS_SAMPLES} samples: "
               + ", ".join(f"{kind} {count:,} keys {size / 1e6:.2f} MB" for kind, (count, size) in kinds.items())
               + f", {stale:,} expired keys not yet reclaimed; {finished:,} finished jobs listed; {backlog} "
               "waiting at the end)", per_rate / 1000, None, "info", None)
        record("redis memory", f"Redis bytes per finished delivery ({', '.join(FINISHED_KINDS.values())}); at the 60 s "
               f"kept before, 1,000/s held {per_finished * 60 * REDIS_TARGET_RATE / 1e6:,.0f} MB", per_finished, None,
               "info", None)
        record("redis memory", "Redis MB held at 1,000 deliveries/s steady", at_target, None,
               f"<= {REDIS_TARGET_MB} MB", at_target <= REDIS_TARGET_MB)

    def redis_held(self) -> tuple[int, dict[str, tuple[int, int]], int, int]:
        """Return what Redis holds for RQ: MEMORY USAGE summed over every ``rq:*`` key, with the expired keys Redis
        has not reclaimed yet (counted by DBSIZE, skipped by SCAN); (keys, bytes) by kind; the finished jobs
        listed; and how many expired keys were not reclaimed."""
        counted = self.redis.dbsize()
        every = list(self.redis.scan_iter(count=1000))
        names = [name for name in every if name.startswith(b"rq:")]
        pipeline = self.redis.pipeline(transaction=False)
        for name in names:
            pipeline.memory_usage(name, samples=0)
        finished_keys = [name for name in names if name.startswith(b"rq:finished:")]
        for name in finished_keys:
            pipeline.zcard(name)
        replies = pipeline.execute()
        kinds: dict[str, tuple[int, int]] = {}
        for name, size in zip(names, replies):
            kind = FINISHED_KINDS.get(name[:name.find(b":", 3) + 1], "other rq keys")
            count, total = kinds.get(kind, (0, 0))
            kinds[kind] = (count + 1, total + (size or 0))  # None: the key expired between the scan and the read
        # An expired key not yet reclaimed is a job hash or a result stream: counted at their mean size.
        expiring = [kinds.get(kind, (0, 0)) for kind in ("job hashes", "result streams")]
        mean = sum(size for _, size in expiring) / max(1, sum(count for count, _ in expiring))
        stale = max(0, counted - len(every))
        return sum(size for _, size in kinds.values()) + int(stale * mean), kinds, sum(replies[len(names):]), stale

    def backlog(self) -> int:
        """Jobs queued or waiting for their app's place, not yet run."""
        return Queue(keys.WEBHOOK_QUEUE, connection=self.redis).count + rate_limited_waiting(self.redis)

    def case_ingestion(self) -> None:
        web = start_gunicorn("benchmarks.wsgi:application", self.web_port, self.env, workers=2,
                             log=self.work / "web.log")
        base = f"http://127.0.0.1:{self.web_port}"
        _, _, _, project_id, key = self.ids
        envelope_url = f"{base}/api/{project_id}/envelope/"
        headers = {"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip",
                   "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=sentry.python/2.0, sentry_key={key}"}
        try:
            count = self.n
            bare_rate = hammer(f"{base}/bare/", headers, count)
            rate = hammer(envelope_url, headers, count)
            record("ingestion", "envelopes accepted/s", rate, bare_rate, ">= 0.5 x bare endpoint", rate / bare_rate >= 0.5)
            reset_redis(self.redis)  # the hammering's ingest jobs are not run: those events are never stored
            latencies = []
            delivered = keys.request_log(self.ids[0], "error.created")
            self.redis.delete(delivered)
            with self.workers(1, WORKER_CONCURRENCY=32) as processes:
                session = requests.Session()
                for i in range(30):
                    started = time.time()
                    session.post(envelope_url, data=envelope_body(uuid.uuid4().hex, "e2e"), headers=headers, timeout=5)
                    deadline = time.time() + 10
                    while self.redis.llen(delivered) <= i:  # until the worker has delivered this event's error.created
                        if time.time() > deadline:
                            raise BenchError(f"error.created of end-to-end envelope {i + 1} not delivered within 10 s")
                        if processes[0].poll() is not None:
                            raise BenchError("the worker process died")
                        time.sleep(0.002)
                    latencies.append((time.time() - started) * 1000)
            p50 = percentile(latencies, 50)
            record("ingestion", "end to end, envelope POST to error.created in the log (accept, store job, "
                   "post-processing job, delivery), p50 ms", p50, None, "<= 50 ms", p50 <= 50)
        finally:
            stop([web])

    def case_refusal(self) -> None:
        from webapp.accounts.people import get_or_create_organization
        from webapp.apps.projects import create_project

        with self.app.app_context():
            victim = create_project(get_or_create_organization("victim"), "Victim")
            victim_url = f"http://127.0.0.1:{self.web_port}/api/{victim.id}/envelope/"
            victim_headers = {"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip",
                              "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={victim.client_keys[0].public_key}"}
        web = start_gunicorn("benchmarks.wsgi:application", self.web_port, self.env, workers=2,
                             log=self.work / "web.log")
        base = f"http://127.0.0.1:{self.web_port}"
        attacked = f"{base}/api/{self.ids[3]}/envelope/"
        bodies = hostile_bodies()
        try:
            workers = child_pids(web.pid)
            session = requests.Session()
            costs = {}
            for name, (body, encoding, status) in bodies.items():
                headers = {"Content-Encoding": encoding} if encoding else {}
                costs[name] = server_cpu_ms(workers, lambda: post_all(session, attacked, body, headers, status))
                record("refusal", f"server CPU ms per request without a key: {name}", costs[name], None, "info", None)
            worst = max(costs, key=costs.get)
            body, encoding, _ = bodies[worst]
            bare = server_cpu_ms(workers, lambda: post_all(session, f"{base}/bare/", body,
                                                          {"Content-Encoding": encoding} if encoding else {}, 200))
            record("refusal", f"server CPU ms per request without a key, the worst body ({worst}), vs the bare "
                   "endpoint reading the same body", costs[worst], bare, "<= 5 ms", costs[worst] <= 5)

            timed_envelopes(session, victim_url, victim_headers, 50)  # warm-up
            idle = percentile(timed_envelopes(session, victim_url, victim_headers, REFUSAL_SAMPLES), 99)
            stop_attack = threading.Event()
            rates = []
            attacker = threading.Thread(target=send_paced, args=(attacked, bodies, stop_attack, rates))
            attacker.start()
            try:
                beside = percentile(timed_envelopes(session, victim_url, victim_headers, REFUSAL_SAMPLES), 99)
            finally:
                stop_attack.set()
                attacker.join()
            if not rates or rates[0] < REFUSAL_RATE * 0.9:
                raise BenchError(f"the requests without a key did not go out at {REFUSAL_RATE}/s: {rates}")
            record("refusal", "another project's accepted envelope p99 ms, idle", idle, None, "info", None)
            record("refusal", f"another project's accepted envelope p99 ms beside {REFUSAL_RATE} requests a second "
                   "without a key, vs idle", beside, idle, "<= 2 x idle", beside <= 2 * idle)
        finally:
            stop([web])

    def case_dashboard(self) -> None:
        from webapp.accounts.people import get_or_create_organization
        from webapp.apps.internal_apps import register_internal_app
        from webapp.dispatch.events import EVENT_TYPES
        from webapp.models import Membership, User

        with self.app.app_context():
            org = get_or_create_organization("dash")
            from webapp.core.extensions import db

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
                if response.status_code != 200:
                    raise BenchError(f"{path} answered {response.status_code}")
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
                for key in (keys.integration_health(app_id, org_id, day), keys.health_history(app_id, day)):
                    pipe.hset(key, mapping={"success_count": 50, "error_count": 3, "timeout_count": 1})
            pipe.execute()

    def close(self) -> None:
        self.hung.stop()
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
            try:
                if session.post(url, data=body, headers=headers, timeout=10).ok:
                    accepted[index] += 1
            except requests.RequestException:
                pass

    started = time.perf_counter()
    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(accepted) / (time.perf_counter() - started)


def hostile_bodies() -> dict[str, tuple[bytes, str | None, int]]:
    """Bodies without a key that cost the most to read: name -> (body, Content-Encoding, the status expected)."""
    inflated = 5 * 1024 * 1024

    def inflating(head: bytes, filler: bytes) -> bytes:
        return head + filler * ((inflated - len(head)) // len(filler))

    return {
        "gzip, 4.9 KB of blank lines inflating to 5 MiB": (gzip.compress(inflating(b"{}\n", b"\n"), 9), "gzip", 401),
        "gzip, empty event items inflating to 5 MiB": (
            gzip.compress(inflating(b"{}\n", b'{"type":"event"}\n{}\n'), 9), "gzip", 401),
        "gzip, one 5 MiB line of brackets": (gzip.compress(inflating(b'{"x":', b"["), 9), "gzip", 400),
        "brotli, 16 MiB window, blank lines": (
            brotli.compress(inflating(b"{}\n", b"\n"), quality=5, lgwin=24), "br", 401),
        "plain, 1 MiB of escaped quotes": (b'{"dsn":"' + b'\\"' * 524_000, None, 400),
    }


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (gunicorn's workers)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def server_cpu_ms(pids: list[int], run) -> float:
    """Run ``run()`` (which returns how many requests it sent); return the CPU ms ``pids`` spent per request."""
    before = sum(cpu_seconds(pid) for pid in pids)
    count = run()
    return (sum(cpu_seconds(pid) for pid in pids) - before) * 1000 / count


def post_all(session: requests.Session, url: str, body: bytes, headers: dict, status: int) -> int:
    """POST ``body`` REFUSAL_REQUESTS times, one after another; each must be answered ``status``."""
    for _ in range(REFUSAL_REQUESTS):
        answer = session.post(url, data=body, headers=headers, timeout=10)
        if answer.status_code != status:
            raise BenchError(f"{url} answered {answer.status_code}, not {status}: {answer.text[:200]}")
    return REFUSAL_REQUESTS


def timed_envelopes(session: requests.Session, url: str, headers: dict, count: int, rate: float = 25) -> list[float]:
    """POST ``count`` envelopes at ``rate`` a second; return each one's ms to its 200."""
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        time.sleep(max(0.0, started + i / rate - time.perf_counter()))
        began = time.perf_counter()
        answer = session.post(url, data=envelope_body(uuid.uuid4().hex), headers=headers, timeout=10)
        latencies.append((time.perf_counter() - began) * 1000)
        if answer.status_code != 200:
            raise BenchError(f"an accepted envelope was answered {answer.status_code}: {answer.text[:200]}")
    return latencies


def send_paced(url: str, bodies: dict, stop_event: threading.Event, rates: list[float]) -> None:
    """POST the hostile bodies in turn, REFUSAL_RATE a second, until ``stop_event``; note each second's rate."""
    session = requests.Session()
    cycle = list(bodies.values())
    started = time.perf_counter()
    sent = 0
    while not stop_event.is_set():
        time.sleep(max(0.0, started + sent / REFUSAL_RATE - time.perf_counter()))
        body, encoding, _ = cycle[sent % len(cycle)]
        session.post(url, data=body, headers={"Content-Encoding": encoding} if encoding else {}, timeout=10)
        sent += 1
    rates.append(sent / (time.perf_counter() - started))


CASES = [
    ("1", "Delivery throughput to a fast receiver (1 and 2 worker processes x WORKER_CONCURRENCY 32)", "case_throughput"),
    ("2", f"Receiver answering in {SLOW_MS} ms (1 process x WORKER_CONCURRENCY 32)", "case_slow_receiver"),
    ("3", f"{HUNG_APPS} hung apps and a healthy one (1 process x WORKER_CONCURRENCY {HUNG_CONCURRENCY}, "
          "WEBHOOK_TIMEOUT 1)", "case_hung"),
    ("4", "Noisy neighbour: one app's backlog vs another organisation's app", "case_noisy_neighbour"),
    ("5", "Latency, enqueue to receipt (1 process, light load)", "case_latency"),
    ("11", "Slow and hostile neighbours: one organisation's 8 apps vs another's victim (1 process)",
     "case_hostile_neighbours"),
    ("6", "Fan-out: one change to 50 apps (1 process)", "case_fanout"),
    ("7", "Cost per delivery (in-process burst worker)", "case_cost"),
    ("8", "Worker memory (1 process x WORKER_CONCURRENCY 32)", "case_memory"),
    ("9", "Ingestion under gunicorn (2 workers) vs a bare endpoint in the same server", "case_ingestion"),
    ("10", "Dashboard server time with full buffers (100 apps, every list at 100 entries)", "case_dashboard"),
    ("12", f"Requests without a valid key: server CPU each, and another project beside {REFUSAL_RATE} a second "
           "(gunicorn, 2 workers)", "case_refusal"),
    ("13", f"Redis memory held by a steady {REDIS_RATE} deliveries/s (1 process x WORKER_CONCURRENCY 32)",
     "case_redis_memory"),
]


def run_case(bench: Bench, number: str, title: str, method: str) -> bool:
    """Run one case on clean queues; on failure record why and return False (the other cases still run)."""
    print(f"{number}. {title}", flush=True)
    started = time.monotonic()
    reset_redis(bench.redis)
    try:
        getattr(bench, method)()
        ok = True
    except Exception as exc:  # noqa: BLE001 - reported as a row; the run goes on
        message = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        if not isinstance(exc, BenchError):
            traceback.print_exc()
        record(method.removeprefix("case_").replace("_", " "), f"FAILED: {message}", None, None, "case completes", False)
        print(f"  ({exc})" if isinstance(exc, BenchError) else "", flush=True)
        ok = False
    finally:
        reset_redis(bench.redis)
    print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="deliveries per throughput/slow/backlog run (default 1000)")
    parser.add_argument("--throughput-n", type=int, default=3000,
                        help="deliveries per throughput run (default 3000: long enough that the burst's start-up, "
                             "queueing it and starting the batches, does not decide the rate)")
    parser.add_argument("--memory-deliveries", type=int, default=10_000)
    parser.add_argument("--hung-seconds", type=float, default=15.0, help="length of the hung-apps case (default 15)")
    parser.add_argument("--embedded-redis", action="store_true", help="always start a private Redis server")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"),
                        help="where to write the results (default benchmarks/results.json)")
    parser.add_argument("--cases", help="comma-separated case numbers to run (default: all)")
    args = parser.parse_args()
    chosen = set(args.cases.split(",")) if args.cases else {number for number, _, _ in CASES}
    if "6" in chosen:
        chosen.add("1")  # the fan-out budget comes from the 1-process throughput

    def terminate(signum, frame):
        raise SystemExit(128 + signum)  # unwind through the finally blocks, stopping every process

    signal.signal(signal.SIGTERM, terminate)
    started = time.monotonic()
    bench = Bench(args.n, args.memory_deliveries, args.hung_seconds, args.embedded_redis, args.throughput_n)
    failures = 0
    try:
        bench.seed()
        bench.start_receiver()
        for number, title, method in CASES:
            if number in chosen:
                failures += not run_case(bench, number, title, method)
    except (KeyboardInterrupt, SystemExit):
        print("\nInterrupted: processes stopped, results not written.", file=sys.stderr, flush=True)
        raise
    finally:
        bench.close()
    print_table()
    out = Path(args.out)
    out.write_text(json.dumps(RESULTS, indent=2) + "\n")
    print(f"\nWrote {out} in {time.monotonic() - started:.0f} s"
          + (f"; {failures} case(s) FAILED (logs in {bench.work})." if failures else "."))
    return 1 if failures else 0


def print_table() -> None:
    print("\n| case | figure | value | baseline | ratio | target | met |\n|---|---|---|---|---|---|---|")
    for row in RESULTS:
        cells = [row["case"], row["figure"], row["value"] if row["value"] is not None else "—",
                 row["baseline"] if row["baseline"] is not None else "",
                 row["ratio"] if row["ratio"] is not None else "", row["target"],
                 {True: "yes", False: "NO", None: "—"}[row["met"]]]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
