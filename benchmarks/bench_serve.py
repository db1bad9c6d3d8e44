"""Load benchmark of `maskvit serve`: throughput and latency with and without dynamic batching.

    python benchmarks/bench_serve.py                        # shipped push64, full run
    python benchmarks/bench_serve.py --clients 1,2 --rounds 2 --min-requests 2 --soak-seconds 3 --storm 40 \
        --slow-clients 20 --read-timeout 2 --num-frames 2 --steps 2 --plan-samples 4 --plan-iterations 1 --plan-horizon 2   # smoke

In one run, against real server processes (`maskvit serve`, started and stopped here):

1. for each server configuration, the server's defaults (dynamic batching) and the same with
   --max-batch 1: for each mode (predict, plan) and each number of concurrent clients (1, 8,
   32), --rounds rounds in which every client sends requests back to back (closed loop) until
   the cell has at least --min-requests; req/s as the mean of the rounds with a 95 % t
   interval, p50 and p99 latency with distribution-free 95 % intervals (order statistics),
   and errors (anything but 200: the run fails if there is one);
2. soak (default server): --soak-seconds of mixed predict/plan load at the largest client
   count, the server's RSS sampled every --rss-every s; the troughs (the lowest sample of
   each minute) must not rise over the second half;
3. slow-client storm (default server): --slow-clients connections that send half a request
   head and stall; while they are open, /v1/health and a good predict must answer 200, and
   the server must close the stalled ones after its --read-timeout;
4. bad-input storm (default server): --storm malformed requests (bad base64, wrong shapes,
   NaN actions, oversize bodies, missing token, ...) from 32 clients; every answer must be a
   one-line 4xx, and the server must still answer a good request afterwards.

Servers run with `maskvit serve`'s defaults except the few flags a benchmark needs (a port,
a token, quiet logs); --server-arg adds more (e.g. --server-arg=--queue-limit=256).

Inputs are real push-world frames (held-out episodes and tasks). Results go to --out as JSON
and are printed as a table. Each server runs with --threads torch threads (OMP_NUM_THREADS).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TOKEN = "bench-token-" + "x" * 20


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="run or bundle (default: the shipped push64)")
    p.add_argument("--clients", default="1,8,32", help="concurrent clients per cell (default 1,8,32)")
    p.add_argument("--rounds", type=int, default=3, help="rounds per cell, for the req/s interval (default 3)")
    p.add_argument("--min-requests", type=int, default=30,
                   help="fewest requests per round and cell (default 30; each client sends "
                        "ceil(min/clients))")
    p.add_argument("--plan-min-requests", type=int, default=None,
                   help="the same for plan cells (default: --min-requests)")
    p.add_argument("--modes", default="predict,plan", help="predict, plan or both (default both)")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra `maskvit serve` flag for every server (repeatable; default: none)")
    p.add_argument("--num-frames", type=int, default=10, help="frames per prediction (default 10)")
    p.add_argument("--steps", type=int, default=None, help="decoding steps (default: the preset's)")
    p.add_argument("--plan-samples", type=int, default=16, help="CEM samples per plan (default 16)")
    p.add_argument("--plan-iterations", type=int, default=2, help="CEM iterations (default 2)")
    p.add_argument("--plan-horizon", type=int, default=5, help="plan horizon (default 5)")
    p.add_argument("--soak-seconds", type=float, default=600.0, help="soak length (default 600; 0 skips)")
    p.add_argument("--rss-every", type=float, default=5.0, help="RSS sampling period in the soak, s (default 5)")
    p.add_argument("--soak-only", action="store_true", help="only the soak (and storms), no cells")
    p.add_argument("--slow-clients", type=int, default=300,
                   help="stalled half-sent connections in the slow-client storm (default 300; 0 skips)")
    p.add_argument("--read-timeout", type=float, default=None,
                   help="the servers' --read-timeout, s (default: the server's own)")
    p.add_argument("--malloc-arena-max", type=int, default=None,
                   help="MALLOC_ARENA_MAX of the server (glibc; default: glibc's own)")
    p.add_argument("--storm", type=int, default=2000, help="bad requests in the storm (default 2000; 0 skips)")
    p.add_argument("--threads", type=int, default=None, help="torch threads of each server (default: all cores)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--client-timeout", type=float, default=600.0,
                   help="how long a benchmark client waits for an answer, s (default 600)")
    p.add_argument("--out", default="benchmarks/bench_serve.json", help="JSON results")
    return p.parse_args(argv)


# ------------------------------------------------------------------ inputs


def png(frame: np.ndarray) -> str:
    from maskvit.serve.frames import encode_png

    return encode_png(frame)


def make_inputs(count: int, num_frames: int):
    """Push-world context frames, actions and goal images from held-out episodes / tasks."""
    from maskvit.sim import PushEnv, make_push_task
    from maskvit.sim.collection import collect_episode

    env = PushEnv()
    predict, plan = [], []
    for i in range(count):
        episode = collect_episode(env, 4242, i, num_frames + 2)
        actions = np.clip(episode["actions"][: 2 + num_frames], -0.05, 0.05)
        predict.append({"context": [[png(f) for f in episode["frames"][:2]]],
                        "actions": [actions.tolist()], "num_frames": num_frames})
        first, _ = env.reset(options={"task": make_push_task(1000 + i, env.config)})
        goal = env.goal_image()
        second, *_ = env.step(np.zeros(2, np.float32))
        plan.append({"context": [png(first), png(second)], "context_actions": [[0.0, 0.0]],
                     "goal": png(goal)})
    env.close()
    return predict, plan


def bad_requests(good_predict: dict, good_plan: dict) -> list[tuple[str, str, dict, dict]]:
    """(name, path, httpx kwargs, headers) of malformed requests, each a certain 4xx."""
    def variant(change, base=good_predict):
        body = json.loads(json.dumps(base))
        change(body)
        return {"content": json.dumps(body)}

    small_png = png(np.zeros((8, 8, 3), np.uint8))
    json_type = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    return [
        ("bad base64", "/v1/predict", variant(lambda b: b["context"][0].__setitem__(0, "@@@")), json_type),
        ("not png", "/v1/predict", variant(lambda b: b["context"][0].__setitem__(0, base64.b64encode(b"GIF89a").decode())), json_type),
        ("wrong size", "/v1/predict", variant(lambda b: b["context"][0].__setitem__(0, small_png)), json_type),
        ("wrong action shape", "/v1/predict", variant(lambda b: b.update(actions=[[[0.0, 0.0]]])), json_type),
        ("NaN action", "/v1/predict", variant(lambda b: b["actions"][0][0].__setitem__(0, float("nan"))), json_type),
        ("out of bounds", "/v1/predict", variant(lambda b: b["actions"][0][0].__setitem__(0, 9.0)), json_type),
        ("too many frames", "/v1/predict", variant(lambda b: b.update(num_frames=500)), json_type),
        ("not json", "/v1/predict", {"content": b"{{{"}, json_type),
        ("oversize", "/v1/predict", {"content": b"0" * (9 * 2**20)}, json_type),
        ("npy garbage", "/v1/predict", {"content": b"\x93NUMPY garbage"},
         {"Content-Type": "application/x-npy", "Authorization": f"Bearer {TOKEN}"}),
        ("no token", "/v1/predict", {"content": json.dumps(good_predict)}, {"Content-Type": "application/json"}),
        ("wrong token", "/v1/plan", {"content": json.dumps(good_plan)},
         {"Content-Type": "application/json", "Authorization": "Bearer wrong-token-wrong-token"}),
        ("plan too many samples", "/v1/plan", variant(lambda b: b.update(samples=10**6), good_plan), json_type),
        ("plan bad goal", "/v1/plan", variant(lambda b: b.update(goal="???"), good_plan), json_type),
    ]


# ------------------------------------------------------------------ servers


def start_server(args, name: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    """A `maskvit serve` at its defaults plus `extra` flags; returns the process and its URL."""
    token_file = Path(f".bench_serve_token_{os.getpid()}")
    token_file.write_text(TOKEN)
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    if args.malloc_arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
    cmd = [sys.executable, "-m", "maskvit", "serve", "--port", "0", "--token-file", str(token_file),
           "--log-level", "warning", "--device", args.device, *args.server_arg, *extra]
    if args.read_timeout is not None:
        cmd += ["--read-timeout", str(args.read_timeout)]
    if args.model:
        cmd += ["--model", args.model]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    token_file.unlink()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"{name} server did not start: {line!r}")
    url = "http://" + line.split("http://")[1].split(" ")[0]
    print(f"[{name}] server pid {proc.pid} at {url} ({' '.join(cmd[3:])})", flush=True)
    return proc, url


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return -9


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------ load


async def run_clients(url: str, clients: int, requests: int, make_request, timeout: float) -> dict:
    """`clients` closed-loop clients, `requests` each; latencies of the 200s, other statuses."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        async def worker(index: int) -> None:
            for r in range(requests):
                path, body = make_request(index, r)
                started = time.perf_counter()
                try:
                    answer = await client.post(path, json=body)
                    status = str(answer.status_code)
                except httpx.HTTPError as err:
                    status = type(err).__name__
                if status == "200":
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[status] = errors.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(clients)))
        wall = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {"clients": clients, "requests": clients * requests, "ok": len(latencies),
            "errors": errors, "wall_s": round(wall, 3), "latencies_ms": [round(v, 2) for v in ms],
            "req_per_s": round(len(latencies) / wall, 3) if wall else 0.0,
            "p50_ms": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 1) if len(ms) else None}


