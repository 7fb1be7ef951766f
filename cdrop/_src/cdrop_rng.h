/*
 * cdrop_rng.h -- the cdrop random stream, "stream v1".  Pure C99: no Python.h, no globals.
 *
 * docs/rng.md is the normative description; tests/reference.py re-implements it in NumPy and
 * must agree bit for bit.  The Cython declarations of what _kernels.pyx uses from here live in
 * its `cdef extern from "kernels.h"` block; keep both in sync with this file.
 *
 * Design in one paragraph.  Every element has a global index g = (logical C-order index) + offset.
 * Indices are cut into blocks of CDROP_BLOCK elements.  A block runs 16 independent xoshiro128++
 * generators ("lanes"); one step of the 16 lanes gives 64 bytes, one byte per element of a group
 * of 64 consecutive elements.  The lane states of a block are a pure function of (key, block
 * index), made with the splitmix64 finaliser, so any block can be produced without touching the
 * others: the result depends on neither the thread count nor the chunking nor the SIMD width.
 * An element's 32-bit draw is its byte (the top 8 bits) followed by 24 bits from a hash of
 * (key, g), and it is kept when the draw, top bit flipped, is below an integer threshold.  The
 * hash is computed only when the byte ties with the threshold's top byte (1 element in 256): the
 * decision costs 8 random bits per element but has the resolution of 32.
 */
#ifndef CDROP_RNG_H
#define CDROP_RNG_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* 2^14 elements per block.  Seeding a block costs 64 splitmix64 mixes (~50 ns), about 3% of
 * the ~1.5 us an AVX2 core spends on 16K elements; a start in the middle of a block costs at
 * most BLOCK/64 = 256 discarded lane steps, which bounds the price of an unaligned `offset`.
 * Part of the stream contract: changing it changes every mask. */
#define CDROP_BLOCK_BITS 14
#define CDROP_BLOCK ((uint64_t)1 << CDROP_BLOCK_BITS)
#define CDROP_LANES 16
/* Elements per step of the 16 lanes: 4 bytes of each lane's 32-bit output. */
#define CDROP_GROUP 64

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
static inline uint64_t cdrop_derive(uint64_t a, uint64_t b)
{
    return cdrop_hash64(a ^ cdrop_hash64(b));
}

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
 * xoshiro128++ must not start from the all-zero state (it would stay zero forever); the chance
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

/* One step of all 16 lanes: xoshiro128++ (Blackman & Vigna, prng.di.unimi.it/xoshiro128plusplus.c).
 * The '++' scrambler has no weak bits, which matters here: every byte of an output, the low
 * one included, decides an element. */
static inline void cdrop_lanes_next(cdrop_lanes *st, uint32_t out[CDROP_LANES])
{
    for (int l = 0; l < CDROP_LANES; l++) {
        uint32_t s0 = st->s[0][l], s1 = st->s[1][l], s2 = st->s[2][l], s3 = st->s[3][l];
        out[l] = cdrop_rotl32(s0 + s3, 7) + s0;
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

/* Byte k (0..63) of a step: byte k % 4 (little-endian: 0 = bits 0-7) of lane k / 4's output.
 * This is the order in which a vector register holding lanes 0..7 (then 8..15) stores its
 * bytes, so SIMD code reads the 64 bytes of a step straight from two AVX2 registers. */
static inline uint32_t cdrop_step_byte(const uint32_t out[CDROP_LANES], int k)
{
    return (out[k >> 2] >> (8 * (k & 3))) & 0xFFu;
}

/* Domain separation between the tie hash and the lane seeding (both hash64(key ^ ...)):
 * the first 64-bit word of SHA-512's initial hash value, a constant with no structure. */
#define CDROP_TIE_DOMAIN UINT64_C(0x6A09E667F3BCC909)

/* The low 24 bits of element g's draw: only needed when its byte ties with the threshold. */
static inline uint32_t cdrop_tie24(uint64_t key, uint64_t g)
{
    return (uint32_t)(cdrop_hash64(key ^ CDROP_TIE_DOMAIN ^ cdrop_hash64(g)) >> 40);
}

/* The keep test.  The draw is u = (byte << 24) | tie24, and the element is kept iff
 * (u ^ 2^31) < thr.  XOR-ing the top bit keeps u uniform; it makes the byte comparison a
 * SIGNED one, (int8)byte < (int8)((thr >> 24) ^ 0x80), a single instruction in SSE2/AVX2,
 * which have no unsigned byte comparison. */
static inline int cdrop_keeps(uint32_t byte, uint32_t thr, uint64_t key, uint64_t g)
{
    const uint32_t hi = byte ^ 0x80u, top = thr >> 24;
    if (hi != top)
        return hi < top;
    return cdrop_tie24(key, g) < (thr & 0xFFFFFFu);
}

#endif /* CDROP_RNG_H */
