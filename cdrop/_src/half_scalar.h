/*
 * half_scalar.h -- float16 and bfloat16 in plain C integer code: the conversions to and from
 * float32 and the scalar select-and-scale of the half dtypes (half_scalar.inc.h, once per
 * dtype).  The rule (docs/rng.md, "Half precision"): a kept element is
 * narrow(widen(x) * scale32), the product in float32 and the store rounded to nearest even,
 * which is what NumPy's and ml_dtypes' astype conversions do, bit for bit:
 *   float16:  NaN keeps the top 10 payload bits (NumPy's npy_floatbits_to_halfbits; a product
 *             is always a quiet NaN, so this is also what F16C's vcvtps2ph gives);
 *   bfloat16: NaN becomes 0x7FC0 with its sign (ml_dtypes canonicalises NaN).
 * Integer code (no FTZ/DAZ flag matters), so that the portable path (aarch64, MSVC) gives the
 * bits of the SIMD paths, with one exception: float16's subnormal results round with a float
 * addition, which follows the rounding mode of the calling thread.  In the default mode (to
 * nearest) that is the rule; under fesetround(FE_UPWARD) the scalar code (the portable path,
 * the partial steps and strided walks of every path) rounds those results up where F16C rounds
 * to nearest (the product follows the mode on every path, as NumPy's does).  An exact integer
 * rounding made the vectorised portable loop 1.3-1.8x slower (float16 in place, 1M-16M
 * elements), for a mode that Python programs do not use.  Included by consumers_scalar.h.
 */
#ifndef CDROP_HALF_SCALAR_H
#define CDROP_HALF_SCALAR_H

#include "platform.h" /* CDROP_ALWAYS_INLINE, CDROP_SQRTF, cdrop_ctz64 */
#include <stdint.h>
#include <string.h>

static inline float cdrop_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t cdrop_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* c ? a : b for c in {0, 1}, as bit operations: with a ?: GCC may move the float operation
 * that computes one operand into a branch, and then (under its default -ftrapping-math) cannot
 * turn the branch back into a select, and the loops stay scalar (12 ns per element). */
static inline uint32_t cdrop_sel(uint32_t c, uint32_t a, uint32_t b)
{
    const uint32_t m = 0u - c;
    return (a & m) | (b & ~m);
}

/* float16 -> float32, exact.  Normal numbers, Inf and NaN (payload kept) rebias the exponent;
 * zeros and subnormals are m * 2^-24, exact in float32 (m < 1024, the result a normal float).
 * Selects, not branches, so that the compiler vectorises the portable loops. */
/* (always_inline: see cdrop_step_keeps in producer_scalar.h) */
static CDROP_ALWAYS_INLINE float cdrop_widen_f16(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t a = h & 0x7FFFu;
    const int32_t sa = (int32_t)a; /* signed compares: SSE2 has no unsigned ones */
    /* Inf, NaN: exponent 31 -> 255, an addition under a mask (cheaper than a select) */
    const uint32_t inf = (0u - (uint32_t)(sa >= 0x7C00)) & ((uint32_t)(128 - 16) << 23);
    const uint32_t n = (a << 13) + ((uint32_t)(127 - 15) << 23) + inf;
    const uint32_t sub = cdrop_f32_bits((float)sa * 5.9604644775390625e-08f); /* 2^-24 */
    return cdrop_bits_f32(cdrop_sel(sa < 0x0400, sub, n) | sign);
}

/* float32 -> float16, rounding to nearest even, with overflow to Inf and subnormal results.
 * Every case is computed and one selected (vectorisable), with the result's bits at 13..28 of
 * a 32-bit word, shifted down once at the end: the selects then stay 32-bit.  (Selects on the
 * final 16-bit values let GCC narrow each candidate and each condition to 16 bits before
 * selecting, and without SSE4.1 each such narrowing is five shuffles: 36 instructions per
 * element, 9x float32's time.)  Subnormal results: adding 0.5f puts the bits of units of 2^-24
 * at the bottom of the significand, and the float addition rounds them to nearest even; 0.5f
 * and the sum are normal floats, and an input that a DAZ flag would read as zero (a float32
 * subnormal) rounds to zero anyway. */
static inline uint16_t cdrop_narrow_f16(float f)
{
    const uint32_t u = cdrop_f32_bits(f);
    const uint32_t a = u & 0x7FFFFFFFu;
    const int32_t sa = (int32_t)a;                /* signed compares: SSE2 has no unsigned ones */
    const uint32_t sign = (u >> 3) & 0x10000000u; /* bit 15 of the result, before the shift */
    /* NaN (|f| > Inf): the top payload bits (NumPy), and never the bits of Inf; else Inf */
    const uint32_t pay = a & 0x007FE000u;
    const uint32_t nan = pay | ((uint32_t)(pay == 0) << 13);
    const uint32_t big = 0x0F800000u | (nan & (0u - (uint32_t)(sa > 0x7F800000)));
    /* normal: rebias, add half an ulp minus one if the kept part is even (a carry may round up
     * to Inf, which is right); the bits below 13 are dropped by the final shift */
    const uint32_t nrm = a - ((uint32_t)(127 - 15) << 23) + 0xFFFu + ((a >> 13) & 1u);
    const uint32_t sub = (cdrop_f32_bits(cdrop_bits_f32(a) + 0.5f) - 0x3F000000u) << 13;
    const uint32_t fin = cdrop_sel(sa >= 0x38800000, nrm, sub); /* normal if |f| >= 2^-14 */
    /* |f| >= 2^16, Inf and NaN included: big */
    return (uint16_t)((sign | cdrop_sel(sa >= 0x47800000, big, fin)) >> 13);
}

/* bfloat16 -> float32: the high half of the bits, exact. */
static inline float cdrop_widen_bf16(uint16_t h) { return cdrop_bits_f32((uint32_t)h << 16); }

/* float32 -> bfloat16, rounding to nearest even: add half an ulp of the result (minus one when
 * the kept part is even), truncate.  Overflow carries into Inf; NaN as ml_dtypes.  The select
 * is on the 32-bit words and the shift comes last, for the reason cdrop_narrow_f16 gives. */
static inline uint16_t cdrop_narrow_bf16(float f)
{
    const uint32_t u = cdrop_f32_bits(f);
    const uint32_t nan = (u & 0x80000000u) | 0x7FC00000u;
    const uint32_t r = u + 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(cdrop_sel((int32_t)(u & 0x7FFFFFFFu) > 0x7F800000, nan, r) >> 16);
}

/* *x = +0.0 if lost, else unchanged (a settled tie; see float_scalar.inc.h). */
static inline void cdrop_clear_if_u16(uint16_t *x, int lost) { *x &= (uint16_t)(lost - 1); }

#define CDROP_SFX f16
#include "half_scalar.inc.h"
#undef CDROP_SFX

#define CDROP_SFX bf16
#include "half_scalar.inc.h"
#undef CDROP_SFX

#endif /* CDROP_HALF_SCALAR_H */
