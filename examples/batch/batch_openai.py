"""Send three chat calls as one OpenAI batch, wait for it and read the results back.

The kit's loopback server (``ipfs_accel.testing.FaultServer``) plays OpenAI's Files and
Batch APIs with the openai plugin's own conformance answers (``conformance_case().batch``):
the file uploaded, the batch created, one poll per state (validating, in_progress,
finalizing, completed; the second poll is first refused with a 429, Retry-After: 0), and
the output and error files, in which the provider answers every item "pong" except one it
fails with a 400. Everything on this side is the library's own path:
the JSONL lines, the upload, the polls and their retry, the downloads, the results and the
stats. No API key, no network:

    pip install ./core ./plugins/openai
    python examples/batch/batch_openai.py
"""

from __future__ import annotations

from ipfs_accel import BatchCounts, ChatResult, Registry
from ipfs_accel.testing import FaultServer, Reply
from ipfs_accel_openai import conformance_case

BATCH_ID = "batch_demo_1"
CALLS = [
    {"id": "greet", "messages": [{"role": "user", "content": "Say hi"}]},
    {"id": "joke", "prompt": "Tell a short joke", "params": {"max_tokens": 40}},
    {"id": "bad", "messages": [{"role": "user", "content": "ping"}]},
]
# what the loopback provider makes of each call
OUTCOMES = [("greet", "completed"), ("joke", "completed"), ("bad", "failed")]
RATE_LIMITED = Reply(429, headers={"retry-after": "0"}, json={"error": {
    "message": "Rate limit reached for requests", "type": "requests",
    "code": "rate_limit_exceeded"}})


def provider() -> list[Reply]:
    """The provider's answers, in the order the core asks for them."""
    answers = conformance_case().batch
    assert answers is not None
    polls = [answers.described(BATCH_ID, state, OUTCOMES) for state in answers.states]
    polls.insert(1, RATE_LIMITED)
    reattached = answers.described(BATCH_ID, "completed", OUTCOMES)  # get_batch's poll
    return [*answers.submitted(BATCH_ID), *polls, *answers.results(BATCH_ID, OUTCOMES),
            reattached]


def show(state: str, counts: BatchCounts) -> None:
    print(f"  {state:<12} {counts.done} of {counts.total} done ({counts.completed} completed, "
          f"{counts.failed} failed)")


def main() -> None:
    openai = Registry(telemetry=False).get("openai")
    answers = provider()
    with FaultServer() as server:
        server.script(answers)
        eid = openai.create_endpoint("loopback", base_url=server.base_url + "/v1",
                                     api_key="sk-demo", model="gpt-4o-mini",
                                     initial_retry_delay=0.01)
        job = openai.submit_batch(CALLS, endpoint_id=eid)
        print(f"submitted {len(CALLS)} calls as batch {', '.join(job.batches)} (job {job.id})")
        # the loopback provider moves on at every poll; against OpenAI keep the default
        # schedule (2 s, growing by half after each poll without news, up to a minute)
        state = job.wait(show, every=0)
        print(f"ended: {state}\nresults:")
        for key, result in job.results():
            if isinstance(result, ChatResult):
                print(f"  {key:<6} {result.text!r}  ({result.usage.input_tokens} in, "
                      f"{result.usage.output_tokens} out)")
            else:
                print(f"  {key:<6} {type(result).__name__}: {result}")
        again = openai.get_batch(job.id, endpoint_id=eid)  # as after a restart
        print(f"get_batch({job.id}): {again.status()}, {again.counts.done} of "
              f"{again.counts.total} done")
        # the server answers strictly in order: each request's answer is the script's next
        asked = [f"{r.method} {r.path} -> {a.status}"
                 for r, a in zip(server.requests, answers, strict=True)]
        joke = next(line for line in server.requests[0].body.splitlines()
                    if b'"custom_id":"joke"' in line)
    stats = openai.get_stats(eid)
    print(f"stats: batch_results={stats.batch_results} batch_input_tokens="
          f"{stats.batch_input_tokens} batch_output_tokens={stats.batch_output_tokens} "
          f"(of input_tokens={stats.input_tokens} output_tokens={stats.output_tokens}) "
          f"retries={stats.retries}")
    print("the provider was asked:\n  " + "\n  ".join(asked))
    print(f"the uploaded line for 'joke':\n  {joke.decode()}")


if __name__ == "__main__":
    main()
