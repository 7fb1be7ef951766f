/*
 * cdrop_kernels.h -- the dropout kernels.  Pure C: no Python.h, no globals.
 * Declared for Cython in cdrop/_kernels.pyx (the `cdef extern from "cdrop_kernels.h"` block);
 * a change of signature here must be made there too.
 *
 * Every kernel works on a range of global indices [g0, g0 + n) of the stream in cdrop_rng.h and
 * is therefore free to run on any thread: the Cython layer cuts arrays into block-aligned chunks
 * and hands them to an OpenMP `prange`.
 *
 * Two implementations of each contiguous kernel:
 *   *_portable  plain C over the 16 lanes (GCC/Clang vectorise it with SSE2 or NEON);
 *   *_avx2      explicit 256-bit code in a target("avx2") function, so the extension is still
 *               compiled for baseline x86-64 and the AVX2 code runs only where the CPU has it.
 * Both produce identical bits: the integer stream is the same, the keep test is the same
 * (cdrop_keeps: a byte compare, and a hash on the rare ties), and a kept value is one IEEE
 * multiplication in the array's precision.
 * A dropped element is written as +0.0 by selection (never 0 * x), so NaN and Inf are dropped
 * to +0.0 as well.
 */
#ifndef CDROP_KERNELS_H
#define CDROP_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cdrop_rng.h"

#ifdef _OPENMP
#include <omp.h>
#define CDROP_HAVE_OPENMP 1
#else
#define CDROP_HAVE_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
#endif

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CDROP_HAVE_AVX2_KERNELS 1
#include <immintrin.h>
#else
#define CDROP_HAVE_AVX2_KERNELS 0
#endif

/* Kernel paths, as reported by cdrop.show_config()["simd"]. */
#define CDROP_PATH_PORTABLE 0
#define CDROP_PATH_AVX2 1
#define CDROP_PATH_AVX512 2

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

static inline int cdrop_have_openmp(void) { return CDROP_HAVE_OPENMP; }

/* AVX-512F and AVX-512BW, with OS support for the ZMM and mask state (libgcc checks XCR0). */
static inline int cdrop_cpu_has_avx512(void)
{
#if CDROP_HAVE_AVX2_KERNELS
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) ? 1 : 0;
#else
    return 0;
#endif
}

static inline int cdrop_cpu_has_avx2(void)
{
#if CDROP_HAVE_AVX2_KERNELS
    /* libgcc's and compiler-rt's checks include OS support for YMM state (XGETBV). */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    return 0;
#endif
}

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

/* Seed the lanes of the block holding global index g and advance them to the step (group of
 * 64 elements) that contains g.  Returns g's position in its block. */
static inline uint32_t cdrop_lanes_at(cdrop_lanes *st, uint64_t key, uint64_t g)
{
    const uint32_t j = (uint32_t)(g & (CDROP_BLOCK - 1));
    uint32_t out[CDROP_LANES];
    cdrop_lanes_seed(st, key, g >> CDROP_BLOCK_BITS);
    for (uint32_t q = 0; q < j / CDROP_GROUP; q++)
        cdrop_lanes_next(st, out);
    return j;
}

/* Length of the part of [g, g + remaining) that lies in g's block. */
static inline int64_t cdrop_in_block(uint64_t g, int64_t remaining)
{
    const int64_t room = (int64_t)(CDROP_BLOCK - (g & (CDROP_BLOCK - 1)));
    return remaining < room ? remaining : room;
}

/* ------------------------------------------------------------------------------------------ */
/* Portable kernels                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Keep flags (0/1) of elements i .. i + (k1 - k0) - 1, which take bytes k0 .. k1 - 1 of the
 * step `out`; element i has global index g.  Ties are rare (1 in 256), so they are resolved in
 * a second loop and the first one stays branch-free (and vectorisable). */
static inline void cdrop_step_keeps(uint8_t keep[CDROP_GROUP], const uint32_t out[CDROP_LANES],
                                    int k0, int k1, uint32_t thr, uint64_t key, uint64_t g)
{
    uint8_t bytes[CDROP_GROUP];
    const uint8_t top = (uint8_t)((thr >> 24) ^ 0x80u); /* compare bytes with their top bit flipped */
    int ties = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(bytes, out, sizeof bytes); /* byte k of the step is byte k of out[] in memory */
#else
    for (int k = 0; k < CDROP_GROUP; k++)
        bytes[k] = (uint8_t)cdrop_step_byte(out, k);
#endif
    /* (b ^ 0x80) < T  <=>  (int8)b < (int8)(T ^ 0x80), as in the SIMD code */
    for (int k = k0; k < k1; k++) {
        keep[k] = (uint8_t)((int8_t)bytes[k] < (int8_t)top);
        ties |= bytes[k] == top;
    }
    if (ties && (thr & 0xFFFFFFu) != 0) /* low threshold bits 0: a tie always drops (exact) */
        for (int k = k0; k < k1; k++)
            if (bytes[k] == top)
                keep[k] = (uint8_t)cdrop_keeps(bytes[k], thr, key, g + (uint64_t)(k - k0));
}

/* Walk [g0, g0 + n) step by step.  BODY sees keep[k0 .. k1-1], the flags of elements
 * i .. i + (k1 - k0) - 1 (local indices; element i is global index g0 + i). */
#define CDROP_WALK_PORTABLE(key, g0, n, thr, BODY)                                              \
    do {                                                                                        \
        int64_t i = 0;                                                                          \
        while (i < (n)) {                                                                       \
            cdrop_lanes st;                                                                     \
            uint32_t out[CDROP_LANES];                                                          \
            uint8_t keep[CDROP_GROUP];                                                          \
            const uint64_t g_ = (g0) + (uint64_t)i;                                             \
            const int64_t end_ = i + cdrop_in_block(g_, (n) - i);                               \
            int k0 = (int)(cdrop_lanes_at(&st, (key), g_) % CDROP_GROUP);                       \
            while (i < end_) {                                                                  \
                const int k1 = (end_ - i >= CDROP_GROUP - k0) ? CDROP_GROUP : k0 + (int)(end_ - i); \
                cdrop_lanes_next(&st, out);                                                     \
                cdrop_step_keeps(keep, out, k0, k1, (thr), (key), (g0) + (uint64_t)i);          \
                BODY;                                                                           \
                i += k1 - k0;                                                                   \
                k0 = 0;                                                                         \
            }                                                                                   \
        }                                                                                       \
    } while (0)

/* keep ? x * scale : +0.0, as bit operations: a branch on the keep flag mispredicts half the
 * time at p = 0.5 (measured 4 ns instead of 0.5 ns per element), and a select keeps the loop
 * vectorisable. */
static inline float cdrop_select_f32(float x, float scale, uint8_t keep)
{
    const float y = x * scale;
    uint32_t b;
    memcpy(&b, &y, sizeof b);
    b &= 0u - (uint32_t)keep;
    float r;
    memcpy(&r, &b, sizeof r);
    return r;
}

static inline double cdrop_select_f64(double x, double scale, uint8_t keep)
{
    const double y = x * scale;
    uint64_t b;
    memcpy(&b, &y, sizeof b);
    b &= (uint64_t)0 - (uint64_t)keep;
    double r;
    memcpy(&r, &b, sizeof r);
    return r;
}

#define CDROP_DEFINE_APPLY_PORTABLE(NAME, T, SELECT)                                            \
    static void NAME(const T *src, T *dst, int64_t n, uint64_t key, uint64_t g0, uint32_t thr, \
                     T scale)                                                                   \
    {                                                                                           \
        CDROP_WALK_PORTABLE(key, g0, n, thr, {                                                  \
            const T *s_ = src + i - k0;                                                         \
            T *d_ = dst + i - k0;                                                               \
            for (int k = k0; k < k1; k++)                                                       \
                d_[k] = SELECT(s_[k], scale, keep[k]);                                          \
        });                                                                                     \
    }

CDROP_DEFINE_APPLY_PORTABLE(cdrop_apply_f32_portable, float, cdrop_select_f32)
CDROP_DEFINE_APPLY_PORTABLE(cdrop_apply_f64_portable, double, cdrop_select_f64)

