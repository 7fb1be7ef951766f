/*
 * walk_resume.inc.h -- the resumable keep-bytes producer (cdrop_resume_fn, kernels.h): the keep
 * bytes of local elements [lo, hi) into a->dst, like walk.inc.h's u8 kernel, but starting from
 * a saved cursor when it is positioned at lo's step, and saving the cursor positioned at hi's
 * step on return.  The tile walk's tall tiles (walk_layout.c) make each row segment of a tile
 * from its row's cursor: a seek per segment (seed a block, skip up to 255 steps) cost more than
 * the segment itself.  A cursor behind lo's step in lo's block is advanced to it: a row
 * can start from the previous row's cursor, which skips fewer steps than a seek.  Included by each isa_*.c after ops.inc.h (it uses the u8 kernel's
 * cdrop_steps_u8 and cdrop_partial_u8), after
 *   #define CDROP_RESUME_FN <name>   the function's external name (kernels.c's table)
 *   #define isa_cursor_bytes <n>     (optional) the bytes of isa_lanes that hold the lanes'
 *                                    state, if not all of it (the scalar path's keep scratch)
 * A cursor is the lanes' state as isa_lanes stores it (opaque, CDROP_CURSOR_BYTES, 64-byte
 * aligned) and the global index of the step it produces next (CDROP_NO_STEP: none).
 */
#ifndef isa_cursor_bytes
#define isa_cursor_bytes sizeof(isa_lanes)
#endif
_Static_assert(isa_cursor_bytes <= CDROP_CURSOR_BYTES, "the lanes fit a cursor");

static CDROP_ALWAYS_INLINE void cdrop_cursor_save(uint8_t *lanes, uint64_t *next,
                                                  const isa_lanes *v, uint64_t step)
{
    memcpy(lanes, v, isa_cursor_bytes);
    *next = step;
}

void CDROP_RESUME_FN(const cdrop_args *a, int64_t lo, int64_t hi, uint8_t *lanes, uint64_t *next)
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
        const uint64_t gs = g & ~(uint64_t)(CDROP_GROUP - 1); /* g's step */
        int k0;
        if (*next != CDROP_NO_STEP && *next <= gs &&
            *next >> CDROP_BLOCK_BITS == g >> CDROP_BLOCK_BITS) {
            /* at g's step, or behind it in its block: skip the steps between (the tall walk
             * starts a row from the previous row's cursor) */
            uint32_t out[CDROP_LANES];
            memcpy(&v, lanes, isa_cursor_bytes);
            for (uint64_t q = *next; q < gs; q += CDROP_GROUP)
                isa_step_out(&v, out);
            k0 = (int)(g % CDROP_GROUP);
        } else {
            k0 = (int)(isa_seek(&v, a->key, g) % CDROP_GROUP);
        }
        int nrec = 0;
        int64_t rec_base = i;
        if (k0 != 0 || end - i < CDROP_GROUP) {
            const int k1 = (end - i >= CDROP_GROUP - k0) ? CDROP_GROUP : k0 + (int)(end - i);
            if (k1 < CDROP_GROUP) { /* hi inside this step: the next segment makes it again */
                cdrop_cursor_save(lanes, next, &v, g - (uint64_t)k0);
                save = g - (uint64_t)k0;
            }
            cdrop_partial_u8(&v, a, i, k0, k1);
            i += k1 - k0;
        }
        if (end - i >= CDROP_GROUP) {
            const int64_t nsteps = (end - i) / CDROP_GROUP;
            nrec = cdrop_steps_u8(&v, a, i, nsteps, &tie[cur], &tie[!cur], nprev, prev_base);
            nprev = 0;
            rec_base = i;
            i += nsteps * CDROP_GROUP;
        }
        if (i < end) { /* a tail that ends inside a step (at hi): saved before it */
            cdrop_cursor_save(lanes, next, &v, a->g0 + (uint64_t)i);
            save = a->g0 + (uint64_t)i;
            cdrop_partial_u8(&v, a, i, 0, (int)(end - i));
            i = end;
        } else if (i == hi && gh % CDROP_GROUP == 0 && gh % CDROP_BLOCK != 0) {
            cdrop_cursor_save(lanes, next, &v, gh); /* a block edge: the next block is seeded */
            save = gh;
        }
        for (int t = 0; t < nprev; t++)
            cdrop_settle_u8(a, &tie[!cur], t, prev_base);
        nprev = nrec;
        prev_base = rec_base;
        cur = !cur;
    }
    for (int t = 0; t < nprev; t++)
        cdrop_settle_u8(a, &tie[!cur], t, prev_base);
    if (save == CDROP_NO_STEP)
        *next = CDROP_NO_STEP;
}

#undef CDROP_RESUME_FN
#undef isa_cursor_bytes
