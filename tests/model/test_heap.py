"""Freed heap memory goes back to the OS when asked (glibc), the cause of training's creeping RSS."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rewardkit.model.heap import _malloc_trim, release_free_heap


def rss_mb() -> int:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS")).split()[1]) // 1024


@pytest.mark.skipif(
    _malloc_trim() is None or "MALLOC_MMAP_THRESHOLD_" in os.environ,
    reason="no glibc malloc_trim, or a fixed mmap threshold",
)
def test_free_pages_inside_the_heap_are_returned() -> None:
    big = np.ones(16 << 20, dtype=np.uint8)
    del big  # freeing a 16 MB mmapped block raises glibc's mmap threshold to 16 MB...
    blocks = [np.ones(1 << 20, dtype=np.uint8) for _ in range(300)]  # ...so these 1 MB blocks come from the heap
    keep = blocks[-1]  # the heap's top stays in use: free() alone cannot give the rest back
    del blocks
    before = rss_mb()
    assert release_free_heap()
    assert before - rss_mb() > 200, "the ~300 MB freed below the top should leave the process"
    del keep
