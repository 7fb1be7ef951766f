/*
 * variant_runs.inc.h -- every variant run function (variant.h) for the instruction set of the
 * file that includes it, and its table CDROP_ISA_VRUNS[op][dtype].  The element formulas are
 * here, once; variant_run.inc.h is the loop around them.
 */
#include <string.h>

#include "consumers_scalar.h"
#include "variant.h"

/* keep ? a : b as bit operations (half_scalar.h's cdrop_sel says why not ?:), for float and
 * double; any non-zero keep byte counts as 1. */
static inline float cdrop_vsel_f(unsigned k, float a, float b)
{
    const uint32_t m = 0u - (uint32_t)(k != 0);
    return cdrop_bits_f32((cdrop_f32_bits(a) & m) | (cdrop_f32_bits(b) & ~m));
}

static inline double cdrop_vsel_d(unsigned k, double a, double b)
{
    const uint64_t m = 0u - (uint64_t)(k != 0);
    uint64_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & m) | (ub & ~m);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* The operations of variant.h.  R(v) rounds to the dtype (identity except for half, whose ADD
 * rounds each step); SEL selects by the keep byte. */
#define CDROP_E_DROP(x, r, b, k) SEL(k, (x) * C0, Z0)
#define CDROP_E_ALPHA(x, r, b, k) SEL(k, (x) * C0 + C1, C2)
#define CDROP_E_ADD(x, r, b, k) ((r) + SEL(k, R(R((x) + (b)) * C0), Z0))
#define CDROP_E_ADD_NB(x, r, b, k) ((r) + SEL(k, R((x) * C0), Z0))
#define CDROP_E_GMUL(x, r, b, z) ((x) * ((W)1 + C0 * (W)(z)))
#define CDROP_E_GADD(x, r, b, z) ((x) + C0 * (W)(z))

/* float32 */
#define T float
#define W float
#define SEL cdrop_vsel_f
#define R(v) (v)
#define CDROP_VLOAD(p) (*(p))
#define CDROP_VSTORE(p, v) (*(p) = (v))
#define CDROP_VSFX f32
#define CDROP_VCOPY 1
#include "variant_dtype.inc.h"
#undef T
#undef W
#undef SEL
#undef R
#undef CDROP_VLOAD
#undef CDROP_VSTORE
#undef CDROP_VSFX
#undef CDROP_VCOPY

/* float64 (normals are float32, widened exactly) */
#define T double
#define W double
#define SEL cdrop_vsel_d
#define R(v) (v)
#define CDROP_VLOAD(p) (*(p))
#define CDROP_VSTORE(p, v) (*(p) = (v))
#define CDROP_VSFX f64
#define CDROP_VCOPY 1
#include "variant_dtype.inc.h"
#undef T
#undef W
#undef SEL
#undef R
#undef CDROP_VLOAD
#undef CDROP_VSTORE
#undef CDROP_VSFX
#undef CDROP_VCOPY

/* float16 and bfloat16: widened exactly to float32, the formula in float32, the result rounded
 * once (half_scalar.h's conversions), except ADD, which rounds every step (R). */
#define T uint16_t
#define W float
#define SEL cdrop_vsel_f
#define R(v) cdrop_widen_f16(cdrop_narrow_f16(v))
#define CDROP_VLOAD(p) cdrop_widen_f16(*(p))
#define CDROP_VSTORE(p, v) (*(p) = cdrop_narrow_f16(v))
#define CDROP_VSFX f16
#define CDROP_VCOPY 0
#include "variant_dtype.inc.h"
#undef R
#undef CDROP_VLOAD
#undef CDROP_VSTORE
#undef CDROP_VSFX
#undef CDROP_VCOPY
#define R(v) cdrop_widen_bf16(cdrop_narrow_bf16(v))
#define CDROP_VLOAD(p) cdrop_widen_bf16(*(p))
#define CDROP_VSTORE(p, v) (*(p) = cdrop_narrow_bf16(v))
#define CDROP_VSFX bf16
#define CDROP_VCOPY 0
#include "variant_dtype.inc.h"
#undef T
#undef W
#undef SEL
#undef R
#undef CDROP_VLOAD
#undef CDROP_VSTORE
#undef CDROP_VSFX
#undef CDROP_VCOPY

#define CDROP_VROW(op)                                                                             \
    {CDROP_CAT3(cdrop_vrun_, op, _f32), CDROP_CAT3(cdrop_vrun_, op, _f64),                         \
     CDROP_CAT3(cdrop_vrun_, op, _f16), CDROP_CAT3(cdrop_vrun_, op, _bf16)}
const cdrop_vrun_fn CDROP_ISA_VRUNS[CDROP_N_VOPS][CDROP_N_DT] = {
    CDROP_VROW(drop), CDROP_VROW(alpha), CDROP_VROW(add),
    CDROP_VROW(gmul), CDROP_VROW(gadd),  CDROP_VROW(add_nb),
};
#undef CDROP_VROW
#undef CDROP_E_DROP
#undef CDROP_E_ALPHA
#undef CDROP_E_ADD
#undef CDROP_E_ADD_NB
#undef CDROP_E_GMUL
#undef CDROP_E_GADD
