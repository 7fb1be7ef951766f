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
 * compare (cdrop_keeps), and a kept value is one IEEE multiplication in the array's precision.
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

/* Seed the lanes of the block holding global index g and advance them to the group of 16
 * that contains g.  Returns g's position in its block. */
static inline uint32_t cdrop_lanes_at(cdrop_lanes *st, uint64_t key, uint64_t g)
{
    const uint32_t j = (uint32_t)(g & (CDROP_BLOCK - 1));
    uint32_t u[CDROP_LANES];
    cdrop_lanes_seed(st, key, g >> CDROP_BLOCK_BITS);
    for (uint32_t q = 0; q < (j >> 4); q++)
        cdrop_lanes_next(st, u);
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

/* Walk [g0, g0 + n) group by group.  BODY sees: u[16] (the group's draws), `i` (local index of
 * the element drawn by lane `l0`), l0 .. l1 (the lanes of this group inside the range), and must
 * handle elements i .. i + (l1 - l0) - 1.  Full groups have l0 == 0, l1 == 16, which lets the
 * compiler vectorise BODY's loop. */
#define CDROP_WALK_PORTABLE(key, g0, n, BODY)                                                   \
    do {                                                                                        \
        int64_t i = 0;                                                                          \
        while (i < (n)) {                                                                       \
            cdrop_lanes st;                                                                     \
            uint32_t u[CDROP_LANES];                                                            \
            const uint64_t g_ = (g0) + (uint64_t)i;                                             \
            const int64_t end_ = i + cdrop_in_block(g_, (n) - i);                               \
            int l0 = (int)(cdrop_lanes_at(&st, (key), g_) & 15);                                \
            while (i < end_) {                                                                  \
                const int l1 = (end_ - i >= CDROP_LANES - l0) ? CDROP_LANES : l0 + (int)(end_ - i); \
                cdrop_lanes_next(&st, u);                                                       \
                BODY;                                                                           \
                i += l1 - l0;                                                                   \
                l0 = 0;                                                                         \
            }                                                                                   \
        }                                                                                       \
    } while (0)

#define CDROP_DEFINE_APPLY_PORTABLE(NAME, T)                                                    \
    static void NAME(const T *src, T *dst, int64_t n, uint64_t key, uint64_t g0, uint32_t thr, \
                     T scale)                                                                   \
    {                                                                                           \
        CDROP_WALK_PORTABLE(key, g0, n, {                                                       \
            const T *s_ = src + i - l0;                                                         \
            T *d_ = dst + i - l0;                                                               \
            for (int l = l0; l < l1; l++)                                                       \
                d_[l] = cdrop_keeps(u[l], thr) ? s_[l] * scale : (T)0;                                    \
        });                                                                                     \
    }

CDROP_DEFINE_APPLY_PORTABLE(cdrop_apply_f32_portable, float)
CDROP_DEFINE_APPLY_PORTABLE(cdrop_apply_f64_portable, double)

/* Keep mask as bytes 0/1 (NumPy's bool layout). */
static void cdrop_keep_u8_portable(uint8_t *dst, int64_t n, uint64_t key, uint64_t g0, uint32_t thr)
{
    CDROP_WALK_PORTABLE(key, g0, n, {
        uint8_t *d_ = dst + i - l0;
        for (int l = l0; l < l1; l++)
            d_[l] = (uint8_t)cdrop_keeps(u[l], thr);
    });
}

/* ------------------------------------------------------------------------------------------ */
/* AVX2 kernels                                                                                */
/* ------------------------------------------------------------------------------------------ */
#if CDROP_HAVE_AVX2_KERNELS
#define CDROP_AVX2 __attribute__((target("avx2")))

/* The 16 lanes in 8 registers: word w of lanes 0-7 in a[w], of lanes 8-15 in b[w]. */
typedef struct {
    __m256i a0, a1, a2, a3, b0, b1, b2, b3;
} cdrop_lanes_avx2;

CDROP_AVX2 static inline void cdrop_avx2_load(cdrop_lanes_avx2 *v, const cdrop_lanes *st)
{
    v->a0 = _mm256_loadu_si256((const __m256i *)&st->s[0][0]);
    v->a1 = _mm256_loadu_si256((const __m256i *)&st->s[1][0]);
    v->a2 = _mm256_loadu_si256((const __m256i *)&st->s[2][0]);
    v->a3 = _mm256_loadu_si256((const __m256i *)&st->s[3][0]);
    v->b0 = _mm256_loadu_si256((const __m256i *)&st->s[0][8]);
    v->b1 = _mm256_loadu_si256((const __m256i *)&st->s[1][8]);
    v->b2 = _mm256_loadu_si256((const __m256i *)&st->s[2][8]);
    v->b3 = _mm256_loadu_si256((const __m256i *)&st->s[3][8]);
}

#define CDROP_ROTL256(x, k) _mm256_or_si256(_mm256_slli_epi32((x), (k)), _mm256_srli_epi32((x), 32 - (k)))

/* One xoshiro128+ step of 8 lanes; the same statements as cdrop_lanes_next. */
CDROP_AVX2 static inline __m256i cdrop_avx2_step8(__m256i *s0, __m256i *s1, __m256i *s2, __m256i *s3)
{
    const __m256i out = _mm256_add_epi32(*s0, *s3);
    const __m256i t = _mm256_slli_epi32(*s1, 9);
    *s2 = _mm256_xor_si256(*s2, *s0);
    *s3 = _mm256_xor_si256(*s3, *s1);
    *s1 = _mm256_xor_si256(*s1, *s2);
    *s0 = _mm256_xor_si256(*s0, *s3);
    *s2 = _mm256_xor_si256(*s2, t);
    *s3 = CDROP_ROTL256(*s3, 11);
    return out;
}

/* Keep masks of the next group: all-ones in a lane that cdrop_keeps.  (u ^ 2^31) < thr unsigned
 * is (int32)u < (int32)(thr ^ 2^31): `thr_s` holds the latter, prepared once. */
CDROP_AVX2 static inline void cdrop_avx2_group(cdrop_lanes_avx2 *v, __m256i thr_s, __m256i *ka,
                                               __m256i *kb, uint32_t u[CDROP_LANES])
{
    const __m256i ua = cdrop_avx2_step8(&v->a0, &v->a1, &v->a2, &v->a3);
    const __m256i ub = cdrop_avx2_step8(&v->b0, &v->b1, &v->b2, &v->b3);
    *ka = _mm256_cmpgt_epi32(thr_s, ua);
    *kb = _mm256_cmpgt_epi32(thr_s, ub);
    if (u) { /* a partial group: hand the raw draws to the scalar code */
        _mm256_storeu_si256((__m256i *)&u[0], ua);
        _mm256_storeu_si256((__m256i *)&u[8], ub);
    }
}

/* Seed the block of g and skip to g's group with vector steps (the scalar skip of
 * cdrop_lanes_at would cost up to 1024 scalar 16-lane steps). */
CDROP_AVX2 static inline uint32_t cdrop_avx2_at(cdrop_lanes_avx2 *v, uint64_t key, uint64_t g)
{
    cdrop_lanes st;
    const uint32_t j = (uint32_t)(g & (CDROP_BLOCK - 1));
    cdrop_lanes_seed(&st, key, g >> CDROP_BLOCK_BITS);
    cdrop_avx2_load(v, &st);
    for (uint32_t q = 0; q < (j >> 4); q++) {
        (void)cdrop_avx2_step8(&v->a0, &v->a1, &v->a2, &v->a3);
        (void)cdrop_avx2_step8(&v->b0, &v->b1, &v->b2, &v->b3);
    }
    return j;
}

/* Same walk as CDROP_WALK_PORTABLE; FULL handles a whole group at local index i with the keep
 * masks ka (lanes 0-7) and kb (lanes 8-15); PART handles lanes l0 .. l1 of u[] starting at i. */
#define CDROP_WALK_AVX2(key, g0, n, thr, FULL, PART)                                            \
    do {                                                                                        \
        const __m256i thr_s = _mm256_set1_epi32((int)((thr) ^ 0x80000000u));                   \
        int64_t i = 0;                                                                          \
        while (i < (n)) {                                                                       \
            cdrop_lanes_avx2 v;                                                                 \
            __m256i ka, kb;                                                                     \
            uint32_t u[CDROP_LANES];                                                            \
            const uint64_t g_ = (g0) + (uint64_t)i;                                             \
            const int64_t end_ = i + cdrop_in_block(g_, (n) - i);                               \
            int l0 = (int)(cdrop_avx2_at(&v, (key), g_) & 15);                                  \
            while (i < end_) {                                                                  \
                if (l0 == 0 && end_ - i >= CDROP_LANES) {                                       \
                    cdrop_avx2_group(&v, thr_s, &ka, &kb, NULL);                                \
                    FULL;                                                                       \
                    i += CDROP_LANES;                                                           \
                } else {                                                                        \
                    const int l1 = (end_ - i >= CDROP_LANES - l0) ? CDROP_LANES : l0 + (int)(end_ - i); \
                    cdrop_avx2_group(&v, thr_s, &ka, &kb, u);                                   \
                    PART;                                                                       \
                    i += l1 - l0;                                                               \
                    l0 = 0;                                                                     \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    } while (0)

CDROP_AVX2 static void cdrop_apply_f32_avx2(const float *src, float *dst, int64_t n, uint64_t key,
                                            uint64_t g0, uint32_t thr, float scale)
{
    const __m256 sc = _mm256_set1_ps(scale);
    CDROP_WALK_AVX2(key, g0, n, thr,
        {
            const __m256 x0 = _mm256_loadu_ps(src + i);
            const __m256 x1 = _mm256_loadu_ps(src + i + 8);
            _mm256_storeu_ps(dst + i, _mm256_and_ps(_mm256_mul_ps(x0, sc), _mm256_castsi256_ps(ka)));
            _mm256_storeu_ps(dst + i + 8, _mm256_and_ps(_mm256_mul_ps(x1, sc), _mm256_castsi256_ps(kb)));
        },
        {
            for (int l = l0; l < l1; l++)
                dst[i + l - l0] = cdrop_keeps(u[l], thr) ? src[i + l - l0] * scale : 0.0f;
        });
}

CDROP_AVX2 static void cdrop_apply_f64_avx2(const double *src, double *dst, int64_t n, uint64_t key,
                                            uint64_t g0, uint32_t thr, double scale)
{
    const __m256d sc = _mm256_set1_pd(scale);
    CDROP_WALK_AVX2(key, g0, n, thr,
        {
            /* widen the 32-bit lane masks to 64 bits by sign extension (-1 stays all-ones) */
            const __m256d m0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(ka)));
            const __m256d m1 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(ka, 1)));
            const __m256d m2 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(kb)));
            const __m256d m3 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(kb, 1)));
            _mm256_storeu_pd(dst + i, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(src + i), sc), m0));
            _mm256_storeu_pd(dst + i + 4, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(src + i + 4), sc), m1));
            _mm256_storeu_pd(dst + i + 8, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(src + i + 8), sc), m2));
            _mm256_storeu_pd(dst + i + 12, _mm256_and_pd(_mm256_mul_pd(_mm256_loadu_pd(src + i + 12), sc), m3));
        },
        {
            for (int l = l0; l < l1; l++)
                dst[i + l - l0] = cdrop_keeps(u[l], thr) ? src[i + l - l0] * scale : 0.0;
        });
}

