/*
 * isa_avx512.c -- the AVX-512 mask producer (AVX-512F + BW: Intel Skylake-SP and later, AMD
 * Zen 4 and later).  One 512-bit register holds one state word of all 16 lanes, so a step is one
 * vector of 64 bytes whose byte k is element k of the group (cdrop_step_byte's order), its 64
 * keep decisions are one mask register (vpcmpb), and a kept value is one zero-masked multiply:
 * none of the sign extensions and and-nots of the AVX2 code, and rotations are single
 * instructions (vprold).  Same stream, same keep test and the same IEEE multiply as the other
 * paths: the same bits.  The file is compiled for target("avx512f,avx512bw"); kernels.c uses it
 * only where the CPU has both.  It also has the streaming (non-temporal store) consumers.
 */
#include "platform.h"

#if CDROP_HAVE_X86_SIMD
#include <immintrin.h>

#include "consumers_scalar.h"
#include "kernels.h"
#include "producer_scalar.h"

CDROP_TARGET_PUSH("avx512f,avx512bw")

typedef struct {
    __m512i s0, s1, s2, s3; /* state word w of lane l is 32-bit element l of s<w> */
} isa_lanes;
typedef uint64_t isa_mask; /* bit k: element k of the step is kept (or ties, when not exact) */
typedef __m512i isa_top;

/* 32-bit lane primitives of the xoshiro step: all 16 lanes */
typedef __m512i isa_u32v;
static inline __m512i isa_add32(__m512i a, __m512i b) { return _mm512_add_epi32(a, b); }
static inline __m512i isa_xor(__m512i a, __m512i b) { return _mm512_xor_si512(a, b); }
static inline __m512i isa_shl32(__m512i x, int k) { return _mm512_slli_epi32(x, k); }
/* A macro: vprold takes an immediate, and clang (14 at least) requires the constant in the
 * builtin's own call, which an always_inline function's parameter is not ("argument to
 * '__builtin_ia32_prold512' must be a constant integer": cdrop did not build with clang). */
#define isa_rotl32(x, k) _mm512_rol_epi32((x), (k))
#include "xoshiro.inc.h"

static inline __m512i cdrop_step16(isa_lanes *v)
{
    return cdrop_xoshiro_step(&v->s0, &v->s1, &v->s2, &v->s3);
}

/* The lanes of a seeded block into registers. */
static inline void isa_load_lanes(isa_lanes *v, const cdrop_lanes *st)
{
    v->s0 = _mm512_loadu_si512((const void *)&st->s[0][0]);
    v->s1 = _mm512_loadu_si512((const void *)&st->s[1][0]);
    v->s2 = _mm512_loadu_si512((const void *)&st->s[2][0]);
    v->s3 = _mm512_loadu_si512((const void *)&st->s[3][0]);
}

static inline uint32_t isa_seek(isa_lanes *v, uint64_t key, uint64_t g)
{
    cdrop_lanes st;
    const uint32_t j = cdrop_block_seed(&st, key, g);
    isa_load_lanes(v, &st);
    for (uint32_t q = 0; q < j / CDROP_GROUP; q++)
        (void)cdrop_step16(v);
    return j;
}

static inline void isa_step_out(isa_lanes *v, uint32_t out[CDROP_LANES])
{
    _mm512_storeu_si512((void *)out, cdrop_step16(v));
}

static inline isa_top isa_top_of(uint32_t thr)
{
    return _mm512_set1_epi8((char)((thr >> 24) ^ 0x80u));
}

static inline isa_mask isa_next(isa_lanes *v, isa_top top, int exact, uint64_t *tw)
{
    const __m512i u = cdrop_step16(v);
    if (exact)
        return (uint64_t)_mm512_cmplt_epi8_mask(u, top);
    *tw = (uint64_t)_mm512_cmpeq_epi8_mask(u, top);
    return (uint64_t)_mm512_cmple_epi8_mask(u, top);
}

/* For consumers that need final masks (the streaming ones). */
static inline isa_mask isa_mask_settle(isa_mask m, uint64_t tw, uint64_t key, uint64_t g,
                                       uint32_t thr)
{
    return cdrop_settle_inline(m, tw, key, g, thr);
}

