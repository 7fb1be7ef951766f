/*
 * isa_portable.c -- the portable SIMD mask producer: the 16 lanes in sixteen 128-bit vectors (4
 * lanes of each state word per vector), a step's 64 decisions as four vectors of byte masks,
 * written once with GCC's and Clang's vector extensions.  Compiled for the target's baseline,
 * with no target pragma, it is SSE2 on x86-64 and NEON (ASIMD) on aarch64, which every such CPU
 * has: it is what aarch64 and x86 CPUs without AVX2 run.  Same stream, same keep test (the signed
 * byte comparison of cdrop_keeps, ties settled by the hash) and the same IEEE multiply as the
 * other paths: the same bits.  Where there are no vector extensions (MSVC, GCC before 12, and
 * big-endian hosts, where a lane's bytes are not in the stream's order in memory) the file
 * compiles to nothing and the scalar path (isa_scalar.c) runs instead (platform.h).
 */
#include "platform.h"

#if CDROP_HAVE_VECTOR_EXT
#include "consumers_scalar.h"
#include "kernels.h"
#include "producer_scalar.h"

#if defined(__SSE2__)
#include <emmintrin.h> /* _mm_movemask_epi8 only: vector extensions have no bit gather */
#endif

/* Every primitive always inlined: GCC kept isa_next out of line, and the lanes then went
 * through memory at every step. */
#define CDROP_VI static inline __attribute__((always_inline))

typedef uint32_t cdrop_u32x4 __attribute__((vector_size(16)));
typedef int32_t cdrop_i32x4 __attribute__((vector_size(16)));
typedef int64_t cdrop_i64x2 __attribute__((vector_size(16)));
typedef uint64_t cdrop_u64x2 __attribute__((vector_size(16)));
typedef int16_t cdrop_i16x8 __attribute__((vector_size(16)));
typedef int8_t cdrop_i8x16 __attribute__((vector_size(16)));
typedef uint8_t cdrop_u8x16 __attribute__((vector_size(16)));
typedef float cdrop_f32x4 __attribute__((vector_size(16)));
typedef double cdrop_f64x2 __attribute__((vector_size(16)));
/* float64 four at a time, in two 128-bit registers: with 2 lanes a step is 32 vectors, more
 * than the consumers' loops unroll, and a mask picked by a loop index that is not a constant
 * went through memory (float64 took 3-4x the scalar path's time in cache).  A struct, not a
 * 32-byte vector type, whose by-value passing GCC warns about without AVX (-Wpsabi). */
typedef struct {
    cdrop_f64x2 lo, hi;
} cdrop_f64x4;

/* Unaligned loads and stores: memcpy, which compiles to one vector move (movups, ldr q). */
#define CDROP_VEC_LOAD(type, p)                                                                    \
    __extension__({                                                                                \
        type v_;                                                                                   \
        memcpy(&v_, (p), sizeof v_);                                                               \
        v_;                                                                                        \
    })
#define CDROP_VEC_STORE(p, v)                                                                      \
    do {                                                                                           \
        const __typeof__(v) v_ = (v);                                                              \
        memcpy((p), &v_, sizeof v_);                                                               \
    } while (0)

/* State word w of lanes 4j .. 4j + 3 is s<w><j>: named fields, not an array, so that the copy
 * in walk.inc.h's loop lives in registers (all 16 of x86-64's, 16 of aarch64's 32). */
typedef struct {
    cdrop_u32x4 s00, s10, s20, s30; /* lanes 0-3 */
    cdrop_u32x4 s01, s11, s21, s31; /* lanes 4-7 */
    cdrop_u32x4 s02, s12, s22, s32; /* lanes 8-11 */
    cdrop_u32x4 s03, s13, s23, s33; /* lanes 12-15 */
} isa_lanes;
typedef struct {
    cdrop_i8x16 drop[4]; /* 0xFF in the bytes of elements 0-15, ..., 48-63 that are dropped */
} isa_mask;
/* The threshold's top byte, and one less for the exact loop's compare (isa_next). */
typedef struct {
    cdrop_i8x16 top, below;
} isa_top;
/* The exact loop's keep test, byte < top, is a drop test byte >= top, which SSE2 and NEON have
 * only as byte > top - 1 (or a compare, a NOT and a copy of the threshold on SSE2).  top - 1
 * does not exist for top = -128, that is thr = 0 (p within 2**-33 of 1): that threshold takes
 * the loop with ties, which is exact for every threshold (each tie there drops: its hash bits
 * are never below 0). */