CDROP_AVX2 static void cdrop_keep_u8_avx2(uint8_t *dst, int64_t n, uint64_t key, uint64_t g0, uint32_t thr)
{
    const __m128i one = _mm_set1_epi8(1);
    CDROP_WALK_AVX2(key, g0, n, thr,
        {
            /* 16 x int32 masks -> 16 x int8, in lane order: packs works within 128-bit halves,
             * so pack the low and high halves of ka/kb explicitly */
            const __m128i w0 = _mm_packs_epi32(_mm256_castsi256_si128(ka), _mm256_extracti128_si256(ka, 1));
            const __m128i w1 = _mm_packs_epi32(_mm256_castsi256_si128(kb), _mm256_extracti128_si256(kb, 1));
            _mm_storeu_si128((__m128i *)(dst + i), _mm_and_si128(_mm_packs_epi16(w0, w1), one));
        },
        {
            for (int l = l0; l < l1; l++)
                dst[i + l - l0] = (uint8_t)cdrop_keeps(u[l], thr);
        });
}
#endif /* CDROP_HAVE_AVX2_KERNELS */

/* ------------------------------------------------------------------------------------------ */
/* Kernel tables, chosen once by the Cython layer                                              */
/* ------------------------------------------------------------------------------------------ */
typedef void (*cdrop_apply_f32_fn)(const float *, float *, int64_t, uint64_t, uint64_t, uint32_t, float);
typedef void (*cdrop_apply_f64_fn)(const double *, double *, int64_t, uint64_t, uint64_t, uint32_t, double);
typedef void (*cdrop_keep_u8_fn)(uint8_t *, int64_t, uint64_t, uint64_t, uint32_t);

