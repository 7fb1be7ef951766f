/*
 * cdrop_rng.h -- the cdrop random stream, "stream v1".  Pure C99: no Python.h, no globals.
 *
 * docs/rng.md is the normative description; tests/reference.py re-implements it in NumPy and
 * must agree bit for bit.  The Cython declarations live in cdrop/_kernels.pyx (the
 * `cdef extern from "cdrop_kernels.h"` block); keep both in sync with this file.
 *
 * Design in one paragraph.  Every element has a global index g = (logical C-order index) + offset.
 * Indices are cut into blocks of CDROP_BLOCK elements.  A block runs 16 independent xoshiro128+
 * generators ("lanes"); element j of the block takes the (j / 16)-th 32-bit output of lane j % 16.
 * The 16 lane states of a block are a pure function of (key, block index), made with the
 * splitmix64 finaliser, so any block can be produced without touching the others: the result
 * depends on neither the thread count nor the chunking nor the SIMD width.  An element is kept
 * when its 32-bit draw, top bit flipped, is below an integer threshold (cdrop_keeps).
 */
#ifndef CDROP_RNG_H
#define CDROP_RNG_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 2^14 elements per block.  Seeding a block costs 64 splitmix64 mixes (~50 ns), i.e. < 1% of
 * the ~2.5 us an AVX2 core spends on 16K elements; a start in the middle of a block costs at
 * most BLOCK/16 = 1024 discarded lane steps, which bounds the price of an unaligned `offset`.
 * Part of the stream contract: changing it changes every mask. */
#define CDROP_BLOCK_BITS 14
#define CDROP_BLOCK ((uint64_t)1 << CDROP_BLOCK_BITS)
#define CDROP_LANES 16

#define CDROP_GOLDEN UINT64_C(0x9E3779B97F4A7C15)

/* splitmix64's output function (Steele, Lea & Flood 2014; constants of Stafford's "Mix13").
 * A bijection on 64-bit words with full avalanche. */
static inline uint64_t cdrop_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The first output of a splitmix64 generator whose state is x.  Adding the golden gamma first
 * keeps hash64(0) away from the mixer's fixed point mix64(0) == 0. */
static inline uint64_t cdrop_hash64(uint64_t x) { return cdrop_mix64(x + CDROP_GOLDEN); }

/* The stream key of a user seed.  Hashing makes adjacent seeds 0, 1, 2 unrelated. */
static inline uint64_t cdrop_key(uint64_t seed) { return cdrop_hash64(seed); }

/* A derived seed: used by the Python layer for per-call seeds (layer seed, call counter) and
 * for the package stream (base seed, draw counter).  XOR of a hashed counter, then hash again:
 * not additive, so two bases never give shifted copies of one sequence. */
static inline uint64_t cdrop_derive(uint64_t a, uint64_t b) { return cdrop_hash64(a ^ cdrop_hash64(b)); }

/* Keep threshold for a drop probability 0 < p < 1: an element is kept iff its draw < thr
 * (docs/rng.md, section 6).  keep = 1 - p is a multiple of 2^-53 below 1, so keep * 2^32 + 0.5
 * is exact in binary64 (or >= 2^32, which is clamped) and floor() rounds half up exactly. */
static inline uint32_t cdrop_threshold(double p)
{
    const double t = floor((1.0 - p) * 4294967296.0 + 0.5);
    return t >= 4294967295.0 ? UINT32_C(0xFFFFFFFF) : (uint32_t)t;
}

/* Lane states of one block, structure-of-arrays: s[w][l] is state word w of lane l, which is
 * the layout the SIMD kernels load with four 16-lane vector loads. */
typedef struct {
    uint32_t s[4][CDROP_LANES];
} cdrop_lanes;

/* Seed the 16 lanes of block `block` for stream `key`.
 * Lane l takes two 64-bit words: w(2l) gives state words 0 (low half) and 1 (high half),
 * w(2l+1) gives words 2 and 3, where w(k) = hash64(key ^ hash64(32*block + k)).
 * 32*block cannot overflow: g < 2^64 means block < 2^50.
 * xoshiro128+ must not start from the all-zero state (it would stay zero forever); the chance
 * is 2^-128 per lane, but the guard makes the stream total: such a lane gets word 0 = 1. */
static inline void cdrop_lanes_seed(cdrop_lanes *st, uint64_t key, uint64_t block)
{
    const uint64_t base = block << 5;
    for (int l = 0; l < CDROP_LANES; l++) {
        const uint64_t w0 = cdrop_hash64(key ^ cdrop_hash64(base + 2 * (uint64_t)l));
        const uint64_t w1 = cdrop_hash64(key ^ cdrop_hash64(base + 2 * (uint64_t)l + 1));
        st->s[0][l] = (uint32_t)w0;
        st->s[1][l] = (uint32_t)(w0 >> 32);
        st->s[2][l] = (uint32_t)w1;
        st->s[3][l] = (uint32_t)(w1 >> 32);
        if ((st->s[0][l] | st->s[1][l] | st->s[2][l] | st->s[3][l]) == 0)
            st->s[0][l] = 1;
    }
}

static inline uint32_t cdrop_rotl32(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

/* One step of all 16 lanes: xoshiro128+ (Blackman & Vigna, prng.di.unimi.it/xoshiro128plus.c).
 * Why '+' and not '++': the '++' output adds a rotation and an addition, 4 more vector operations
 * per 8 elements in the AVX2 kernel (17 instead of 13), which is compute-bound in cache: it was
 * measured 28% slower (0.170 vs 0.122 ns/element, 262,144 floats, one core).  The '+' output's weak bits are its lowest four; the keep test (cdrop_keeps) reads a
 * draw from the top bit down and reaches bit 3 only when the top 28 bits equal the threshold's,
 * with probability 2^-28. */
static inline void cdrop_lanes_next(cdrop_lanes *st, uint32_t out[CDROP_LANES])
{
    for (int l = 0; l < CDROP_LANES; l++) {
        uint32_t s0 = st->s[0][l], s1 = st->s[1][l], s2 = st->s[2][l], s3 = st->s[3][l];
        out[l] = s0 + s3;
        const uint32_t t = s1 << 9;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = cdrop_rotl32(s3, 11);
        st->s[0][l] = s0;
        st->s[1][l] = s1;
        st->s[2][l] = s2;
        st->s[3][l] = s3;
    }
}

/* The keep test: (u XOR 2^31) < thr, unsigned.  XOR-ing the top bit is a bijection, so the keep
 * probability is still thr / 2^32; it is there because it makes the test a plain SIGNED compare,
 * (int32)u < (int32)(thr ^ 2^31), one instruction in SSE2/AVX2, which have no unsigned compare. */
static inline int cdrop_keeps(uint32_t u, uint32_t thr) { return (u ^ UINT32_C(0x80000000)) < thr; }

#endif /* CDROP_RNG_H */
