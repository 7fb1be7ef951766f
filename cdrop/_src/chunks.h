/*
 * chunks.h -- how a range of the stream is cut into pieces: blocks, chunks for threads, and the
 * thread cut-offs.  Pure C, no Python.
 */
#ifndef CDROP_CHUNKS_H
#define CDROP_CHUNKS_H

#include <stdint.h>

#include "cdrop_rng.h"

/* Threading policy.  A parallel region costs microseconds (libgomp's wake-up; far more when the
 * machine is oversubscribed), so small arrays stay on one thread.  Measured on the 2-core
 * development VM (in-place float32, median of 200 calls separated by 50 us / 1 ms of other
 * work): 2^15 elements 4.6/5.1 us on 1 thread vs 3.5/4.4 us on 2; 2^16: 8.8/10.3 vs 5.6/8.7;
 * 2^17: 18.7/21.5 vs 13.3/15.5.  Two threads win from 2^15 on, by a margin that is small there,
 * so the cut-off is 2^16, with at least two blocks (2^15 elements) per thread. */
#ifndef CDROP_MIN_PARALLEL /* overridable with -D for measurements */
#define CDROP_MIN_PARALLEL ((int64_t)1 << 16)
#endif
#ifndef CDROP_MIN_PER_THREAD
#define CDROP_MIN_PER_THREAD ((int64_t)1 << 15)
#endif

/* Local index (0 .. n) where chunk c of the range [g0, g0 + n) starts.  Chunk c is the part of
 * global block (g0 >> BLOCK_BITS) + c inside the range, so chunk boundaries are block boundaries
 * and no block is ever seeded or skipped into by two threads. */
static inline int64_t cdrop_chunk_start(uint64_t g0, int64_t n, int64_t c)
{
    if (c <= 0)
        return 0;
    const uint64_t start = (((g0 >> CDROP_BLOCK_BITS) + (uint64_t)c) << CDROP_BLOCK_BITS) - g0;
    return start < (uint64_t)n ? (int64_t)start : n;
}

static inline int64_t cdrop_chunk_count(uint64_t g0, int64_t n)
{
    if (n <= 0)
        return 0;
    return (int64_t)(((g0 + (uint64_t)(n - 1)) >> CDROP_BLOCK_BITS) - (g0 >> CDROP_BLOCK_BITS)) + 1;
}

/* Length of the part of [g, g + remaining) that lies in g's block. */
static inline int64_t cdrop_in_block(uint64_t g, int64_t remaining)
{
    const int64_t room = (int64_t)(CDROP_BLOCK - (g & (CDROP_BLOCK - 1)));
    return remaining < room ? remaining : room;
}

/* x rounded up to a multiple of `gran` (a power of two). */
static inline int64_t cdrop_round_up(int64_t x, int64_t gran)
{
    return (x + gran - 1) & ~(gran - 1);
}

#endif /* CDROP_CHUNKS_H */