async def run_soak(url: str, clients: int, seconds: float, make_request, timeout: float,
                   pid: int, every: float = 5.0) -> dict:
    """Closed-loop mixed load for `seconds`; the server's RSS sampled every `every` s, so a
    plateau (allocator caches filling once) tells apart from growth that would not stop."""
    import httpx

    ok, errors = 0, {}
    series = [(0.0, round(rss_mb(pid), 1))]
    start = time.monotonic()
    deadline = start + seconds

    async def sampler() -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(min(every, max(deadline - time.monotonic(), 0.0)))
            series.append((round(time.monotonic() - start, 1), round(rss_mb(pid), 1)))
    async with httpx.AsyncClient(base_url=url, timeout=timeout,
                                 limits=httpx.Limits(max_connections=clients),
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        async def worker(index: int) -> None:
            nonlocal ok
            r = 0
            while time.monotonic() < deadline:
                path, body = make_request(index, r)
                r += 1
                try:
                    status = str((await client.post(path, json=body)).status_code)
                except httpx.HTTPError as err:
                    status = type(err).__name__
                if status == "200":
                    ok += 1
                else:
                    errors[status] = errors.get(status, 0) + 1

        await asyncio.gather(sampler(), *(worker(i) for i in range(clients)))
    half = [mb for t, mb in series if t >= seconds / 2]
    return {"ok": ok, "errors": errors, "rss_series_mb": series,
            "rss_growth_second_half_mb": round(half[-1] - half[0], 1) if len(half) > 1 else None}


# ------------------------------------------------------------------ statistics


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % Student-t interval of a few rounds' values."""
    from scipy import stats

    x = np.asarray(values, float)
    if len(x) < 2:
        return float(x.mean()), float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def quantile_interval(values: list[float], q: float) -> tuple[float, float, float]:
    """The q-quantile and a distribution-free 95 % interval for it (binomial order statistics;
    nan where too few samples bound it, e.g. the p99 of fewer than ~300)."""
    from scipy import stats

    x = np.sort(np.asarray(values, float))
    n = len(x)
    low = int(stats.binom.ppf(0.025, n, q))  # rank (1-based) of the lower bound
    high = int(stats.binom.ppf(0.975, n, q)) + 1
    lower = float(x[low - 1]) if low >= 1 else float("nan")
    upper = float(x[high - 1]) if high <= n else float("nan")
    return float(np.quantile(x, q)), lower, upper


def summarise_cell(rounds: list[dict]) -> dict:
    """One cell from its rounds: req/s mean and interval, pooled latency percentiles."""
    latencies = [v for r in rounds for v in r.pop("latencies_ms")]
    cell = {"rounds": len(rounds), "requests": sum(r["requests"] for r in rounds),
            "ok": len(latencies), "errors": {},
            "req_per_s": [round(v, 3) for v in mean_interval([r["req_per_s"] for r in rounds])],
            "per_round": rounds}
    for r in rounds:
        for key, count in r["errors"].items():
            cell["errors"][key] = cell["errors"].get(key, 0) + count
    for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99)):
        cell[name] = [round(v, 1) for v in quantile_interval(latencies, q)] if latencies else None
    return cell


