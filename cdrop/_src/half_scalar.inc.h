/*
 * half_scalar.inc.h -- scalar select-and-scale for one half dtype, included by half_scalar.h
 * for CDROP_SFX = f16 and bf16 (after cdrop_widen_<sfx> and cdrop_narrow_<sfx>).  Defines
 * cdrop_select_<sfx> and cdrop_run_<sfx>, the counterparts of float_scalar.inc.h's.
 */
#define CDROP_F(name) CDROP_CAT3(cdrop_, name, CDROP_SFX)

/* keep ? narrow(widen(x) * scale) : +0.0, without a branch on keep (float_scalar.inc.h). */
static inline uint16_t CDROP_F(select_)(uint16_t x, float scale, uint8_t keep)
{
    const uint16_t y = CDROP_F(narrow_)(CDROP_F(widen_)(x) * scale);
    return (uint16_t)(y & (uint16_t)(0u - (unsigned)keep));
}

/* n elements with byte strides is/id (any sign) from ps to pd; element r's keep flag is
 * keep[r * ks]. */
static inline void CDROP_F(run_)(const char *ps, int64_t is, char *pd, int64_t id,
                                 const uint8_t *keep, int64_t ks, int64_t n, float scale)
{
    for (int64_t r = 0; r < n; r++) {
        uint16_t x;
        memcpy(&x, ps + r * is, sizeof x);
        x = CDROP_F(select_)(x, scale, keep[r * ks]);
        memcpy(pd + r * id, &x, sizeof x);
    }
}

#undef CDROP_F
