/*
 * half_scalar.h -- float16 and bfloat16 in plain C integer code: the conversions to and from
 * float32 and the scalar select-and-scale of the half dtypes (half_scalar.inc.h, once per
 * dtype).  The rule (docs/rng.md, "Half precision"): a kept element is
 * narrow(widen(x) * scale32), the product in float32 and the store rounded to nearest even,
 * which is what NumPy's and ml_dtypes' astype conversions do, bit for bit:
 *   float16:  NaN keeps the top 10 payload bits (NumPy's npy_floatbits_to_halfbits; a product
 *             is always a quiet NaN, so this is also what F16C's vcvtps2ph gives);
 *   bfloat16: NaN becomes 0x7FC0 with its sign (ml_dtypes canonicalises NaN).
 * Integer code only (no float rounding mode or FTZ/DAZ flag matters), so that the portable path
 * (aarch64, MSVC) gives the bits of the SIMD paths.  Included by consumers_scalar.h.
 */
#ifndef CDROP_HALF_SCALAR_H
#define CDROP_HALF_SCALAR_H

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

/* float16 -> float32, exact.  Normal numbers, Inf and NaN (payload kept) rebias the exponent;
 * zeros and subnormals are m * 2^-24, exact in float32 (m < 1024, the result a normal float). */
static inline float cdrop_widen_f16(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t a = h & 0x7FFFu;
    uint32_t u = (a << 13) + ((uint32_t)(127 - 15) << 23);
    if (a >= 0x7C00u) /* Inf, NaN: exponent 31 -> 255 */
        u += (uint32_t)(128 - 16) << 23;
    if (a < 0x0400u) /* 2^-24 exactly */
        u = cdrop_f32_bits((float)a * 5.9604644775390625e-08f);
    return cdrop_bits_f32(u | sign);
}

/* float32 -> float16, rounding to nearest even, with overflow to Inf and subnormal results. */
static inline uint16_t cdrop_narrow_f16(float f)
{
    const uint32_t u = cdrop_f32_bits(f);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7FFFFFFFu;
    uint32_t h;
    if (a > 0x7F800000u) { /* NaN: the top payload bits, and never the bits of Inf */
        h = 0x7C00u | ((a >> 13) & 0x3FFu);
        h += h == 0x7C00u;
    } else if (a >= 0x47800000u) { /* |f| >= 2^16, Inf included: Inf */
        h = 0x7C00u;
    } else if (a >= 0x38800000u) { /* |f| >= 2^-14: normal (a carry may round it up to Inf) */
        h = (a - ((uint32_t)(127 - 15) << 23) + 0xFFFu + ((a >> 13) & 1u)) >> 13;
    } else { /* subnormal or zero: the significand shifted to units of 2^-24, rounded */
        const uint32_t e = a >> 23;
        const uint32_t m = (a & 0x7FFFFFu) | (e ? 0x800000u : 0u);
        const uint32_t sh0 = 126u - (e ? e : 1u);  /* >= 14 */
        const uint32_t sh = sh0 < 31u ? sh0 : 31u; /* m < 2^24: any shift >= 25 gives 0 */
        const uint32_t rem = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
        h = m >> sh;
        h += rem > half || (rem == half && (h & 1u)); /* 0x3FF + 1: the smallest normal */
    }
    return (uint16_t)(sign | h);
}

/* bfloat16 -> float32: the high half of the bits, exact. */
static inline float cdrop_widen_bf16(uint16_t h) { return cdrop_bits_f32((uint32_t)h << 16); }

/* float32 -> bfloat16, rounding to nearest even: add half an ulp of the result (minus one when
 * the kept part is even), truncate.  Overflow carries into Inf; NaN as ml_dtypes. */
static inline uint16_t cdrop_narrow_bf16(float f)
{
    const uint32_t u = cdrop_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u)
        return (uint16_t)(((u >> 16) & 0x8000u) | 0x7FC0u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
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
