"""Throughput of the API runners against a loopback server with a fixed latency per request.

usage: python benchmarks/api_throughput.py [--requests N] [--concurrency C] [--latency-ms L]
                                           [--repeat R]

The reference is the ideal rate C / L (320 requests/s for 32 concurrent requests of 100 ms):
what a client with no overhead of its own would reach. The share of it that a runner reaches
says how much its event loop, SDK and retry machinery cost. The server runs in a child process
so that it does not take the GIL from the runner. Median of R runs, each on a fresh runner
(connections included).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.loopback_server

from fiqabench.benchmark.schema import GenerationConfig, Message, ModelIdentity, Request, TextPart
from fiqabench.runners.anthropic_runner import AnthropicRunner
from fiqabench.runners.api_common import ApiRunner
from fiqabench.runners.openai_runner import OpenAIRunner
from tests.loopback_server import LoopbackServer


def requests(count: int) -> list[Request]:
    return [
        Request(
            key=f"bench-{index}",
            sample_id=f"s{index:05d}",
            task="bench",
            messages=(Message(role="user", content=(TextPart(text=f"Rate image {index}."),)),),
            generation=GenerationConfig(max_new_tokens=8),
        )
        for index in range(count)
    ]


def serve(latency_s: float, url: Connection, stop: Event) -> None:
    with LoopbackServer(latency_s=latency_s) as server:
        url.send(server.url)
        stop.wait()


@contextmanager
def server_process(latency_s: float) -> Iterator[str]:
    """The loopback server in a child process: in ours it would compete for the GIL."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(target=serve, args=(latency_s, sender, stop), daemon=True)
    process.start()
    try:
        yield receiver.recv()
    finally:
        stop.set()
        process.join()


def measure(runner: ApiRunner, batch: list[Request]) -> tuple[float, int]:
    """Requests per second and the number of failed responses."""
    started = time.perf_counter()
    failed = sum(not response.ok for _, response in runner.generate(batch))
    return len(batch) / (time.perf_counter() - started), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    os.environ.setdefault("OPENAI_API_KEY", "loopback")
    os.environ.setdefault("ANTHROPIC_API_KEY", "loopback")
    ideal = args.concurrency / (args.latency_ms / 1000)
    # The last wave is partial: ceil(N / C) waves of L each is the least a run can take.
    bound = args.requests / (math.ceil(args.requests / args.concurrency) * args.latency_ms / 1000)
    batch = requests(args.requests)
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, "
        f"{args.latency_ms:g} ms per request: ideal {ideal:.0f} requests/s "
        f"(at most {bound:.0f} = {bound / ideal:.1%} for {args.requests} requests)"
    )
    with server_process(args.latency_ms / 1000) as url:
        for cls, suffix in ((OpenAIRunner, "/v1"), (AnthropicRunner, "")):
            identity = ModelIdentity(alias="bench", runner="bench", model_id="loopback")
            rates = []
            for _ in range(args.repeat):
                runner = cls(identity, base_url=url + suffix, concurrency=args.concurrency)
                try:
                    rate, failed = measure(runner, batch)
                finally:
                    runner.close()
                if failed:
                    raise SystemExit(f"{cls.__name__}: {failed} requests failed")
                rates.append(rate)
            median = statistics.median(rates)
            runs = ", ".join(f"{rate:.0f}" for rate in rates)
            print(
                f"{cls.__name__:16s} {median:6.1f} requests/s = {median / ideal:6.1%} of ideal "
                f"(runs: {runs})"
            )


if __name__ == "__main__":
    main()