/* Keep mask as bytes 0/1 (NumPy's bool layout). */
static void cdrop_keep_u8_portable(uint8_t *dst, int64_t n, uint64_t key, uint64_t g0, uint32_t thr)
{
    CDROP_WALK_PORTABLE(key, g0, n, thr, {
        memcpy(dst + i, keep + k0, (size_t)(k1 - k0));
    });
}

/* The kernels below produce keep bytes with keep_u8 into a scratch buffer, piece by piece.  A
 * piece ends at a block boundary of the stream: a piece that started inside a block would
 * seed that block again and skip up to 255 steps (with 2 KiB pieces, each block was seeded 8
 * times: a packed 4M mask took 1.0-1.2 ms instead of 0.67). */
#define CDROP_SCRATCH ((int64_t)CDROP_BLOCK)

/* End of the piece of [a, hi) that starts at local index a: the next block boundary of the
 * stream (global index g0 + end), or hi. */
static inline int64_t cdrop_piece_end(uint64_t g0, int64_t a, int64_t hi)
{
    const int64_t end = a + cdrop_in_block(g0 + (uint64_t)a, hi - a);
    return end;
}

/* Bits of logical elements [lo, hi) into `bits` (bit i % 8 of byte i / 8 is element i, NumPy's
 * bitorder="little").  `lo` must be a multiple of 8 so that no byte is shared with another
 * chunk; `hi` is either a multiple of 8 or the end of the mask. */
