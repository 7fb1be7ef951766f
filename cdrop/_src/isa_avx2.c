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
/* A step's 64 decisions as bytes: 0xFF in the bytes of elements 0-31 (b[0]) and 32-63 (b[1])
 * that are kept (keep == 1) or dropped (keep == 0).  The exact loops compare once for "kept"
 * and the tie loops once for "dropped" (kept-or-tie is its complement), so neither spends a
 * vector NOT; `keep` is a constant in each loop copy after inlining, and the consumers pick
 * and or and-not by it. */
typedef struct {
    __m256i b[2];
    int keep;
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
    m.keep = exact;
    for (int h = 0; h < 2; h++) /* exact: kept iff byte < top; else dropped iff byte > top */
        m.b[h] = exact ? _mm256_cmpgt_epi8(top, u[h]) : _mm256_cmpgt_epi8(u[h], top);
    if (!exact)
        *tw = (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(u[0], top)) |
              (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(u[1], top)) << 32;
    return m;
}

/* Bytes 8r .. 8r + 7 of the 64 mask bytes (r = 0 .. 7), in the low half of a register. */
static inline __m128i cdrop_mask8(isa_mask m, int r)
{
    const __m256i half = m.b[r >> 2];
    const __m128i part = (r & 2) ? _mm256_extracti128_si256(half, 1) : _mm256_castsi256_si128(half);
    return (r & 1) ? _mm_srli_si128(part, 8) : part;
}

/* Bytes 16r .. 16r + 15 of the 64 mask bytes (r = 0 .. 3). */
static inline __m128i cdrop_mask16(isa_mask m, int r)
{
    const __m256i half = m.b[r >> 1];
    return (r & 1) ? _mm256_extracti128_si256(half, 1) : _mm256_castsi256_si128(half);
}

/* The float32 lane mask of elements 8q .. 8q + 7 (sign extension).  (One vpermd per 32
 * elements and one in-lane vpshufb per vector is 10 shuffles per step instead of 14, and
 * llvm-mca liked it, but measured on this Sapphire Rapids class Xeon it left p = 0.5 as it was
 * and made the tie path 6% slower: 1.60x against 1.51x the floor at 262,144 elements.) */
static inline __m256i cdrop_lanes32(isa_mask m, int q)
{
    return _mm256_cvtepi8_epi32(cdrop_mask8(m, q));
}

/* The float64 lane mask of elements 4q .. 4q + 3 (sign extension). */
static inline __m256i cdrop_lanes64(isa_mask m, int q)
{
    const __m128i b8 = cdrop_mask8(m, q >> 1);
    return _mm256_cvtepi8_epi64((q & 1) ? _mm_srli_si128(b8, 4) : b8);
}

/* x where the lane mask `b` (sign-extended mask bytes of m) says kept, 0 elsewhere. */
static inline __m256i cdrop_kept(const isa_mask *m, __m256i b, __m256i x)
{
    return m->keep ? _mm256_and_si256(b, x) : _mm256_andnot_si256(b, x);
}
static inline __m256 cdrop_kept_f32(const isa_mask *m, __m256i b, __m256 x)
{
    return m->keep ? _mm256_and_ps(_mm256_castsi256_ps(b), x)
                   : _mm256_andnot_ps(_mm256_castsi256_ps(b), x);
}
static inline __m256d cdrop_kept_f64(const isa_mask *m, __m256i b, __m256d x)
{
    return m->keep ? _mm256_and_pd(_mm256_castsi256_pd(b), x)
                   : _mm256_andnot_pd(_mm256_castsi256_pd(b), x);
}

