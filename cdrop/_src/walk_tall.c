/*
 * walk_tall.c -- the tall tiles of the tile walk (walk_layout.c's CDROP_WALK_BANDS): 2-D arrays
 * whose rows are closer in memory than their columns and too wide for tiles of whole rows of
 * keep bytes (Fortran order, x.T, C.T[::2]).  A piece is a band of nr whole rows.  Its keep
 * decisions are made as BITS, one range of the stream (the table's CDROP_OP_BITS kernel: no
 * seeks, no cursors), transposed 64 x 64 bits at a time so that a column's bits for the band's
 * rows are contiguous, and each column is then applied as one run down memory: with unit
 * strides by the instruction set's bits_run (bits_run.inc.h), else through keep bytes
 * expanded from the bits.  A band of 1024 rows of a 2048-wide array is 256 KiB of bits where
 * keep bytes took 2 MiB, and runs down a column of 4 KiB (float32) are a memory pattern within
 * 1.04-1.08x of one sequential pass, against 1.45x for runs of 256 bytes.  Pure C, no Python.
 */
#include "kernels.h"

#include <string.h>

#define CDROP_TALL_RUN 4096          /* bytes down a column that a band aims at */
#define CDROP_TALL_ROWS 1024         /* rows of a band, at most */
#define CDROP_TALL_MIN 64            /* ... and at least (else the other tiles) */
#define CDROP_TALL_BITS (512 * 1024) /* bytes of a band's keep bits, at most */
#define CDROP_TALL_GROUP 512         /* columns transposed at a time: a cache line of bits */
#define CDROP_TALL_T (CDROP_TALL_BITS + 1024) /* the transposed bits, after the band's */
#define CDROP_TALL_U (CDROP_TALL_T + CDROP_TALL_GROUP * CDROP_TALL_ROWS / 8) /* keep bytes */
#ifndef CDROP_TALL_AHEAD
#define CDROP_TALL_AHEAD 4 /* columns between the one applied and the one prefetched */
#endif
_Static_assert(CDROP_TALL_U + CDROP_TALL_ROWS + 8 <= CDROP_SCRATCH_BYTES, "tall bands fit");

static int64_t cdrop_tall_abs(int64_t x) { return x < 0 ? -x : x; }

int64_t cdrop_tall_rows(const cdrop_job *job)
{
    if (!job->bits || !job->bits_t || job->ndim != 2)
        return 0;
    const int64_t R = job->shape[0], C = job->shape[1], isz = cdrop_op_bytes(job->op);
    int64_t nr = CDROP_TALL_RUN / isz < CDROP_TALL_ROWS ? CDROP_TALL_RUN / isz : CDROP_TALL_ROWS;
    if (nr * C > CDROP_TALL_BITS * 8) /* wider rows: fewer of them, whole cache lines */
        nr = (CDROP_TALL_BITS * 8 / C) & ~(int64_t)63;
    if (nr > R)
        nr = R;
    return nr >= CDROP_TALL_MIN ? nr : 0;
}

/* Keep bytes 0/1 of bits [0, n) into keep (a multiple of 8 bytes written): 8 at a time, each
 * byte of bits replicated into the 8 bytes of a word and masked with its own bit (a bit at a
 * time took as long as the memory of a column with a row step, x.T[::2]). */
static void cdrop_tall_bytes(uint8_t *keep, const uint64_t *bits, int64_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (int64_t r = 0; r < n; r += 8) {
        const uint64_t b = bits[r >> 6] >> (r & 63) & 0xFF;
        const uint64_t x = (b * UINT64_C(0x0101010101010101)) & UINT64_C(0x8040201008040201);
        const uint64_t y = ((x + UINT64_C(0x7F7F7F7F7F7F7F7F)) & UINT64_C(0x8080808080808080)) >> 7;
        memcpy(keep + r, &y, 8);
    }
#else
    for (int64_t r = 0; r < n; r++)
        keep[r] = (uint8_t)(bits[r >> 6] >> (r & 63) & 1);
#endif
}

/* The memory of a run from p (byte stride st, `span` bytes from its lowest to its highest),
 * lines [l0, l1) of it. */