typedef struct {
    int path;
    cdrop_apply_f32_fn apply_f32;
    cdrop_apply_f64_fn apply_f64;
    cdrop_keep_u8_fn keep_u8;
} cdrop_kernel_table;

/* The table for `path`; asking for AVX2 on a CPU (or compiler) without it gives the portable one. */
static inline cdrop_kernel_table cdrop_kernels_for(int path)
{
    cdrop_kernel_table t = {CDROP_PATH_PORTABLE, cdrop_apply_f32_portable, cdrop_apply_f64_portable,
                            cdrop_keep_u8_portable};
#if CDROP_HAVE_AVX2_KERNELS
    if (path == CDROP_PATH_AVX2 && cdrop_cpu_has_avx2()) {
        t.path = CDROP_PATH_AVX2;
        t.apply_f32 = cdrop_apply_f32_avx2;
        t.apply_f64 = cdrop_apply_f64_avx2;
        t.keep_u8 = cdrop_keep_u8_avx2;
    }
#else
    (void)path;
#endif
    return t;
}

/* ------------------------------------------------------------------------------------------ */
/* Packed masks and strided arrays: built on keep_u8 through a small stack buffer              */
/* ------------------------------------------------------------------------------------------ */

/* Scratch size for the kernels below: 2 KiB of keep bytes stays in L1 next to the data. */
#define CDROP_SCRATCH 2048