static void cdrop_keep_bits_portable(uint8_t *bits, int64_t lo, int64_t hi, uint64_t key,
                                     uint64_t g0, uint32_t thr)
{
    uint8_t buf[CDROP_SCRATCH + 16];
    for (int64_t a = lo, m; a < hi; a += m) {
        /* up to the next block boundary, rounded up to whole bytes of the mask: the next piece
         * must start on a byte, so this one may reach up to 7 elements into the next block
         * (one more seeding, no skipping) */
        int64_t end = (cdrop_piece_end(g0, a, hi) + 7) & ~(int64_t)7;
        if (end > hi)
            end = hi;
        m = end - a;
        cdrop_keep_u8_portable(buf, m, key, g0 + (uint64_t)a, thr);
        memset(buf + m, 0, 8); /* the last byte of the mask has zero padding bits */
        for (int64_t k = 0; k < m; k += 8) {
            uint64_t w;
            memcpy(&w, buf + k, 8);
            /* Eight 0/1 bytes -> eight bits: byte k of w lands on bit 56 + k of the product, with
             * no carries between the partial products (their positions are all distinct).  Bytes
             * are read little-endian by the memcpy on every platform we build for; big-endian
             * hosts take the explicit loop. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            bits[(a + k) >> 3] = (uint8_t)((w * UINT64_C(0x0102040810204080)) >> 56);
#else
            uint8_t byte = 0;
            for (int b = 0; b < 8; b++)
                byte |= (uint8_t)(buf[k + b] << b);
            bits[(a + k) >> 3] = byte;
            (void)w;
#endif
        }
    }
}


/* ------------------------------------------------------------------------------------------ */
/* AVX2 kernels                                                                                */
/* ------------------------------------------------------------------------------------------ */
#if CDROP_HAVE_AVX2_KERNELS
#define CDROP_AVX2 __attribute__((target("avx2")))

#define CDROP_ROTL256(x, k) _mm256_or_si256(_mm256_slli_epi32((x), (k)), _mm256_srli_epi32((x), 32 - (k)))

/* One xoshiro128++ step of 8 lanes; the same statements as cdrop_lanes_next. */
CDROP_AVX2 static inline __m256i cdrop_avx2_step8(__m256i *s0, __m256i *s1, __m256i *s2, __m256i *s3)
{
    const __m256i out = _mm256_add_epi32(CDROP_ROTL256(_mm256_add_epi32(*s0, *s3), 7), *s0);
    const __m256i t = _mm256_slli_epi32(*s1, 9);
    *s2 = _mm256_xor_si256(*s2, *s0);
    *s3 = _mm256_xor_si256(*s3, *s1);
    *s1 = _mm256_xor_si256(*s1, *s2);
    *s0 = _mm256_xor_si256(*s0, *s3);
    *s2 = _mm256_xor_si256(*s2, t);
    *s3 = CDROP_ROTL256(*s3, 11);
    return out;
}

/* The 16 lanes in eight registers between calls: word w of lanes 0-7 in a<w>, of lanes 8-15
 * in b<w>. */
typedef struct {
    __m256i a0, a1, a2, a3, b0, b1, b2, b3;
} cdrop_lanes_avx2;

/* Seed the block of global index g and skip to the step holding g; returns g's position in
 * its block. */
CDROP_AVX2 static inline uint32_t cdrop_avx2_at(cdrop_lanes_avx2 *v, uint64_t key, uint64_t g)
{
    cdrop_lanes st;
    const uint32_t j = (uint32_t)(g & (CDROP_BLOCK - 1));
    cdrop_lanes_seed(&st, key, g >> CDROP_BLOCK_BITS);
    __m256i a0 = _mm256_loadu_si256((const __m256i *)&st.s[0][0]);
    __m256i a1 = _mm256_loadu_si256((const __m256i *)&st.s[1][0]);
    __m256i a2 = _mm256_loadu_si256((const __m256i *)&st.s[2][0]);
    __m256i a3 = _mm256_loadu_si256((const __m256i *)&st.s[3][0]);
    __m256i b0 = _mm256_loadu_si256((const __m256i *)&st.s[0][8]);
    __m256i b1 = _mm256_loadu_si256((const __m256i *)&st.s[1][8]);
    __m256i b2 = _mm256_loadu_si256((const __m256i *)&st.s[2][8]);
    __m256i b3 = _mm256_loadu_si256((const __m256i *)&st.s[3][8]);
    for (uint32_t q = 0; q < j / CDROP_GROUP; q++) {
        (void)cdrop_avx2_step8(&a0, &a1, &a2, &a3);
        (void)cdrop_avx2_step8(&b0, &b1, &b2, &b3);
    }
    *v = (cdrop_lanes_avx2){a0, a1, a2, a3, b0, b1, b2, b3};
    return j;
}

/* One step of the 16 lanes into out[16] (lanes 0-7, then 8-15), for the partial steps. */
CDROP_AVX2 static inline void cdrop_avx2_step_out(cdrop_lanes_avx2 *v, uint32_t out[CDROP_LANES])
{
    _mm256_storeu_si256((__m256i *)&out[0], cdrop_avx2_step8(&v->a0, &v->a1, &v->a2, &v->a3));
    _mm256_storeu_si256((__m256i *)&out[8], cdrop_avx2_step8(&v->b0, &v->b1, &v->b2, &v->b3));
}

/* Tie bookkeeping (general loops; the EXACT loops below have none).  In a whole step, an element
 * whose byte TIES with the threshold's top byte (1 in 256) is first written as kept and recorded; its 24 hash bits settle it later, and LOST
 * clears it when they drop it.  Why deferred: a step has a tie in 22% of cases, at random, and a
 * branch on it in the streaming loop mispredicts often enough to cut memory-level parallelism.
 * Why "kept until proven dropped": a drop can be written without the input, which an in-place
 * call has overwritten.
 * The record of a block is branch-free and costs the loop two stores and one add per step: the
 * step's 64-bit tie mask always goes to tw[s], and s goes to idx[n], where n only advances when
 * the mask is not zero.  (An earlier record of 32-element halves, (offset << 32) | mask, needed
 * two compare-and-add pairs per step; with the count spilled by GCC that chain cost the AVX-512
 * kernel 25% of its time in cache, and doing the appends in a pass of their own after the loop
 * was no better.) */
typedef struct {
    uint64_t tw[CDROP_BLOCK / CDROP_GROUP];  /* tie mask of whole step s of the block */
    uint16_t idx[CDROP_BLOCK / CDROP_GROUP]; /* the steps with ties, in order */
} cdrop_ties;

/* Settle the ties of record k of `t`, a block whose first whole step is local index `base`: for
 * each tie, `lost` is 1 when the hash bits drop it, and LOST clears local element e without a
 * branch on `lost` (half of the ties are lost, at random).  Most records hold one tie: the
 * do-while's back edge is rarely taken and predicts well. */
#define CDROP_SETTLE_RECORD(t, k, base, key, g0, thr, LOST)                                    \
    do {                                                                                        \
        const int64_t s__ = (t)->idx[k];                                                        \
        const int64_t first_ = (base) + CDROP_GROUP * s__;                                      \
        uint64_t m_ = (t)->tw[s__];                                                             \
        do {                                                                                    \
            const int64_t e = first_ + __builtin_ctzll(m_);                                     \
            const int lost = cdrop_tie24((key), (g0) + (uint64_t)e) >= ((thr) & 0xFFFFFFu);     \
            LOST;                                                                               \
            m_ &= m_ - 1;                                                                       \
        } while (m_);                                                                           \
    } while (0)

/* The loop of whole steps, elements [i0, i0 + 64 * nsteps) of one block, each step as two
 * halves of 32 elements (h = 0: lanes 0-7, h = 32: lanes 8-15).  FULL handles a half with
 *   drop  0xFF in the bytes of the elements dropped for sure (byte above the threshold's top;
 *         in the EXACT loop below, at or above it);
 * ties are recorded in `ties` (nrec records, relative to i0).  Meanwhile the previous block's
 * records (prev, nprev, first whole step at prev_base) are settled, one per step: settling them
 * in a pass of their own left the memory system idle for its duration (0.18 instead of 0.15
 * ns/element at DRAM sizes).  The loop lives in a function of its own with the lanes in local
 * variables: sharing a function with the partial-step code made GCC keep part of the lane state
 * in memory. */
#define CDROP_AVX2_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base,      \
                         FULL, LOST)                                                            \
    do {                                                                                        \
        if (((thr) & 0xFFFFFFu) == 0)                                                           \
            CDROP_AVX2_LOOP(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, 1, \
                            FULL, LOST);                                                        \
        else                                                                                    \
            CDROP_AVX2_LOOP(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, 0, \
                            FULL, LOST);                                                        \
    } while (0)

/* The loop of CDROP_AVX2_STEPS.  EXACT (a constant) is 1 when the threshold's low 24 bits are
 * 0 (p a multiple of 1/256: 0.5, 0.25, 0.125, 0.75, ...): then a tie's hash bits can never be
 * below them, every tie drops, and the byte comparison alone is the keep test; the loop has no
 * tie records to write or settle.  This is the same stream, not an approximation. */
#define CDROP_AVX2_LOOP(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, EXACT, \
                        FULL, LOST)                                                             \
    do {                                                                                        \
        const __m256i top_s = _mm256_set1_epi8((char)(((thr) >> 24) ^ 0x80u));                 \
        const __m256i ones_ = _mm256_set1_epi8(-1);                                             \
        __m256i a0 = (v)->a0, a1 = (v)->a1, a2 = (v)->a2, a3 = (v)->a3;                         \
        __m256i b0 = (v)->b0, b1 = (v)->b1, b2 = (v)->b2, b3 = (v)->b3;                         \
        int64_t i = (i0);                                                                       \
        int p_ = 0;                                                                             \
        for (int64_t s_ = 0; s_ < (nsteps); s_++, i += CDROP_GROUP) {                           \
            const __m256i ua = cdrop_avx2_step8(&a0, &a1, &a2, &a3);                            \
            const __m256i ub = cdrop_avx2_step8(&b0, &b1, &b2, &b3);                            \
            uint64_t tw_ = 0;                                                                   \
            for (int h = 0; h < CDROP_GROUP; h += 32) {                                         \
                const __m256i u_ = h ? ub : ua;                                                 \
                __m256i drop;                                                                   \
                uint32_t ht_ = 0;                                                               \
                if (EXACT) /* drop unless byte < top: ties included */                          \
                    drop = _mm256_xor_si256(_mm256_cmpgt_epi8(top_s, u_), ones_);               \
                else {                                                                          \
                    drop = _mm256_cmpgt_epi8(u_, top_s);                                        \
                    ht_ = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(u_, top_s));         \
                }                                                                               \
                FULL;                                                                           \
                tw_ |= (uint64_t)ht_ << h;                                                      \
            }                                                                                   \
            if (!EXACT) {                                                                       \
                (ties)->tw[s_] = tw_;                                                           \
                (ties)->idx[nrec] = (uint16_t)s_;                                               \
                nrec += tw_ != 0;                                                               \
                if (p_ < (nprev)) { /* taken for the first steps only: predictable */           \
                    CDROP_SETTLE_RECORD((prev), p_, (prev_base), (key), (g0), (thr), LOST);      \
                    p_++;                                                                       \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        for (; p_ < (nprev); p_++)                                                              \
            CDROP_SETTLE_RECORD((prev), p_, (prev_base), (key), (g0), (thr), LOST);              \
        *(v) = (cdrop_lanes_avx2){a0, a1, a2, a3, b0, b1, b2, b3};                              \
    } while (0)

/* Walk [g0, g0 + n) block by block (LANES_T, AT and STEP_OUT: the SIMD path's lane registers,
 * its seeding and its single step into out[16]): partial steps (head, tail) through cdrop_step_keeps and
 * PART (keep[k0 .. k1-1] for the elements from local index i), whole steps through STEPS, a
 * call of the kernel's steps function which records this block's ties in tie[cur] and settles
 * those of the previous block (tie[!cur], nprev records, first whole step at prev_base); the last
 * block's ties are settled at the end with LOST.  (With an EXACT threshold STEPS records nothing
 * and returns 0, so there is nothing to settle.) */
#define CDROP_WALK_SIMD(LANES_T, AT, STEP_OUT, key, g0, n, thr, STEPS, LOST, PART)              \
    do {                                                                                        \
        cdrop_ties tie[2];                                                                      \
        int cur = 0, nprev = 0;                                                                 \
        int64_t prev_base = 0;                                                                  \
        int64_t i = 0;                                                                          \
        while (i < (n)) {                                                                       \
            LANES_T v;                                                                          \
            uint32_t out[CDROP_LANES];                                                          \
            uint8_t keep[CDROP_GROUP];                                                          \
            const uint64_t g_ = (g0) + (uint64_t)i;                                             \
            const int64_t end_ = i + cdrop_in_block(g_, (n) - i);                               \
            int k0 = (int)(AT(&v, (key), g_) % CDROP_GROUP);                                    \
            int nrec = 0;                                                                       \
            int64_t rec_base = i;                                                               \
            if (k0 != 0 || end_ - i < CDROP_GROUP) { /* head: a partial step */                 \
                const int k1 = (end_ - i >= CDROP_GROUP - k0) ? CDROP_GROUP : k0 + (int)(end_ - i); \
                STEP_OUT(&v, out);                                                              \
                cdrop_step_keeps(keep, out, k0, k1, (thr), (key), (g0) + (uint64_t)i);          \
                PART;                                                                           \
                i += k1 - k0;                                                                   \
                k0 = 0;                                                                         \
            }                                                                                   \
            if (end_ - i >= CDROP_GROUP) {                                                      \
                const int64_t nsteps = (end_ - i) / CDROP_GROUP;                                \
                nrec = STEPS; /* records are relative to i, the first whole step */             \
                nprev = 0;    /* settled by STEPS */                                            \
                rec_base = i;                                                                   \
                i += nsteps * CDROP_GROUP;                                                      \
            }                                                                                   \
            if (i < end_) { /* tail: a partial step */                                          \
                const int k1 = (int)(end_ - i);                                                 \
                STEP_OUT(&v, out);                                                              \
                cdrop_step_keeps(keep, out, 0, k1, (thr), (key), (g0) + (uint64_t)i);           \
                PART;                                                                           \
                i = end_;                                                                       \
            }                                                                                   \
            for (int t = 0; t < nprev; t++) /* a block without whole steps settles here */      \
                CDROP_SETTLE_RECORD(&tie[!cur], t, prev_base, (key), (g0), (thr), LOST);         \
            nprev = nrec;                                                                       \
            prev_base = rec_base;                                                               \
            cur = !cur;                                                                         \
        }                                                                                       \
        for (int t = 0; t < nprev; t++)                                                         \
            CDROP_SETTLE_RECORD(&tie[!cur], t, prev_base, (key), (g0), (thr), LOST);             \
    } while (0)

#define CDROP_WALK_AVX2(key, g0, n, thr, STEPS, LOST, PART)                                     \
    CDROP_WALK_SIMD(cdrop_lanes_avx2, cdrop_avx2_at, cdrop_avx2_step_out, key, g0, n, thr,      \
                    STEPS, LOST, PART)

/* The entry points of a SIMD path, written once for all paths: the path's WALK macro and steps
 * functions (STEPS) differ, the partial steps and the clearing of lost ties do not.  ATTR is the
 * path's target attribute.  (LOST and PART as in CDROP_WALK_SIMD.) */
#define CDROP_DEFINE_APPLY_SIMD(NAME, ATTR, WALK, STEPS, T, SELECT, CLEAR)                      \
    ATTR static void NAME(const T *src, T *dst, int64_t n, uint64_t key, uint64_t g0,          \
                          uint32_t thr, T scale)                                                \
    {                                                                                           \
        WALK(key, g0, n, thr,                                                                   \
             STEPS(&v, src, dst, i, nsteps, thr, scale, key, g0, &tie[cur], &tie[!cur], nprev,  \
                   prev_base),                                                                  \
             CLEAR(dst + e, lost),                                                              \
             {                                                                                  \
                 for (int k = k0; k < k1; k++)                                                  \
                     dst[i + k - k0] = SELECT(src[i + k - k0], scale, keep[k]);                 \
             });                                                                                \
    }

/* Keep mask as bytes 0/1; a lost tie turns its 1 into 0. */
#define CDROP_DEFINE_KEEP_U8_SIMD(NAME, ATTR, WALK, STEPS)                                      \
    ATTR static void NAME(uint8_t *dst, int64_t n, uint64_t key, uint64_t g0, uint32_t thr)    \
    {                                                                                           \
        WALK(key, g0, n, thr,                                                                   \
             STEPS(&v, dst, i, nsteps, thr, key, g0, &tie[cur], &tie[!cur], nprev, prev_base),  \
             dst[e] &= (uint8_t)(lost - 1),                                                     \
             { memcpy(dst + i, keep + k0, (size_t)(k1 - k0)); });                               \
    }

/* Packed keep bits of local elements [lo, hi) (global g0 + lo ...) into `bits`, which must be
 * zero there; lo is a multiple of 8 and hi a multiple of 8 or the end of the mask. */
#define CDROP_DEFINE_KEEP_BITS_SIMD(NAME, ATTR, WALK, STEPS)                                    \
    ATTR static void NAME(uint8_t *bits, int64_t lo, int64_t hi, uint64_t key, uint64_t g0,    \
                          uint32_t thr)                                                         \
    {                                                                                           \
        const uint64_t gl = g0 + (uint64_t)lo;                                                  \
        const int64_t n = hi - lo;                                                              \
        WALK(key, gl, n, thr,                                                                   \
             STEPS(&v, bits, lo, i, nsteps, thr, key, gl, &tie[cur], &tie[!cur], nprev,         \
                   prev_base),                                                                  \
             bits[(lo + e) >> 3] &= (uint8_t)~(lost << ((lo + e) & 7)),                         \
             {                                                                                  \
                 for (int k = k0; k < k1; k++) {                                                \
                     const int64_t b = lo + i + k - k0;                                         \
                     bits[b >> 3] |= (uint8_t)(keep[k] << (b & 7));                             \
                 }                                                                              \
             });                                                                                \
    }

/* *x = +0.0 if lost, else unchanged; bit operations instead of a branch. */
static inline void cdrop_clear_if_f32(float *x, int lost)
{
    uint32_t b;
    memcpy(&b, x, sizeof b);
    b &= (uint32_t)lost - 1u;
    memcpy(x, &b, sizeof b);
}

static inline void cdrop_clear_if_f64(double *x, int lost)
{
    uint64_t b;
    memcpy(&b, x, sizeof b);
    b &= (uint64_t)lost - 1u;
    memcpy(x, &b, sizeof b);
}

/* float32: whole steps.  Returns the number of tie records. */
CDROP_AVX2 __attribute__((noinline)) static int cdrop_steps_f32_avx2(
    cdrop_lanes_avx2 *v, const float *src, float *dst, int64_t i0, int64_t nsteps, uint32_t thr,
    float scale, uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev,
    int64_t prev_base)
{
    const __m256 sc = _mm256_set1_ps(scale);
    int nrec = 0;
    CDROP_AVX2_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        /* 32 byte masks -> four vectors of 8 int32 masks by sign extension */
        const __m128i lo = _mm256_castsi256_si128(drop);
        const __m128i hi = _mm256_extracti128_si256(drop, 1);
        const float *s_ = src + i + h;
        float *d_ = dst + i + h;
        const __m256 m0 = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(lo));
        const __m256 m1 = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
        const __m256 m2 = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(hi));
        const __m256 m3 = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
        _mm256_storeu_ps(d_, _mm256_andnot_ps(m0, _mm256_mul_ps(_mm256_loadu_ps(s_), sc)));
        _mm256_storeu_ps(d_ + 8, _mm256_andnot_ps(m1, _mm256_mul_ps(_mm256_loadu_ps(s_ + 8), sc)));
        _mm256_storeu_ps(d_ + 16, _mm256_andnot_ps(m2, _mm256_mul_ps(_mm256_loadu_ps(s_ + 16), sc)));
        _mm256_storeu_ps(d_ + 24, _mm256_andnot_ps(m3, _mm256_mul_ps(_mm256_loadu_ps(s_ + 24), sc)));
    }, cdrop_clear_if_f32(dst + e, lost));
    return nrec;
}