static inline void cdrop_tall_fetch(const char *p, int64_t st, int64_t span, int64_t l0, int64_t l1,
                                    int write)
{
    const char *lo = st < 0 ? p - (span - 1) : p;
    for (int64_t l = l0; l < l1; l++) {
        if (write)
            CDROP_PREFETCH(lo + 64 * l, 1);
        else
            CDROP_PREFETCH(lo + 64 * l, 0);
    }
}

void cdrop_tall_band(const cdrop_job *job, int64_t nr, int64_t b, uint8_t *scratch)
{
    const int64_t R = job->shape[0], C = job->shape[1], r0 = b * nr;
    const int64_t rows = R - r0 < nr ? R - r0 : nr, isz = cdrop_op_bytes(job->op);
    const int64_t sr = job->sstr[0], sc = job->sstr[1], dr = job->dstr[0], dc = job->dstr[1];
    const char *src = (const char *)job->args.src + r0 * sr;
    char *dst = (char *)job->args.dst + r0 * dr;
    /* the band's keep bits, one range of the stream (the bits kernel ORs into zeros); the
     * 16 bytes after them are read, never used, by cdrop_tall_at */
    uint8_t *bits = scratch;
    const int64_t nbits = rows * C;
    memset(bits, 0, (size_t)((nbits + 63) / 64 * 8 + 16));
    cdrop_args k = job->args;
    k.dst = bits;
    k.g0 = job->args.g0 + (uint64_t)(r0 * C);
    job->bits(&k, 0, nbits);
    uint64_t *tb = (uint64_t *)(void *)(scratch + CDROP_TALL_T);
    uint8_t *keep = scratch + CDROP_TALL_U;
    const int64_t w = (rows + 63) / 64;
    const int unit = job->bits_run && sr == isz && dr == isz;
    /* Columns far apart with runs of a few pages at most defeat the hardware prefetchers: the
     * run CDROP_TALL_AHEAD columns ahead is prefetched in software, its lines spread over the
     * current column's parts (a burst fills the line fill buffers and stalls) */
    const int64_t span_s = (rows - 1) * cdrop_tall_abs(sr) + isz;
    const int64_t span_d = (rows - 1) * cdrop_tall_abs(dr) + isz;
    const int64_t ls = (span_s + 63) / 64 + 1, ld = (span_d + 63) / 64 + 1;
    const int fetch = CDROP_TALL_AHEAD > 0 && span_s <= 4 * CDROP_TALL_RUN;
    const int out = dst != (char *)src;
    const int64_t parts = w < 4 ? w : 4;
    for (int64_t c0 = 0; c0 < C; c0 += CDROP_TALL_GROUP) {
        const int64_t nc = C - c0 < CDROP_TALL_GROUP ? C - c0 : CDROP_TALL_GROUP;
        job->bits_t(bits, C, rows, c0, nc, tb);
        for (int64_t j = 0; j < nc; j++) {
            const int64_t c = c0 + j, f = c + CDROP_TALL_AHEAD;
            const char *ps = src + c * sc;
            char *pd = dst + c * dc;
            const uint64_t *cb = tb + j * w;
            if (!unit) /* strided or half precision: keep bytes from the bits */
                cdrop_tall_bytes(keep, cb, rows);
            for (int64_t p = 0; p < parts; p++) {
                if (fetch && f < C) {
                    cdrop_tall_fetch(src + f * sc, sr, span_s, ls * p / parts, ls * (p + 1) / parts,
                                     0);
                    if (out)
                        cdrop_tall_fetch(dst + f * dc, dr, span_d, ld * p / parts,
                                         ld * (p + 1) / parts, 1);
                }
                /* rows [e0, e1): whole words of bits but the last part's */
                const int64_t e0 = w * p / parts * 64, e1p = w * (p + 1) / parts * 64;
                const int64_t e1 = e1p < rows ? e1p : rows;
                if (unit)
                    job->bits_run(ps + e0 * sr, pd + e0 * dr, cb + e0 / 64, e1 - e0,
                                  job->args.scale);
                else
                    cdrop_apply_keep(job, ps + e0 * sr, sr, pd + e0 * dr, dr, keep + e0, e1 - e0);
            }
        }
    }
}