#define CDROP_ISA_EXACT(thr) (((thr) & 0xFFFFFFu) == 0 && (thr) != 0)

/* 32-bit lane primitives of the xoshiro step: four lanes */
typedef cdrop_u32x4 isa_u32v;
CDROP_VI cdrop_u32x4 isa_add32(cdrop_u32x4 a, cdrop_u32x4 b) { return a + b; }
CDROP_VI cdrop_u32x4 isa_xor(cdrop_u32x4 a, cdrop_u32x4 b) { return a ^ b; }
CDROP_VI cdrop_u32x4 isa_shl32(cdrop_u32x4 x, int k) { return x << k; }
CDROP_VI cdrop_u32x4 isa_rotl32(cdrop_u32x4 x, int k) { return (x << k) | (x >> (32 - k)); }
/* (always inlined too: GCC's -O2 on aarch64 called it out of line) */
CDROP_VI isa_u32v cdrop_xoshiro_step(isa_u32v *s0, isa_u32v *s1, isa_u32v *s2, isa_u32v *s3);
#include "xoshiro.inc.h"

/* The four outputs of one step, lanes 0-3, 4-7, 8-11, 12-15. */
#define CDROP_STEP4(v, o)                                                                          \
    do {                                                                                           \
        (o)[0] = cdrop_xoshiro_step(&(v)->s00, &(v)->s10, &(v)->s20, &(v)->s30);                   \
        (o)[1] = cdrop_xoshiro_step(&(v)->s01, &(v)->s11, &(v)->s21, &(v)->s31);                   \
        (o)[2] = cdrop_xoshiro_step(&(v)->s02, &(v)->s12, &(v)->s22, &(v)->s32);                   \
        (o)[3] = cdrop_xoshiro_step(&(v)->s03, &(v)->s13, &(v)->s23, &(v)->s33);                   \
    } while (0)

/* The lanes of a seeded block into registers. */
CDROP_VI void isa_load_lanes(isa_lanes *v, const cdrop_lanes *st)
{
    v->s00 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[0][0]);
    v->s10 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[1][0]);
    v->s20 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[2][0]);
    v->s30 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[3][0]);
    v->s01 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[0][4]);
    v->s11 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[1][4]);
    v->s21 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[2][4]);
    v->s31 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[3][4]);
    v->s02 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[0][8]);
    v->s12 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[1][8]);
    v->s22 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[2][8]);
    v->s32 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[3][8]);
    v->s03 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[0][12]);
    v->s13 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[1][12]);
    v->s23 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[2][12]);
    v->s33 = CDROP_VEC_LOAD(cdrop_u32x4, &st->s[3][12]);
}

CDROP_VI uint32_t isa_seek(isa_lanes *v, uint64_t key, uint64_t g)
{
    cdrop_lanes st;
    const uint32_t j = cdrop_block_seed(&st, key, g);
    isa_load_lanes(v, &st);
    for (uint32_t q = 0; q < j / CDROP_GROUP; q++) {
        cdrop_u32x4 o[4];
        CDROP_STEP4(v, o);
        (void)o;
    }
    return j;
}

CDROP_VI void isa_step_out(isa_lanes *v, uint32_t out[CDROP_LANES])
{
    cdrop_u32x4 o[4];
    CDROP_STEP4(v, o);
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
        CDROP_VEC_STORE(&out[4 * h], o[h]);
}

CDROP_VI isa_top isa_top_of(uint32_t thr)
{
    const uint8_t t = (uint8_t)((thr >> 24) ^ 0x80u);
    return (isa_top){(cdrop_i8x16){0} + (int8_t)t, (cdrop_i8x16){0} + (int8_t)(uint8_t)(t - 1)};
}

