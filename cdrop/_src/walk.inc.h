/*
 * walk.inc.h -- the kernel of one operation on one instruction set: walks [lo, hi) block by
 * block, runs the producer's whole steps with the consumer inlined, and settles ties.  Included
 * by each isa_*.c once per operation, after
 *   #define CDROP_OP <op>          the consumer's suffix (f32, f64, u8, bits, f32nt, ...)
 *   #define CDROP_OP_FINAL 1       (optional) the consumer needs final masks: ties are settled
 *                                  in the loop before it sees them (isa_mask_and must exist)
 *   #define CDROP_RESUME_FN <name> (optional) also define the resumable kernel <name>, a
 *                                  cdrop_resume_fn (kernels.h), under that external name
 * It defines the static function cdrop_kernel_<op>, a cdrop_kernel_fn.  Both are one block loop,
 * cdrop_walk_<op>, with and without a cursor.
 *
 * The producer primitives of the instruction set:
 *   isa_lanes                      the 16 lanes' state in registers;
 *   isa_seek(&v, key, g)           seed g's block, skip to g's step; returns g's place in it;
 *   isa_step_out(&v, out)          one step into out[16] (partial steps);
 *   isa_top, isa_top_of(thr)       the threshold's top byte, broadcast;
 *   isa_next(&v, top, exact, &tw)  one step's mask: kept (exact) or kept-or-tie, and the ties in
 *                                  tw (only when !exact; a constant after inlining);
 *   CDROP_ISA_EXACT(thr)           (optional) whether thr takes the exact loop: by default when
 *                                  its low 24 bits are 0; an instruction set may send some of
 *                                  those to the loop with ties, which is exact for every thr.
 *   isa_cursor_bytes               (optional) the bytes of isa_lanes that hold the lanes' state,
 *                                  if not all of it (the scalar path's keep scratch)
 */
#ifndef CDROP_OP_FINAL
#define CDROP_OP_FINAL 0
#endif
#ifndef CDROP_ISA_EXACT /* the threshold takes the loop without ties (see cdrop_loop) */
#define CDROP_ISA_EXACT(thr) (((thr) & 0xFFFFFFu) == 0)
#endif
#ifndef CDROP_WALK_ONCE /* the cursor's helpers, once per instruction set */
#define CDROP_WALK_ONCE
#ifndef isa_cursor_bytes
#define isa_cursor_bytes sizeof(isa_lanes)
#endif
_Static_assert(isa_cursor_bytes <= CDROP_CURSOR_BYTES, "the lanes fit a cursor");

/* Save the lanes v, positioned at global step index `step`, as the cursor (lanes, *next). */
static CDROP_ALWAYS_INLINE uint64_t cdrop_cursor_save(uint8_t *lanes, uint64_t *next,
                                                      const isa_lanes *v, uint64_t step)
{
    memcpy(lanes, v, isa_cursor_bytes);
    *next = step;
    return step;
}

/* Whether the cursor positioned at step `next` can make global element g: it is at g's step, or
 * behind it in its block (a caller may start a range from a cursor left earlier in the block,
 * which skips fewer steps than a seek from the block's start). */
static CDROP_ALWAYS_INLINE int cdrop_cursor_reaches(uint64_t next, uint64_t g)
{
    return next != CDROP_NO_STEP && next <= (g & ~(uint64_t)(CDROP_GROUP - 1)) &&
           next >> CDROP_BLOCK_BITS == g >> CDROP_BLOCK_BITS;
}

/* The lanes from the cursor, moved on to g's step; returns g's place in its step. */
static inline int cdrop_cursor_load(isa_lanes *v, const uint8_t *lanes, uint64_t next, uint64_t g)
{
    uint32_t out[CDROP_LANES];
    memcpy(v, lanes, isa_cursor_bytes);
    for (uint64_t q = next; q < (g & ~(uint64_t)(CDROP_GROUP - 1)); q += CDROP_GROUP)
        isa_step_out(v, out);
    return (int)(g % CDROP_GROUP);
}
#endif

#define CDROP_K(name) CDROP_CAT3(name, _, CDROP_OP)

/* Settle record k of `t` (a block whose first whole step is local index `base`): each tie
 * whose hash bits drop it is cleared by the consumer, without a branch on the outcome.  Most
 * records hold one tie, so the do-while's back edge is rarely taken and predicts well. */
