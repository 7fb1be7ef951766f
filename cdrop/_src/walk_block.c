/*
 * walk_block.c -- the block walk (CDROP_WALK_BLOCK): the array is a block of a larger C-ordered
 * array (a dask chunk, a rank's part of an MPI decomposition), and an element's counter is its
 * index in the larger array.  Along the last axis those indices are consecutive; from one row
 * to the next they jump by the job's index strides (job->gstr, in elements, per merged axis).
 * Pure C, no Python.
 *
 * A row is a run of consecutive counters, so its keep bytes come from one call of the table's
 * CDROP_OP_U8 kernel and are applied with the vectorised runs of walk_layout.c: no per-element
 * index arithmetic.  What a block costs beyond an ordinary strided call is the entry into the
 * stream: a range that starts inside a stream block seeds the block and skips up to 255 steps
 * (docs/rng.md).  Narrow rows (a column chunk: rows of 100 elements, 10000 apart) would pay that
 * per row.  So the walk makes the keep bytes of all the rows that fall into one stream block in
 * a single range, from the first row's start to the last row's end: running the generator on
 * through the gaps between rows costs no more than the skip that a fresh entry would make.  That
 * range is at most one stream block (16 KiB of keep bytes, in L1).
 */
#include "consumers_scalar.h"
#include "kernels.h"

#include <string.h>

/* Position in the walk: row `r` (C order over the outer axes), its multi-index, the counter of
 * its element 0 and the byte offsets of that element in src and dst. */
typedef struct {
    int64_t r, idx[CDROP_MAX_DIMS];
    uint64_t g;
    int64_t so, dof;
} cdrop_bpos;

/* Rows and columns per piece.  A piece is a range of rows (enough for 2**15 elements, like a
 * stream block or two), or, for rows longer than 2**16 elements, a column range of one row.
 * Pieces depend on the shape only, never on the thread count; and since every keep byte is a
 * pure function of its counter, how rows are cut into pieces cannot change a bit. */
#define CDROP_BLOCK_SEG ((int64_t)1 << 16)
#define CDROP_BLOCK_PIECE ((int64_t)1 << 15)
#ifndef CDROP_BLOCK_FUSE /* overridable with -D for measurements */
#define CDROP_BLOCK_FUSE ((int64_t)2048)
#endif

static int64_t cdrop_block_inner(const cdrop_job *job) { return job->shape[job->ndim - 1]; }

static int64_t cdrop_block_nseg(const cdrop_job *job)
{
    const int64_t inner = cdrop_block_inner(job);
    return inner > CDROP_BLOCK_SEG ? (inner + CDROP_BLOCK_SEG - 1) / CDROP_BLOCK_SEG : 1;
}

static int64_t cdrop_block_rpp(const cdrop_job *job)
{
    const int64_t inner = cdrop_block_inner(job);
    return inner >= CDROP_BLOCK_PIECE ? 1 : (CDROP_BLOCK_PIECE + inner - 1) / inner;
}

int64_t cdrop_block_pieces(const cdrop_job *job)
{
    const int64_t rows = job->n / cdrop_block_inner(job), rpp = cdrop_block_rpp(job);
    return (rows + rpp - 1) / rpp * cdrop_block_nseg(job);
}

/* The position of row r (its element 0). */
static void cdrop_bpos_at(const cdrop_job *job, int64_t r, cdrop_bpos *s)
{
    const int last = job->ndim - 1;
    s->r = r;
    s->g = job->args.g0;
    s->so = s->dof = 0;
    for (int d = last - 1; d >= 0; d--) {
        s->idx[d] = r % job->shape[d];
        r /= job->shape[d];
        s->g += (uint64_t)s->idx[d] * job->gstr[d];
        s->so += s->idx[d] * job->sstr[d];
        s->dof += s->idx[d] * job->dstr[d];
    }
}

/* The next row: a carry over the outer axes, as an odometer. */
static void cdrop_bpos_next(const cdrop_job *job, cdrop_bpos *s)
{
    int d = job->ndim - 2;
    s->r++;
    for (; d >= 0; d--) {
        s->idx[d]++;
        s->g += job->gstr[d];
        s->so += job->sstr[d];
        s->dof += job->dstr[d];
        if (s->idx[d] < job->shape[d] || d == 0)
            break;
        s->idx[d] = 0; /* back to the start of axis d, on to the next index of axis d - 1 */
        s->g -= (uint64_t)job->shape[d] * job->gstr[d];
        s->so -= job->shape[d] * job->sstr[d];
        s->dof -= job->shape[d] * job->dstr[d];
    }
}

/* Columns [c, c1) of the row at s, cut where its counters leave the stream block of `bstart`
 * (a block's first counter): the number of them inside it. */
static int64_t cdrop_block_take(const cdrop_bpos *s, int64_t c, int64_t c1, uint64_t bstart)
{
    const uint64_t g = s->g + (uint64_t)c; /* >= bstart: counters grow along the walk */
    const uint64_t room = g - bstart < CDROP_BLOCK ? CDROP_BLOCK - (g - bstart) : 0;
    return (uint64_t)(c1 - c) < room ? c1 - c : (int64_t)room;
}

/* A run of segments that follow each other in memory, not applied yet; `keep` points into
 * the window (one segment) or to the gathered copy (several). */
