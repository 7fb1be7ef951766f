/*
 * consumer_mask.inc.h -- the keep-mask consumers, written once and included by each instruction
 * set's file: u8 (one byte 0/1 per element, NumPy's bool) and bits (packed, NumPy's
 * bitorder="little"; the array is zero on entry).  They use two primitives of the instruction
 * set: isa_store_keep_u8(dst, m), the 64 flags of step mask m as bytes, and isa_keep_bits(m),
 * the same as a 64-bit word (element k on bit k).  Interface as in consumer_float.inc.h.
 */

typedef struct {
    uint8_t *dst;
} cdrop_state_u8;

static inline void cdrop_begin_u8(cdrop_state_u8 *st, const cdrop_args *a, int64_t i0)
{
    (void)i0;
    st->dst = (uint8_t *)a->dst;
}

static inline void cdrop_full_u8(cdrop_state_u8 *st, int64_t i, isa_mask m)
{
    isa_store_keep_u8(st->dst + i, m);
}

static inline void cdrop_end_u8(cdrop_state_u8 *st, int64_t i) { (void)st, (void)i; }

static inline void cdrop_part_u8(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    memcpy((uint8_t *)a->dst + i, keep, (size_t)n);
}

static inline void cdrop_lost_u8(const cdrop_args *a, int64_t e, int lost)
{
    ((uint8_t *)a->dst)[e] &= (uint8_t)(lost - 1);
}

typedef cdrop_state_u8 cdrop_state_bits;

static inline void cdrop_begin_bits(cdrop_state_bits *st, const cdrop_args *a, int64_t i0)
{
    cdrop_begin_u8(st, a, i0);
}

/* One bit per element straight from the step mask: no byte mask is stored. */
static inline void cdrop_full_bits(cdrop_state_bits *st, int64_t i, isa_mask m)
{
    cdrop_or_bits64(st->dst, i, isa_keep_bits(m));
}

static inline void cdrop_end_bits(cdrop_state_bits *st, int64_t i) { (void)st, (void)i; }

static inline void cdrop_part_bits(const cdrop_args *a, int64_t i, const uint8_t *keep, int n)
{
    uint8_t *bits = (uint8_t *)a->dst;
    for (int k = 0; k < n; k++)
        bits[(i + k) >> 3] |= (uint8_t)(keep[k] << ((i + k) & 7));
}

static inline void cdrop_lost_bits(const cdrop_args *a, int64_t e, int lost)
{
    ((uint8_t *)a->dst)[e >> 3] &= (uint8_t)~(lost << (e & 7));
}