/* Bit k of the result: the top bit of byte k of the 64 bytes of v[0..3] (SSE2's pmovmskb). */
CDROP_VI uint64_t cdrop_movemask64(const cdrop_i8x16 v[4])
{
#if defined(__SSE2__)
    uint64_t r = 0;
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
        r |= (uint64_t)(uint32_t)_mm_movemask_epi8((__m128i)v[h]) << (16 * h);
    return r;
#else
    /* Each byte (0 or 0xFF here) keeps its bit of an 8-bit group, then three rounds of
     * pairwise ORs of neighbouring bytes (even | odd: NEON's addp does one round of 16 bytes)
     * put the bits of bytes 8i .. 8i + 7 into byte i. */
    const cdrop_u8x16 w = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    const cdrop_u8x16 a0 = (cdrop_u8x16)v[0] & w, a1 = (cdrop_u8x16)v[1] & w;
    const cdrop_u8x16 a2 = (cdrop_u8x16)v[2] & w, a3 = (cdrop_u8x16)v[3] & w;
#define CDROP_PAIRS(a, b)                                                                          \
    (__builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) +    \
     __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31))
    const cdrop_u8x16 b0 = CDROP_PAIRS(a0, a1), b1 = CDROP_PAIRS(a2, a3);
    const cdrop_u8x16 c = CDROP_PAIRS(b0, b1);
    const cdrop_u8x16 d = CDROP_PAIRS(c, c);
#undef CDROP_PAIRS
    return ((cdrop_u64x2)d)[0];
#endif
}

CDROP_VI isa_mask isa_next(isa_lanes *v, isa_top top, int exact, uint64_t *tw)
{
    cdrop_u32x4 o[4];
    isa_mask m;
    CDROP_STEP4(v, o);
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++) {
        /* byte b of o[h] (little-endian) is byte 16h + b of the step (cdrop_step_byte) */
        const cdrop_i8x16 b = (cdrop_i8x16)o[h];
        /* drop masks, as on AVX2: one SSE2 compare on the path with ties (the common p values:
         * 0.1, 0.2, 0.3), a compare and a NOT on the exact one (p = 0.5) */
        if (exact) /* drop unless byte < top: ties included (top > -128: CDROP_ISA_EXACT) */
            m.drop[h] = (cdrop_i8x16)(b > top.below);
        else /* drop iff byte > top: ties are kept until settled */
            m.drop[h] = (cdrop_i8x16)(b > top.top);
    }
    if (!exact) {
        cdrop_i8x16 eq[4];
#pragma GCC unroll 4
        for (int h = 0; h < 4; h++)
            eq[h] = (cdrop_i8x16)((cdrop_i8x16)o[h] == top.top);
        *tw = cdrop_movemask64(eq);
    }
    return m;
}

/* The drop masks of elements 16h + 8u .. 16h + 8u + 7 as 16-bit lanes (u = 0, 1; each byte
 * doubled: 0xFF becomes 0xFFFF; punpck[lh]bw, zip1/zip2). */
CDROP_VI cdrop_i16x8 cdrop_drop16(isa_mask m, int h, int u)
{
    const cdrop_i8x16 k = m.drop[h];
    if (u == 0)
        return (cdrop_i16x8)__builtin_shufflevector(k, k, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                                    7, 7);
    return (cdrop_i16x8)__builtin_shufflevector(k, k, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
                                                14, 14, 15, 15);
}

/* The drop masks of elements 4q .. 4q + 3 as 32-bit lanes (q = 0 .. 15). */
CDROP_VI cdrop_i32x4 cdrop_drop32(isa_mask m, int q)
{
    const cdrop_i16x8 k = cdrop_drop16(m, q >> 2, (q >> 1) & 1);
    if ((q & 1) == 0)
        return (cdrop_i32x4)__builtin_shufflevector(k, k, 0, 0, 1, 1, 2, 2, 3, 3);
    return (cdrop_i32x4)__builtin_shufflevector(k, k, 4, 4, 5, 5, 6, 6, 7, 7);
}

/* The drop masks of elements 4q + 2u, 4q + 2u + 1 as 64-bit lanes (q = 0 .. 15, u = 0, 1). */
CDROP_VI cdrop_i64x2 cdrop_drop64(isa_mask m, int q, int u)
{
    const cdrop_i32x4 k = cdrop_drop32(m, q);
    if (u == 0)
        return (cdrop_i64x2)__builtin_shufflevector(k, k, 0, 0, 1, 1);
    return (cdrop_i64x2)__builtin_shufflevector(k, k, 2, 2, 3, 3);
}

/* float32: 4 lanes; a dropped element is +0.0 by clearing its bits (never 0 * x). */
typedef cdrop_f32x4 isa_v_f32;
enum { isa_width_f32 = 4 };
CDROP_VI cdrop_f32x4 isa_set1_f32(float x) { return (cdrop_f32x4){0} + x; }
CDROP_VI cdrop_f32x4 isa_load_f32(const float *p) { return CDROP_VEC_LOAD(cdrop_f32x4, p); }
CDROP_VI void isa_store_f32(float *p, cdrop_f32x4 x) { CDROP_VEC_STORE(p, x); }

