"""How a plugin's case describes its provider's batch API to the kit: a :class:`BatchCase`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._actions import Reply

__all__ = ["BatchCase", "Outcomes"]

Outcomes = Sequence[tuple[str, str]]
"""The items of a batch as ``(key, kind)``, ``kind`` one of ``"completed"`` (answered),
``"failed"`` (the provider reports an error for it: a 400), ``"expired"`` or
``"cancelled"`` (never ran)."""


@dataclass(frozen=True, kw_only=True)
class BatchCase:
    """How the provider's batch API answers, for the kit's fake batch server.

    The kit submits a few chat calls (one user message ``"ping"`` each, keyed
    ``"item-1"``, ``"item-2"``...) as one batch and plays the provider's side from these:

    - ``submitted(batch_id)``: the answers to the submit chain, in order (OpenAI: the file
      uploaded, then the batch created; Anthropic and Gemini: the batch created), the
      batch named ``batch_id`` and in its first state.
    - ``described(batch_id, state, outcomes)``: the answer to a poll with the batch in
      ``state``, one of ``states`` in the API's own words (not the core's
      ``ipfs_accel.BATCH_STATES``: mapping them is the plugin's job, and the check proves
      it), its counts as ``outcomes`` say once it has ended (the last of ``states``);
      once ended, with the outputs the results are in (or the results inline, where the
      API carries them so).
    - ``results(batch_id, outcomes)``: the answers to the downloads of the outputs, in the
      order the plugin's ``VendorBatch.outputs`` lists them (JSONL bodies: one line per
      item; a completed item's answer says ``text`` with usage ``tokens``, a failed one
      is the API's 400 error); ``()`` where ``described`` carries the results inline.
    - ``states``: the states the batch passes through on the way to ``completed``, in
      order, as the API names them (mapped to the core's words by the plugin).
    """

    submitted: Callable[[str], tuple[Reply, ...]]
    described: Callable[[str, str, Outcomes], Reply]
    results: Callable[[str, Outcomes], tuple[Reply, ...]]
    text: str
    tokens: tuple[int, int]
    states: tuple[str, ...] = ("validating", "in_progress", "finalizing", "completed")
