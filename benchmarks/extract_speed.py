"""How close `dss extract` comes to the ideal throughput of a slow teacher.

    .venv/bin/python benchmarks/extract_speed.py [--n 1000] [--concurrency 32] [--latency 0.05]

A loopback fake teacher (dss.testing.fake_teacher, in its own process so it has its own interpreter) answers
every request after `latency` seconds. With n requests and `concurrency` in flight the ideal time is
ceil(n / concurrency) * latency; the goal is at most 1.2 x that plus start-up (loading the split, building
prompts). Prints the request-phase time, the whole run's time, and the ratio.

On a shared or busy machine the scheduler alone costs time; `--floor` (on by default) first measures a bare
asyncio client (raw HTTP, no parsing, no records) against the same server, as the best this machine can
do right now.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dss.tasks import get_task
from dss.teacher.extract import run
from dss.teacher.extract_config import ExtractConfig
from dss.testing.release import write_cqa

ROOT = Path(__file__).resolve().parent.parent


def bare_client_seconds(port: int, n: int, concurrency: int) -> float:
    """n requests with `concurrency` keep-alive connections from a minimal asyncio client."""
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Q: x?\nAnswer Choices:\n(a) y"}]})
    req = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n{body}").encode()

    async def worker(left: list) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left:
            left.pop()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
            await reader.readexactly(length)
        writer.close()

    async def go() -> float:
        left = list(range(n))
        t0 = time.monotonic()
        await asyncio.gather(*(worker(left) for _ in range(concurrency)))
        return time.monotonic() - t0
    return asyncio.run(go())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--latency", type=float, default=0.05)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-floor", dest="floor", action="store_false", help="skip the bare-client calibration")
    args = p.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "dss.testing.fake_teacher", "--latency", str(args.latency)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        url = server.stdout.readline().split()[1] + "/v1"
        ideal = math.ceil(args.n / args.concurrency) * args.latency
        if args.floor:
            floor = min(bare_client_seconds(int(url.split(":")[2].split("/")[0]), args.n, args.concurrency)
                        for _ in range(args.repeats))
            print(f"floor: a bare asyncio client takes {floor:.3f} s = {floor / ideal:.3f} x ideal on this machine now")
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            write_cqa(tmp, {"train": math.ceil(args.n / 0.9) + 2}, with_teacher=False)  # carving keeps 90 %
            task = get_task("cqa")
            results = []
            for r in range(args.repeats):
                out = tmp / f"r{r}.jsonl"
                t0 = time.monotonic()
                s = run(ExtractConfig(task="cqa", split="train", teacher="openai:bench", base_url=url,
                                      out=str(out), data_dir=str(tmp), concurrency=args.concurrency,
                                      limit=args.n, progress=False), task, log=lambda *a: None)
                total = time.monotonic() - t0
                assert s["done"] == args.n, s
                request_s = s["this_run"]["requests"] / s["requests_per_s"]
                results.append((request_s, total))
                print(f"run {r + 1}: {args.n} requests, request phase {request_s:.3f} s "
                      f"({request_s / ideal:.3f} x ideal), whole run {total:.3f} s")
        best = min(results)
        print(f"ideal ceil({args.n}/{args.concurrency}) x {args.latency * 1000:.0f} ms = {ideal:.3f} s; "
              f"best request phase {best[0]:.3f} s = {best[0] / ideal:.3f} x ideal "
              f"(goal <= 1.2 x); median {sorted(r[0] for r in results)[len(results) // 2]:.3f} s; "
              f"start-up (load, prompts, file) {best[1] - best[0]:.3f} s")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