static inline void CDROP_K(cdrop_settle)(const cdrop_args *a, const cdrop_ties *t, int k,
                                         int64_t base)
{
    const int64_t first = base + CDROP_GROUP * (int64_t)t->idx[k];
    uint64_t m = t->tw[t->idx[k]];
    do {
        const int64_t e = first + cdrop_ctz64(m);
        const int lost = cdrop_tie24(a->key, a->g0 + (uint64_t)e) >= (a->thr & 0xFFFFFFu);
        CDROP_K(cdrop_lost)(a, e, lost);
        m &= m - 1;
    } while (m);
}

/* Whole steps [i0, i0 + 64 * nsteps) of one block.  Records this block's ties in `ties` and
 * returns their number; meanwhile settles the previous block's records (prev, nprev, first whole
 * step at prev_base), one per step: settling them in a pass of their own left the memory system
 * idle for its duration (0.18 instead of 0.15 ns/element at DRAM sizes).  EXACT (a constant in
 * each copy) is 1 when the threshold's low 24 bits are 0 (p a multiple of 1/256: 0.5, 0.25,
 * ...): then no tie's hash bits can be below them, every tie drops, the strict byte comparison
 * is the whole keep test and nothing is recorded.  The same stream, not an approximation. */
static CDROP_ALWAYS_INLINE int CDROP_K(cdrop_loop)(isa_lanes *vp, const cdrop_args *a, int64_t i0,
                                                   int64_t nsteps, cdrop_ties *ties,
                                                   const cdrop_ties *prev, int nprev,
                                                   int64_t prev_base, const int exact)
{
    CDROP_K(cdrop_state) st;
    (void)ties;        /* CDROP_OP_FINAL: ties are settled in the loop, nothing is recorded */
    isa_lanes v = *vp; /* a local copy, so that the lanes live in registers */
    const isa_top top = isa_top_of(a->thr);
    int64_t i = i0;
    int nrec = 0, p = 0;
    CDROP_K(cdrop_begin)(&st, a, i0);
    for (int64_t s = 0; s < nsteps; s++, i += CDROP_GROUP) {
        uint64_t tw = 0;
        isa_mask m = isa_next(&v, top, exact, &tw);
#if CDROP_OP_FINAL
        if (!exact && tw)
            m = isa_mask_settle(m, tw, a->key, a->g0 + (uint64_t)i, a->thr);
        CDROP_K(cdrop_full)(&st, i, m);
#else
        CDROP_K(cdrop_full)(&st, i, m);
        if (!exact) {
            ties->tw[s] = tw;
            ties->idx[nrec] = (uint16_t)s;
            nrec += tw != 0;
            if (p < nprev) { /* taken for the first steps only: predictable */
                CDROP_K(cdrop_settle)(a, prev, p, prev_base);
                p++;
            }
        }
#endif
    }
    for (; p < nprev; p++)
        CDROP_K(cdrop_settle)(a, prev, p, prev_base);
    CDROP_K(cdrop_end)(&st, i);
    *vp = v;
    return nrec;
}

/* The loop in a function of its own: sharing one with the partial-step code made GCC keep part
 * of the lane state in memory. */
static CDROP_NOINLINE int CDROP_K(cdrop_steps)(isa_lanes *v, const cdrop_args *a, int64_t i0,
                                               int64_t nsteps, cdrop_ties *ties,
                                               const cdrop_ties *prev, int nprev, int64_t prev_base)
{
    if (CDROP_ISA_EXACT(a->thr))
        return CDROP_K(cdrop_loop)(v, a, i0, nsteps, ties, prev, nprev, prev_base, 1);
    return CDROP_K(cdrop_loop)(v, a, i0, nsteps, ties, prev, nprev, prev_base, 0);
}

/* A partial step (head or tail of a block): final keep flags from the scalar code. */
static inline void CDROP_K(cdrop_partial)(isa_lanes *v, const cdrop_args *a, int64_t i, int k0,
                                          int k1)
{
    uint32_t out[CDROP_LANES];
    uint8_t keep[CDROP_GROUP];
    isa_step_out(v, out);
    cdrop_step_keeps(keep, out, k0, k1, a->thr, a->key, a->g0 + (uint64_t)i);
    CDROP_K(cdrop_part)(a, i, keep + k0, k1 - k0);
}