def troughs(series: list[tuple[float, float]], window: float = 60.0) -> list[tuple[float, float]]:
    """The lowest RSS sample of each `window` seconds: what stays resident between bursts."""
    lowest: dict[int, float] = {}
    for t, mb in series:
        lowest[int(t // window)] = min(lowest.get(int(t // window), float("inf")), mb)
    return [(k * window, v) for k, v in sorted(lowest.items())]


def fmt(triple) -> str:
    """'value [low, high]' for a (value, low, high) triple."""
    if triple is None:
        return "-"
    value, low, high = triple
    return f"{value:g} [{low:g}, {high:g}]"


# ------------------------------------------------------------------ slow clients


async def run_slow_clients(host: str, port: int, count: int, url: str, make_predict,
                           read_timeout: float, timeout: float) -> dict:
    """`count` connections send half a request head and stall. While they are open, /v1/health
    and a good predict must answer; after the read timeout the server must have closed them."""
    import httpx

    head = (f"POST /v1/predict HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: application/json\r\n").encode()  # no blank line: the head never ends
    writers = []
    for _ in range(count):
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(head)
            await writer.drain()
            writers.append((reader, writer))
        except OSError:
            break
    async with httpx.AsyncClient(base_url=url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        started = time.perf_counter()
        health = (await client.get("/v1/health")).status_code
        health_s = time.perf_counter() - started
        path, body = make_predict(0, 0)
        started = time.perf_counter()
        predict = (await client.post(path, json=body)).status_code
        predict_s = time.perf_counter() - started

    async def closed_by_server(reader) -> bool:
        try:
            await asyncio.wait_for(reader.read(), read_timeout + 30)  # EOF (after a 408 or a close)
            return True
        except (asyncio.TimeoutError, OSError):
            return False

    closed = await asyncio.gather(*(closed_by_server(r) for r, _ in writers))
    for _, writer in writers:
        writer.close()
    return {"stalled_connections": len(writers), "health_status": health,
            "health_s": round(health_s, 3), "predict_status": predict, "predict_s": round(predict_s, 3),
            "closed_by_server": int(sum(closed))}


async def run_storm(url: str, count: int, bad: list, timeout: float) -> dict:
    import httpx

    statuses: dict[str, int] = {}
    queue = list(range(count))
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=httpx.Limits(max_connections=32)) as client:
        async def worker() -> None:
            while queue:
                i = queue.pop()
                name, path, kwargs, headers = bad[i % len(bad)]
                try:
                    answer = await client.post(path, headers=headers, **kwargs)
                    key = f"{answer.status_code}"
                    if not 400 <= answer.status_code < 500 or "\n" in answer.json().get("detail", "\n"):
                        key = f"{answer.status_code} (not a one-line 4xx: {name})"
                except (httpx.HTTPError, ValueError) as err:
                    key = f"{type(err).__name__} ({name})"
                statuses[key] = statuses.get(key, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(32)))
        wall = time.perf_counter() - started
    all_4xx = all(k.isdigit() and 400 <= int(k) < 500 for k in statuses)
    return {"requests": count, "statuses": statuses, "all_4xx": all_4xx, "wall_s": round(wall, 3),
            "req_per_s": round(count / wall, 1) if wall else 0.0}


# ------------------------------------------------------------------ main


def main(argv=None) -> int:
    args = parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in ("predict", "plan") for m in modes):
        raise SystemExit("--modes takes predict and/or plan")
    predict_bodies, plan_bodies = make_inputs(16, args.num_frames)
    for body in predict_bodies:
        if args.steps:
            body["steps"] = args.steps
    plan_settings = {"samples": args.plan_samples, "iterations": args.plan_iterations,
                     "horizon": args.plan_horizon}

    def make_request(mode: str):
        def make(client: int, r: int):
            if mode == "predict":
                return "/v1/predict", {**predict_bodies[(client + r) % 16], "seed": client * 1000 + r}
            return "/v1/plan", {**plan_bodies[(client + r) % 16], **plan_settings, "seed": client * 1000 + r}
        return make

    def mixed(client: int, r: int):
        return make_request("plan" if (client + r) % 4 == 0 else "predict")(client, r)

    def per_client(mode: str, c: int) -> int:
        least = args.plan_min_requests if mode == "plan" and args.plan_min_requests else args.min_requests
        return max(1, -(-least // c))

    results: dict = {"settings": vars(args), "cells": [], "soak": None, "slow_clients": None, "storm": None}
    failed = False
    servers = [("default", []), ("batch1", ["--max-batch", "1"])]
    for name, extra in servers[:1] if args.soak_only else servers:
        proc, url = start_server(args, name, extra)
        try:
            asyncio.run(run_clients(url, 1, 1, make_request(modes[0]), args.client_timeout))  # warm-up
            for mode in [] if args.soak_only else modes:
                for c in clients:
                    rounds = [asyncio.run(run_clients(url, c, per_client(mode, c), make_request(mode),
                                                      args.client_timeout)) for _ in range(args.rounds)]
                    cell = summarise_cell(rounds)
                    cell.update(server=name, mode=mode, clients=c)
                    results["cells"].append(cell)
                    failed |= bool(cell["errors"])
                    print(f"[{name}] {mode:7s} clients {c:3d}: {fmt(cell['req_per_s'])} req/s  "
                          f"p50 {fmt(cell['p50_ms'])} ms  p99 {fmt(cell['p99_ms'])} ms  "
                          f"({cell['ok']} requests, errors {cell['errors'] or 0})", flush=True)
            if name != "default":
                continue
            if args.soak_seconds > 0:
                soak = asyncio.run(run_soak(url, max(clients), args.soak_seconds, mixed,
                                            args.client_timeout, proc.pid, every=args.rss_every))
                low = troughs(soak["rss_series_mb"])
                half = [mb for t, mb in low if t >= args.soak_seconds / 2]
                rise = round(half[-1] - half[0], 1) if len(half) > 1 else None
                soak.update(seconds=args.soak_seconds, troughs_mb=low, trough_rise_second_half_mb=rise,
                            troughs_flat=rise is not None and rise <= 0.02 * half[0])
                results["soak"] = soak
                failed |= bool(soak["errors"]) or not soak["troughs_flat"]
                print(f"[soak] {args.soak_seconds:g} s, {max(clients)} clients: {soak['ok']} ok, "
                      f"errors {soak['errors'] or 0}; RSS troughs per minute {[mb for _, mb in low]} MB; "
                      f"second half rise {rise} MB (flat: {soak['troughs_flat']})", flush=True)
            if args.slow_clients > 0:
                host, port = url.removeprefix("http://").rsplit(":", 1)
                read_timeout = args.read_timeout or 30.0
                slow = asyncio.run(run_slow_clients(host, int(port), args.slow_clients, url,
                                                    make_request("predict"), read_timeout, args.client_timeout))
                results["slow_clients"] = slow
                failed |= not (slow["health_status"] == 200 and slow["predict_status"] == 200
                               and slow["closed_by_server"] == slow["stalled_connections"])
                print(f"[slow clients] {slow['stalled_connections']} stalled connections: health "
                      f"{slow['health_status']} in {slow['health_s']} s, predict {slow['predict_status']} in "
                      f"{slow['predict_s']} s; closed by the server after the read timeout: "
                      f"{slow['closed_by_server']}", flush=True)
            if args.storm > 0:
                bad = bad_requests(predict_bodies[0], {**plan_bodies[0], **plan_settings})
                storm = asyncio.run(run_storm(url, args.storm, bad, args.client_timeout))
                after = asyncio.run(run_clients(url, 1, 1, make_request("predict"), args.client_timeout))
                storm["good_request_after"] = after["ok"] == 1
                storm["rss_after_mb"] = round(rss_mb(proc.pid), 1)
                results["storm"] = storm
                failed |= not (storm["all_4xx"] and storm["good_request_after"])
                print(f"[storm] {storm['requests']} bad requests at {storm['req_per_s']} req/s: "
                      f"{storm['statuses']}; all one-line 4xx: {storm['all_4xx']}; good request after: "
                      f"{storm['good_request_after']}", flush=True)
        finally:
            code = stop_server(proc)
            print(f"[{name}] server stopped (exit {code})", flush=True)
            failed |= code != 0
    print_table(results["cells"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}; {'FAILED: errors above' if failed else 'zero errors'}")
    return 1 if failed else 0


def print_table(cells: list[dict]) -> None:
    """A markdown table: the default server beside batch size 1, per mode and client count."""
    print("\n| mode | clients | default req/s [95 % CI] | p50 ms | p99 ms | batch=1 req/s | p50 ms | "
          "p99 ms | default / batch 1 |\n|---|---|---|---|---|---|---|---|---|")
    keyed = {(c["server"], c["mode"], c["clients"]): c for c in cells}
    for (server, mode, clients), cell in keyed.items():
        base = keyed.get(("batch1", mode, clients))
        if server != "default" or base is None:
            continue
        ratio = cell["req_per_s"][0] / base["req_per_s"][0] if base["req_per_s"][0] else float("nan")
        print(f"| {mode} | {clients} | {fmt(cell['req_per_s'])} | {fmt(cell['p50_ms'])} | "
              f"{fmt(cell['p99_ms'])} | {fmt(base['req_per_s'])} | {fmt(base['p50_ms'])} | "
              f"{fmt(base['p99_ms'])} | {ratio:.2f}x |")


if __name__ == "__main__":
    random.seed(0)
    sys.exit(main())
