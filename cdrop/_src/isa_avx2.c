/*
 * isa_avx2.c -- the AVX2 mask producer (Haswell and later, Zen 1-3 and later): the 16 lanes in
 * eight 256-bit registers, a step's 64 decisions as two vectors of byte masks.  The whole file
 * is compiled for target("avx2,f16c") and runs only where the CPU has both (kernels.c checks;
 * every AVX2 CPU has F16C, float16's conversions).  Same stream, same keep test (the signed byte
 * comparison of cdrop_keeps, ties settled by the hash) and the same IEEE multiply as the
 * portable path: the same bits.
 */
#include "platform.h"

#if CDROP_HAVE_X86_SIMD
#include <immintrin.h>

#include "consumers_scalar.h"
#include "kernels.h"
#include "producer_scalar.h"

CDROP_TARGET_PUSH("avx2,f16c")

typedef struct {
    __m256i a0, a1, a2, a3; /* state words 0-3 of lanes 0-7 */
    __m256i b0, b1, b2, b3; /* ... of lanes 8-15 */
} isa_lanes;
typedef struct {
    __m256i drop[2]; /* 0xFF in the bytes of elements 0-31, 32-63 that are dropped */
} isa_mask;
typedef __m256i isa_top;

/* 32-bit lane primitives of the xoshiro step: eight lanes */
typedef __m256i isa_u32v;
static inline __m256i isa_add32(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
static inline __m256i isa_xor(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }
static inline __m256i isa_shl32(__m256i x, int k) { return _mm256_slli_epi32(x, k); }
static inline __m256i isa_rotl32(__m256i x, int k)
{
    return _mm256_or_si256(_mm256_slli_epi32(x, k), _mm256_srli_epi32(x, 32 - k));
}
#include "xoshiro.inc.h"

/* The lanes of a seeded block into registers. */
static inline void isa_load_lanes(isa_lanes *v, const cdrop_lanes *st)
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

static inline uint32_t isa_seek(isa_lanes *v, uint64_t key, uint64_t g)
{
    cdrop_lanes st;
    const uint32_t j = cdrop_block_seed(&st, key, g);
    isa_load_lanes(v, &st);
    for (uint32_t q = 0; q < j / CDROP_GROUP; q++) {
        (void)cdrop_xoshiro_step(&v->a0, &v->a1, &v->a2, &v->a3);
        (void)cdrop_xoshiro_step(&v->b0, &v->b1, &v->b2, &v->b3);
    }
    return j;
}

static inline void isa_step_out(isa_lanes *v, uint32_t out[CDROP_LANES])
{
    _mm256_storeu_si256((__m256i *)&out[0], cdrop_xoshiro_step(&v->a0, &v->a1, &v->a2, &v->a3));
    _mm256_storeu_si256((__m256i *)&out[8], cdrop_xoshiro_step(&v->b0, &v->b1, &v->b2, &v->b3));
}

static inline isa_top isa_top_of(uint32_t thr)
{
    return _mm256_set1_epi8((char)((thr >> 24) ^ 0x80u));
}

/* always_inline: GCC kept an out-of-line copy of isa_next for the exact (p = 0.5) loops, which
 * then passed the lanes through memory on every step (p = 0.5 at 256Ki elements took 1.76x the
 * floor against 1.52x for the tie path that inlined it). */
static inline __attribute__((always_inline)) isa_mask isa_next(isa_lanes *v, isa_top top, int exact,
                                                               uint64_t *tw)
{
    const __m256i u[2] = {cdrop_xoshiro_step(&v->a0, &v->a1, &v->a2, &v->a3),
                          cdrop_xoshiro_step(&v->b0, &v->b1, &v->b2, &v->b3)};
    isa_mask m;
    for (int h = 0; h < 2; h++) {
        if (exact) /* drop unless byte < top: ties included */
            m.drop[h] = _mm256_xor_si256(_mm256_cmpgt_epi8(top, u[h]), _mm256_set1_epi8(-1));
        else
            m.drop[h] = _mm256_cmpgt_epi8(u[h], top);
    }
    if (!exact)
        *tw = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(u[0], top)) |
              (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(u[1], top)) << 32;
    return m;
}

