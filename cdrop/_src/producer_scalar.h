/*
 * producer_scalar.h -- the parts of mask production every instruction set shares: seeking into
 * a block, the keep bytes of a partial step (head and tail of a range), and the records of
 * ties that the whole-step loops settle later.  Pure C, no Python.
 */
#ifndef CDROP_PRODUCER_SCALAR_H
#define CDROP_PRODUCER_SCALAR_H

#include <stdint.h>
#include <string.h>

#include "cdrop_rng.h"
#include "platform.h" /* CDROP_ALWAYS_INLINE, CDROP_SQRTF, cdrop_ctz64 */

/* Seed the lanes of the block holding global index g; returns g's position in its block.  The
 * caller then skips j / CDROP_GROUP steps (in whichever registers it keeps the lanes). */
static inline uint32_t cdrop_block_seed(cdrop_lanes *st, uint64_t key, uint64_t g)
{
    cdrop_lanes_seed(st, key, g >> CDROP_BLOCK_BITS);
    return (uint32_t)(g & (CDROP_BLOCK - 1));
}

/* Seed the lanes of the block holding global index g and advance them to the step (group of
 * 64 elements) that contains g.  Returns g's position in its block. */
static inline uint32_t cdrop_lanes_at(cdrop_lanes *st, uint64_t key, uint64_t g)
{
    const uint32_t j = cdrop_block_seed(st, key, g);
    uint32_t out[CDROP_LANES];
    for (uint32_t q = 0; q < j / CDROP_GROUP; q++)
        cdrop_lanes_next(st, out);
    return j;
}

/* The 64 bytes of a step in element order (byte k of the step is byte k of out[] in memory on
 * little-endian hosts; big-endian ones take cdrop_step_byte). */
static inline void cdrop_step_bytes(uint8_t bytes[CDROP_GROUP], const uint32_t out[CDROP_LANES])
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(bytes, out, CDROP_GROUP);
#else
    for (int k = 0; k < CDROP_GROUP; k++)
        bytes[k] = (uint8_t)cdrop_step_byte(out, k);
#endif
}

/* Final keep flags (0/1) of elements i .. i + (k1 - k0) - 1, which take bytes k0 .. k1 - 1 of
 * the step `out`; element i has global index g.  Ties are rare (1 in 256), so they are resolved
 * in a second loop and the first one stays branch-free (and vectorisable).  always_inline: this
 * header is outside the SIMD files' target pragmas, so an out-of-line copy is baseline SSE code,
 * and calling it from AVX-512 code with dirty upper registers cost every call with a partial
 * step 0.1-0.3 us (1,000 elements: 0.27 -> 0.40 us on AVX-512, 0.34 -> 0.56 us on AVX2) once the
 * dropout family's kernels made GCC stop inlining it. */
static CDROP_ALWAYS_INLINE void cdrop_step_keeps(uint8_t keep[CDROP_GROUP],
                                                 const uint32_t out[CDROP_LANES], int k0, int k1,
                                                 uint32_t thr, uint64_t key, uint64_t g)
{
    uint8_t bytes[CDROP_GROUP];
    const uint8_t top =
        (uint8_t)((thr >> 24) ^ 0x80u); /* compare bytes with their top bit flipped */
    int ties = 0;
    cdrop_step_bytes(bytes, out);
    /* (b ^ 0x80) < T  <=>  (int8)b < (int8)(T ^ 0x80), as in the SIMD code */
    for (int k = k0; k < k1; k++) {
        keep[k] = (uint8_t)((int8_t)bytes[k] < (int8_t)top);
        ties |= bytes[k] == top;
    }
    if (ties && (thr & 0xFFFFFFu) != 0) /* low threshold bits 0: a tie always drops (exact) */
        for (int k = k0; k < k1; k++)
            if (bytes[k] == top)
                keep[k] = (uint8_t)cdrop_keeps(bytes[k], thr, key, g + (uint64_t)(k - k0));
}

/* Tie records of one block's whole steps (walk.inc.h).  In a whole step, an element whose byte
 * TIES with the threshold's top byte (1 in 256) is first written as kept and recorded; its 24
 * hash bits settle it later, and the consumer's `lost` clears it when they drop it.  Why
 * deferred: a step has a tie in 22% of cases, at random, and a branch on it in the streaming
 * loop mispredicts often enough to cut memory-level parallelism.  Why "kept until proven
 * dropped": a drop can be written without the input, which an in-place call has overwritten.
 * The record costs the loop two stores and one add per step: the step's 64-bit tie mask always
 * goes to tw[s], and s goes to idx[n], where n only advances when the mask is not zero.  (An
 * earlier record of 32-element halves needed two compare-and-add pairs per step; with the count
 * spilled by GCC that chain cost the AVX-512 kernel 25% of its time in cache.)  2.5 KiB. */
typedef struct {
    uint64_t tw[CDROP_BLOCK / CDROP_GROUP];  /* tie mask of whole step s of the block */
    uint16_t idx[CDROP_BLOCK / CDROP_GROUP]; /* the steps with ties, in order */
} cdrop_ties;

/* For a step whose keep-or-tie mask is `keep` and tie mask `tw`, element 0 at global index g:
 * the final keep mask (ties whose hash bits drop them cleared).  For loops that must store
 * final values at once (non-temporal stores cannot be cleared later). */
static inline uint64_t cdrop_settle_inline(uint64_t keep, uint64_t tw, uint64_t key, uint64_t g,
                                           uint32_t thr)
{
    while (tw) {
        const int e = cdrop_ctz64(tw);
        const uint64_t lost = cdrop_tie24(key, g + (uint64_t)e) >= (thr & 0xFFFFFFu);
        keep &= ~(lost << e);
        tw &= tw - 1;
    }
    return keep;
}

#endif /* CDROP_PRODUCER_SCALAR_H */