CDROP_DEFINE_APPLY_SIMD(cdrop_apply_f32_avx2, CDROP_AVX2, CDROP_WALK_AVX2, cdrop_steps_f32_avx2,
                        float, cdrop_select_f32, cdrop_clear_if_f32)

/* float64: whole steps. */
CDROP_AVX2 __attribute__((noinline)) static int cdrop_steps_f64_avx2(
    cdrop_lanes_avx2 *v, const double *src, double *dst, int64_t i0, int64_t nsteps, uint32_t thr,
    double scale, uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev,
    int64_t prev_base)
{
    const __m256d sc = _mm256_set1_pd(scale);
    int nrec = 0;
    CDROP_AVX2_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        /* 32 byte masks -> eight vectors of 4 int64 masks by sign extension */
        const __m128i lo = _mm256_castsi256_si128(drop);
        const __m128i hi = _mm256_extracti128_si256(drop, 1);
        const double *s_ = src + i + h;
        double *d_ = dst + i + h;
        for (int q = 0; q < 4; q++) {
            const __m128i part = q < 2 ? lo : hi;
            const __m128i bytes = (q & 1) ? _mm_srli_si128(part, 8) : part;
            const __m256d m0 = _mm256_castsi256_pd(_mm256_cvtepi8_epi64(bytes));
            const __m256d m1 = _mm256_castsi256_pd(_mm256_cvtepi8_epi64(_mm_srli_si128(bytes, 4)));
            _mm256_storeu_pd(d_ + 8 * q, _mm256_andnot_pd(m0, _mm256_mul_pd(_mm256_loadu_pd(s_ + 8 * q), sc)));
            _mm256_storeu_pd(d_ + 8 * q + 4,
                             _mm256_andnot_pd(m1, _mm256_mul_pd(_mm256_loadu_pd(s_ + 8 * q + 4), sc)));
        }
    }, cdrop_clear_if_f64(dst + e, lost));
    return nrec;
}

CDROP_DEFINE_APPLY_SIMD(cdrop_apply_f64_avx2, CDROP_AVX2, CDROP_WALK_AVX2, cdrop_steps_f64_avx2,
                        double, cdrop_select_f64, cdrop_clear_if_f64)

/* Keep bytes: whole steps. */
CDROP_AVX2 __attribute__((noinline)) static int cdrop_steps_u8_avx2(
    cdrop_lanes_avx2 *v, uint8_t *dst, int64_t i0, int64_t nsteps, uint32_t thr, uint64_t key,
    uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev, int64_t prev_base)
{
    const __m256i one = _mm256_set1_epi8(1);
    int nrec = 0;
    CDROP_AVX2_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        _mm256_storeu_si256((__m256i *)(dst + i + h), _mm256_andnot_si256(drop, one));
    }, dst[e] &= (uint8_t)(lost - 1));
    return nrec;
}

CDROP_DEFINE_KEEP_U8_SIMD(cdrop_keep_u8_avx2, CDROP_AVX2, CDROP_WALK_AVX2, cdrop_steps_u8_avx2)

