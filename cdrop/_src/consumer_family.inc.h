/*
 * consumer_family.inc.h -- the fused consumers of the dropout family (variant.h) for contiguous
 * float32/float64 arrays, written once and included by each instruction set's file for
 * (CDROP_T, CDROP_SFX) = (float, f32) and (double, f64), like consumer_float.inc.h.  Fused into
 * the mask producer's loop (walk.inc.h), they make one pass with no keep bytes stored, which the
 * generic walk (walk_variant.c) cannot: it writes a piece's keep bytes to scratch and reads them
 * back, 1.3-1.5x the memory floor where these are 1.0-1.2x.
 *   alpha_<sfx>  y = keep ? x * A + B : C2            (A = scale, B = c1, C2 = c2 of cdrop_args)
 *   add_<sfx>    y = r + (keep ? (x + b) * S : +0.0)  (r = res, b = bias[i % bias_n])
 *   addf_<sfx>   add with final masks (CDROP_OP_FINAL): for y == r, where a lost tie could not
 *                be cleared afterwards (r is gone)
 * Extra primitives of the instruction set: isa_add_<sfx>(a, b) and isa_keep_sel_<sfx>(m, q, a,
 * b) (a where the step mask keeps, b elsewhere); for addf, isa_mask_settle.
 */
#define CDROP_A(name) CDROP_CAT3(name, _alpha_, CDROP_SFX)
#define CDROP_D(name) CDROP_CAT3(name, _add_, CDROP_SFX)
#define CDROP_F(name) CDROP_CAT3(name, _addf_, CDROP_SFX)
#define CDROP_V CDROP_CAT3(isa_v, _, CDROP_SFX)
#define CDROP_W CDROP_CAT3(isa_width, _, CDROP_SFX)
#define CDROP_I(name) CDROP_CAT3(isa_##name, _, CDROP_SFX)

/* ---- alpha ---------------------------------------------------------------------------- */
typedef struct {
    const CDROP_T *src;
    CDROP_T *dst;
    CDROP_V a, b, c2;
} CDROP_A(cdrop_state);

static inline void CDROP_A(cdrop_begin)(CDROP_A(cdrop_state) * st, const cdrop_args *a, int64_t i0)
{
    (void)i0;
    st->src = (const CDROP_T *)a->src;
    st->dst = (CDROP_T *)a->dst;
    st->a = CDROP_I(set1)((CDROP_T)a->scale);
    st->b = CDROP_I(set1)((CDROP_T)a->c1);
    st->c2 = CDROP_I(set1)((CDROP_T)a->c2);
}

/* keep_mul gives x * A or +0.0; adding B and selecting C2 where dropped is x * A + B or C2,
 * the two roundings of the scalar formula. */
static inline void CDROP_A(cdrop_full)(CDROP_A(cdrop_state) * st, int64_t i, isa_mask m)
{
#pragma GCC unroll 16
    for (int q = 0; q < CDROP_GROUP / CDROP_W; q++) {
        const CDROP_V x = CDROP_I(load)(st->src + i + q * CDROP_W);
        const CDROP_V v = CDROP_I(add)(CDROP_I(keep_mul)(m, q, x, st->a), st->b);
        CDROP_I(store)(st->dst + i + q * CDROP_W, CDROP_I(keep_sel)(m, q, v, st->c2));
    }
}

static inline void CDROP_A(cdrop_end)(CDROP_A(cdrop_state) * st, int64_t i) { (void)st, (void)i; }

static inline void CDROP_A(cdrop_part)(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    const CDROP_T *s = (const CDROP_T *)a->src + i;
    CDROP_T *d = (CDROP_T *)a->dst + i;
    const CDROP_T A = (CDROP_T)a->scale, B = (CDROP_T)a->c1, C2 = (CDROP_T)a->c2;
    for (int k = 0; k < n; k++) {
        const CDROP_T v = s[k] * A + B;
        d[k] = keep[k] ? v : C2;
    }
}

static inline void CDROP_A(cdrop_lost)(const cdrop_args *a, int64_t e, int lost)
{
    CDROP_T *d = (CDROP_T *)a->dst + e;
    if (lost)
        *d = (CDROP_T)a->c2;
}

/* ---- add ------------------------------------------------------------------------------ */
typedef struct {
    const CDROP_T *src, *res, *bias;
    CDROP_T *dst;
    int64_t n, j; /* the bias row's length and the bias index of the next step's element 0 */
    CDROP_V sc;
    CDROP_T wrap[CDROP_GROUP]; /* the bias of a step that crosses the end of a row */
} CDROP_D(cdrop_state);