/* The keep masks of elements 4q .. 4q + 3 as 32-bit lanes (q = 0 .. 15).  On x86 from a table
 * indexed by a byte of drop bits (pmovmskb, once for 16 elements), not by widening the drop
 * bytes: the unpacks ran on the same 3 vector ports as the xoshiro step and the multiplies
 * (Intel's 0, 1 and 5), which bound the loop in cache, while the table's load folds into the
 * AND and the index is scalar work (docs/performance.md).  NEON keeps the widening (zip1/zip2:
 * its loop is not measured here). */
#if defined(__SSE2__)
/* Entry d: the keep masks of 8 elements (two vectors) whose drop bits are d; 8 KiB. */
#define CDROP_K1(d, j) ((d) >> (j) & 1 ? 0u : ~0u)
#define CDROP_K8(d)                                                                                \
    {CDROP_K1(d, 0), CDROP_K1(d, 1), CDROP_K1(d, 2), CDROP_K1(d, 3),                               \
     CDROP_K1(d, 4), CDROP_K1(d, 5), CDROP_K1(d, 6), CDROP_K1(d, 7)}
#define CDROP_K8x4(d) CDROP_K8(d), CDROP_K8((d) + 1), CDROP_K8((d) + 2), CDROP_K8((d) + 3)
#define CDROP_K8x16(d) CDROP_K8x4(d), CDROP_K8x4((d) + 4), CDROP_K8x4((d) + 8), CDROP_K8x4((d) + 12)
#define CDROP_K8x64(d)                                                                             \
    CDROP_K8x16(d), CDROP_K8x16((d) + 16), CDROP_K8x16((d) + 32), CDROP_K8x16((d) + 48)
static const uint32_t cdrop_keep32_table[256][8] __attribute__((aligned(32))) = {
    CDROP_K8x64(0), CDROP_K8x64(64), CDROP_K8x64(128), CDROP_K8x64(192)};
#undef CDROP_K1
#undef CDROP_K8
#undef CDROP_K8x4
#undef CDROP_K8x16
#undef CDROP_K8x64
CDROP_VI cdrop_i32x4 cdrop_keep32(isa_mask m, int q)
{
    /* byte (q >> 1) & 1 of the 16 drop bits of m.drop[q >> 2] picks the entry, q & 1 its half */
    const size_t w = (uint32_t)_mm_movemask_epi8((__m128i)m.drop[q >> 2]);
    const size_t d = (w >> (8 * ((q >> 1) & 1))) & 0xFFu;
    cdrop_i32x4 k;
    memcpy(&k, &cdrop_keep32_table[d][4 * (q & 1)], sizeof k);
    return k;
}
#else
CDROP_VI cdrop_i32x4 cdrop_keep32(isa_mask m, int q) { return ~cdrop_drop32(m, q); }
#endif

CDROP_VI cdrop_f32x4 isa_keep_mul_f32(isa_mask m, int q, cdrop_f32x4 x, cdrop_f32x4 sc)
{
    return (cdrop_f32x4)((cdrop_i32x4)(x * sc) & cdrop_keep32(m, q));
}

/* float64: 4 lanes in two registers. */
typedef cdrop_f64x4 isa_v_f64;
enum { isa_width_f64 = 4 };
CDROP_VI cdrop_f64x4 isa_set1_f64(double x)
{
    const cdrop_f64x2 v = (cdrop_f64x2){0} + x;
    return (cdrop_f64x4){v, v};
}
CDROP_VI cdrop_f64x4 isa_load_f64(const double *p)
{
    return (cdrop_f64x4){CDROP_VEC_LOAD(cdrop_f64x2, p), CDROP_VEC_LOAD(cdrop_f64x2, p + 2)};
}
CDROP_VI void isa_store_f64(double *p, cdrop_f64x4 x)
{
    CDROP_VEC_STORE(p, x.lo);
    CDROP_VEC_STORE(p + 2, x.hi);
}

CDROP_VI cdrop_f64x4 isa_keep_mul_f64(isa_mask m, int q, cdrop_f64x4 x, cdrop_f64x4 sc)
{
    return (cdrop_f64x4){(cdrop_f64x2)((cdrop_i64x2)(x.lo * sc.lo) & ~cdrop_drop64(m, q, 0)),
                         (cdrop_f64x2)((cdrop_i64x2)(x.hi * sc.hi) & ~cdrop_drop64(m, q, 1))};
}

