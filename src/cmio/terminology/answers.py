"""A short-lived cache of whole operation answers (``$validate-code``).

A terminology server answers the same question many times (the same code of the same
value set, from every client validating the same kind of resource). The answer only
changes when a terminology resource or the concept store changes, so it is kept for a
second, keyed by everything the answer depends on, including the resources'
``generation`` (bumped in process by every terminology write, see
:meth:`cmio.terminology.resources.TerminologyResources.changed`). A write in another
server process is seen within the look-up TTL plus this second.

https://hl7.org/fhir/R4/terminology-service.html#4.6.1.4 (terminology servers may cache).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["AnswerCache"]


class AnswerCache:
    """Answers by key, each kept ``ttl`` seconds, the least recently used dropped first.

    Args:
        ttl: seconds an answer is reused.
        size: answers kept.
    """

    def __init__(self, ttl: float = 1.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """The answer for ``key``: a fresh shallow copy of a kept one, else ``compute()``."""
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                self._items.move_to_end(key)
                return _copy(hit[1])
        answer = compute()
        with self._lock:
            self._items[key] = (now, answer)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return _copy(answer)

    def lookup(self, key: Hashable) -> Any:
        """A value kept with :meth:`store` and still fresh, else None."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None or time.monotonic() - hit[0] >= self.ttl:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def store(self, key: Hashable, value: Any) -> None:
        """Keep an immutable value (e.g. a serialized answer) for ``ttl`` seconds."""
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every answer."""
        with self._lock:
            self._items.clear()


def _copy(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, list) else v for k, v in answer.items()}
