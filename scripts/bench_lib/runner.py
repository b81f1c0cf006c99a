"""Orchestrate a benchmark: one S3 server, then per scenario the data, ceilings and tool passes."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Callable, Mapping

from bench_lib.ceilings import (
    S3_UPLOAD,
    Ceiling,
    ensure_bucket,
    local_ceilings,
    s3_ceilings,
    s3_client,
    walk_ceiling,
)
from bench_lib.config import CEILINGS_CACHED, CEILINGS_FORMAT, CEILINGS_OFF, MAIN_SCENARIOS, SCENARIOS, BenchPaths
from bench_lib.datagen import Dataset, ensure_dataset
from bench_lib.pipeline import Cell, RunContext, ToolPass
from bench_lib.report import first_line, machine_info, render_scenario, scenario_json, write_json
from bench_lib.tools import Driver, base_env, make_dvc, make_vtool
from integration.s3server import S3Server, ServerError

Log = Callable[[str], None]
BUCKET_PREFIX = "bench"


def measure_ceilings(ds: Dataset, args: argparse.Namespace, paths: BenchPaths, server: S3Server,
                     log: Log) -> dict[str, Ceiling]:
    """Measure the local and S3 ceilings of a scenario's data."""
    name = ds.scenario.name
    scratch = paths.work(name) / "ceilings"
    log(f"{name}: local ceilings")
    ceilings = local_ceilings(ds, scratch, args.runs)
    log(f"{name}: S3 ceilings, boto3 pools {args.ceiling_threads}")
    try:
        bucket = f"{BUCKET_PREFIX}-ceiling-{name}"
        ceilings.update(s3_ceilings(ds, server.endpoint, server.env(), bucket, scratch, args.ceiling_threads, log))
    except Exception as e:  # noqa: BLE001 - a broken ceiling must not lose the tool numbers
        log(f"{name}: S3 ceilings failed: {e!r}")
    return ceilings


def get_ceilings(ds: Dataset, args: argparse.Namespace, paths: BenchPaths, server: S3Server,
                 machine: Mapping[str, object], log: Log) -> dict[str, Ceiling]:
    """Return the ceilings: none, measured now, or reused when the same data was measured here before."""
    if args.ceilings == CEILINGS_OFF:  # the walk still is a row: status is held against it, and it is cheap
        log(f"{ds.scenario.name}: the bare scandir+stat walk (--ceilings off skips the others)")
        return {"walk": walk_ceiling(ds, args.runs)}
    key = {"format": CEILINGS_FORMAT, "hash_v1": ds.hash_v1, "hash_v2": ds.hash_v2,
           "threads": args.ceiling_threads, "nproc": machine.get("nproc"),
           "memory_gib": machine.get("memory_gib")}
    cache = paths.ceilings(ds.scenario.name)
    if args.ceilings == CEILINGS_CACHED and cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            log(f"{ds.scenario.name}: ceilings reused from {cache} (--ceilings fresh re-measures)")
            return {n: Ceiling.from_json(n, c) for n, c in saved["ceilings"].items()}
    ceilings = measure_ceilings(ds, args, paths, server, log)
    if S3_UPLOAD in ceilings:
        write_json(cache, {"key": key, "ceilings": {n: c.to_json() for n, c in ceilings.items()}})
    return ceilings


def run_scenario(name: str, args: argparse.Namespace, paths: BenchPaths, server: S3Server,
                 drivers: Mapping[str, Driver], machine: Mapping[str, object], log: Log) -> dict[str, object]:
    """Generate the data, measure ceilings, run every tool, print the results; save them after each tool.

    Saved before each tool's work folder is removed: on the huge scenario that removal takes minutes, and a
    run stopped during it must not lose the tool's cells.
    """
    started = time.perf_counter()
    ds = ensure_dataset(SCENARIOS[name], args.seed, paths.data(name), log)
    work = paths.work(name)
    shutil.rmtree(work, ignore_errors=True)
    ceilings = get_ceilings(ds, args, paths, server, machine, log)
    cells: dict[str, dict[str, Cell]] = {}
    settings = {"runs": args.runs_map, "jobs": args.jobs, "seed": args.seed, "tools": args.tools,
                "commands": {t: drivers[t].exe[-1] for t in args.tools}}
    doc: dict[str, object] = {}
    for tool in args.tools:
        bucket = f"{BUCKET_PREFIX}-{tool}-{name}"
        ensure_bucket(s3_client(server.endpoint, server.env(), 1), bucket)
        timeout = args.dvc_timeout if tool == "dvc" and args.dvc_timeout else args.timeout
        ctx = RunContext(work / tool, paths.logs(name), bucket, server.endpoint, args.jobs, timeout,
                         args.runs_map, frozenset(args.ops), lambda msg, n=name: log(f"{n}: {msg}"),
                         server.s3_requests)
        cells[tool] = ToolPass(drivers[tool], ds, ctx).run()
        doc = scenario_json(ds, args.ops, cells, ceilings, machine, settings, time.perf_counter() - started)
        write_json(paths.results(name), doc)
        if not args.keep_work:
            shutil.rmtree(ctx.work, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(render_scenario(ds, args.ops, cells, ceilings), flush=True)
    print(f"({name} took {elapsed:.0f} s; logs in {paths.logs(name)})\n", flush=True)
    if not args.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    return doc


def run_all(args: argparse.Namespace, paths: BenchPaths, log: Log, start: float) -> int:
    """Start the server once, run the scenarios, write the combined JSON; return the exit code."""
    names = list(MAIN_SCENARIOS) if args.scenario == "all" else [args.scenario]
    shutil.rmtree(paths.s3, ignore_errors=True)
    log(f"starting the local S3 server ({args.server})")
    try:
        server = S3Server(args.server, paths.s3)
        server.start()
    except ServerError as e:
        log(f"cannot start the S3 server: {e}")
        return 1
    results: dict[str, object] = {}
    try:
        log(f"S3 server at {server.endpoint}")
        env = base_env(server.env(), paths.root)
        drivers = {"dvc": make_dvc(paths.dvc_venv, env, paths.root),
                   "vtool": make_vtool(paths.repo, paths.vtool_venv, env)}
        versions = {f"{t}_version": first_line(drivers[t].argv("version")[0], drivers[t].env_base) for t in args.tools}
        machine = machine_info(paths.root, versions)
        print("machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()), flush=True)
        for name in names:
            results[name] = run_scenario(name, args, paths, server, drivers, machine, log)
    finally:
        log("stopping the S3 server")
        server.stop()
        if not args.keep_work:
            shutil.rmtree(paths.s3, ignore_errors=True)
    total = time.perf_counter() - start
    print(f"total runtime: {total:.0f} s")
    if args.json:
        write_json(args.json, {"scenarios": results, "elapsed_s": total})
        log(f"wrote {args.json}")
    return 0
