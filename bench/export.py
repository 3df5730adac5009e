"""`make bench` (issue 16): streaming exports at a million assessments and the purge under load.

    .venv/bin/python bench/export.py                  # 1,000,000 assessments; purge of 100,000 traces
    .venv/bin/python bench/export.py --quick          # 20,000 assessments; purge of 5,000 traces
    .venv/bin/python bench/export.py --only export --formats jsonl

Database: BENCH_EXPORT_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/fh_bench_export
(created and migrated when missing; its data is kept between runs).

export  tops the `export-bench` experiment up to --assessments assessments (generate_traces, two
        feedback per trace), then streams the whole experiment once per format, each in a fresh
        process (`--child export`), writing to /dev/null. Reported: rows/s by the wall clock,
        time to the first bytes, the process's RSS growth (sampled after every chunk, peak minus
        the RSS before the export; for Parquet after Arrow's libraries were loaded once), and the CPU seconds of the Python process and of its
        PostgreSQL backend, so a figure taken on a loaded machine can be judged: rows/s per
        CPU-second is what an idle two-core machine would sustain, at worst.
        Targets: JSONL ≥ 50,000 rows/s, RSS growth ≤ 50 MB.
purge   (destructive, re-created each run) the `purge-bench` experiment gets --purge-traces
        traces aged 60 days plus 200 fresh ones and retention_days=30; writer threads post
        feedback on the fresh traces through the service layer (log_feedback, one transaction
        each) for a baseline, then again while `purge_experiment` deletes the old traces in
        batches in its own process (`--child purge`, as cron runs `manage.py purge`: in the
        writers' process the interpreter lock alone stretched each batch to 250-500 ms).
        Reported: the purge's traces/s, each batch transaction's duration (how long it holds
        its rows' locks) and write latency p50/p99/max for both phases.
        Target: p99 ≤ 100 ms while purging.

Results: printed, and written to bench/results/export-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/fh_bench_export"
EXPORT_EXPERIMENT = "export-bench"
PURGE_EXPERIMENT = "purge-bench"
PYTHON = sys.executable


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


def django_setup(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "feedbackhub.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def manage(url: str, *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env={**os.environ, "DATABASE_URL": url}, check=True)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process on this machine (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- export --------------------------------------------------------------------------------------


def prepare_export(url: str, assessments: int) -> None:
    django_setup(url)
    from assessments.models import Assessment
    from traces.models import Experiment

    experiment = Experiment.objects.filter(name=EXPORT_EXPERIMENT).first()
    have = Assessment.objects.filter(experiment=experiment).count() if experiment else 0
    if have < assessments:
        traces = (assessments - have + 1) // 2
        log(f"generating {traces:,} traces with 2 feedback each ({have:,} assessments so far)")
        manage(url, "generate_traces", "--experiment", EXPORT_EXPERIMENT, "--traces", str(traces),
               "--spans-per-trace", "3", "--feedback-per-trace", "2", "--no-progress")  # fmt: skip
    else:
        log(f"{have:,} assessments already in {EXPORT_EXPERIMENT}")


def _warm_up_arrow() -> None:
    """Load Arrow's cast kernels and zstd once (tens of MB of library pages, whatever the data)
    so that the RSS growth measured is the export's, not the library's first use."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    times = pa.array(["2026-01-01T00:00:00+00:00"]).cast(pa.timestamp("us", tz="UTC"))
    pq.write_table(pa.table({"t": times, "m": pa.array([[("k", "v")]], pa.map_(pa.string(), pa.string()))}),
                   io.BytesIO(), compression="zstd")  # fmt: skip


def child_export(url: str, fmt: str, what: str) -> dict:
    """One export in this (fresh) process; returns its figures."""
    django_setup(url)
    from django.db import connection

    from assessments.exports import writers
    from assessments.exports.selectors import export_spec
    from traces.access import Actor
    from traces.models import Experiment

    experiment = Experiment.objects.get(name=EXPORT_EXPERIMENT)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    spec = export_spec(Actor.for_system("bench"), experiment, what=what)
    if fmt == "parquet":
        _warm_up_arrow()
    base = peak = rss_mb()
    rows = size = 0
    first = None

    def progress(n: int) -> None:
        nonlocal rows, peak
        rows += n
        peak = max(peak, rss_mb())

    py_cpu, pg_cpu = time.process_time(), cpu_seconds(backend)
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        for part in writers.stream(spec, fmt, progress=progress):
            if first is None:
                first = time.perf_counter() - started
            size += len(part)
            sink.write(part)
    wall = time.perf_counter() - started
    py_cpu, pg_cpu = time.process_time() - py_cpu, cpu_seconds(backend) - pg_cpu
    return {
        "format": fmt,
        "what": what,
        "rows": rows,
        "bytes": size,
        "wall_s": round(wall, 2),
        "rows_per_s": round(rows / wall),
        "first_bytes_ms": round((first or 0) * 1000),
        "rss_base_mb": round(base, 1),
        "rss_growth_mb": round(peak - base, 1),
        "python_cpu_s": round(py_cpu, 2),
        "postgres_cpu_s": round(pg_cpu, 2),
        "rows_per_cpu_s": round(rows / max(py_cpu + pg_cpu, 1e-9)),
    }


