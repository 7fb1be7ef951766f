/*
 * producer_normal.inc.h -- the normal producer of the including instruction set: float32
 * standard normals of a range of global indices (docs/rng.md, "Normal numbers").  It drives the
 * set's lanes (isa_load_lanes, isa_step_out) over the normal stream's blocks of 2^12 elements,
 * one 32-bit word per element (16 elements per step), and turns the words into normals with
 * normal.h's transform, which the compiler vectorises for the set.  Defines the cdrop_normal_fn
 * CDROP_ISA_NORMALS.
 */
#include "normal.h"

#define CDROP_NBLOCK ((uint64_t)1 << CDROP_NORMAL_BLOCK_BITS)
#define CDROP_NBATCH 16 /* steps per transform call: 256 words, 1 KiB, in L1 */

void CDROP_ISA_NORMALS(uint64_t key, uint64_t g0, int64_t n, float *z)
{
    const uint64_t kn = cdrop_normal_key(key);
    uint32_t w[CDROP_NBATCH * CDROP_LANES];
    float t[CDROP_NBATCH * CDROP_LANES];
    int64_t i = 0;
    while (i < n) {
        /* one normal block: seed its lanes, skip to g's step */
        const uint64_t g = g0 + (uint64_t)i;
        const uint32_t j = (uint32_t)(g & (CDROP_NBLOCK - 1));
        const int64_t room = (int64_t)(CDROP_NBLOCK - j);
        const int64_t end = n - i < room ? n : i + room;
        cdrop_lanes st;
        isa_lanes v;
        cdrop_lanes_seed(&st, kn, g >> CDROP_NORMAL_BLOCK_BITS);
        isa_load_lanes(&v, &st);
        for (uint32_t s = 0; s < j / CDROP_LANES; s++)
            isa_step_out(&v, w);
        int lead = (int)(j % CDROP_LANES); /* words of the first step before g */
        while (i < end) {
            const int64_t want = end - i + lead; /* words from this step on */
            const int steps = want >= CDROP_NBATCH * CDROP_LANES
                                  ? CDROP_NBATCH
                                  : (int)((want + CDROP_LANES - 1) / CDROP_LANES);
            const int nw = steps * CDROP_LANES;
            const int take = (int)(want < nw ? want : nw) - lead;
            for (int s = 0; s < steps; s++)
                isa_step_out(&v, w + s * CDROP_LANES);
            if (lead == 0 && take == nw) { /* whole steps: straight into the output */
                cdrop_normals_from_words(w, z + i, nw);
            } else {
                cdrop_normals_from_words(w, t, nw);
                memcpy(z + i, t + lead, (size_t)take * sizeof *z);
            }
            i += take;
            lead = 0;
        }
    }
}

#undef CDROP_NBLOCK
#undef CDROP_NBATCH