/* float32 and float64: zero-masking multiplies, a dropped element is +0.0 without being
 * multiplied. */
typedef __m512 isa_v_f32;
enum { isa_width_f32 = 16 };
static inline __m512 isa_set1_f32(float x) { return _mm512_set1_ps(x); }
/* Software prefetch CDROP_AVX512_AHEAD bytes ahead of every float load and store (0: none),
 * as isa_avx2.c does and for the same reason, here for the tie path: its loop is 44
 * instructions per 4 cache lines against the exact path's 36, and from beyond this guest's
 * share of the L3 it kept fewer lines in flight.  In place, float32, 1 thread, ratio to the
 * floor np.multiply(x, c, out=x) (every p interleaved with the floor, 3 alternating processes):
 * 16M elements p = 0.1 1.04-1.07x -> 0.98-0.99x, p = 0.5 1.03x -> 0.95-0.96x; 4M 1.05-1.06x
 * -> 1.00x and 1.01-1.03x -> 0.97-0.98x; in cache (256K) the tie path 1.17x either way, p =
 * 0.5 0.94-0.99x -> 1.01-1.02x (the hint: platform.h, cdrop_prefetch_ahead). */
#ifndef CDROP_AVX512_AHEAD
#define CDROP_AVX512_AHEAD 8192
#endif

static inline __m512 isa_load_f32(const float *p)
{
    cdrop_prefetch_ahead(p, CDROP_AVX512_AHEAD);
    return _mm512_loadu_ps(p);
}
static inline void isa_store_f32(float *p, __m512 x)
{
    cdrop_prefetch_ahead(p, CDROP_AVX512_AHEAD);
    _mm512_storeu_ps(p, x);
}

static inline __m512 isa_keep_mul_f32(isa_mask m, int q, __m512 x, __m512 sc)
{
    return _mm512_maskz_mul_ps((__mmask16)(m >> (16 * q)), x, sc);
}

typedef __m512d isa_v_f64;
enum { isa_width_f64 = 8 };
static inline __m512d isa_set1_f64(double x) { return _mm512_set1_pd(x); }
static inline __m512d isa_load_f64(const double *p)
{
    cdrop_prefetch_ahead(p, CDROP_AVX512_AHEAD);
    return _mm512_loadu_pd(p);
}
static inline void isa_store_f64(double *p, __m512d x)
{
    cdrop_prefetch_ahead(p, CDROP_AVX512_AHEAD);
    _mm512_storeu_pd(p, x);
}

static inline __m512d isa_keep_mul_f64(isa_mask m, int q, __m512d x, __m512d sc)
{
    return _mm512_maskz_mul_pd((__mmask8)(m >> (8 * q)), x, sc);
}

/* The dropout family's fused consumers (consumer_family.inc.h): an add, and kept ? a : b. */
static inline __m512 isa_add_f32(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
static inline __m512d isa_add_f64(__m512d a, __m512d b) { return _mm512_add_pd(a, b); }
static inline __m512 isa_keep_sel_f32(isa_mask m, int q, __m512 a, __m512 b)
{
    return _mm512_mask_blend_ps((__mmask16)(m >> (16 * q)), b, a);
}
static inline __m512d isa_keep_sel_f64(isa_mask m, int q, __m512d a, __m512d b)
{
    return _mm512_mask_blend_pd((__mmask8)(m >> (8 * q)), b, a);
}

/* float16: AVX-512F's vcvtph2ps and vcvtps2ph, exact both ways (rounding to nearest even by
 * the immediate; subnormal results are made; NaN as half_scalar.h), 16 at a time through
 * isa_keep_mul_f32.  bfloat16: the integer rounding of cdrop_narrow_bf16, not AVX512-BF16's
 * vcvtneps2bf16, which flushes subnormals. */
enum { isa_width_f16 = 16, isa_width_bf16 = 32 };
static inline void isa_keep_mul_f16(uint16_t *d, const uint16_t *s, isa_mask m, int q, __m512 sc)
{
    const __m512 x = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)s));
    const __m512 y = isa_keep_mul_f32(m, q, x, sc);
    _mm256_storeu_si256((__m256i *)d, _mm512_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
}

