/*
 * consumer_half.inc.h -- the select-and-scale consumer of a half dtype (CDROP_SFX = f16 or
 * bf16, 2-byte items), included by each instruction set's file.  The instruction set's
 * primitive for the dtype does the work on isa_width_<sfx> elements:
 *   isa_keep_mul_<sfx>(d, s, m, q, sc)  d[k] = s[k] * sc for the elements q * width + k of the
 *                  step that the step mask m keeps, +0.0 for the others: the halves widened to
 *                  float32, multiplied by the float32 scale sc (an isa_v_f32), and narrowed
 *                  back rounding to nearest even (half_scalar.h states the rule).
 * float16 on AVX2 and AVX-512 is F16C's widening, the float32 primitive isa_keep_mul_f32 and
 * F16C's narrowing; bfloat16 there works on the 16-bit words (isa_avx2.c explains how);
 * portable is half_scalar.h's conversions, one element per call, which the compiler vectorises.
 * The consumer interface is the one of consumer_float.inc.h (walk.inc.h calls it).
 */
#define CDROP_H(name) CDROP_CAT3(name, _, CDROP_SFX)  /* types */
#define CDROP_HF(name) CDROP_CAT3(name, _, CDROP_SFX) /* functions, constants */
#define CDROP_HW CDROP_HF(isa_width)
/* Software prefetch distance in elements (8 KiB).  A half step does twice the work per cache
 * line of a float32 step, so the out-of-order window holds half as many lines in flight, and
 * at DRAM sizes the kernels were latency-bound: in place at 16M elements, one thread, float16
 * took 4.0 ms against float32's 3.7 ms without it, 2.7 ms with it (medians, AVX-512). */
#ifndef CDROP_HALF_AHEAD
#define CDROP_HALF_AHEAD 4096
#endif

typedef struct {
    const uint16_t *src;
    uint16_t *dst;
    isa_v_f32 sc; /* the float32 scale in a register for the whole run */
} CDROP_H(cdrop_state);

static inline void CDROP_H(cdrop_begin)(CDROP_H(cdrop_state) *st, const cdrop_args *a, int64_t i0)
{
    (void)i0;
    st->src = (const uint16_t *)a->src;
    st->dst = (uint16_t *)a->dst;
    st->sc = isa_set1_f32((float)a->scale);
}

static inline void CDROP_H(cdrop_full)(CDROP_H(cdrop_state) *st, int64_t i, isa_mask m)
{
#if defined(__GNUC__) || defined(__clang__)
    /* the two cache lines of the step CDROP_HALF_AHEAD elements ahead (a hint: never faults) */
    __builtin_prefetch((const char *)st->src + 2 * (i + CDROP_HALF_AHEAD));
    __builtin_prefetch((const char *)st->src + 2 * (i + CDROP_HALF_AHEAD) + 64);
#endif
#pragma GCC unroll 16
    for (int q = 0; q < CDROP_GROUP / CDROP_HW; q++)
        CDROP_HF(isa_keep_mul)(st->dst + i + q * CDROP_HW, st->src + i + q * CDROP_HW, m, q,
                               st->sc);
}

static inline void CDROP_H(cdrop_end)(CDROP_H(cdrop_state) *st, int64_t i) { (void)st, (void)i; }

static inline void CDROP_H(cdrop_part)(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    const uint16_t *s = (const uint16_t *)a->src + i;
    uint16_t *d = (uint16_t *)a->dst + i;
    CDROP_H(cdrop_run)((const char *)s, sizeof *s, (char *)d, sizeof *d, keep, 1, n,
                       (float)a->scale);
}

static inline void CDROP_H(cdrop_lost)(const cdrop_args *a, int64_t e, int lost)
{
    cdrop_clear_if_u16((uint16_t *)a->dst + e, lost);
}

#undef CDROP_H
#undef CDROP_HF
#undef CDROP_HW
