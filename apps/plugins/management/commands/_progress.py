"""A tqdm progress bar fed by the services' ``progress(done, total)`` callbacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tqdm import tqdm


class Bars:
    def __init__(self, *, stream: Any, unit: str = "doc", disable: bool = False) -> None:
        self.stream, self.unit, self.disable = stream, unit, disable
        self.bars: list[tqdm] = []

    def __call__(self, label: str) -> Callable[[int, int], None]:
        bar = tqdm(desc=label, unit=self.unit, file=self.stream, disable=self.disable, dynamic_ncols=True)
        self.bars.append(bar)

        def update(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        return update

    def close(self) -> None:
        for bar in self.bars:
            bar.close()