/* Software prefetch CDROP_AVX2_AHEAD bytes ahead of every float load and store (0: none).
 * A step of this file is 75 instructions for 4 cache lines of float32 (89 with ties), against
 * 36 on AVX-512, so the out-of-order window holds half as many lines in flight, and from DRAM
 * the loop waited on memory: in place, 1 thread, 64M elements, 1.30x the floor
 * np.multiply(x, c, out=x) against AVX-512's 0.98x, while in this guest's L3 (2-8M elements)
 * both were at 1.04-1.10x.  Prefetching the source alone made that 0.97-1.00x (4, 8 and 16 KiB
 * ahead did the same) but out of place into an existing out= (not streamed), 4M and 16M
 * elements, 1.27x became 1.32-1.44x; prefetching the destination too (for the store's read for
 * ownership) made that 1.02-1.08x and 0.88-1.03x, and streamed out= 16M-64M 0.74-0.84x became
 * 0.56-0.72x (bench/avx2_where.py, docs/performance.md).  Two or four hints per line, as the
 * loads and stores come: a hint per line would need the consumer's step index; in cache (256Ki
 * elements) they cost nothing measurable.  Hints never fault: past the end of an array is
 * harmless (platform.h: cdrop_prefetch_ahead). */
#ifndef CDROP_AVX2_AHEAD
#define CDROP_AVX2_AHEAD 8192
#endif

/* float32: 8 lanes; the byte masks become lane masks by sign extension. */
typedef __m256 isa_v_f32;
enum { isa_width_f32 = 8 };
static inline __m256 isa_set1_f32(float x) { return _mm256_set1_ps(x); }
static inline __m256 isa_load_f32(const float *p)
{
    cdrop_prefetch_ahead(p, CDROP_AVX2_AHEAD);
    return _mm256_loadu_ps(p);
}
static inline void isa_store_f32(float *p, __m256 x)
{
    cdrop_prefetch_ahead(p, CDROP_AVX2_AHEAD);
    _mm256_storeu_ps(p, x);
}

static inline __m256 isa_keep_mul_f32(isa_mask m, int q, __m256 x, __m256 sc)
{
    return cdrop_kept_f32(&m, cdrop_lanes32(m, q), _mm256_mul_ps(x, sc));
}

/* float64: 4 lanes, from the low or the high 4 bytes of a group of 8. */
typedef __m256d isa_v_f64;
enum { isa_width_f64 = 4 };
static inline __m256d isa_set1_f64(double x) { return _mm256_set1_pd(x); }
static inline __m256d isa_load_f64(const double *p)
{
    cdrop_prefetch_ahead(p, CDROP_AVX2_AHEAD);
    return _mm256_loadu_pd(p);
}
static inline void isa_store_f64(double *p, __m256d x)
{
    cdrop_prefetch_ahead(p, CDROP_AVX2_AHEAD);
    _mm256_storeu_pd(p, x);
}

static inline __m256d isa_keep_mul_f64(isa_mask m, int q, __m256d x, __m256d sc)
{
    return cdrop_kept_f64(&m, cdrop_lanes64(m, q), _mm256_mul_pd(x, sc));
}

