/*
 * consumer_stream.inc.h -- select-and-scale with non-temporal stores, for outputs too big for the
 * cache (AVX-512 and AVX2: the files that define CDROP_ISA_STREAMS; included by ops.inc.h for
 * (CDROP_T, CDROP_SFX) = (float, f32) and (double, f64); the operations are f32nt and f64nt,
 * instantiated with CDROP_OP_FINAL).
 *
 * Why: an ordinary store to a line that is not in cache first reads the line from memory (a
 * "read for ownership"), so an out-of-place call on arrays larger than the cache moves three
 * bytes of DRAM traffic per output byte instead of two.  Non-temporal stores (vmovntps) write
 * whole lines without reading them: measured on Zen 4, float32 out of place, 0.31 -> 0.22
 * ns/element at 4M elements and 0.37 -> 0.26 at 16M; below about 1M elements they were slower
 * (0.11 -> 0.16 ns at 512K), so cdrop/_kernels.pyx uses them only from a size threshold.
 * The price is that the output is not left in cache for its next reader (glibc's memcpy makes
 * the same trade above a fraction of the L3).  Two consequences:
 *   - the masks must be final (CDROP_OP_FINAL): a lost tie cannot be cleared afterwards, which
 *     would read back a line just sent to memory;
 *   - non-temporal stores need addresses aligned to the vector size (64 bytes on AVX-512, 32 on
 *     AVX2) and NumPy aligns to 16 bytes, so a destination that starts m elements past such a
 *     boundary is written through a carry: each aligned vector is the last m elements of the
 *     previous result and the first ones of the current result, and the first and last partial
 *     vectors are masked ordinary stores.
 * Primitives used besides those of consumer_float.inc.h: isa_stream_<sfx> (aligned non-temporal
 * store), isa_mstore_<sfx>(p, k, x) (store the lanes whose bit is set in k),
 * isa_carry_idx_<sfx>(m) (whatever isa_carry needs for a given m, of any type) and
 * isa_carry_<sfx>(prev, idx, cur) (lanes W - m .. W - 1 of prev, then lanes 0 .. W - m - 1 of cur).
 */
#define CDROP_C(name) CDROP_CAT3(name, _, CDROP_SFX)
#define CDROP_N(name) CDROP_CAT3(name, _, CDROP_CAT3(CDROP_SFX, n, t))
#define CDROP_V CDROP_CAT3(isa_v, _, CDROP_SFX)
#define CDROP_W CDROP_CAT3(isa_width, _, CDROP_SFX)

typedef struct {
    const CDROP_T *src;
    CDROP_T *dst;
    CDROP_V sc;
    CDROP_V carry;                             /* the previous result vector */
    __typeof__(CDROP_C(isa_carry_idx)(0)) idx; /* isa_carry_idx(m) */
    uint32_t head; /* lanes 0 .. W - m - 1: the first, partial, vector */
    int m;         /* the destination's elements past a vector-size boundary, 0 .. W - 1 */
    int started;   /* a vector has been stored in this run */
} CDROP_N(cdrop_state);

static inline void CDROP_N(cdrop_begin)(CDROP_N(cdrop_state) *st, const cdrop_args *a, int64_t i0)
{
    st->src = (const CDROP_T *)a->src;
    st->dst = (CDROP_T *)a->dst;
    st->sc = CDROP_C(isa_set1)((CDROP_T)a->scale);
    st->m = (int)(((uintptr_t)(st->dst + i0) & (sizeof(CDROP_V) - 1)) / sizeof(CDROP_T));
    st->idx = CDROP_C(isa_carry_idx)(st->m);
    st->head = (1u << (CDROP_W - st->m)) - 1u;
    st->carry = CDROP_C(isa_set1)(0);
    st->started = 0;
}

static inline void CDROP_N(cdrop_full)(CDROP_N(cdrop_state) *st, int64_t i, isa_mask m)
{
#pragma GCC unroll 16
    for (int q = 0; q < CDROP_GROUP / CDROP_W; q++) {
        const CDROP_V x = CDROP_C(isa_load)(st->src + i + q * CDROP_W);
        const CDROP_V r = CDROP_C(isa_keep_mul)(m, q, x, st->sc);
        if (st->m == 0)
            CDROP_C(isa_stream)(st->dst + i + q * CDROP_W, r);
        else if (!st->started)
            CDROP_C(isa_mstore)(st->dst + i, st->head, r);
        else
            CDROP_C(isa_stream)(st->dst + i + q * CDROP_W - st->m,
                                CDROP_C(isa_carry)(st->carry, st->idx, r));
        st->carry = r;
        st->started = 1;
    }
}

static inline void CDROP_N(cdrop_end)(CDROP_N(cdrop_state) *st, int64_t i)
{
    if (st->m != 0 && st->started)
        CDROP_C(isa_mstore)(st->dst + i - CDROP_W, ~st->head, st->carry);
    _mm_sfence(); /* order the weakly ordered stores before anyone reads the output */
}

static inline void CDROP_N(cdrop_part)(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    CDROP_C(cdrop_part)(a, i, keep, n);
}

static inline void CDROP_N(cdrop_lost)(const cdrop_args *a, int64_t e, int lost)
{
    CDROP_C(cdrop_lost)(a, e, lost);
}

#undef CDROP_C
#undef CDROP_N
#undef CDROP_V
#undef CDROP_W
