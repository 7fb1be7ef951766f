/*
 * bits_run.inc.h -- the select-and-scale of a contiguous run from keep BITS (cdrop_bits_run_fn,
 * kernels.h), float32 and float64, and the transposition of a band's keep bits into columns
 * (cdrop_bits_t_fn), written once and included by each instruction set's file after ops.inc.h,
 * after
 *   #define CDROP_ISA_BITS_RUNS <name>   the runs' table (kernels.c)
 *   #define CDROP_ISA_BITS_T <name>      the transposition's name (kernels.c)
 *   #define CDROP_BITS_SCALAR 1          (optional) the scalar loops only (isa_scalar.c)
 *   #define CDROP_BITS_MASKREG 1         (optional) keep masks by a compare (AVX-512's mask
 *                                        registers; elsewhere GCC made that compare scalar)
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
typedef int32_t cdrop_bi32x16 __attribute__((vector_size(64)));
typedef float cdrop_bf32x16 __attribute__((vector_size(64)));
typedef double cdrop_bf64x8 __attribute__((vector_size(64)));
typedef uint64_t cdrop_bu64x8 __attribute__((vector_size(64)));

/* The keep masks (all ones or zero, 32-bit lanes) of the 16 bits of b that `lane` selects, one
 * per lane: (b & lane) - 1 is negative exactly where the bit is clear.  And, subtract and
 * arithmetic shifts only, which every instruction set has at every width: GCC made a compare
 * (!= 0 or == lane) of these 64-byte vectors scalar on AVX2 and SSE2 (6 instructions an
 * element under callgrind).  A macro: a function returning the vector changes the ABI. */
#ifdef CDROP_BITS_MASKREG /* AVX-512: a test into a mask register (vptestmd) */
#define cdrop_bits_keep32(b, lane) ((((cdrop_bi32x16){0} + (b)) & (lane)) != 0)
#else
#define cdrop_bits_keep32(b, lane) (~((((cdrop_bi32x16){0} + (b)) & (lane)) - 1 >> 31))
#endif

/* n elements of float32 from src to dst (both contiguous; dst may be src), element i kept when
 * bit i & 63 of bits[i >> 6] is set. */
static void CDROP_CAT3(cdrop_bits_run_f32, _, CDROP_ISA_BITS_RUNS)(const char *src, char *dst,
                                                                   const uint64_t *bits, int64_t n,
                                                                   double scale)
{
    const float s1 = (float)scale;
    const cdrop_bf32x16 sc = (cdrop_bf32x16){0} + s1;
    const cdrop_bi32x16 lane = {1 << 0,  1 << 1,  1 << 2,  1 << 3, 1 << 4,  1 << 5,
                                1 << 6,  1 << 7,  1 << 8,  1 << 9, 1 << 10, 1 << 11,
                                1 << 12, 1 << 13, 1 << 14, 1 << 15};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const uint64_t w = bits[i >> 6];
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            const cdrop_bi32x16 m = cdrop_bits_keep32((int32_t)(w >> (16 * q) & 0xFFFF), lane);
            cdrop_bf32x16 x;
            memcpy(&x, src + 4 * (i + 16 * q), sizeof x);
            const cdrop_bi32x16 y = (cdrop_bi32x16)(x * sc) & m;
            memcpy(dst + 4 * (i + 16 * q), &y, sizeof y);
        }
    }
    cdrop_bits_tail_f32(src, dst, bits, i, n, s1);
}