/* Packed keep bits.  OR the 32 bits `v` into the bit array at bit position b (bit b % 8 of byte
 * b / 8, NumPy's bitorder="little"): the bytes touched hold bits of [b, b + 32) and at most the
 * rest of the bytes they share, which belong to the same call (its range starts on a byte and
 * ends on one or at the end of the mask); the array is zero on entry. */
static inline void cdrop_or_bits32(uint8_t *bits, int64_t b, uint32_t v)
{
    uint8_t *p = bits + (b >> 3);
    const uint64_t w = (uint64_t)v << (b & 7);
    p[0] |= (uint8_t)w;
    p[1] |= (uint8_t)(w >> 8);
    p[2] |= (uint8_t)(w >> 16);
    p[3] |= (uint8_t)(w >> 24);
    if (b & 7)
        p[4] |= (uint8_t)(w >> 32);
}

/* Packed bits: whole steps.  A half's keep bits are the complement of movemask(drop): one bit per
 * element straight from the byte comparison, no byte mask stored. */
CDROP_AVX2 __attribute__((noinline)) static int cdrop_steps_bits_avx2(
    cdrop_lanes_avx2 *v, uint8_t *bits, int64_t base, int64_t i0, int64_t nsteps, uint32_t thr,
    uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev, int64_t prev_base)
{
    int nrec = 0;
    CDROP_AVX2_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        cdrop_or_bits32(bits, base + i + h, ~(uint32_t)_mm256_movemask_epi8(drop));
    }, bits[(base + e) >> 3] &= (uint8_t)~(lost << ((base + e) & 7)));
    return nrec;
}

CDROP_DEFINE_KEEP_BITS_SIMD(cdrop_keep_bits_avx2, CDROP_AVX2, CDROP_WALK_AVX2, cdrop_steps_bits_avx2)

/* ------------------------------------------------------------------------------------------ */
/* AVX-512 kernels (AVX-512F + AVX-512BW: Intel Skylake-SP and later, AMD Zen 4 and later)     */
/* ------------------------------------------------------------------------------------------ */
/* One 512-bit register holds one state word of all 16 lanes, so a step is one vector of 64
 * bytes whose byte k is element k of the group (cdrop_step_byte's order), its 64 keep decisions
 * are one mask register (vpcmpb), and a kept value is one zero-masked multiply: none of the
 * byte-to-lane sign extensions and and-nots of the AVX2 code, and rotations and three-way XORs
 * are single instructions (vprold, vpternlogd).  Same stream, same keep test (the signed byte
 * comparison of cdrop_keeps, ties settled by the hash) and the same IEEE multiply: the same bits
 * as the other paths.  Measured on Zen 4, float32 in cache: see the comment at the kernel table. */
#define CDROP_AVX512 __attribute__((target("avx512f,avx512bw")))

typedef struct {
    __m512i s0, s1, s2, s3;
} cdrop_lanes_avx512;

/* One xoshiro128++ step of the 16 lanes; the same statements as cdrop_lanes_next. */
CDROP_AVX512 static inline __m512i cdrop_avx512_step(__m512i *s0, __m512i *s1, __m512i *s2,
                                                     __m512i *s3)
{
    const __m512i out = _mm512_add_epi32(_mm512_rol_epi32(_mm512_add_epi32(*s0, *s3), 7), *s0);
    const __m512i t = _mm512_slli_epi32(*s1, 9);
    *s2 = _mm512_xor_si512(*s2, *s0);
    *s3 = _mm512_xor_si512(*s3, *s1);
    *s1 = _mm512_xor_si512(*s1, *s2);
    *s0 = _mm512_xor_si512(*s0, *s3);
    *s2 = _mm512_xor_si512(*s2, t);
    *s3 = _mm512_rol_epi32(*s3, 11);
    return out;
}

CDROP_AVX512 static inline uint32_t cdrop_avx512_at(cdrop_lanes_avx512 *v, uint64_t key, uint64_t g)
{
    cdrop_lanes st;
    const uint32_t j = (uint32_t)(g & (CDROP_BLOCK - 1));
    cdrop_lanes_seed(&st, key, g >> CDROP_BLOCK_BITS);
    __m512i s0 = _mm512_loadu_si512((const void *)&st.s[0][0]);
    __m512i s1 = _mm512_loadu_si512((const void *)&st.s[1][0]);
    __m512i s2 = _mm512_loadu_si512((const void *)&st.s[2][0]);
    __m512i s3 = _mm512_loadu_si512((const void *)&st.s[3][0]);
    for (uint32_t q = 0; q < j / CDROP_GROUP; q++)
        (void)cdrop_avx512_step(&s0, &s1, &s2, &s3);
    *v = (cdrop_lanes_avx512){s0, s1, s2, s3};
    return j;
}

CDROP_AVX512 static inline void cdrop_avx512_step_out(cdrop_lanes_avx512 *v, uint32_t out[CDROP_LANES])
{
    _mm512_storeu_si512((void *)out, cdrop_avx512_step(&v->s0, &v->s1, &v->s2, &v->s3));
}

/* The loop of whole steps, as CDROP_AVX2_STEPS (same tie records), with FULL seeing
 *   keep  a 64-bit mask, bit k set when element i + k is kept or ties (byte <= the threshold's
 *         top byte, signed): ties are written as kept and settled later by LOST.  In the
 *         EXACT loop, bit k is set when element i + k is kept (byte < top byte). */
#define CDROP_AVX512_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base,    \
                           FULL, LOST)                                                          \
    do {                                                                                        \
        if (((thr) & 0xFFFFFFu) == 0)                                                           \
            CDROP_AVX512_LOOP(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base,  \
                              1, FULL, LOST);                                                   \
        else                                                                                    \
            CDROP_AVX512_LOOP(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base,  \
                              0, FULL, LOST);                                                   \
    } while (0)

/* The loop of CDROP_AVX512_STEPS, EXACT as in CDROP_AVX2_LOOP: every tie drops, so `keep` is
 * the strict comparison and nothing is recorded. */
#define CDROP_AVX512_LOOP(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base,     \
                          EXACT, FULL, LOST)                                                    \
    do {                                                                                        \
        const __m512i top_s = _mm512_set1_epi8((char)(((thr) >> 24) ^ 0x80u));                 \
        __m512i s0 = (v)->s0, s1 = (v)->s1, s2 = (v)->s2, s3 = (v)->s3;                         \
        int64_t i = (i0);                                                                       \
        int p_ = 0;                                                                             \
        for (int64_t s_ = 0; s_ < (nsteps); s_++, i += CDROP_GROUP) {                           \
            const __m512i u_ = cdrop_avx512_step(&s0, &s1, &s2, &s3);                           \
            const uint64_t keep = EXACT ? (uint64_t)_mm512_cmplt_epi8_mask(u_, top_s)            \
                                        : (uint64_t)_mm512_cmple_epi8_mask(u_, top_s);           \
            FULL;                                                                               \
            if (!EXACT) {                                                                       \
                const uint64_t tw_ = (uint64_t)_mm512_cmpeq_epi8_mask(u_, top_s);               \
                (ties)->tw[s_] = tw_;                                                           \
                (ties)->idx[nrec] = (uint16_t)s_;                                               \
                nrec += tw_ != 0;                                                               \
                if (p_ < (nprev)) {                                                             \
                    CDROP_SETTLE_RECORD((prev), p_, (prev_base), (key), (g0), (thr), LOST);      \
                    p_++;                                                                       \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        for (; p_ < (nprev); p_++)                                                              \
            CDROP_SETTLE_RECORD((prev), p_, (prev_base), (key), (g0), (thr), LOST);              \
        *(v) = (cdrop_lanes_avx512){s0, s1, s2, s3};                                            \
    } while (0)

#define CDROP_WALK_AVX512(key, g0, n, thr, STEPS, LOST, PART)                                   \
    CDROP_WALK_SIMD(cdrop_lanes_avx512, cdrop_avx512_at, cdrop_avx512_step_out, key, g0, n, thr, \
                    STEPS, LOST, PART)

CDROP_AVX512 __attribute__((noinline)) static int cdrop_steps_f32_avx512(
    cdrop_lanes_avx512 *v, const float *src, float *dst, int64_t i0, int64_t nsteps, uint32_t thr,
    float scale, uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev,
    int64_t prev_base)
{
    const __m512 sc = _mm512_set1_ps(scale);
    int nrec = 0;
    CDROP_AVX512_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        /* zero-masking: a dropped element is +0.0 without being multiplied */
        for (int q = 0; q < 4; q++)
            _mm512_storeu_ps(dst + i + 16 * q,
                             _mm512_maskz_mul_ps((__mmask16)(keep >> (16 * q)),
                                                 _mm512_loadu_ps(src + i + 16 * q), sc));
    }, cdrop_clear_if_f32(dst + e, lost));
    return nrec;
}

CDROP_DEFINE_APPLY_SIMD(cdrop_apply_f32_avx512, CDROP_AVX512, CDROP_WALK_AVX512,
                        cdrop_steps_f32_avx512, float, cdrop_select_f32, cdrop_clear_if_f32)

CDROP_AVX512 __attribute__((noinline)) static int cdrop_steps_f64_avx512(
    cdrop_lanes_avx512 *v, const double *src, double *dst, int64_t i0, int64_t nsteps, uint32_t thr,
    double scale, uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev,
    int64_t prev_base)
{
    const __m512d sc = _mm512_set1_pd(scale);
    int nrec = 0;
    CDROP_AVX512_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        for (int q = 0; q < 8; q++)
            _mm512_storeu_pd(dst + i + 8 * q,
                             _mm512_maskz_mul_pd((__mmask8)(keep >> (8 * q)),
                                                 _mm512_loadu_pd(src + i + 8 * q), sc));
    }, cdrop_clear_if_f64(dst + e, lost));
    return nrec;
}