/* bfloat16, 32 at a time as in isa_avx2.c (even and odd elements as two float32 vectors, no
 * widening shuffles), the mask applied last to the 16-bit results (AVX-512BW). */
static inline __m512i cdrop_bf16_round(__m512 y)
{
    const __m512i u = _mm512_castps_si512(y);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    return _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), odd);
}

static inline void isa_keep_mul_bf16(uint16_t *d, const uint16_t *s, isa_mask m, int q, __m512 sc)
{
    const __m512i x = _mm512_loadu_si512((const void *)s);
    const __m512i hi16 = _mm512_set1_epi32((int)0xFFFF0000u);
    const __m512 ev = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
    const __m512 od = _mm512_castsi512_ps(_mm512_and_si512(x, hi16));
    const __m512i re = cdrop_bf16_round(_mm512_mul_ps(ev, sc));
    const __m512i ro = cdrop_bf16_round(_mm512_mul_ps(od, sc));
    /* (ro & 0xFFFF0000) | (re >> 16): the odd results in the high halves, the even in the low */
    __m512i r = _mm512_ternarylogic_epi32(hi16, ro, _mm512_srli_epi32(re, 16), 0xEA);
    const __mmask32 isnan = _mm512_cmpgt_epu16_mask(_mm512_and_si512(x, _mm512_set1_epi16(0x7FFF)),
                                                    _mm512_set1_epi16(0x7F80));
    /* (x & 0x8000) | 0x7FC0: x's sign, the canonical quiet NaN */
    const __m512i nan = _mm512_ternarylogic_epi32(x, _mm512_set1_epi16((short)0x8000),
                                                  _mm512_set1_epi16(0x7FC0), 0xEA);
    r = _mm512_mask_mov_epi16(r, isnan, nan);
    _mm512_storeu_si512((void *)d, _mm512_maskz_mov_epi16((__mmask32)(m >> (32 * q)), r));
}

static inline void isa_store_keep_u8(uint8_t *dst, isa_mask m)
{
    _mm512_storeu_si512((void *)dst, _mm512_maskz_mov_epi8((__mmask64)m, _mm512_set1_epi8(1)));
}

static inline uint64_t isa_keep_bits(isa_mask m) { return m; }

/* The streaming consumers: non-temporal stores, with the primitives they need. */
static inline void isa_stream_f32(float *p, __m512 x) { _mm512_stream_ps(p, x); }
static inline void isa_stream_f64(double *p, __m512d x) { _mm512_stream_pd(p, x); }
static inline void isa_mstore_f32(float *p, uint32_t k, __m512 x)
{
    _mm512_mask_storeu_ps(p, (__mmask16)k, x);
}
static inline void isa_mstore_f64(double *p, uint32_t k, __m512d x)
{
    _mm512_mask_storeu_pd(p, (__mmask8)k, x);
}

/* For a destination m elements past a 64-byte boundary: the permutation that takes the last m
 * elements of the previous result and the first VEC - m of the current one (vpermt2ps/pd). */
static inline __m512i isa_carry_idx_f32(int m)
{
    return _mm512_add_epi32(
        _mm512_set1_epi32(16 - m),
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

static inline __m512i isa_carry_idx_f64(int m)
{
    return _mm512_add_epi64(_mm512_set1_epi64(8 - m), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m512 isa_carry_f32(__m512 prev, __m512i idx, __m512 cur)
{
    return _mm512_permutex2var_ps(prev, idx, cur);
}

static inline __m512d isa_carry_f64(__m512d prev, __m512i idx, __m512d cur)
{
    return _mm512_permutex2var_pd(prev, idx, cur);
}

#define CDROP_ISA_TABLE cdrop_ops_avx512
#define CDROP_ISA_VRUNS cdrop_vruns_avx512
#define CDROP_ISA_NORMALS cdrop_normals_avx512
#define CDROP_ISA_RESUME cdrop_resume_avx512
#define CDROP_ISA_STREAMS 1
#include "ops.inc.h"

CDROP_TARGET_POP()
#endif /* CDROP_HAVE_X86_SIMD */
