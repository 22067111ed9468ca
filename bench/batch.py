"""Provider batches: the client's memory while it submits and reads back a large batch.

The openai plugin submits N chat calls (given as a generator, never a list) with
``submit_batch``, against a fake OpenAI Files + Batch API in its own process
(``tests/_batch_provider.py``: the multipart upload parsed for real, a poll per state, the
output file built from the lines), then waits and reads every result with ``results()``.
Peak memory is traced (``tracemalloc``) in the client alone, for the submit and for the
read, in three runs of the same process: N/10 short lines, N short lines, N/10 long lines
(each message ~2 KB).

The baseline is the input itself, the bytes of its JSONL lines: what a client holding the
file, its calls or their results would need at the least. Lines stream through files and
results are handed on one by one; what a job keeps is each call's key (to give each once,
and name the ones the provider never answered). Targets: the memory each further line adds
(peak at N less peak at N/10, per line) is a key's worth, <= 256 bytes, however long its
line (a short key's string is ~55 bytes, its slot in the batch's key list 8, in the set that
finds a key given twice up to ~80 at the peak, while the set grows); and lines ~14x
longer move the peak by <= 25%. Figures are printed with PASS or MISS; the exit status is
0 unless something crashed. Run: ``python bench/batch.py``
(``--lines 100000``, the default; ``--quick`` for 20,000).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

from ipfs_accel import ChatResult, Registry

ROOT = pathlib.Path(__file__).resolve().parent.parent
KEY = "sk-bench-batch-" + "k" * 24
SERVE = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from _batch_provider import FakeBatchProvider
with FakeBatchProvider({KEY!r}) as provider:
    print(provider.url, flush=True)
    sys.stdin.read()  # serve until the bench closes the pipe
"""


LONG = " Its description runs on for a while." * 50  # ~2 KB more a message


def _calls(n: int, pad: str = "") -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"id": f"q{i}", "messages": [
            {"role": "user", "content": f"Summarise item {i} of the catalogue.{pad}"}],
               "params": {"max_tokens": 32}}


def _input_bytes(n: int, pad: str) -> int:
    return sum(len(json.dumps(c)) + 1 for c in _calls(n, pad))


def _one(url: str, n: int, pad: str = "") -> dict[str, float]:
    registry = Registry(telemetry=False, environ={})
    backend = registry.get("openai")
    backend.create_endpoint("bench", base_url=url, api_key=KEY, timeout=300)
    tracemalloc.start()
    try:
        start = time.perf_counter()
        job = backend.submit_batch(_calls(n, pad), "bench", label="bench")
        submit_peak = tracemalloc.get_traced_memory()[1]
        submit_s = time.perf_counter() - start
        job.wait(every=0)
        tracemalloc.reset_peak()
        start = time.perf_counter()
        answered = sum(isinstance(result, ChatResult) for _, result in job.results())
        read_peak = tracemalloc.get_traced_memory()[1]
        read_s = time.perf_counter() - start
    finally:
        tracemalloc.stop()
        backend.close()
    if answered != n:
        raise SystemExit(f"{answered} of {n} calls answered")
    return {"lines": n, "batches": len(job.batches), "input": _input_bytes(n, pad),
            "submit_peak": submit_peak, "read_peak": read_peak, "submit_s": submit_s,
            "read_s": read_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="N (at least 100)")
    parser.add_argument("--quick", action="store_true", help="20,000 lines")
    args = parser.parse_args()
    n = 20_000 if args.quick else args.lines
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    server = subprocess.Popen([sys.executable, "-c", SERVE], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        _one(url, 100)  # warm-up: first-call imports and set-up are no line's
        rows = [_one(url, n // 10), _one(url, n), _one(url, n // 10, LONG)]
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=60)
    mb = 1e6
    print(f"{'lines':>8} {'batches':>7} {'input MB':>9} {'submit peak MB':>15} "
          f"{'read peak MB':>13} {'submit s':>9} {'read s':>7}")
    for r in rows:
        print(f"{r['lines']:>8,} {r['batches']:>7} {r['input'] / mb:>9.1f} "
              f"{r['submit_peak'] / mb:>15.2f} {r['read_peak'] / mb:>13.2f} "
              f"{r['submit_s']:>9.1f} {r['read_s']:>7.1f}")
    small, big, long = rows
    verdicts = []
    for name in ("submit_peak", "read_peak"):
        per_line = (big[name] - small[name]) / (big["lines"] - small["lines"])
        verdicts.append((f"{name}: {per_line:.0f} bytes a further line (its input line: "
                         f"{big['input'] / big['lines']:.0f}; target <= 256)", per_line <= 256))
        moved = long[name] / small[name]
        verdicts.append((f"{name}: {moved:.2f}x with lines {long['input'] / small['input']:.1f}x "
                         "longer (target <= 1.25)", moved <= 1.25))
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