CDROP_DEFINE_APPLY_SIMD(cdrop_apply_f64_avx512, CDROP_AVX512, CDROP_WALK_AVX512,
                        cdrop_steps_f64_avx512, double, cdrop_select_f64, cdrop_clear_if_f64)

CDROP_AVX512 __attribute__((noinline)) static int cdrop_steps_u8_avx512(
    cdrop_lanes_avx512 *v, uint8_t *dst, int64_t i0, int64_t nsteps, uint32_t thr, uint64_t key,
    uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev, int64_t prev_base)
{
    const __m512i one = _mm512_set1_epi8(1);
    int nrec = 0;
    CDROP_AVX512_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        _mm512_storeu_si512((void *)(dst + i), _mm512_maskz_mov_epi8((__mmask64)keep, one));
    }, dst[e] &= (uint8_t)(lost - 1));
    return nrec;
}

CDROP_DEFINE_KEEP_U8_SIMD(cdrop_keep_u8_avx512, CDROP_AVX512, CDROP_WALK_AVX512,
                          cdrop_steps_u8_avx512)

/* OR 64 bits into the bit array at bit position b, as cdrop_or_bits32 (x86 only, so the
 * 8-byte word is little-endian: byte k holds bits 8k .. 8k+7). */
static inline void cdrop_or_bits64(uint8_t *bits, int64_t b, uint64_t v)
{
    uint8_t *p = bits + (b >> 3);
    const int sh = (int)(b & 7);
    uint64_t w;
    memcpy(&w, p, 8);
    w |= v << sh;
    memcpy(p, &w, 8);
    if (sh)
        p[8] |= (uint8_t)(v >> (64 - sh));
}

CDROP_AVX512 __attribute__((noinline)) static int cdrop_steps_bits_avx512(
    cdrop_lanes_avx512 *v, uint8_t *bits, int64_t base, int64_t i0, int64_t nsteps, uint32_t thr,
    uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev, int64_t prev_base)
{
    int nrec = 0;
    CDROP_AVX512_STEPS(v, i0, nsteps, thr, key, g0, ties, nrec, prev, nprev, prev_base, {
        cdrop_or_bits64(bits, base + i, keep);
    }, bits[(base + e) >> 3] &= (uint8_t)~(lost << ((base + e) & 7)));
    return nrec;
}

CDROP_DEFINE_KEEP_BITS_SIMD(cdrop_keep_bits_avx512, CDROP_AVX512, CDROP_WALK_AVX512,
                            cdrop_steps_bits_avx512)

/* ------------------------------------------------------------------------------------------ */
/* Streaming out-of-place apply (AVX-512): non-temporal stores for outputs too big for cache    */
/* ------------------------------------------------------------------------------------------ */
/* An ordinary store to a line that is not in cache first reads the line from memory (a "read
 * for ownership"), so an out-of-place call on arrays larger than the cache moves three bytes
 * of DRAM traffic per output byte instead of two.  Non-temporal stores (vmovntps) write whole
 * lines straight to memory without reading them: measured on Zen 4, float32 out of place,
 * 0.31 -> 0.22 ns/element at 4M elements and 0.37 -> 0.26 at 16M (C harness, medians of 41
 * and 21 interleaved calls); below about 1M elements they were slower (0.11 -> 0.16 ns at
 * 512K), so the Cython layer uses them only from a size threshold (see _kernels.pyx).
 * The price is that the output is not left in cache for its next reader: the same trade-off
 * as glibc's memcpy, which also turns to non-temporal stores above a fraction of the L3.
 * Two consequences for the loop:
 *   - ties are settled before the store (a lost tie cannot be cleared afterwards: that would
 *     read back a line just sent to memory); the branch on a tie mispredicts, but this loop
 *     waits for memory anyway;
 *   - non-temporal stores need 64-byte-aligned addresses and NumPy aligns to 16 bytes, so a
 *     destination that starts m elements past a 64-byte boundary is written through a carry:
 *     each aligned vector is the last m elements of the previous result and the first ones of
 *     the current result (vpermt2ps/pd), and the first and last partial vectors are masked
 *     ordinary stores. */

/* keep: the step's keep-or-tie mask (byte <= top byte); clears the ties whose hash drops them.
 * `g` is the global index of the step's element 0. */
static inline uint64_t cdrop_settle_inline(uint64_t keep, uint64_t tw, uint64_t key, uint64_t g,
                                           uint32_t thr)
{
    while (tw) {
        const int e = __builtin_ctzll(tw);
        const uint64_t lost = cdrop_tie24(key, g + (uint64_t)e) >= (thr & 0xFFFFFFu);
        keep &= ~(lost << e);
        tw &= tw - 1;
    }
    return keep;
}

/* The whole steps of a streaming call: as cdrop_steps_*_avx512 but with final values and
 * non-temporal stores; records no ties (returns 0).  VEC elements per vector, NV vectors per
 * step; MUL(k, x) is the zero-masked multiply, PERM the two-source permutation, STREAM/MSTORE
 * the non-temporal and the masked ordinary store. */
#define CDROP_AVX512_STREAM_STEPS(T, VEC, NV, VT, IDXV, MASKT, LOAD, MUL, PERM, STREAM, MSTORE)  \
    do {                                                                                        \
        const __m512i top_s = _mm512_set1_epi8((char)(((thr) >> 24) ^ 0x80u));                 \
        const int exact = (thr & 0xFFFFFFu) == 0;                                               \
        const int m = (int)(((uintptr_t)(dst + i0) & 63) / sizeof(T)); /* 0 .. VEC - 1 */       \
        const __m512i idx = IDXV;                                                               \
        const MASKT head = (MASKT)((1u << (VEC - m)) - 1u); /* lanes 0 .. VEC-m-1 */           \
        __m512i s0 = v->s0, s1 = v->s1, s2 = v->s2, s3 = v->s3;                                 \
        VT carry = (VT){0};                                                                     \
        int64_t i = i0;                                                                         \
        for (int64_t s_ = 0; s_ < nsteps; s_++, i += CDROP_GROUP) {                             \
            const __m512i u_ = cdrop_avx512_step(&s0, &s1, &s2, &s3);                           \
            uint64_t keep;                                                                      \
            if (exact)                                                                          \
                keep = (uint64_t)_mm512_cmplt_epi8_mask(u_, top_s);                             \
            else {                                                                              \
                keep = (uint64_t)_mm512_cmple_epi8_mask(u_, top_s);                             \
                const uint64_t tw_ = (uint64_t)_mm512_cmpeq_epi8_mask(u_, top_s);               \
                if (tw_)                                                                        \
                    keep = cdrop_settle_inline(keep, tw_, key, g0 + (uint64_t)i, thr);          \
            }                                                                                   \
            for (int q = 0; q < NV; q++) {                                                      \
                const VT r = MUL((MASKT)(keep >> (VEC * q)), LOAD(src + i + VEC * q));          \
                if (m == 0)                                                                     \
                    STREAM(dst + i + VEC * q, r);                                               \
                else if (s_ == 0 && q == 0)                                                     \
                    MSTORE(dst + i, head, r);                                                   \
                else                                                                            \
                    STREAM(dst + i + VEC * q - m, PERM(carry, idx, r));                         \
                carry = r;                                                                      \
            }                                                                                   \
        }                                                                                       \
        if (m != 0 && nsteps > 0)                                                               \
            MSTORE(dst + i - VEC, (MASKT)~head, carry);                                         \
        _mm_sfence(); /* order the weakly ordered stores before anyone reads the output */      \
        *v = (cdrop_lanes_avx512){s0, s1, s2, s3};                                              \
    } while (0)