/* Local elements [lo, hi): block by block, a partial head step, the whole steps, a partial tail
 * step.  A block's tie records are settled during the next block's steps, the last ones at the
 * end.  With a cursor (lanes != NULL, a constant after inlining), the first block starts from it
 * when it reaches lo (cdrop_cursor_reaches), and the cursor is left positioned at hi's step: the
 * lanes from before that step when hi is inside it (the next segment makes the step again and
 * takes its remaining elements), *next = CDROP_NO_STEP when hi is on a block edge (the next
 * block is seeded: nothing to skip). */
static CDROP_ALWAYS_INLINE void CDROP_K(cdrop_walk)(const cdrop_args *a, int64_t lo, int64_t hi,
                                                    uint8_t *lanes, uint64_t *next)
{
    cdrop_ties tie[2];
    int cur = 0, nprev = 0;
    int64_t prev_base = 0, i = lo;
    const uint64_t gh = a->g0 + (uint64_t)hi;
    uint64_t save = CDROP_NO_STEP; /* where the saved cursor is positioned */
    while (i < hi) {
        isa_lanes v;
        const uint64_t g = a->g0 + (uint64_t)i;
        const int64_t end = i + cdrop_in_block(g, hi - i);
        const int k0 = lanes && cdrop_cursor_reaches(*next, g)
                           ? cdrop_cursor_load(&v, lanes, *next, g)
                           : (int)(isa_seek(&v, a->key, g) % CDROP_GROUP);
        int nrec = 0;
        int64_t rec_base = i;
        if (k0 != 0 || end - i < CDROP_GROUP) {
            const int k1 = (end - i >= CDROP_GROUP - k0) ? CDROP_GROUP : k0 + (int)(end - i);
            if (lanes && k1 < CDROP_GROUP) /* hi inside this step */
                save = cdrop_cursor_save(lanes, next, &v, g - (uint64_t)k0);
            CDROP_K(cdrop_partial)(&v, a, i, k0, k1);
            i += k1 - k0;
        }
        if (end - i >= CDROP_GROUP) {
            const int64_t nsteps = (end - i) / CDROP_GROUP;
#if CDROP_OP_FINAL /* ties settled in the loop: no records */
            (void)CDROP_K(cdrop_steps)(&v, a, i, nsteps, NULL, NULL, 0, 0);
#else
            nrec = CDROP_K(cdrop_steps)(&v, a, i, nsteps, &tie[cur], &tie[!cur], nprev, prev_base);
#endif
            nprev = 0; /* settled by the steps */
            rec_base = i;
            i += nsteps * CDROP_GROUP;
        }
        if (i < end) {
            if (lanes) /* a tail that ends inside a step (at hi) */
                save = cdrop_cursor_save(lanes, next, &v, a->g0 + (uint64_t)i);
            CDROP_K(cdrop_partial)(&v, a, i, 0, (int)(end - i));
            i = end;
        } else if (lanes && i == hi && gh % CDROP_GROUP == 0 && gh % CDROP_BLOCK != 0) {
            save = cdrop_cursor_save(lanes, next, &v, gh);
        }
        for (int t = 0; t < nprev; t++) /* a block without whole steps settles here */
            CDROP_K(cdrop_settle)(a, &tie[!cur], t, prev_base);
        nprev = nrec;
        prev_base = rec_base;
        cur = !cur;
    }
    for (int t = 0; t < nprev; t++)
        CDROP_K(cdrop_settle)(a, &tie[!cur], t, prev_base);
    if (lanes && save == CDROP_NO_STEP)
        *next = CDROP_NO_STEP;
}

static void CDROP_K(cdrop_kernel)(const cdrop_args *a, int64_t lo, int64_t hi)
{
    CDROP_K(cdrop_walk)(a, lo, hi, NULL, NULL);
}

#ifdef CDROP_RESUME_FN
void CDROP_RESUME_FN(const cdrop_args *a, int64_t lo, int64_t hi, uint8_t *lanes, uint64_t *next)
{
    CDROP_K(cdrop_walk)(a, lo, hi, lanes, next);
}
#undef CDROP_RESUME_FN
#endif

#undef CDROP_K
#undef CDROP_OP
#undef CDROP_OP_FINAL
