"""`ipfs-accel run`'s batch loop and results file, in process: window, resume, compact, sort."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ipfs_accel import ChatResult, ToolCall, Usage
from ipfs_accel.cli._results import compact_results, read_answers, sort_results
from ipfs_accel.cli._run import BatchCounters, Item, _ok_record, parse_lines, run_batch


def _write(path: Path, records: list[dict[str, Any] | str]) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in records))


def _lines(path: Path) -> list[Any]:
    return [json.loads(raw).get("line") for raw in path.read_text().splitlines()]


class _Counters(BatchCounters):
    """Sets ``others_written`` once every line but one is in the file."""

    def __init__(self, total: int) -> None:
        self.others_written = asyncio.Event()
        super().__init__(total)

    @property
    def written(self) -> int:
        return self._written

    @written.setter
    def written(self, value: int) -> None:
        self._written = value
        if value >= self.total - 1:
            self.others_written.set()


class _SlowFirst:
    """A pool whose call for line 1 waits until every other line is written."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0
        self.counters: _Counters | None = None
        self.widest = 0  # most items taken from the input and not yet written

    async def achat(self, *, messages: Any) -> ChatResult:
        assert self.counters is not None
        self.widest = max(self.widest, self.pulled - self.counters.written)
        if messages == "line 1":
            await self.counters.others_written.wait()
        else:
            await asyncio.sleep(0)
        return ChatResult(text="t", usage=Usage(input_tokens=1, output_tokens=1))

    async def aclose(self) -> None:
        pass


def test_run_batch_reads_lazily_and_leaves_nothing_unwritten(tmp_path: Path) -> None:
    """A slow first line never makes the batch take more than `concurrency` items ahead of
    the file: later answers are written as they end, the input is pulled only as slots free."""
    total, concurrency = 500, 4
    backend = _SlowFirst(total)

    def items() -> Iterator[Item]:
        for n in range(1, total + 1):
            backend.pulled += 1
            yield Item(n, id=n, method="achat", kwargs={"messages": f"line {n}"})

    counters = _Counters(total)
    backend.counters = counters
    out = tmp_path / "r.jsonl"
    with out.open("w") as f:
        asyncio.run(run_batch(backend, items(), f,
                              concurrency=concurrency, counters=counters))
    lines = _lines(out)
    assert sorted(lines) == list(range(1, total + 1))
    assert lines[-1] == 1  # the slow line was written last, after all the others
    assert backend.widest <= concurrency
    assert counters.ok == counters.written == total


def test_parse_lines_ignores_a_bom_and_skips_given_lines(tmp_path: Path) -> None:
    """A BOM before line 1 is not part of the JSON; `skip` leaves lines out, numbers kept."""
    path = tmp_path / "in.jsonl"
    path.write_text('\ufeff{"prompt": "a"}\n\n{"prompt": "b"}\n{"prompt": "c"}\n',
                    encoding="utf-8")
    items = list(parse_lines(path, frozenset({"chat"}), skip={3}))
    assert [(i.line, i.error) for i in items] == [(1, None), (4, None)]


def test_read_answers_later_result_wins_and_a_torn_tail_is_cut(tmp_path: Path) -> None:
    """The latest result of a line decides ok or failed; a cut-off last line is removed."""
    path = tmp_path / "r.jsonl"
    _write(path, [{"line": 1, "ok": True}, {"line": 2, "ok": False}, {"line": 3, "ok": True},
                  {"line": 2, "ok": True}, {"line": 3, "ok": False}, "not json",
                  {"line": True, "ok": True}])
    with path.open("a") as f:
        f.write('{"line": 4, "ok": tr')
    answers = read_answers(path)
    assert answers.ok == {1, 2}
    assert answers.failed == {3}
    assert answers.repeated
    assert path.read_text().endswith('{"line": true, "ok": true}\n')
    assert not read_answers(tmp_path / "missing.jsonl").repeated


def test_compact_results_keeps_the_later_result_in_file_order(tmp_path: Path) -> None:
    """Superseded results go, everything else stays where it was; nothing to do is a no-op."""
    path = tmp_path / "r.jsonl"
    _write(path, [{"line": 5, "ok": False, "n": 0}, {"line": 2, "ok": True, "n": 1},
                  "junk", {"line": 5, "ok": False, "n": 2}, {"line": 1, "ok": True, "n": 3},
                  {"line": 5, "ok": True, "n": 4}])
    path.chmod(0o640)
    assert compact_results(path)
    kept = path.read_text().splitlines()
    assert kept[1] == "junk"
    assert [json.loads(k)["n"] for k in kept if k != "junk"] == [1, 3, 4]
    assert path.stat().st_mode & 0o777 == 0o640
    assert not compact_results(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "r.jsonl"]  # no temp files left


def test_sort_results_merges_chunks_into_input_order_later_wins(tmp_path: Path) -> None:
    """An external merge sort over many small chunks: by line, one result each (the later),
    records without a line number last in file order; no temp files left behind."""
    path = tmp_path / "r.jsonl"
    order = [7, 3, 9, 1, 3, 12, 5, 2, 8, 7, 4, 11, 6, 10, 1]
    records: list[dict[str, Any] | str] = [{"line": n, "n": i} for i, n in enumerate(order)]
    records[5:5] = ["junk-a"]
    records.append("junk-b")
    _write(path, records)
    for chunk in (1, 3, 50):
        copy = tmp_path / f"c{chunk}.jsonl"
        copy.write_text(path.read_text())
        sort_results(copy, chunk_records=chunk)
        rows = copy.read_text().splitlines()
        assert rows[-2:] == ["junk-a", "junk-b"]
        parsed = [json.loads(r) for r in rows[:-2]]
        assert [r["line"] for r in parsed] == list(range(1, 13))
        latest = {n: i for i, n in enumerate(order)}
        assert all(r["n"] == latest[r["line"]] for r in parsed)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c1.jsonl", "c3.jsonl", "c50.jsonl", "r.jsonl"]


