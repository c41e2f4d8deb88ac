"""Transitive closure: correctness against a naive walk, cycles, bad input."""

from __future__ import annotations

import random

import pytest

from cmio.terminology.closure import ClosureError, transitive_closure


def _naive(n: int, edges: list[tuple[int, int]]) -> set[tuple[int, int]]:
    parents: dict[int, set[int]] = {i: set() for i in range(n)}
    for c, p in edges:
        parents[c].add(p)
    out = set()
    for node in range(n):
        stack, seen = list(parents[node]), set()
        while stack:
            up = stack.pop()
            if up not in seen:
                seen.add(up)
                stack.extend(parents[up])
        out |= {(a, node) for a in seen}
    return out


def test_random_dags_match_naive_walk() -> None:
    rng = random.Random(7)
    for _ in range(20):
        n = rng.randint(1, 60)
        edges = [(c, rng.randrange(c)) for c in range(1, n) for _ in range(rng.randint(1, 3))]
        perm = list(range(n))
        rng.shuffle(perm)
        edges = [(perm[c], perm[p]) for c, p in edges]
        anc, des = transitive_closure(n, [c for c, _ in edges], [p for _, p in edges])
        pairs = list(zip(anc.tolist(), des.tolist(), strict=True))
        assert pairs == sorted(set(pairs))
        assert set(pairs) == _naive(n, edges)


def test_empty_and_errors() -> None:
    anc, des = transitive_closure(3, [], [])
    assert anc.size == 0 and des.size == 0
    with pytest.raises(ClosureError, match="cycle through"):
        transitive_closure(3, [0, 1, 2], [1, 2, 0], name=lambda i: f"c{i}")
    with pytest.raises(ClosureError, match="own parent"):
        transitive_closure(2, [1], [1])
    with pytest.raises(ClosureError, match="outside"):
        transitive_closure(2, [1], [5])
