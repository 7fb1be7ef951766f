/*
 * bits_run.inc.h -- the select-and-scale of a contiguous run from keep BITS (cdrop_bits_run_fn,
 * kernels.h), float32 and float64, written once and included by each instruction set's file
 * after ops.inc.h, after
 *   #define CDROP_ISA_BITS_RUNS <name>   the table's name (kernels.c)
 *   #define CDROP_BITS_SCALAR 1          (optional) the scalar loop only (isa_scalar.c)
 * The tall tiles (walk_tall.c) apply a column of a Fortran or transposed array with its keep
 * decisions transposed into bits: 8x less to make, move and read than keep bytes.  The vector
 * loop is GCC's and Clang's vector extensions of 64 bytes, which each file's target compiles to
 * its own registers (AVX-512: a test into a mask register and a masked move; AVX2, SSE2 and
 * NEON: an and, a compare and an and).  A dropped element is +0.0 by clearing the product's
 * bits, as the other paths (never 0 * x); the build has -ffp-contract=off.
 */
#include <string.h>

/* Elements [i, n) one by one: the run's tail, or all of it on the scalar path. */
static inline void cdrop_bits_tail_f32(const char *src, char *dst, const uint64_t *bits, int64_t i,
                                       int64_t n, float sc)
{
    for (; i < n; i++) {
        float x;
        uint32_t u;
        memcpy(&x, src + 4 * i, 4);
        x *= sc;
        memcpy(&u, &x, 4);
        u &= 0u - (uint32_t)(bits[i >> 6] >> (i & 63) & 1);
        memcpy(dst + 4 * i, &u, 4);
    }
}

static inline void cdrop_bits_tail_f64(const char *src, char *dst, const uint64_t *bits, int64_t i,
                                       int64_t n, double sc)
{
    for (; i < n; i++) {
        double x;
        uint64_t u;
        memcpy(&x, src + 8 * i, 8);
        x *= sc;
        memcpy(&u, &x, 8);
        u &= 0u - (bits[i >> 6] >> (i & 63) & 1);
        memcpy(dst + 8 * i, &u, 8);
    }
}

#if CDROP_HAVE_VECTOR_EXT && !defined(CDROP_BITS_SCALAR)
typedef uint32_t cdrop_bu32x16 __attribute__((vector_size(64)));
typedef float cdrop_bf32x16 __attribute__((vector_size(64)));
typedef uint64_t cdrop_bu64x8 __attribute__((vector_size(64)));
typedef double cdrop_bf64x8 __attribute__((vector_size(64)));

/* n elements of float32 from src to dst (both contiguous; dst may be src), element i kept when
 * bit i & 63 of bits[i >> 6] is set. */
static void CDROP_CAT3(cdrop_bits_run_f32, _, CDROP_ISA_BITS_RUNS)(const char *src, char *dst,
                                                                   const uint64_t *bits, int64_t n,
                                                                   double scale)
{
    const float s1 = (float)scale;
    const cdrop_bf32x16 sc = (cdrop_bf32x16){0} + s1;
    const cdrop_bu32x16 lane = {1u << 0,  1u << 1,  1u << 2,  1u << 3, 1u << 4,  1u << 5,
                                1u << 6,  1u << 7,  1u << 8,  1u << 9, 1u << 10, 1u << 11,
                                1u << 12, 1u << 13, 1u << 14, 1u << 15};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const uint64_t w = bits[i >> 6];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            const cdrop_bu32x16 b = (cdrop_bu32x16){0} + (uint32_t)(w >> (16 * q));
            const cdrop_bu32x16 m = (cdrop_bu32x16)((b & lane) != 0);
            cdrop_bf32x16 x;
            memcpy(&x, src + 4 * (i + 16 * q), sizeof x);
            const cdrop_bu32x16 y = (cdrop_bu32x16)(x * sc) & m;
            memcpy(dst + 4 * (i + 16 * q), &y, sizeof y);
        }
    }
    cdrop_bits_tail_f32(src, dst, bits, i, n, s1);
}

static void CDROP_CAT3(cdrop_bits_run_f64, _, CDROP_ISA_BITS_RUNS)(const char *src, char *dst,
                                                                   const uint64_t *bits, int64_t n,
                                                                   double scale)
{
    const cdrop_bf64x8 sc = (cdrop_bf64x8){0} + scale;
    const cdrop_bu64x8 lane = {1u << 0, 1u << 1, 1u << 2, 1u << 3,
                               1u << 4, 1u << 5, 1u << 6, 1u << 7};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const uint64_t w = bits[i >> 6];
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            const cdrop_bu64x8 b = (cdrop_bu64x8){0} + (w >> (8 * q));
            const cdrop_bu64x8 m = (cdrop_bu64x8)((b & lane) != 0);
            cdrop_bf64x8 x;
            memcpy(&x, src + 8 * (i + 8 * q), sizeof x);
            const cdrop_bu64x8 y = (cdrop_bu64x8)(x * sc) & m;
            memcpy(dst + 8 * (i + 8 * q), &y, sizeof y);
        }
    }
    cdrop_bits_tail_f64(src, dst, bits, i, n, scale);
}
#else
static void CDROP_CAT3(cdrop_bits_run_f32, _, CDROP_ISA_BITS_RUNS)(const char *src, char *dst,
                                                                   const uint64_t *bits, int64_t n,
                                                                   double scale)
{
    cdrop_bits_tail_f32(src, dst, bits, 0, n, (float)scale);
}

static void CDROP_CAT3(cdrop_bits_run_f64, _, CDROP_ISA_BITS_RUNS)(const char *src, char *dst,
                                                                   const uint64_t *bits, int64_t n,
                                                                   double scale)
{
    cdrop_bits_tail_f64(src, dst, bits, 0, n, scale);
}
#endif

const cdrop_bits_run_fn CDROP_ISA_BITS_RUNS[2] = {
    CDROP_CAT3(cdrop_bits_run_f32, _, CDROP_ISA_BITS_RUNS),
    CDROP_CAT3(cdrop_bits_run_f64, _, CDROP_ISA_BITS_RUNS),
};

#undef CDROP_ISA_BITS_RUNS
#undef CDROP_BITS_SCALAR
