/*
 * consumer_float.inc.h -- the select-and-scale consumer of one float dtype, written once and
 * included by each instruction set's file for (CDROP_T, CDROP_SFX) = (float, f32) and
 * (double, f64).  It uses the instruction set's primitives for that dtype:
 *   isa_v_<sfx>      a vector of isa_width_<sfx> elements;
 *   isa_set1_<sfx>, isa_load_<sfx>, isa_store_<sfx>;
 *   isa_keep_mul_<sfx>(m, q, x, sc)  x * sc where the step mask m keeps element
 *                    q * width + lane of the step, +0.0 elsewhere (a selection, not 0 * x).
 * The consumer interface that walk.inc.h calls (op = CDROP_SFX):
 *   cdrop_state_<op>, cdrop_begin_<op>, cdrop_full_<op>, cdrop_end_<op>  a run of whole steps;
 *   cdrop_part_<op>(a, i, keep, n)      elements i .. i + n - 1 with final keep flags;
 *   cdrop_lost_<op>(a, e, lost)         clear element e if lost (a settled tie).
 */
#define CDROP_C(name) CDROP_CAT3(name, _, CDROP_SFX)
#define CDROP_V CDROP_CAT3(isa_v, _, CDROP_SFX)
#define CDROP_W CDROP_CAT3(isa_width, _, CDROP_SFX)

typedef struct {
    const CDROP_T *src;
    CDROP_T *dst;
    CDROP_V sc; /* the scale in a register for the whole run */
} CDROP_C(cdrop_state);

static inline void CDROP_C(cdrop_begin)(CDROP_C(cdrop_state) *st, const cdrop_args *a, int64_t i0)
{
    (void)i0;
    st->src = (const CDROP_T *)a->src;
    st->dst = (CDROP_T *)a->dst;
    st->sc = CDROP_C(isa_set1)((CDROP_T)a->scale);
}

static inline void CDROP_C(cdrop_full)(CDROP_C(cdrop_state) *st, int64_t i, isa_mask m)
{
#pragma GCC unroll 16
    for (int q = 0; q < CDROP_GROUP / CDROP_W; q++) {
        const CDROP_V x = CDROP_C(isa_load)(st->src + i + q * CDROP_W);
        CDROP_C(isa_store)(st->dst + i + q * CDROP_W, CDROP_C(isa_keep_mul)(m, q, x, st->sc));
    }
}

static inline void CDROP_C(cdrop_end)(CDROP_C(cdrop_state) *st, int64_t i) { (void)st, (void)i; }

static inline void CDROP_C(cdrop_part)(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    const CDROP_T *s = (const CDROP_T *)a->src + i;
    CDROP_T *d = (CDROP_T *)a->dst + i;
    CDROP_C(cdrop_run)((const char *)s, sizeof *s, (char *)d, sizeof *d, keep, 1, n,
                       (CDROP_T)a->scale);
}

static inline void CDROP_C(cdrop_lost)(const cdrop_args *a, int64_t e, int lost)
{
    CDROP_C(cdrop_clear_if)((CDROP_T *)a->dst + e, lost);
}

#undef CDROP_C
#undef CDROP_V
#undef CDROP_W