/* The dropout family's fused consumers (consumer_family.inc.h): an add, and kept ? a : b. */
static inline __m256 isa_add_f32(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
static inline __m256d isa_add_f64(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
static inline __m256 isa_keep_sel_f32(isa_mask m, int q, __m256 a, __m256 b)
{
    const __m256 sel = _mm256_castsi256_ps(cdrop_lanes32(m, q));
    return m.keep ? _mm256_blendv_ps(b, a, sel) : _mm256_blendv_ps(a, b, sel);
}
static inline __m256d isa_keep_sel_f64(isa_mask m, int q, __m256d a, __m256d b)
{
    const __m256d sel = _mm256_castsi256_pd(cdrop_lanes64(m, q));
    return m.keep ? _mm256_blendv_pd(b, a, sel) : _mm256_blendv_pd(a, b, sel);
}

/* Final masks for consumers that cannot clear a lost tie afterwards (dropout_add into its
 * residual, the streaming stores): a lost tie's byte says dropped. */
static inline isa_mask isa_mask_settle(isa_mask m, uint64_t tw, uint64_t key, uint64_t g,
                                       uint32_t thr)
{
    uint8_t d[CDROP_GROUP];
    _mm256_storeu_si256((__m256i *)&d[0], m.b[0]);
    _mm256_storeu_si256((__m256i *)&d[32], m.b[1]);
    for (; tw; tw &= tw - 1) {
        const int e = __builtin_ctzll(tw);
        if (cdrop_tie24(key, g + (uint64_t)e) >= (thr & 0xFFFFFFu))
            d[e] = m.keep ? 0x00 : 0xFF;
    }
    m.b[0] = _mm256_loadu_si256((const __m256i *)&d[0]);
    m.b[1] = _mm256_loadu_si256((const __m256i *)&d[32]);
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
    _mm256_storeu_si256((__m256i *)d, cdrop_kept(&m, _mm256_cvtepi8_epi16(cdrop_mask16(m, q)), r));
}

static inline void isa_store_keep_u8(uint8_t *dst, isa_mask m)
{
    const __m256i one = _mm256_set1_epi8(1);
    _mm256_storeu_si256((__m256i *)dst, cdrop_kept(&m, m.b[0], one));
    _mm256_storeu_si256((__m256i *)(dst + 32), cdrop_kept(&m, m.b[1], one));
}

static inline uint64_t isa_keep_bits(isa_mask m)
{
    const uint64_t set = (uint64_t)(uint32_t)_mm256_movemask_epi8(m.b[0]) |
                         (uint64_t)(uint32_t)_mm256_movemask_epi8(m.b[1]) << 32;
    return m.keep ? set : ~set;
}

/* The streaming consumers (consumer_stream.inc.h): non-temporal stores, 32-byte aligned. */
static inline void isa_stream_f32(float *p, __m256 x) { _mm256_stream_ps(p, x); }
static inline void isa_stream_f64(double *p, __m256d x) { _mm256_stream_pd(p, x); }
static inline void isa_mstore_f32(float *p, uint32_t k, __m256 x)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)k), bit), bit);
    _mm256_maskstore_ps(p, on, x);
}
static inline void isa_mstore_f64(double *p, uint32_t k, __m256d x)
{
    const __m256i bit = _mm256_setr_epi64x(1, 2, 4, 8);
    const __m256i on = _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x(k), bit), bit);
    _mm256_maskstore_pd(p, on, x);
}

/* For a destination m elements past a 32-byte boundary, one vector of 32-bit lanes j - m
 * (float64: j - 2m, two per element): its low 3 bits rotate both results by m elements
 * (vpermps), and its sign bits say which lanes come from the previous result (vblendvps/pd
 * read the sign bit of each 32- or 64-bit lane). */
static inline __m256i isa_carry_idx_f32(int m)
{
    return _mm256_sub_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(m));
}
static inline __m256i isa_carry_idx_f64(int m)
{
    return _mm256_sub_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(2 * m));
}
static inline __m256 isa_carry_f32(__m256 prev, __m256i idx, __m256 cur)
{
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(cur, idx), _mm256_permutevar8x32_ps(prev, idx),
                            _mm256_castsi256_ps(idx));
}
static inline __m256d isa_carry_f64(__m256d prev, __m256i idx, __m256d cur)
{
    const __m256 p = _mm256_permutevar8x32_ps(_mm256_castpd_ps(prev), idx);
    const __m256 c = _mm256_permutevar8x32_ps(_mm256_castpd_ps(cur), idx);
    return _mm256_blendv_pd(_mm256_castps_pd(c), _mm256_castps_pd(p), _mm256_castsi256_pd(idx));
}

#define CDROP_ISA_TABLE cdrop_ops_avx2
#define CDROP_ISA_VRUNS cdrop_vruns_avx2
#define CDROP_ISA_NORMALS cdrop_normals_avx2
#define CDROP_ISA_RESUME cdrop_resume_avx2
#define CDROP_ISA_STREAMS 1
#include "ops.inc.h"

CDROP_TARGET_POP()
#endif /* CDROP_HAVE_X86_SIMD */
