/*
 * consumers_scalar.h -- the scalar halves of the consumers, shared by every instruction set:
 * select-and-scale for float32 and float64 (float_scalar.inc.h, once per dtype), for float16
 * and bfloat16 (half_scalar.h) and the bit writes of packed masks.  Pure C, no Python.
 */
#ifndef CDROP_CONSUMERS_SCALAR_H
#define CDROP_CONSUMERS_SCALAR_H

#include <stdint.h>
#include <string.h>

#define CDROP_CAT3_(a, b, c) a##b##c
#define CDROP_CAT3(a, b, c) CDROP_CAT3_(a, b, c)

#define CDROP_T float
#define CDROP_UT uint32_t
#define CDROP_SFX f32
#include "float_scalar.inc.h"
#undef CDROP_T
#undef CDROP_UT
#undef CDROP_SFX

#define CDROP_T double
#define CDROP_UT uint64_t
#define CDROP_SFX f64
#include "float_scalar.inc.h"
#undef CDROP_T
#undef CDROP_UT
#undef CDROP_SFX

#include "half_scalar.h" /* float16 and bfloat16 */

/* OR the 64 bits v into the bit array at bit position b (bit b % 8 of byte b / 8, NumPy's
 * bitorder="little").  The bytes touched hold bits of [b, b + 64) and at most the rest of the
 * byte they end in, which belongs to the same call: a call's range starts on a byte and ends on
 * one or at the end of the mask, and the array is zero on entry. */
static inline void cdrop_or_bits64(uint8_t *bits, int64_t b, uint64_t v)
{
    uint8_t *p = bits + (b >> 3);
    const int sh = (int)(b & 7);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    w |= v << sh;
    memcpy(p, &w, 8);
#else
    for (int k = 0; k < 8; k++)
        p[k] |= (uint8_t)((v << sh) >> (8 * k));
#endif
    if (sh)
        p[8] |= (uint8_t)(v >> (64 - sh));
}

#endif /* CDROP_CONSUMERS_SCALAR_H */