def test_parse_lines_gives_one_error_per_bad_line_naming_the_field(tmp_path: Path) -> None:
    """Lines decode by type: each bad line gets one error that names its field, keeps its
    id where it has one, and good lines around it become calls."""
    rows: list[dict[str, Any] | str] = [
        {"id": "a", "prompt": 3},
        {"id": "b", "input": ["x", 2]},
        {"id": "c", "messages": [{"content": "no role"}]},
        {"id": "d", "messages": []},
        {"id": "e", "mesages": [{"role": "user", "content": "hi"}]},
        {"id": "f", "prompt": "hi", "params": ["max_tokens", 3]},
        {"id": "g", "prompt": "hi", "model": 7},
        {"id": "h", "prompt": "hi", "input": "x"},
        "[1, 2]",
        "{not json",
        {"id": "k", "prompt": "hi", "model": "m", "params": {"max_tokens": 3}},
        {"id": "l", "input": ["x", "y"]},
    ]
    path = tmp_path / "in.jsonl"
    _write(path, rows)
    items = list(parse_lines(path, frozenset({"chat", "embed"})))
    errors = {i.line: i.error for i in items}
    assert errors[1] == "'prompt' must be a string (prompt: expected `str`, got `int`)"
    assert errors[2] == ("'input' must be a string or a list of strings "
                         "(input[1]: expected `str`, got `int`)")
    assert errors[3] is not None and "messages[0] has no 'role'" in errors[3]
    assert errors[4] is not None and errors[4].startswith("'messages' must be a non-empty list")
    assert errors[5] == ("unknown field 'mesages' "
                         "(known: id, input, messages, model, params, prompt, request_id)")
    assert errors[6] is not None and errors[6].startswith("'params' must be an object (params:")
    assert errors[7] is not None and errors[7].startswith("'model' must be a string (model:")
    assert errors[8] == "a line needs exactly one of 'messages', 'prompt', 'input'"
    assert errors[9] == "a line must be a JSON object"
    assert errors[10] is not None and errors[10].startswith("not valid JSON (")
    assert [i.id for i in items[:8]] == list("abcdefgh")
    assert errors[11] is None and errors[12] is None
    assert items[10].method == "achat" and items[10].kwargs == {
        "max_tokens": 3, "model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert items[11].method == "aembed" and items[11].kwargs == {"inputs": ["x", "y"]}


def test_an_answer_with_tool_calls_keeps_them_in_its_line() -> None:
    """A line answered with tool calls writes them in OpenAI's form (ready to send back),
    and reasoning tokens beside the usage they are part of."""
    call = ToolCall.of(id="call_1", name="get_weather", arguments={"city": "Paris"})
    result = ChatResult(text="", finish_reason="tool_calls", tool_calls=[call],
                        usage=Usage(input_tokens=5, output_tokens=30, reasoning_tokens=20))
    record = _ok_record(Item(3, id="a"), result, "openai/e1")
    assert record["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    assert record["usage"] == {"input_tokens": 5, "output_tokens": 30, "total_tokens": 35,
                               "reasoning_tokens": 20}
    plain = _ok_record(Item(4), ChatResult(text="hi"), None)
    assert "tool_calls" not in plain and "reasoning_tokens" not in plain["usage"]


def test_parse_lines_reads_openai_batch_lines_beside_ours(tmp_path: Path) -> None:
    """OpenAI Batch lines become calls keyed by custom_id (a completions prompt a generate
    call where the backend has one); a bad one keeps its custom_id and names its field; a
    custom_id inside params does not make a line OpenAI's."""
    rows: list[dict[str, Any] | str] = [
        {"custom_id": "a", "method": "POST", "url": "/v1/completions",
         "body": {"model": "m", "prompt": "p", "max_tokens": 2, "stream": True}},
        {"custom_id": "b", "method": "GET", "url": "/v1/chat/completions", "body": {}},
        {"custom_id": "c", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m"}},
        {"custom_id": 7, "url": "/v1/embeddings", "body": {"input": "x"}},
        {"id": "d", "prompt": "hi", "params": {"custom_id": "not a batch line"}},
        '{"custom_id": "e", ',
    ]
    path = tmp_path / "in.jsonl"
    _write(path, rows)
    items = list(parse_lines(path, frozenset({"chat", "generate", "embed"})))
    assert items[0].error is None and items[0].id == "a" and items[0].method == "agenerate"
    assert items[0].kwargs == {"model": "m", "prompt": "p", "max_tokens": 2}
    assert (items[1].id, items[1].error) == ("b", "'method' must be 'POST', not 'GET'")
    assert (items[2].id, items[2].error) == (
        "c", "'body.input' is missing (a /v1/embeddings request needs it)")
    assert (items[3].id, items[3].error) == (None, "'custom_id' must be a non-empty string")
    assert items[4].error is None and items[4].id == "d" and items[4].method == "achat"
    assert items[4].kwargs["custom_id"] == "not a batch line"
    assert items[5].error is not None and items[5].error.startswith("not valid JSON (")
    chat_only = list(parse_lines(path, frozenset({"chat"})))
    assert chat_only[0].method == "achat" and chat_only[0].kwargs["messages"] == [
        {"role": "user", "content": "p"}]