/* Bits of logical elements [lo, hi) into `bits` (bit i % 8 of byte i / 8 is element i, NumPy's
 * bitorder="little").  `lo` must be a multiple of 8 so that no byte is shared with another
 * chunk; `hi` is either a multiple of 8 or the end of the mask. */
static void cdrop_keep_bits(const cdrop_kernel_table *kt, uint8_t *bits, int64_t lo, int64_t hi,
                            uint64_t key, uint64_t g0, uint32_t thr)
{
    uint8_t buf[CDROP_SCRATCH + 8];
    for (int64_t a = lo; a < hi; a += CDROP_SCRATCH) {
        const int64_t m = (hi - a < CDROP_SCRATCH) ? hi - a : CDROP_SCRATCH;
        kt->keep_u8(buf, m, key, g0 + (uint64_t)a, thr);
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

/* Dropout of logical elements [lo, hi) of an N-d array with arbitrary byte strides (negative and
 * zero strides included).  `src` and `dst` point at element (0, ..., 0).  The keep decision of
 * logical element i is the one of global index g0 + i, so any layout gets the mask of its
 * C-ordered copy.  The Cython layer merges dimensions first, so the contiguous kernels take
 * every array that is contiguous after merging and this walk sees only real strides. */
#define CDROP_DEFINE_APPLY_STRIDED(NAME, T)                                                     \
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
        for (int64_t a = lo; a < hi; a += CDROP_SCRATCH) {                                      \
            const int64_t m = (hi - a < CDROP_SCRATCH) ? hi - a : CDROP_SCRATCH;                \
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
                    *(T *)(pd + r * id) = keep[k + r] ? x * scale : (T)0;                       \
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

CDROP_DEFINE_APPLY_STRIDED(cdrop_apply_strided_f32, float)
CDROP_DEFINE_APPLY_STRIDED(cdrop_apply_strided_f64, double)

/* x *= c: not dropout, the benchmarks' bandwidth floor for several threads (NumPy's ufuncs run on
 * one).  A plain loop that every compiler vectorises. */
static void cdrop_scale_f32(float *x, int64_t n, float c)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= c;
}

#endif /* CDROP_KERNELS_H */
