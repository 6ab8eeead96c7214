"""A small thread-safe LRU of values by key, bounded by count and optionally by weight."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable


class Recent:
    """The ``size`` most recently used values by key (thread-safe); with ``budget``, also
    no more than ``budget`` in all of ``weigh(value)`` (e.g. bytes)."""

    def __init__(
        self, size: int, budget: int | None = None, weigh: Callable[[Any], int] | None = None
    ):
        self.size = size
        self.budget = budget
        self._weigh = weigh or (lambda value: 0)
        self._weight = 0
        self._values: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The value of ``key`` (now the most recent), or ``None``."""
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> Any:
        """Keep ``value`` for ``key``, dropping the least recent beyond ``size`` (and
        ``budget``; a value heavier than ``budget`` is not kept); ``value``."""
        weight = self._weigh(value)
        if self.budget is not None and weight > self.budget:
            return value
        with self._lock:
            old = self._values.pop(key, None)
            if old is not None:
                self._weight -= self._weigh(old)
            self._values[key] = value
            self._weight += weight
            while len(self._values) > self.size or (
                self.budget is not None and self._weight > self.budget
            ):
                self._weight -= self._weigh(self._values.popitem(last=False)[1])
        return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._values.clear()
            self._weight = 0
