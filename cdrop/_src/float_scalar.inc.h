/*
 * float_scalar.inc.h -- scalar select-and-scale for one float dtype, written once and included
 * by consumers_scalar.h for each (CDROP_T, CDROP_UT, CDROP_SFX): float/uint32_t/f32 and
 * double/uint64_t/f64.  Defines cdrop_select_<sfx>, cdrop_clear_if_<sfx> and cdrop_run_<sfx>.
 */
#define CDROP_F(name) CDROP_CAT3(cdrop_, name, CDROP_SFX)

/* keep ? x * scale : +0.0, as bit operations: a branch on the keep flag mispredicts half the
 * time at p = 0.5 (measured 4 ns instead of 0.5 ns per element), and a select keeps the loop
 * vectorisable.  A dropped NaN or Inf becomes +0.0 too (never 0 * x). */
static inline CDROP_T CDROP_F(select_)(CDROP_T x, CDROP_T scale, uint8_t keep)
{
    const CDROP_T y = x * scale;
    CDROP_UT b;
    memcpy(&b, &y, sizeof b);
    b &= (CDROP_UT)0 - (CDROP_UT)keep;
    CDROP_T r;
    memcpy(&r, &b, sizeof r);
    return r;
}

/* *x = +0.0 if lost, else unchanged; bit operations instead of a branch (half of the ties are
 * lost, at random). */
static inline void CDROP_F(clear_if_)(CDROP_T *x, int lost)
{
    CDROP_UT b;
    memcpy(&b, x, sizeof b);
    b &= (CDROP_UT)lost - 1u;
    memcpy(x, &b, sizeof b);
}

/* n elements with byte strides is/id (any sign) from ps to pd; element r's keep flag is
 * keep[r * ks]. */
static inline void CDROP_F(run_)(const char *ps, int64_t is, char *pd, int64_t id,
                                 const uint8_t *keep, int64_t ks, int64_t n, CDROP_T scale)
{
    for (int64_t r = 0; r < n; r++) {
        CDROP_T x;
        memcpy(&x, ps + r * is, sizeof x);
        x = CDROP_F(select_)(x, scale, keep[r * ks]);
        memcpy(pd + r * id, &x, sizeof x);
    }
}

#undef CDROP_F