/* The same for float64: each bit's mask in both 32-bit halves of its element. */
static void CDROP_CAT3(cdrop_bits_run_f64, _, CDROP_ISA_BITS_RUNS)(const char *src, char *dst,
                                                                   const uint64_t *bits, int64_t n,
                                                                   double scale)
{
    const cdrop_bf64x8 sc = (cdrop_bf64x8){0} + scale;
    const cdrop_bi32x16 lane = {1 << 0, 1 << 0, 1 << 1, 1 << 1, 1 << 2, 1 << 2, 1 << 3, 1 << 3,
                                1 << 4, 1 << 4, 1 << 5, 1 << 5, 1 << 6, 1 << 6, 1 << 7, 1 << 7};
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const uint64_t w = bits[i >> 6];
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) {
            const cdrop_bi32x16 m = cdrop_bits_keep32((int32_t)(w >> (8 * q) & 0xFF), lane);
            cdrop_bf64x8 x;
            memcpy(&x, src + 8 * (i + 8 * q), sizeof x);
            const cdrop_bi32x16 y = (cdrop_bi32x16)(x * sc) & m;
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

/* 64 bits of a band's bits from bit o on (bit k of the result: bit o + k); the 8 bytes after
 * the word of o are read. */
static inline uint64_t cdrop_bits_at(const uint8_t *bits, int64_t o)
{
    uint64_t lo, hi;
    memcpy(&lo, bits + (o >> 6) * 8, 8);
    memcpy(&hi, bits + (o >> 6) * 8 + 8, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap64(lo);
    hi = __builtin_bswap64(hi);
#endif
    const int sh = (int)(o & 63);
    return sh ? (lo >> sh) | (hi << (64 - sh)) : lo;
}

/* Transpose the 64 x 64 bit matrix a (bit j of a[i] is element (i, j)) in place.  Round j
 * swaps bit log2(j) of the row index with the same bit of the column index (the off-diagonal
 * j x j blocks); the six rounds commute.  The vector version keeps rows 8v .. 8v + 7 in vector
 * v: rounds 8, 16 and 32 pair whole vectors, rounds 1, 2 and 4 pair lanes of one vector (a
 * lane shuffle brings the partner). */
#if CDROP_HAVE_VECTOR_EXT && !defined(CDROP_BITS_SCALAR)
static inline void cdrop_transpose64(uint64_t a[64])
{
    cdrop_bu64x8 v[8];
    memcpy(v, a, sizeof v);
    static const uint64_t M[6] = {0x5555555555555555u, 0x3333333333333333u, 0x0F0F0F0F0F0F0F0Fu,
                                  0x00FF00FF00FF00FFu, 0x0000FFFF0000FFFFu, 0x00000000FFFFFFFFu};
    for (int k = 3; k < 6; k++) { /* rows 8 (16, 32) apart: vector v and v + 1 (2, 4) */
        const int j = 1 << k, jv = j / 8;
        for (int x = 0; x < 8; x++)
            if (!(x & jv)) {
                const cdrop_bu64x8 t = ((v[x] >> j) ^ v[x + jv]) & M[k];
                v[x] ^= t << j;
                v[x + jv] ^= t;
            }
    }
    /* rows 1 (2, 4) apart: lanes l and l ^ 1 (2, 4); t lives in the lower lane of each pair */
    const cdrop_bu64x8 lo1 = {M[0], 0, M[0], 0, M[0], 0, M[0], 0};
    const cdrop_bu64x8 lo2 = {M[1], M[1], 0, 0, M[1], M[1], 0, 0};
    const cdrop_bu64x8 lo4 = {M[2], M[2], M[2], M[2], 0, 0, 0, 0};
    for (int x = 0; x < 8; x++) {
        cdrop_bu64x8 y = v[x], t;
        t = ((y >> 1) ^ __builtin_shufflevector(y, y, 1, 0, 3, 2, 5, 4, 7, 6)) & lo1;
        y ^= (t << 1) ^ __builtin_shufflevector(t, t, 1, 0, 3, 2, 5, 4, 7, 6);
        t = ((y >> 2) ^ __builtin_shufflevector(y, y, 2, 3, 0, 1, 6, 7, 4, 5)) & lo2;
        y ^= (t << 2) ^ __builtin_shufflevector(t, t, 2, 3, 0, 1, 6, 7, 4, 5);
        t = ((y >> 4) ^ __builtin_shufflevector(y, y, 4, 5, 6, 7, 0, 1, 2, 3)) & lo4;
        y ^= (t << 4) ^ __builtin_shufflevector(t, t, 4, 5, 6, 7, 0, 1, 2, 3);
        v[x] = y;
    }
    memcpy(a, v, sizeof v);
}
#else
static inline void cdrop_transpose64(uint64_t a[64])
{
    uint64_t m = 0x00000000FFFFFFFFu;
    for (int j = 32; j; j >>= 1, m ^= m << j)
        for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
            const uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
            a[k] ^= t << j;
            a[k | j] ^= t;
        }
}
#endif

/* Columns [c0, c0 + nc) of a band of `rows` rows of C keep bits each (element (r, c) on bit
 * r * C + c of bits, which has 16 readable bytes past its last word): column c0 + j's bits for
 * rows [0, rows) into tb + j * w, w = ceil(rows / 64) words. */
void CDROP_ISA_BITS_T(const uint8_t *bits, int64_t C, int64_t rows, int64_t c0, int64_t nc,
                      uint64_t *tb)
{
    const int64_t w = (rows + 63) / 64;
    uint64_t a[64];
    for (int64_t rb = 0; rb < rows; rb += 64) {
        const int64_t nrow = rows - rb < 64 ? rows - rb : 64;
        for (int64_t s = 0; s < nc; s += 64) {
            int64_t i = 0;
            for (; i < nrow; i++)
                a[i] = cdrop_bits_at(bits, (rb + i) * C + c0 + s);
            for (; i < 64; i++)
                a[i] = 0;
            cdrop_transpose64(a);
            const int64_t ncol = nc - s < 64 ? nc - s : 64;
            for (int64_t j = 0; j < ncol; j++)
                tb[(s + j) * w + rb / 64] = a[j];
        }
    }
}

const cdrop_bits_run_fn CDROP_ISA_BITS_RUNS[2] = {
    CDROP_CAT3(cdrop_bits_run_f32, _, CDROP_ISA_BITS_RUNS),
    CDROP_CAT3(cdrop_bits_run_f64, _, CDROP_ISA_BITS_RUNS),
};

#undef CDROP_ISA_BITS_RUNS
#undef CDROP_ISA_BITS_T
#undef CDROP_BITS_SCALAR
#undef CDROP_BITS_MASKREG
