/*
 * consumer_half.inc.h -- the select-and-scale consumer of a half dtype (CDROP_SFX = f16 or
 * bf16, 2-byte items), included by each instruction set's file.  Half values are widened to
 * float32 vectors, go through the float32 primitive isa_keep_mul_f32 (so the mask and the
 * product are float32's), and are narrowed back, rounding to nearest even (half_scalar.h states
 * the rule).  The instruction set's primitives for the dtype:
 *   isa_load_<sfx>(p)      isa_width_f32 halves at p as an isa_v_f32;
 *   isa_store_<sfx>(p, x)  x narrowed to isa_width_f32 halves at p.
 * The consumer interface is the one of consumer_float.inc.h (walk.inc.h calls it).
 */
#define CDROP_H(name) CDROP_CAT3(name, _, CDROP_SFX)

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
#pragma GCC unroll 16
    for (int q = 0; q < CDROP_GROUP / isa_width_f32; q++) {
        const isa_v_f32 x = CDROP_H(isa_load)(st->src + i + q * isa_width_f32);
        CDROP_H(isa_store)(st->dst + i + q * isa_width_f32, isa_keep_mul_f32(m, q, x, st->sc));
    }
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
