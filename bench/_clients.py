"""One client, measured alone in this process (so peak RSS is that client's own).

``python bench/_clients.py CLIENT MODE CONCURRENCY URL CALLS ROUNDS`` prints one JSON line:
``{"rps", "cpu_us", "rss_kb"}`` (medians over ROUNDS after a warm-up), or
``{"skip": reason}`` when the client's library is missing or fails. MODE is ``async``
(coroutines on one loop) or ``sync`` (CONCURRENCY threads). Every client makes the same
chat call against the loopback server and checks the reply's text. Beyond ``CLIENTS``
(compare.py's), ``raw-aiohttp`` and ``accel-openai-aiohttp`` (``Registry(http="aiohttp")``)
serve bench/transport.py, async only.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MESSAGES = [{"role": "user", "content": "Say ok"}]
MAX_TOKENS = 16
RETRIES = 2  # the SDKs' default; everyone gets the same budget

AsyncFn = Callable[[], Awaitable[None]]
SyncFn = Callable[[], None]
# A client: (async call, sync call, async close, sync close)
Client = tuple[AsyncFn, SyncFn, Callable[[], Awaitable[None]], Callable[[], None]]

OPENAI_SHAPED = ("raw-openai", "openai-sdk", "litellm-acompletion", "litellm-router",
                 "accel-openai")
ANTHROPIC_SHAPED = ("raw-anthropic", "anthropic-sdk", "accel-claude")
CLIENTS = OPENAI_SHAPED + ANTHROPIC_SHAPED


def _check(text: Any) -> None:
    if text != "ok":
        raise AssertionError(f"unexpected reply text {text!r}")


def _raw(url: str, anthropic: bool) -> Client:
    import httpx2  # noqa: PLC0415 - per-client imports keep RSS per client

    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=256)
    aclient = httpx2.AsyncClient(limits=limits)
    client = httpx2.Client(limits=limits)
    if anthropic:
        target = url + "/v1/messages"
        payload = {"model": "bench", "messages": MESSAGES, "max_tokens": MAX_TOKENS}
        headers = {"content-type": "application/json", "x-api-key": "k",
                   "anthropic-version": "2023-06-01"}

        def text(data: Any) -> Any:
            return data["content"][0]["text"]
    else:
        target = url + "/v1/chat/completions"
        payload = {"model": "bench", "messages": MESSAGES}
        headers = {"content-type": "application/json", "authorization": "Bearer k"}

        def text(data: Any) -> Any:
            return data["choices"][0]["message"]["content"]

    async def acall() -> None:
        resp = await aclient.post(target, content=json.dumps(payload).encode(), headers=headers)
        resp.raise_for_status()
        _check(text(resp.json()))

    def call() -> None:
        resp = client.post(target, content=json.dumps(payload).encode(), headers=headers)
        resp.raise_for_status()
        _check(text(resp.json()))

    return acall, call, aclient.aclose, client.close


def _raw_aiohttp(url: str) -> Client:
    import aiohttp  # noqa: PLC0415 - per-client imports keep RSS per client

    target = url + "/v1/chat/completions"
    payload = {"model": "bench", "messages": MESSAGES}
    headers = {"content-type": "application/json", "authorization": "Bearer k"}
    sessions: list[aiohttp.ClientSession] = []  # made on the loop that runs the calls

    async def acall() -> None:
        if not sessions:
            # limit=0: no pool limit, as raw httpx2's max_connections=None
            sessions.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        async with sessions[0].post(target, data=json.dumps(payload).encode(),
                                    headers=headers) as resp:
            resp.raise_for_status()
            data = await resp.json()
        _check(data["choices"][0]["message"]["content"])

    def call() -> None:
        raise NotImplementedError("aiohttp has no sync client")

    async def aclose() -> None:
        for session in sessions:
            await session.close()

    return acall, call, aclose, lambda: None


def _openai_sdk(url: str) -> Client:
    import openai  # noqa: PLC0415 - per-client imports keep RSS per client

    aclient = openai.AsyncOpenAI(base_url=url + "/v1", api_key="k", max_retries=RETRIES)
    client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=RETRIES)

    async def acall() -> None:
        r = await aclient.chat.completions.create(model="bench", messages=MESSAGES)  # type: ignore[arg-type]
        _check(r.choices[0].message.content)

    def call() -> None:
        r = client.chat.completions.create(model="bench", messages=MESSAGES)  # type: ignore[arg-type]
        _check(r.choices[0].message.content)

    return acall, call, aclient.close, client.close


def _anthropic_sdk(url: str) -> Client:
    import anthropic  # noqa: PLC0415 - per-client imports keep RSS per client

    aclient = anthropic.AsyncAnthropic(base_url=url, api_key="k", max_retries=RETRIES)
    client = anthropic.Anthropic(base_url=url, api_key="k", max_retries=RETRIES)

    async def acall() -> None:
        r = await aclient.messages.create(model="bench", messages=MESSAGES,  # type: ignore[arg-type]
                                          max_tokens=MAX_TOKENS)
        _check(r.content[0].text)  # type: ignore[union-attr]

    def call() -> None:
        r = client.messages.create(model="bench", messages=MESSAGES,  # type: ignore[arg-type]
                                   max_tokens=MAX_TOKENS)
        _check(r.content[0].text)  # type: ignore[union-attr]

    return acall, call, aclient.close, client.close


def _litellm(url: str, router: bool) -> Client:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # noqa: PLC0415 - per-client imports keep RSS per client

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    params = {"model": "openai/bench", "api_base": url + "/v1", "api_key": "k"}
    if router:
        r = litellm.Router(model_list=[{"model_name": "bench", "litellm_params": params}],
                           num_retries=RETRIES)

        async def acall() -> None:
            resp = await r.acompletion(model="bench", messages=MESSAGES)
            _check(resp.choices[0].message.content)

        def call() -> None:
            resp = r.completion(model="bench", messages=MESSAGES)
            _check(resp.choices[0].message.content)
    else:
        async def acall() -> None:
            resp = await litellm.acompletion(messages=MESSAGES, max_retries=RETRIES, **params)
            _check(resp.choices[0].message.content)

        def call() -> None:
            resp = litellm.completion(messages=MESSAGES, max_retries=RETRIES, **params)
            _check(resp.choices[0].message.content)

    async def aclose() -> None:
        pass

    return acall, call, aclose, lambda: None


def accel_backend(name: str, url: str, concurrency: int, queue_size: int,
                  endpoints: int = 1, http: str | None = None) -> tuple[Any, list[str]]:
    """An installed ipfs-accel backend (entry points, full path) and its endpoint IDs;
    ``http`` names the async transport (``Registry(http=...)``), the default when None."""
    from ipfs_accel import Registry  # noqa: PLC0415 - per-client imports keep RSS per client

    backend = (Registry(http=http) if http else Registry()).get(name)
    base = url + "/v1" if name == "openai" else url
    eids = [
        backend.create_endpoint(base_url=base, api_key="k", max_concurrent_requests=concurrency,
                                queue_size=queue_size, max_retries=RETRIES,
                                initial_retry_delay=0.001)
        for _ in range(endpoints)
    ]
    return backend, eids


def _accel(url: str, name: str, concurrency: int, calls: int, http: str | None = None
           ) -> Client:
    backend, (eid,) = accel_backend(name, url, concurrency, calls, http=http)
    params = {"max_tokens": MAX_TOKENS} if name == "claude" else {}

    async def acall() -> None:
        r = await backend.achat(MESSAGES, endpoint_id=eid, **params)
        _check(r.text)

    def call() -> None:
        r = backend.chat(MESSAGES, endpoint_id=eid, **params)
        _check(r.text)

    async def aclose() -> None:
        await backend.aclose()
        # a transport choice that is accepted but not used would measure httpx2 twice
        if http == "aiohttp" and "aiohttp" not in sys.modules:
            raise RuntimeError("Registry(http='aiohttp') never imported aiohttp")

    return acall, call, aclose, backend.close


def make(client: str, url: str, concurrency: int, calls: int) -> Client:
    """Build one named client pointed at ``url``."""
    if client in ("raw-openai", "raw-anthropic"):
        return _raw(url, anthropic=client == "raw-anthropic")
    if client == "openai-sdk":
        return _openai_sdk(url)
    if client == "anthropic-sdk":
        return _anthropic_sdk(url)
    if client in ("litellm-acompletion", "litellm-router"):
        return _litellm(url, router=client == "litellm-router")
    if client == "raw-aiohttp":
        return _raw_aiohttp(url)
    if client == "accel-openai-aiohttp":
        return _accel(url, "openai", concurrency, calls, http="aiohttp")
    if client in ("accel-openai", "accel-claude"):
        return _accel(url, client.removeprefix("accel-"), concurrency, calls)
    raise SystemExit(f"unknown client {client!r}")


async def drive_async(fn: AsyncFn, calls: int, concurrency: int) -> tuple[float, float]:
    """Run ``calls`` calls on ``concurrency`` coroutines: (calls/s, CPU us per call)."""
    per_worker = max(1, calls // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            await fn()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = per_worker * concurrency
    return done / wall, cpu / done * 1e6


def drive_sync(fn: SyncFn, calls: int, concurrency: int, pool: ThreadPoolExecutor | None
               ) -> tuple[float, float]:
    """Run ``calls`` calls on ``concurrency`` threads: (calls/s, CPU us per call)."""
    per_worker = max(1, calls // concurrency)

    def worker() -> None:
        for _ in range(per_worker):
            fn()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    if pool is None:
        worker()
    else:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    done = per_worker * concurrency
    return done / wall, cpu / done * 1e6


def measure(client: str, mode: str, concurrency: int, url: str, calls: int, rounds: int
            ) -> dict[str, Any]:
    """Warm up, then the median of ``rounds`` runs of ``calls`` calls."""
    warmup = max(100, concurrency * 4)
    try:
        acall, call, aclose, close = make(client, url, concurrency, calls + warmup)
    except Exception as exc:
        return {"skip": f"{type(exc).__name__}: {exc}".splitlines()[0][:160]}
    results: list[tuple[float, float]] = []
    if mode == "async":
        async def run() -> None:
            await drive_async(acall, warmup, concurrency)
            for _ in range(rounds):
                results.append(await drive_async(acall, calls, concurrency))
            await aclose()
        asyncio.run(run())
    else:
        pool = ThreadPoolExecutor(concurrency) if concurrency > 1 else None
        drive_sync(call, warmup, concurrency, pool)
        for _ in range(rounds):
            results.append(drive_sync(call, calls, concurrency, pool))
        if pool is not None:
            pool.shutdown()
        close()
    return {
        "rps": statistics.median(r[0] for r in results),
        "cpu_us": statistics.median(r[1] for r in results),
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    client, mode, concurrency, url, calls, rounds = sys.argv[1:7]
    profile = os.environ.get("BENCH_PROFILE")
    try:
        if profile:
            import cProfile  # noqa: PLC0415 - per-client imports keep RSS per client
            import pstats  # noqa: PLC0415 - per-client imports keep RSS per client

            prof = cProfile.Profile()
            out = prof.runcall(measure, client, mode, int(concurrency), url, int(calls),
                               int(rounds))
            prof.dump_stats(profile)
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
        else:
            out = measure(client, mode, int(concurrency), url, int(calls), int(rounds))
    except Exception as exc:
        traceback.print_exc()
        out = {"skip": f"{type(exc).__name__}: {exc}".splitlines()[0][:160]}
    print(json.dumps(out), flush=True)
    os._exit(0)  # do not wait on SDK background threads


if __name__ == "__main__":
    main()