static inline void CDROP_D(cdrop_begin)(CDROP_D(cdrop_state) * st, const cdrop_args *a, int64_t i0)
{
    st->src = (const CDROP_T *)a->src;
    st->res = (const CDROP_T *)a->res;
    st->bias = (const CDROP_T *)a->bias;
    st->dst = (CDROP_T *)a->dst;
    st->n = a->bias_n;
    st->j = i0 % a->bias_n;
    st->sc = CDROP_I(set1)((CDROP_T)a->scale);
}

/* The bias of the step's 64 elements, contiguous: the row itself, or a copy across its end. */
static inline const CDROP_T *CDROP_D(cdrop_bias64)(CDROP_D(cdrop_state) * st)
{
    const CDROP_T *bp = st->bias + st->j;
    if (st->j + CDROP_GROUP > st->n) {
        int64_t j = st->j;
        for (int e = 0; e < CDROP_GROUP; e++) {
            st->wrap[e] = st->bias[j];
            j = j + 1 == st->n ? 0 : j + 1;
        }
        bp = st->wrap;
    }
    st->j += CDROP_GROUP;
    while (st->j >= st->n)
        st->j -= st->n;
    return bp;
}

/* t = x + b, d = keep_mul(t, S) (t * S or +0.0), y = r + d: the rounding steps of
 * residual + dropout(x + bias). */
static inline void CDROP_D(cdrop_full)(CDROP_D(cdrop_state) * st, int64_t i, isa_mask m)
{
    const CDROP_T *bp = CDROP_D(cdrop_bias64)(st);
#pragma GCC unroll 16
    for (int q = 0; q < CDROP_GROUP / CDROP_W; q++) {
        const CDROP_V t =
            CDROP_I(add)(CDROP_I(load)(st->src + i + q * CDROP_W), CDROP_I(load)(bp + q * CDROP_W));
        const CDROP_V d = CDROP_I(keep_mul)(m, q, t, st->sc);
        CDROP_I(store)(st->dst + i + q * CDROP_W,
                       CDROP_I(add)(CDROP_I(load)(st->res + i + q * CDROP_W), d));
    }
}

static inline void CDROP_D(cdrop_end)(CDROP_D(cdrop_state) * st, int64_t i) { (void)st, (void)i; }

static inline void CDROP_D(cdrop_part)(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    const CDROP_T *s = (const CDROP_T *)a->src, *r = (const CDROP_T *)a->res;
    const CDROP_T *b = (const CDROP_T *)a->bias;
    CDROP_T *d = (CDROP_T *)a->dst;
    const CDROP_T S = (CDROP_T)a->scale;
    for (int k = 0; k < n; k++) {
        const CDROP_T t = s[i + k] + b[(i + k) % a->bias_n];
        const CDROP_T dv = keep[k] ? t * S : (CDROP_T)0;
        d[i + k] = r[i + k] + dv;
    }
}

/* A lost tie was written as kept: y = r + 0.0 (r + +0.0, which turns -0.0 into +0.0, as the
 * unfused sum does).  Not for y == r (addf). */
static inline void CDROP_D(cdrop_lost)(const cdrop_args *a, int64_t e, int lost)
{
    if (lost)
        ((CDROP_T *)a->dst)[e] = ((const CDROP_T *)a->res)[e] + (CDROP_T)0;
}

/* ---- addf: add with final masks ------------------------------------------------------- */
typedef CDROP_D(cdrop_state) CDROP_F(cdrop_state);
static inline void CDROP_F(cdrop_begin)(CDROP_F(cdrop_state) * st, const cdrop_args *a, int64_t i0)
{
    CDROP_D(cdrop_begin)(st, a, i0);
}
static inline void CDROP_F(cdrop_full)(CDROP_F(cdrop_state) * st, int64_t i, isa_mask m)
{
    CDROP_D(cdrop_full)(st, i, m);
}
static inline void CDROP_F(cdrop_end)(CDROP_F(cdrop_state) * st, int64_t i) { (void)st, (void)i; }
static inline void CDROP_F(cdrop_part)(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    CDROP_D(cdrop_part)(a, i, keep, n);
}
static inline void CDROP_F(cdrop_lost)(const cdrop_args *a, int64_t e, int lost)
{
    (void)a, (void)e, (void)lost; /* final masks: no tie is ever settled afterwards */
}

#undef CDROP_A
#undef CDROP_D
#undef CDROP_F
#undef CDROP_V
#undef CDROP_W
#undef CDROP_I
