/*
 * walk_variant.c -- the walk of the dropout family (variant.h): a call's logical elements in
 * pieces of the stream, each piece's random inputs (keep bytes or normals) made into scratch,
 * then the piece's runs along the last merged axis handed to the operation's run function.
 * Pure C, no Python.
 */
#include "kernels.h"

/* A piece is at most one block of the stream: its normals (4 bytes each) must fit the scratch
 * that _kernels.pyx gives each thread. */
_Static_assert(CDROP_BLOCK * sizeof(float) <= (uint64_t)CDROP_SCRATCH_BYTES,
               "a piece's normals must fit the per-thread scratch");

/* The same pieces as the plain kernels (cdrop_job_pieces): the blocks of the stream that the
 * range [g0, g0 + n) touches, at most CDROP_BLOCK elements each, so that a piece's keep bytes
 * (16 KiB) or normals (64 KiB) fit the scratch.  A keep array needs no stream, but the same
 * cut keeps the pieces small and the work even. */
int64_t cdrop_vjob_pieces(const cdrop_vjob *job)
{
    return cdrop_chunk_count(job->src == CDROP_SRC_KEEP_ARRAY ? 0 : job->g0, job->n);
}

/* Logical elements [lo, hi) of the job: the random inputs of the range (stream sources), then
 * the runs, carrying the multi-index as cdrop_walk_strided does. */
static void cdrop_vjob_range(const cdrop_vjob *job, int64_t lo, int64_t hi, uint8_t *scratch)
{
    const int last = job->ndim - 1;
    const int64_t inner = job->shape[last];
    int64_t idx[CDROP_VMAX_DIMS];
    int64_t ox = 0, oy = 0, orr = 0, ob = 0, ok = 0, rem = lo;
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % job->shape[d];
        rem /= job->shape[d];
        ox += idx[d] * job->sx[d];
        oy += idx[d] * job->sy[d];
        orr += idx[d] * job->sr[d];
        ob += idx[d] * job->sb[d];
        ok += idx[d] * job->sk[d];
    }
    int64_t ksz = 1; /* bytes per random input in scratch */
    if (job->src == CDROP_SRC_KEEP_STREAM) {
        cdrop_args a;
        a.src = NULL;
        a.dst = scratch;
        a.scale = 1.0;
        a.key = job->key;
        a.g0 = job->g0 + (uint64_t)lo;
        a.thr = job->thr;
        job->keep(&a, 0, hi - lo);
    } else if (job->src == CDROP_SRC_NORMAL) {
        job->normals(job->key, job->g0 + (uint64_t)lo, hi - lo, (float *)(void *)scratch);
        ksz = (int64_t)sizeof(float);
    }
    cdrop_run_ptrs p;
    p.sx = job->sx[last];
    p.sy = job->sy[last];
    p.sr = job->sr[last];
    p.sb = job->sb[last];
    for (int64_t i = lo; i < hi;) {
        const int64_t run = inner - idx[last] < hi - i ? inner - idx[last] : hi - i;
        p.x = job->x + ox;
        p.y = job->y + oy;
        p.r = job->r + orr;
        p.b = job->b + ob;
        if (job->src == CDROP_SRC_KEEP_ARRAY) {
            p.k = job->k + ok;
            p.sk = job->sk[last];
        } else {
            p.k = (const char *)scratch + (i - lo) * ksz;
            p.sk = ksz;
        }
        job->run(&job->c, &p, run);
        i += run;
        idx[last] += run;
        ox += run * job->sx[last];
        oy += run * job->sy[last];
        orr += run * job->sr[last];
        ob += run * job->sb[last];
        ok += run * job->sk[last];
        for (int d = last; d > 0 && idx[d] == job->shape[d]; d--) {
            ox += job->sx[d - 1] - job->shape[d] * job->sx[d];
            oy += job->sy[d - 1] - job->shape[d] * job->sy[d];
            orr += job->sr[d - 1] - job->shape[d] * job->sr[d];
            ob += job->sb[d - 1] - job->shape[d] * job->sb[d];
            ok += job->sk[d - 1] - job->shape[d] * job->sk[d];
            idx[d] = 0;
            idx[d - 1] += 1;
        }
    }
}

void cdrop_vjob_run(const cdrop_vjob *job, int64_t c0, int64_t c1, uint8_t *scratch)
{
    const uint64_t g0 = job->src == CDROP_SRC_KEEP_ARRAY ? 0 : job->g0;
    for (int64_t c = c0; c < c1; c++) {
        const int64_t lo = cdrop_chunk_start(g0, job->n, c);
        const int64_t hi = cdrop_chunk_start(g0, job->n, c + 1);
        if (lo < hi)
            cdrop_vjob_range(job, lo, hi, scratch);
    }
}
