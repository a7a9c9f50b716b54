"""The batch buffer pool reuses buffers of different sizes."""

from __future__ import annotations

from nebulae.fuel._buffers import BufferPool


def test_pool_hands_back_the_smallest_fitting_buffer_among_several_sizes():
    pool = BufferPool()
    small, large = pool.acquire(1000), pool.acquire(100_000)
    pool.release(large)
    pool.release(small)
    # picking among buffers of unequal sizes must not compare arrays element-wise
    assert pool.acquire(500) is small
    assert pool.acquire(50_000) is large
    assert pool.acquire(10) is not small