def run_exports(url: str, formats: list[str], what: str) -> list[dict]:
    results = []
    for fmt in formats:
        log(f"export {what} as {fmt}")
        out = subprocess.run(
            [PYTHON, __file__, "--child", "export", "--format", fmt, "--what", what],
            cwd=ROOT,
            env={**os.environ, "BENCH_EXPORT_DATABASE_URL": url},
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        log(
            f"  {result['rows']:,} rows in {result['wall_s']} s = {result['rows_per_s']:,} rows/s "
            f"(first bytes {result['first_bytes_ms']} ms), RSS +{result['rss_growth_mb']} MB, "
            f"CPU python {result['python_cpu_s']} s + postgres {result['postgres_cpu_s']} s "
            f"= {result['rows_per_cpu_s']:,} rows per CPU-second"
        )
        results.append(result)
    return results


# --- purge under load ----------------------------------------------------------------------------


def prepare_purge(url: str, traces: int) -> None:
    django_setup(url)
    from django.db import connection

    from traces.models import Experiment

    Experiment.objects.filter(name=PURGE_EXPERIMENT).delete()
    log(f"generating {traces:,} old traces (3 spans, 2 feedback each) and 200 fresh ones in {PURGE_EXPERIMENT}")
    manage(url, "generate_traces", "--experiment", PURGE_EXPERIMENT, "--traces", str(traces),
           "--spans-per-trace", "3", "--feedback-per-trace", "2", "--no-progress", "--no-analyze")  # fmt: skip
    experiment = Experiment.objects.get(name=PURGE_EXPERIMENT)
    with connection.cursor() as cursor:
        # Bench setup only: age the generated traces past the retention.
        cursor.execute(
            "UPDATE traces_trace SET request_time = request_time - interval '60 days' WHERE experiment_id = %s",
            [experiment.pk],
        )
    manage(url, "generate_traces", "--experiment", PURGE_EXPERIMENT, "--traces", "200", "--days", "1",
           "--spans-per-trace", "3", "--feedback-per-trace", "1", "--no-progress")  # fmt: skip


def _writer(stop: threading.Event, trace_ids: list[str], latencies: list[float], errors: list[str], seed: int):
    from django.db import connection

    from assessments import services
    from traces.access import Actor
    from traces.models import Trace

    actor = Actor.for_system("bench-writer")
    n = seed
    while not stop.is_set():
        trace = Trace.objects.only("trace_id", "experiment_id").get(pk=trace_ids[n % len(trace_ids)])
        started = time.perf_counter()
        try:
            services.log_feedback(
                trace=trace, name="bench_write", value=bool(n % 2), source_type="HUMAN", source_id=f"u{n}",
                actor=actor, channel="api",
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a bench counts failures instead of stopping
            errors.append(repr(exc)[:200])
        latencies.append(time.perf_counter() - started)
        n += 7
    connection.close()


def _load(seconds: float | None, threads: int, trace_ids: list[str], during=None) -> tuple[dict, object]:
    stop, latencies, errors = threading.Event(), [], []
    workers = [threading.Thread(target=_writer, args=(stop, trace_ids, latencies, errors, i)) for i in range(threads)]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    outcome = during() if during is not None else time.sleep(seconds)
    elapsed = time.perf_counter() - started
    stop.set()
    for worker in workers:
        worker.join()
    ordered = sorted(latencies)
    figures = {
        "writes": len(ordered),
        "writes_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1) if ordered else None,
        "max_ms": round(ordered[-1] * 1000, 1) if ordered else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }
    return figures, outcome


def child_purge(url: str, batch_size: int) -> dict:
    """The purge in this (own) process, as cron runs `manage.py purge`: the writers' threads do not
    share its interpreter lock. Returns what it deleted and how long each batch's transaction
    (which holds the batch's row locks) took."""
    django_setup(url)
    from assessments.retention import services as retention_services
    from traces.models import Experiment

    batch_ms = []
    delete_traces = retention_services.delete_traces

    def timed_delete(**kwargs):
        batch_started = time.perf_counter()
        try:
            return delete_traces(**kwargs)
        finally:
            batch_ms.append((time.perf_counter() - batch_started) * 1000)

    retention_services.delete_traces = timed_delete
    experiment = Experiment.objects.get(name=PURGE_EXPERIMENT)
    started = time.perf_counter()
    result = retention_services.purge_experiment(experiment=experiment, batch_size=batch_size)
    seconds = time.perf_counter() - started
    batch_ms.sort()
    return {
        "deleted": result.deleted,
        "batches": result.batches,
        "seconds": seconds,
        "batch_transaction": {
            "p50_ms": round(statistics.median(batch_ms), 1) if batch_ms else None,
            "p99_ms": round(batch_ms[max(int(len(batch_ms) * 0.99) - 1, 0)], 1) if batch_ms else None,
            "max_ms": round(batch_ms[-1], 1) if batch_ms else None,
        },
    }


def _purge_process(url: str, batch_size: int) -> dict:
    out = subprocess.run(
        [PYTHON, __file__, "--child", "purge", "--batch-size", str(batch_size)],
        cwd=ROOT,
        env={**os.environ, "BENCH_EXPORT_DATABASE_URL": url},
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_purge(url: str, traces: int, threads: int, batch_size: int) -> dict:
    prepare_purge(url, traces)
    from datetime import timedelta

    from django.utils import timezone as django_timezone

    from assessments.experiment_settings import update_experiment_settings
    from traces.access import Actor
    from traces.models import Experiment, Trace

    experiment = Experiment.objects.get(name=PURGE_EXPERIMENT)
    update_experiment_settings(experiment=experiment, actor=Actor.for_system("bench"), retention_days=30)
    fresh = list(
        Trace.objects.filter(
            experiment=experiment, request_time__gte=django_timezone.now() - timedelta(days=2)
        ).values_list("pk", flat=True)
    )
    old = Trace.objects.filter(experiment=experiment).count() - len(fresh)
    log(f"baseline: {threads} writer threads for 10 s on {len(fresh)} fresh traces")
    baseline, _ = _load(10, threads, fresh)
    log(f"  {baseline}")
    log(f"purging {old:,} traces (batches of {batch_size}, own process) under the same load")
    during, result = _load(None, threads, fresh, during=lambda: _purge_process(url, batch_size))
    seconds = result["seconds"]
    log(f"  deleted {result['deleted']:,} traces in {seconds:.1f} s ({result['deleted'] / seconds:,.0f} traces/s, "
        f"{result['batches']} batches, each transaction {result['batch_transaction']}); writes: {during}")  # fmt: skip
    left = Trace.objects.filter(experiment=experiment).count()
    return {
        "old_traces": old,
        "deleted": result["deleted"],
        "left": left,
        "purge_s": round(seconds, 1),
        "traces_per_s": round(result["deleted"] / seconds),
        "batch_size": batch_size,
        "batches": result["batches"],
        "batch_transaction": result["batch_transaction"],
        "writer_threads": threads,
        "writes_baseline": baseline,
        "writes_during_purge": during,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 assessments, a purge of 5,000 traces")
    parser.add_argument("--only", choices=["export", "purge"])
    parser.add_argument("--assessments", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,csv,parquet")
    parser.add_argument("--what", default="assessments", choices=["assessments", "traces"])
    parser.add_argument("--purge-traces", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=4, help="feedback writer threads during the purge")
    parser.add_argument("--batch-size", type=int, default=None, help="purge batch size (default: the service's)")
    parser.add_argument("--child", choices=["export", "purge"], help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("BENCH_EXPORT_DATABASE_URL", DEFAULT_DATABASE_URL)
    if args.child == "export":
        print(json.dumps(child_export(url, args.format, args.what)))
        return
    if args.child == "purge":
        print(json.dumps(child_purge(url, args.batch_size)))
        return
    if args.quick:
        args.assessments, args.purge_traces = 20_000, 5_000
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([PYTHON, "bench/ensure_database.py"], cwd=ROOT, env=env, check=True)
    manage(url, "migrate", "--noinput", "-v", "0")
    report = {"date": datetime.now(timezone.utc).isoformat(), "load_average": os.getloadavg(), "cores": os.cpu_count()}
    if args.only in (None, "export"):
        prepare_export(url, args.assessments)
        report["export"] = run_exports(url, args.formats.split(","), args.what)
    if args.only in (None, "purge"):
        if args.only == "purge":
            django_setup(url)
        from assessments.retention.services import BATCH_SIZE

        report["purge"] = run_purge(url, args.purge_traces, args.writers, args.batch_size or BATCH_SIZE)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"export-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    log(f"results in {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