typedef struct {
    const char *ps;
    char *pd;
    const uint8_t *keep;
    int64_t n;
} cdrop_pending;

static void cdrop_pending_flush(const cdrop_job *job, cdrop_pending *run)
{
    const int64_t is = job->sstr[job->ndim - 1], id = job->dstr[job->ndim - 1];
    if (run->n == 0)
        return;
    cdrop_apply_keep(job, run->ps, is, run->pd, id, run->keep, run->n);
    run->n = 0;
}

/* Segment (ps, pd) of n elements with keep bytes kp: joined to the pending run if it starts
 * where that run ends in both arrays (its keep bytes gathered into buf, CDROP_BLOCK bytes:
 * enough for a window), else the pending run is applied and this one waits. */
static void cdrop_pending_add(const cdrop_job *job, cdrop_pending *run, const char *ps, char *pd,
                              const uint8_t *kp, int64_t n, uint8_t *buf)
{
    const int64_t is = job->sstr[job->ndim - 1], id = job->dstr[job->ndim - 1];
    const int64_t isz = cdrop_op_bytes(job->op);
    if (run->n > 0 && id == isz && pd == run->pd + run->n * id &&
        (ps == NULL || (is == isz && ps == run->ps + run->n * is))) {
        if (run->keep != buf) {
            memcpy(buf, run->keep, (size_t)run->n);
            run->keep = buf;
        }
        memcpy(buf + run->n, kp, (size_t)n);
        run->n += n;
        return;
    }
    cdrop_pending_flush(job, run);
    run->ps = ps;
    run->pd = pd;
    run->keep = kp;
    run->n = n;
}

void cdrop_walk_block(const cdrop_job *job, int64_t p0, int64_t p1, uint8_t *scratch)
{
    const int last = job->ndim - 1;
    const int64_t inner = job->shape[last], is = job->sstr[last], id = job->dstr[last];
    const int64_t nseg = cdrop_block_nseg(job), rpp = cdrop_block_rpp(job);
    const int64_t rows = job->n / inner, isz = cdrop_op_bytes(job->op);
    const char *src = (const char *)job->args.src;
    char *dst = (char *)job->args.dst;
    /* Rows contiguous in memory and long enough that one entry into the stream per row costs
     * little next to the row itself: the contiguous kernel, row by row (one pass, its own
     * vector code); else keep bytes by stream block, then the runs. */
    const int fused = inner >= CDROP_BLOCK_FUSE && id == isz && (is == isz || src == NULL);
    for (int64_t piece = p0; piece < p1; piece++) {
        const int64_t r0 = piece / nseg * rpp, r1 = r0 + rpp < rows ? r0 + rpp : rows;
        const int64_t c0 = piece % nseg * CDROP_BLOCK_SEG;
        const int64_t c1 = c0 + CDROP_BLOCK_SEG < inner ? c0 + CDROP_BLOCK_SEG : inner;
        cdrop_bpos s;
        cdrop_bpos_at(job, r0, &s);
        if (fused) {
            for (; s.r < r1; cdrop_bpos_next(job, &s)) {
                cdrop_args k = job->args;
                k.src = src ? src + s.so : NULL;
                k.dst = dst + s.dof;
                k.g0 = s.g;
                job->fn(&k, c0, c1);
            }
            continue;
        }
        int64_t c = c0;
        while (s.r < r1) {
            /* One range of keep bytes: from (s, c) to the end of the last row segment that
             * lies in the same stream block. */
            const uint64_t w0 = s.g + (uint64_t)c, bstart = w0 & ~(CDROP_BLOCK - 1);
            cdrop_bpos t = s;
            int64_t tc = c, m = 0;
            for (;;) {
                const int64_t take = cdrop_block_take(&t, tc, c1, bstart);
                m = (int64_t)(t.g + (uint64_t)(tc + take) - w0);
                if (tc + take < c1 || t.r + 1 >= r1)
                    break;
                cdrop_bpos_next(job, &t);
                tc = c0;
                if (t.g + (uint64_t)c0 - bstart >= CDROP_BLOCK)
                    break; /* the next row starts in a later block */
            }
            cdrop_args k = job->args;
            k.dst = scratch;
            k.g0 = w0;
            job->keep(&k, 0, m);
            /* Apply the same row segments, each with its keep bytes at its counter - w0.
             * Segments that follow each other in memory (the rows of a C-ordered chunk) are
             * joined into one run, their keep bytes gathered behind the window's: one call
             * per window instead of one per row, whose fixed cost is several times that of a
             * row of 16 elements. */
            cdrop_pending run = {NULL, NULL, NULL, 0};
            for (;;) {
                const int64_t take = cdrop_block_take(&s, c, c1, bstart);
                if (take > 0)
                    cdrop_pending_add(job, &run, src ? src + s.so + c * is : NULL,
                                      dst + s.dof + c * id, scratch + (s.g + (uint64_t)c - w0),
                                      take, scratch + CDROP_BLOCK);
                c += take;
                if (c < c1)
                    break; /* the row goes on in the next stream block */
                cdrop_bpos_next(job, &s);
                c = c0;
                if (s.r >= r1 || s.g + (uint64_t)c0 - bstart >= CDROP_BLOCK)
                    break;
            }
            cdrop_pending_flush(job, &run);
        }
    }
}