/* Bytes 8r .. 8r + 7 of the 64 drop bytes (r = 0 .. 7), in the low half of a register. */
static inline __m128i cdrop_drop8(isa_mask m, int r)
{
    const __m256i half = m.drop[r >> 2];
    const __m128i part = (r & 2) ? _mm256_extracti128_si256(half, 1) : _mm256_castsi256_si128(half);
    return (r & 1) ? _mm_srli_si128(part, 8) : part;
}

/* Bytes 16r .. 16r + 15 of the 64 drop bytes (r = 0 .. 3). */
static inline __m128i cdrop_drop16(isa_mask m, int r)
{
    const __m256i half = m.drop[r >> 1];
    return (r & 1) ? _mm256_extracti128_si256(half, 1) : _mm256_castsi256_si128(half);
}

/* float32: 8 lanes; the byte masks become lane masks by sign extension. */
typedef __m256 isa_v_f32;
enum { isa_width_f32 = 8 };
static inline __m256 isa_set1_f32(float x) { return _mm256_set1_ps(x); }
static inline __m256 isa_load_f32(const float *p) { return _mm256_loadu_ps(p); }
static inline void isa_store_f32(float *p, __m256 x) { _mm256_storeu_ps(p, x); }

static inline __m256 isa_keep_mul_f32(isa_mask m, int q, __m256 x, __m256 sc)
{
    const __m256 drop = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(cdrop_drop8(m, q)));
    return _mm256_andnot_ps(drop, _mm256_mul_ps(x, sc));
}

/* float64: 4 lanes, from the low or the high 4 bytes of a group of 8. */
typedef __m256d isa_v_f64;
enum { isa_width_f64 = 4 };
static inline __m256d isa_set1_f64(double x) { return _mm256_set1_pd(x); }
static inline __m256d isa_load_f64(const double *p) { return _mm256_loadu_pd(p); }
static inline void isa_store_f64(double *p, __m256d x) { _mm256_storeu_pd(p, x); }

static inline __m256d isa_keep_mul_f64(isa_mask m, int q, __m256d x, __m256d sc)
{
    const __m128i b8 = cdrop_drop8(m, q >> 1);
    const __m128i b4 = (q & 1) ? _mm_srli_si128(b8, 4) : b8;
    const __m256d drop = _mm256_castsi256_pd(_mm256_cvtepi8_epi64(b4));
    return _mm256_andnot_pd(drop, _mm256_mul_pd(x, sc));
}

/* The dropout family's fused consumers (consumer_family.inc.h): an add, and kept ? a : b. */
static inline __m256 isa_add_f32(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
static inline __m256d isa_add_f64(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
static inline __m256 isa_keep_sel_f32(isa_mask m, int q, __m256 a, __m256 b)
{
    const __m256 drop = _mm256_castsi256_ps(_mm256_cvtepi8_epi32(cdrop_drop8(m, q)));
    return _mm256_blendv_ps(a, b, drop);
}
static inline __m256d isa_keep_sel_f64(isa_mask m, int q, __m256d a, __m256d b)
{
    const __m128i b8 = cdrop_drop8(m, q >> 1);
    const __m128i b4 = (q & 1) ? _mm_srli_si128(b8, 4) : b8;
    return _mm256_blendv_pd(a, b, _mm256_castsi256_pd(_mm256_cvtepi8_epi64(b4)));
}

/* Final masks for consumers that cannot clear a lost tie afterwards (dropout_add into its
 * residual): a lost tie's drop byte is set. */
static inline isa_mask isa_mask_settle(isa_mask m, uint64_t tw, uint64_t key, uint64_t g,
                                       uint32_t thr)
{
    uint8_t d[CDROP_GROUP];
    _mm256_storeu_si256((__m256i *)&d[0], m.drop[0]);
    _mm256_storeu_si256((__m256i *)&d[32], m.drop[1]);
    for (; tw; tw &= tw - 1) {
        const int e = __builtin_ctzll(tw);
        if (cdrop_tie24(key, g + (uint64_t)e) >= (thr & 0xFFFFFFu))
            d[e] = 0xFF;
    }
    m.drop[0] = _mm256_loadu_si256((const __m256i *)&d[0]);
    m.drop[1] = _mm256_loadu_si256((const __m256i *)&d[32]);
    return m;
}

/* float16: F16C's conversions, exact both ways (vcvtps2ph rounds to nearest even by its
 * immediate, whatever MXCSR says, and makes subnormals; NaN as half_scalar.h), eight at a time
 * through isa_keep_mul_f32. */
enum { isa_width_f16 = 8, isa_width_bf16 = 16 };
static inline void isa_keep_mul_f16(uint16_t *d, const uint16_t *s, isa_mask m, int q, __m256 sc)
{
    const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)s));
    const __m256 y = isa_keep_mul_f32(m, q, x, sc);
    _mm_storeu_si128((__m128i *)d, _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
}