#define CDROP_MUL_PS(k, x) _mm512_maskz_mul_ps((k), (x), sc)
#define CDROP_MUL_PD(k, x) _mm512_maskz_mul_pd((k), (x), sc)

CDROP_AVX512 __attribute__((noinline)) static int cdrop_steps_f32_avx512_nt(
    cdrop_lanes_avx512 *v, const float *src, float *dst, int64_t i0, int64_t nsteps, uint32_t thr,
    float scale, uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev,
    int64_t prev_base)
{
    (void)ties, (void)prev, (void)nprev, (void)prev_base;
    const __m512 sc = _mm512_set1_ps(scale);
    CDROP_AVX512_STREAM_STEPS(float, 16, 4, __m512,
                              _mm512_add_epi32(_mm512_set1_epi32(16 - m),
                                               _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
                                                                 11, 12, 13, 14, 15)),
                              __mmask16, _mm512_loadu_ps, CDROP_MUL_PS, _mm512_permutex2var_ps,
                              _mm512_stream_ps, _mm512_mask_storeu_ps);
    return 0;
}

CDROP_DEFINE_APPLY_SIMD(cdrop_apply_f32_avx512_nt, CDROP_AVX512, CDROP_WALK_AVX512,
                        cdrop_steps_f32_avx512_nt, float, cdrop_select_f32, cdrop_clear_if_f32)

CDROP_AVX512 __attribute__((noinline)) static int cdrop_steps_f64_avx512_nt(
    cdrop_lanes_avx512 *v, const double *src, double *dst, int64_t i0, int64_t nsteps, uint32_t thr,
    double scale, uint64_t key, uint64_t g0, cdrop_ties *ties, const cdrop_ties *prev, int nprev,
    int64_t prev_base)
{
    (void)ties, (void)prev, (void)nprev, (void)prev_base;
    const __m512d sc = _mm512_set1_pd(scale);
    CDROP_AVX512_STREAM_STEPS(double, 8, 8, __m512d,
                              _mm512_add_epi64(_mm512_set1_epi64(8 - m),
                                               _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7)),
                              __mmask8, _mm512_loadu_pd, CDROP_MUL_PD, _mm512_permutex2var_pd,
                              _mm512_stream_pd, _mm512_mask_storeu_pd);
    return 0;
}

CDROP_DEFINE_APPLY_SIMD(cdrop_apply_f64_avx512_nt, CDROP_AVX512, CDROP_WALK_AVX512,
                        cdrop_steps_f64_avx512_nt, double, cdrop_select_f64, cdrop_clear_if_f64)
#endif /* CDROP_HAVE_AVX2_KERNELS */

/* ------------------------------------------------------------------------------------------ */
/* Kernel tables, chosen once by the Cython layer                                              */
/* ------------------------------------------------------------------------------------------ */
typedef void (*cdrop_apply_f32_fn)(const float *, float *, int64_t, uint64_t, uint64_t, uint32_t, float);
typedef void (*cdrop_apply_f64_fn)(const double *, double *, int64_t, uint64_t, uint64_t, uint32_t, double);
typedef void (*cdrop_keep_u8_fn)(uint8_t *, int64_t, uint64_t, uint64_t, uint32_t);
typedef void (*cdrop_keep_bits_fn)(uint8_t *, int64_t, int64_t, uint64_t, uint64_t, uint32_t);

typedef struct {
    int path;
    cdrop_apply_f32_fn apply_f32;
    cdrop_apply_f64_fn apply_f64;
    cdrop_keep_u8_fn keep_u8;
    cdrop_keep_bits_fn keep_bits;
    /* out of place, for outputs too big for the cache: non-temporal stores where the path has
     * them (AVX-512), else the same functions as apply_f32/apply_f64 */
    cdrop_apply_f32_fn apply_f32_stream;
    cdrop_apply_f64_fn apply_f64_stream;
} cdrop_kernel_table;

/* The table for `path`; a path the CPU (or compiler) lacks falls back to the next one down:
 * AVX-512 -> AVX2 -> portable. */