/* The dropout family's fused consumers (consumer_family.inc.h): an add, and kept ? a : b. */
CDROP_VI cdrop_f32x4 isa_add_f32(cdrop_f32x4 a, cdrop_f32x4 b) { return a + b; }
CDROP_VI cdrop_f64x4 isa_add_f64(cdrop_f64x4 a, cdrop_f64x4 b)
{
    return (cdrop_f64x4){a.lo + b.lo, a.hi + b.hi};
}
CDROP_VI cdrop_f32x4 isa_keep_sel_f32(isa_mask m, int q, cdrop_f32x4 a, cdrop_f32x4 b)
{
    const cdrop_i32x4 d = cdrop_drop32(m, q);
    return (cdrop_f32x4)(((cdrop_i32x4)a & ~d) | ((cdrop_i32x4)b & d));
}
CDROP_VI cdrop_f64x4 isa_keep_sel_f64(isa_mask m, int q, cdrop_f64x4 a, cdrop_f64x4 b)
{
    const cdrop_i64x2 d0 = cdrop_drop64(m, q, 0), d1 = cdrop_drop64(m, q, 1);
    return (cdrop_f64x4){(cdrop_f64x2)(((cdrop_i64x2)a.lo & ~d0) | ((cdrop_i64x2)b.lo & d0)),
                         (cdrop_f64x2)(((cdrop_i64x2)a.hi & ~d1) | ((cdrop_i64x2)b.hi & d1))};
}

/* Final masks for consumers that cannot clear a lost tie afterwards (dropout_add into its
 * residual): a lost tie's drop byte is set. */
CDROP_VI isa_mask isa_mask_settle(isa_mask m, uint64_t tw, uint64_t key, uint64_t g, uint32_t thr)
{
    int8_t k[CDROP_GROUP];
    memcpy(k, m.drop, sizeof k);
    for (; tw; tw &= tw - 1) {
        const int e = __builtin_ctzll(tw);
        if (cdrop_tie24(key, g + (uint64_t)e) >= (thr & 0xFFFFFFu))
            k[e] = -1;
    }
    memcpy(m.drop, k, sizeof k);
    return m;
}

/* float16 and bfloat16: 16 elements at a time through the scalar conversions of half_scalar.h
 * (exact, branch-free), a loop of fixed length that the compiler vectorises as it did the
 * scalar path's; the keep flags come from the mask's bytes.  The keep flag clears the 16-bit
 * result (the scalar select of half_scalar.inc.h, the same bits as clearing the product). */
enum { isa_width_f16 = 16, isa_width_bf16 = 16 };
CDROP_VI void isa_keep_mul_f16(uint16_t *d, const uint16_t *s, isa_mask m, int q, cdrop_f32x4 sc)
{
    uint8_t k[16];
    CDROP_VEC_STORE(k, (cdrop_u8x16)m.drop[q] + 1); /* 0xFF + 1: 0, dropped */
    for (int e = 0; e < 16; e++)
        d[e] = cdrop_select_f16(s[e], sc[0], k[e]);
}

CDROP_VI void isa_keep_mul_bf16(uint16_t *d, const uint16_t *s, isa_mask m, int q, cdrop_f32x4 sc)
{
    uint8_t k[16];
    CDROP_VEC_STORE(k, (cdrop_u8x16)m.drop[q] + 1); /* 0xFF + 1: 0, dropped */
    for (int e = 0; e < 16; e++)
        d[e] = cdrop_select_bf16(s[e], sc[0], k[e]);
}

CDROP_VI void isa_store_keep_u8(uint8_t *dst, isa_mask m)
{
#pragma GCC unroll 4
    for (int h = 0; h < 4; h++)
        CDROP_VEC_STORE(dst + 16 * h, (cdrop_u8x16)m.drop[h] + 1);
}

CDROP_VI uint64_t isa_keep_bits(isa_mask m) { return ~cdrop_movemask64(m.drop); }

#define CDROP_ISA_TABLE cdrop_ops_portable
#define CDROP_ISA_VRUNS cdrop_vruns_portable
#define CDROP_ISA_NORMALS cdrop_normals_portable
#define CDROP_ISA_RESUME cdrop_resume_portable
#include "ops.inc.h"

#endif /* CDROP_HAVE_VECTOR_EXT */