/* bfloat16, 16 at a time without widening shuffles: a bfloat16 is the high half of a float32,
 * so the even elements shifted up and the odd ones masked are two float32 vectors; both are
 * multiplied and rounded (cdrop_bf16_round), and the two results interleave back by a shift
 * and a blend.  NaN products (exactly the NaN inputs: the scale is finite and nonzero) become
 * 0x7FC0 with x's sign, as ml_dtypes does; dropped elements are cleared last. */
static inline __m256i cdrop_bf16_round(__m256 y)
{
    const __m256i u = _mm256_castps_si256(y);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    return _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), odd);
}

static inline void isa_keep_mul_bf16(uint16_t *d, const uint16_t *s, isa_mask m, int q, __m256 sc)
{
    const __m256i x = _mm256_loadu_si256((const __m256i *)s);
    const __m256i hi16 = _mm256_set1_epi32((int)0xFFFF0000u);
    const __m256 ev = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
    const __m256 od = _mm256_castsi256_ps(_mm256_and_si256(x, hi16));
    const __m256i re = cdrop_bf16_round(_mm256_mul_ps(ev, sc));
    const __m256i ro = cdrop_bf16_round(_mm256_mul_ps(od, sc));
    __m256i r = _mm256_blend_epi16(_mm256_srli_epi32(re, 16), ro, 0xAA);
    const __m256i ax = _mm256_and_si256(x, _mm256_set1_epi16(0x7FFF));
    const __m256i isnan = _mm256_cmpgt_epi16(ax, _mm256_set1_epi16(0x7F80));
    const __m256i nan = _mm256_or_si256(_mm256_xor_si256(x, ax), _mm256_set1_epi16(0x7FC0));
    r = _mm256_blendv_epi8(r, nan, isnan);
    const __m256i drop = _mm256_cvtepi8_epi16(cdrop_drop16(m, q));
    _mm256_storeu_si256((__m256i *)d, _mm256_andnot_si256(drop, r));
}

static inline void isa_store_keep_u8(uint8_t *dst, isa_mask m)
{
    const __m256i one = _mm256_set1_epi8(1);
    _mm256_storeu_si256((__m256i *)dst, _mm256_andnot_si256(m.drop[0], one));
    _mm256_storeu_si256((__m256i *)(dst + 32), _mm256_andnot_si256(m.drop[1], one));
}

static inline uint64_t isa_keep_bits(isa_mask m)
{
    return ~((uint64_t)(uint32_t)_mm256_movemask_epi8(m.drop[0]) |
             (uint64_t)(uint32_t)_mm256_movemask_epi8(m.drop[1]) << 32);
}

#define CDROP_ISA_TABLE cdrop_ops_avx2
#define CDROP_ISA_VRUNS cdrop_vruns_avx2
#define CDROP_ISA_NORMALS cdrop_normals_avx2
#include "ops.inc.h"

CDROP_TARGET_POP()
#endif /* CDROP_HAVE_X86_SIMD */
