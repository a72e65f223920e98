"""The prefix cache, one home (docs/workloads.md sections 4 and 7): the LRU rule of KV blocks
that `planner trace`'s reuse figure and the simulator both apply, and the per-request hooks
the simulator calls (how many of a request's prompt tokens its cache serves).

A prefix cache reuses a prompt's leading blocks up to its first miss (a later block found
after a miss is recomputed: its KV depends on everything before it). Blocks are used from a
request's last to its first, so that its first blocks, which later requests share most, are
evicted last (vLLM frees a request's blocks tail first for the same reason). Units: blocks
of ``block_tokens`` prompt tokens; tokens.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol


class BlockLRU:
    """KV blocks a prefix cache holds: at most ``capacity`` (None: unbounded), the least
    recently used evicted first. Blocks of requests in flight may be *pinned* (``pin``):
    held and not evictable until ``release`` returns them to the evictable list, as an
    engine's free-block queue does (vLLM); a pinned block still counts against the
    capacity (it occupies the KV pool)."""

    __slots__ = ("capacity", "free", "pinned")

    def __init__(self, capacity: int | None = None):
        self.capacity = capacity
        self.free: OrderedDict[int, None] = OrderedDict()   # evictable, least recently used first
        self.pinned: dict[int, int] = {}                    # block -> requests holding it

    def __len__(self) -> int:
        return len(self.free) + len(self.pinned)

    def hits(self, blocks: Sequence[int]) -> int:
        """Leading blocks of ``blocks`` found in the cache, up to the first miss."""
        k = 0
        while k < len(blocks) and (blocks[k] in self.free or blocks[k] in self.pinned):
            k += 1
        return k

    def use(self, blocks: Sequence[int]) -> None:
        """A request's blocks used and left evictable at once (no request in flight holds them):
        from its last to its first, so its first blocks are the most recently used."""
        for b in reversed(blocks):
            if b in self.pinned:
                continue
            self.free[b] = None
            self.free.move_to_end(b)
        self._evict()

    def pin(self, blocks: Sequence[int]) -> None:
        """A request in flight holds its blocks (found or computed): none is evictable."""
        for b in blocks:
            self.free.pop(b, None)
            self.pinned[b] = self.pinned.get(b, 0) + 1
        self._evict()

    def release(self, blocks: Sequence[int]) -> None:
        """A request done: its blocks that no other request holds become evictable, its last
        block first (its first block the most recently used)."""
        for b in reversed(blocks):
            left = self.pinned[b] - 1
            if left:
                self.pinned[b] = left
                continue
            del self.pinned[b]
            self.free[b] = None
        self._evict()

    def _evict(self) -> None:
        if self.capacity is None:
            return
        while self.free and len(self.free) + len(self.pinned) > self.capacity:
            self.free.popitem(last=False)


def cached_tokens(hit_blocks: int, block_tokens: int, prompt: int) -> int:
    """Prompt tokens the cache serves a request of ``prompt`` tokens whose ``hit_blocks`` leading
    blocks it holds (the last block of a prompt may be partial), as an engine counts them: at
    least the prompt's last token is computed, since its logits give the first output token
    (vLLM recomputes it on a full hit)."""
    return max(min(hit_blocks * block_tokens, prompt - 1), 0)


def stated_cached(prompt: float, hit_rate: float | None = None, prefix_tokens: int | None = None) -> float:
    """Cached prompt tokens of one prompt under a stated cache (docs/workloads.md section 7):
    ``hit_rate`` x the prompt, or a shared prefix of ``prefix_tokens``, at most the prompt
    less its last token."""
    want = float(prefix_tokens) if prefix_tokens is not None else (hit_rate or 0.0) * prompt
    return max(min(want, prompt - 1.0), 0.0)


class RequestCache(Protocol):
    """What the simulator asks of a prefix cache: at a request's admission the prompt tokens it
    serves (``admit``), and at its completion that its KV is free (``release``)."""

    def admit(self, rid: int, prompt: int) -> int: ...

    def release(self, rid: int) -> None: ...


class StatedCache:
    """A stated hit rate or shared prefix applied to every request (``stated_cached``, in whole
    tokens)."""

    def __init__(self, hit_rate: float | None = None, prefix_tokens: int | None = None):
        self.hit_rate, self.prefix_tokens = hit_rate, prefix_tokens

    def admit(self, rid: int, prompt: int) -> int:
        return int(stated_cached(float(prompt), self.hit_rate, self.prefix_tokens))

    def release(self, rid: int) -> None:
        return None


class TraceCache:
    """The blocks of a trace's requests (request ``rid`` is the trace's ``rid mod n``) in an LRU
    of ``capacity`` blocks sized by the KV pool: a request's blocks are pinned from its
    admission to its completion (they are its KV), then evictable."""

    def __init__(self, blocks: Sequence[Sequence[int]], block_tokens: int, capacity: int | None):
        self.blocks, self.block_tokens = blocks, block_tokens
        self.lru = BlockLRU(capacity)

    def admit(self, rid: int, prompt: int) -> int:
        mine = self.blocks[rid % len(self.blocks)]
        hit = self.lru.hits(mine)
        self.lru.pin(mine)
        return cached_tokens(hit, self.block_tokens, prompt)

    def release(self, rid: int) -> None:
        self.lru.release(self.blocks[rid % len(self.blocks)])


class ReuseCurve:
    """The prefix reuse of a trace's requests (``prefix_reuse``'s rule) at every LRU size at once.

    An LRU holds the C most recently used distinct blocks (its inclusion property: Mattson et
    al., 1970), so a block is found by a cache of C blocks iff fewer than C distinct blocks were
    used since its last use (its stack distance d < C); a request's j-th block counts iff its
    blocks 0..j are all found, iff m_j = max(d_0..d_j) < C. One pass computes every m_j (a
    Fenwick tree over use times); the share at C is then the prompt tokens of the blocks with
    m_j < C over all prompt tokens (``share``)."""

    __slots__ = ("thresholds", "tokens", "total")

    def __init__(self, blocks: Sequence[Sequence[int]], prompts: Sequence[int], block_tokens: int):
        uses = sum(len(b) for b in blocks)
        tree = [0] * (uses + 1)             # Fenwick tree: 1 at the latest use time of each distinct block

        def add(i: int, v: int) -> None:
            while i <= uses:
                tree[i] += v
                i += i & -i

        def upto(i: int) -> int:
            s = 0
            while i > 0:
                s += tree[i]
                i -= i & -i
            return s
        last: dict[int, int] = {}
        now = 0
        seen = 0                            # distinct blocks so far
        thresholds: list[float] = []
        tokens: list[int] = []
        for mine, prompt in zip(blocks, prompts):
            m = 0.0
            for j, b in enumerate(mine):
                t = last.get(b)
                d = float("inf") if t is None else float(seen - upto(t))    # distinct blocks used after b
                m = max(m, d)
                thresholds.append(m)
                tokens.append(min((j + 1) * block_tokens, prompt) - min(j * block_tokens, prompt))
            for b in reversed(mine):        # used last to first (``BlockLRU.use``)
                now += 1
                t = last.get(b)
                if t is None:
                    seen += 1
                else:
                    add(t, -1)
                add(now, 1)
                last[b] = now
        order = sorted(range(len(thresholds)), key=thresholds.__getitem__)
        self.thresholds = [thresholds[i] for i in order]
        cum, acc = [], 0
        for i in order:
            acc += tokens[i]
            cum.append(acc)
        self.tokens = cum                   # prompt tokens of the blocks with the smallest thresholds
        self.total = float(sum(prompts))

    def share(self, capacity: int | None) -> float:
        """Share of prompt tokens found by an LRU of ``capacity`` blocks (None: unbounded)."""
        from bisect import bisect_left
        limit = float("inf") if capacity is None else float(capacity)
        k = bisect_left(self.thresholds, limit)
        return (self.tokens[k - 1] if k else 0) / self.total