static inline cdrop_kernel_table cdrop_kernels_for(int path)
{
    cdrop_kernel_table t = {CDROP_PATH_PORTABLE, cdrop_apply_f32_portable, cdrop_apply_f64_portable,
                            cdrop_keep_u8_portable, cdrop_keep_bits_portable,
                            cdrop_apply_f32_portable, cdrop_apply_f64_portable};
#if CDROP_HAVE_AVX2_KERNELS
    if (path == CDROP_PATH_AVX512 && cdrop_cpu_has_avx512()) {
        t.path = CDROP_PATH_AVX512;
        t.apply_f32 = cdrop_apply_f32_avx512;
        t.apply_f64 = cdrop_apply_f64_avx512;
        t.keep_u8 = cdrop_keep_u8_avx512;
        t.keep_bits = cdrop_keep_bits_avx512;
        t.apply_f32_stream = cdrop_apply_f32_avx512_nt;
        t.apply_f64_stream = cdrop_apply_f64_avx512_nt;
    } else if (path >= CDROP_PATH_AVX2 && cdrop_cpu_has_avx2()) {
        t.path = CDROP_PATH_AVX2;
        t.apply_f32 = cdrop_apply_f32_avx2;
        t.apply_f64 = cdrop_apply_f64_avx2;
        t.keep_u8 = cdrop_keep_u8_avx2;
        t.keep_bits = cdrop_keep_bits_avx2;
        t.apply_f32_stream = cdrop_apply_f32_avx2;
        t.apply_f64_stream = cdrop_apply_f64_avx2;
    }
#else
    (void)path;
#endif
    return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Packed masks and strided arrays: built on keep_u8 through a small stack buffer              */
/* ------------------------------------------------------------------------------------------ */

/* Dropout of logical elements [lo, hi) of an N-d array with arbitrary byte strides (negative and
 * zero strides included).  `src` and `dst` point at element (0, ..., 0).  The keep decision of
 * logical element i is the one of global index g0 + i, so any layout gets the mask of its
 * C-ordered copy.  The Cython layer merges dimensions first, so the contiguous kernels take
 * every array that is contiguous after merging and this walk sees only real strides. */
#define CDROP_DEFINE_APPLY_STRIDED(NAME, T, SELECT)                                             \
    static void NAME(const cdrop_kernel_table *kt, int ndim, const int64_t *shape,             \
                     const char *src, const int64_t *sstr, char *dst, const int64_t *dstr,      \
                     int64_t lo, int64_t hi, uint64_t key, uint64_t g0, uint32_t thr, T scale)  \
    {                                                                                           \
        uint8_t keep[CDROP_SCRATCH];                                                            \
        int64_t idx[64];                                                                        \
        const int last = ndim - 1;                                                              \
        const int64_t inner = shape[last], is = sstr[last], id = dstr[last];                    \
        /* multi-index of element lo, and the byte offsets of that element */                  \
        int64_t rem = lo, so = 0, dof = 0;                                                      \
        for (int d = last; d >= 0; d--) {                                                       \
            idx[d] = rem % shape[d];                                                            \
            rem /= shape[d];                                                                    \
            so += idx[d] * sstr[d];                                                             \
            dof += idx[d] * dstr[d];                                                            \
        }                                                                                       \
        for (int64_t a = lo, m; a < hi; a += m) {                                               \
            m = cdrop_piece_end(g0, a, hi) - a;                                                 \
            kt->keep_u8(keep, m, key, g0 + (uint64_t)a, thr);                                   \
            int64_t k = 0;                                                                      \
            while (k < m) {                                                                     \
                /* run along the last axis, then carry into the outer ones */                  \
                int64_t run = inner - idx[last];                                                \
                if (run > m - k)                                                                \
                    run = m - k;                                                                \
                const char *ps = src + so;                                                      \
                char *pd = dst + dof;                                                           \
                for (int64_t r = 0; r < run; r++) {                                             \
                    const T x = *(const T *)(ps + r * is);                                      \
                    *(T *)(pd + r * id) = SELECT(x, scale, keep[k + r]);                        \
                }                                                                               \
                k += run;                                                                       \
                idx[last] += run;                                                               \
                so += run * is;                                                                 \
                dof += run * id;                                                                \
                for (int d = last; d > 0 && idx[d] == shape[d]; d--) {                          \
                    so -= shape[d] * sstr[d];                                                   \
                    dof -= shape[d] * dstr[d];                                                  \
                    idx[d] = 0;                                                                 \
                    idx[d - 1] += 1;                                                            \
                    so += sstr[d - 1];                                                          \
                    dof += dstr[d - 1];                                                         \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

CDROP_DEFINE_APPLY_STRIDED(cdrop_apply_strided_f32, float, cdrop_select_f32)
CDROP_DEFINE_APPLY_STRIDED(cdrop_apply_strided_f64, double, cdrop_select_f64)

/* Arrays whose last logical axis is not the closest in memory (Fortran order, transposes):
 * walking them in logical C order touches a new cache line for every element, and with a
 * power-of-two row pitch the lines even collide in the same cache sets (a Fortran 4096 x 4096
 * float32 array took 200 ms against 2.4 ms in C order).  They are processed in bands instead:
 * the array is seen as (outer..., R, C) with the last two logical axes; a band is up to
 * CDROP_BAND_ROWS consecutive rows of one outer index, cut into tiles of columns whose keep
 * bytes fit CDROP_BAND_BYTES.  Each row segment of a tile is a contiguous range of the stream
 * (keep_u8), and the tile is then visited column by column, rows innermost, which follows
 * memory when the row stride is the small one.  The keep rows are stored with a pitch that is
 * not a multiple of 4 KiB, so that reading them down a column does not hit one cache set.
 * Measured, float32 in place on one thread: Fortran 4096 x 4096 200 -> 50 ms (C order 2.4 ms;
 * the rest is the transposed access: NumPy's own F -> C copy of it takes 130 ms).
 * Bands are numbered o * ceil(R / CDROP_BAND_ROWS) + band. */
#define CDROP_BAND_ROWS 32
#define CDROP_BAND_BYTES (64 * 1024)

/* Rows per band: at least CDROP_BAND_ROWS, and as many whole rows as the buffer holds when rows
 * are short (a Fortran (2^20, 16) array has 16-element rows: 32-row bands would visit each
 * column, 4 MiB apart, for 32 elements only). */
static inline int64_t cdrop_band_rows(int64_t C)
{
    return (C > 0 && C * CDROP_BAND_ROWS < CDROP_BAND_BYTES) ? CDROP_BAND_BYTES / C : CDROP_BAND_ROWS;
}

static inline int64_t cdrop_band_count(int ndim, const int64_t *shape)
{
    int64_t outer = 1;
    const int64_t rows = cdrop_band_rows(shape[ndim - 1]);
    for (int d = 0; d < ndim - 2; d++)
        outer *= shape[d];
    return outer * ((shape[ndim - 2] + rows - 1) / rows);
}

#define CDROP_DEFINE_APPLY_BANDS(NAME, T, SELECT)                                               \
    static void NAME(const cdrop_kernel_table *kt, int ndim, const int64_t *shape,             \
                     const char *src, const int64_t *sstr, char *dst, const int64_t *dstr,      \
                     int64_t band_lo, int64_t band_hi, uint64_t key, uint64_t g0, uint32_t thr, \
                     T scale)                                                                   \
    {                                                                                           \
        uint8_t keep[CDROP_BAND_BYTES];                                                         \
        const int64_t R = shape[ndim - 2], C = shape[ndim - 1];                                 \
        const int64_t sr = sstr[ndim - 2], sc = sstr[ndim - 1];                                 \
        const int64_t dr = dstr[ndim - 2], dc = dstr[ndim - 1];                                 \
        const int64_t rows = cdrop_band_rows(C);                                                \
        const int64_t bands_per_outer = (R + rows - 1) / rows;                                  \
        for (int64_t b = band_lo; b < band_hi; b++) {                                           \
            const int64_t o = b / bands_per_outer;                                              \
            const int64_t r0 = (b % bands_per_outer) * rows;                                    \
            const int64_t nr = R - r0 < rows ? R - r0 : rows;                                   \
            /* byte offsets of the outer index o (C order over the first ndim - 2 axes) */     \
            int64_t so = 0, dof = 0, rem = o;                                                   \
            for (int d = ndim - 3; d >= 0; d--) {                                               \
                const int64_t id = rem % shape[d];                                              \
                rem /= shape[d];                                                                \
                so += id * sstr[d];                                                             \
                dof += id * dstr[d];                                                            \
            }                                                                                   \
            const uint64_t row0 = (uint64_t)(o * R + r0); /* logical row of the band's top */  \
            /* Whole rows in one keep_u8 call (one contiguous range of the stream) when they  \
             * fit and their pitch C is not a multiple of 4 KiB; otherwise tiles of columns,    \
             * one call per row segment, rows stored with a padded pitch. */                   \
            const int whole = nr * C <= CDROP_BAND_BYTES && (C % 4096 != 0 || nr == 1);          \
            /* not whole: then nr <= CDROP_BAND_ROWS (see cdrop_band_rows), so cb >= 1984 */   \
            int64_t cb = whole ? C : CDROP_BAND_BYTES / nr - 64;                                \
            if (cb > C)                                                                         \
                cb = C;                                                                         \
            for (int64_t c0 = 0; c0 < C; c0 += cb) {                                            \
                const int64_t cn = (C - c0 < cb) ? C - c0 : cb;                                 \
                const int64_t pitch = whole ? C : cn + 64;                                      \
                if (whole)                                                                      \
                    kt->keep_u8(keep, nr * C, key, g0 + row0 * (uint64_t)C, thr);               \
                else                                                                            \
                    for (int64_t r = 0; r < nr; r++)                                            \
                        kt->keep_u8(keep + r * pitch, cn, key,                                  \
                                    g0 + (row0 + (uint64_t)r) * (uint64_t)C + (uint64_t)c0, thr); \
                const char *ps = src + so + r0 * sr + c0 * sc;                                  \
                char *pd = dst + dof + r0 * dr + c0 * dc;                                       \
                for (int64_t c = 0; c < cn; c++)                                                \
                    for (int64_t r = 0; r < nr; r++) {                                          \
                        const T x = *(const T *)(ps + r * sr + c * sc);                         \
                        *(T *)(pd + r * dr + c * dc) = SELECT(x, scale, keep[r * pitch + c]);   \
                    }                                                                           \
            }                                                                                   \
        }                                                                                       \
    }

CDROP_DEFINE_APPLY_BANDS(cdrop_apply_bands_f32, float, cdrop_select_f32)
CDROP_DEFINE_APPLY_BANDS(cdrop_apply_bands_f64, double, cdrop_select_f64)

/* Whether the band walk suits this (merged) layout: two or more axes, and rows closer in memory
 * than columns for both arrays. */
static inline int cdrop_use_bands(int ndim, const int64_t *sstr, const int64_t *dstr)
{
    if (ndim < 2)
        return 0;
    const int64_t sr = sstr[ndim - 2] < 0 ? -sstr[ndim - 2] : sstr[ndim - 2];
    const int64_t sc = sstr[ndim - 1] < 0 ? -sstr[ndim - 1] : sstr[ndim - 1];
    const int64_t dr = dstr[ndim - 2] < 0 ? -dstr[ndim - 2] : dstr[ndim - 2];
    const int64_t dc = dstr[ndim - 1] < 0 ? -dstr[ndim - 1] : dstr[ndim - 1];
    return sr < sc && dr < dc;
}

/* x *= c: not dropout, the benchmarks' bandwidth floor for several threads (NumPy's ufuncs run on
 * one).  A plain loop that every compiler vectorises. */
static void cdrop_scale_f32(float *x, int64_t n, float c)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= c;
}

#endif /* CDROP_KERNELS_H */
