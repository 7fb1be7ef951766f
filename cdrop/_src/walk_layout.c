/*
 * walk_layout.c -- arrays that are not contiguous: the strided walk (any strides, logical C
 * order, one stream block at a time) and the tile walk, CDROP_WALK_BANDS (rows closer in memory
 * than columns: Fortran order, transposes, 3-D transposes, small trailing axes).  Both take the
 * keep bytes of contiguous ranges of the stream from the kernel table's CDROP_OP_U8 kernel into
 * caller-provided scratch, then apply them with the select-and-scale of the dtype.  The keep
 * decision of logical element i is the one of global index g0 + i, so any layout gets the mask
 * of its C-ordered copy.  Pure C, no Python.
 */
#include "consumers_scalar.h"
#include "kernels.h"

#include <string.h>

/* Elements [0, n) of a run: byte strides is/id, element r's keep flag keep[r * ks].  For
 * CDROP_OP_U8 (a keep mask of a block, walk_block.c) the flags themselves are the result. */
void cdrop_apply_run(const cdrop_job *job, const char *ps, int64_t is, char *pd, int64_t id,
                     const uint8_t *keep, int64_t ks, int64_t n)
{
    switch (job->op) {
    case CDROP_OP_U8:
        (void)ps;
        (void)is;
        if (id == 1 && ks == 1)
            memcpy(pd, keep, (size_t)n);
        else
            for (int64_t r = 0; r < n; r++)
                pd[r * id] = (char)keep[r * ks];
        break;
    case CDROP_OP_F64:
        cdrop_run_f64(ps, is, pd, id, keep, ks, n, job->args.scale);
        break;
    case CDROP_OP_F16:
        cdrop_run_f16(ps, is, pd, id, keep, ks, n, (float)job->args.scale);
        break;
    case CDROP_OP_BF16:
        cdrop_run_bf16(ps, is, pd, id, keep, ks, n, (float)job->args.scale);
        break;
    default:
        cdrop_run_f32(ps, is, pd, id, keep, ks, n, (float)job->args.scale);
    }
}

/* The keep bytes of local elements [a, a + m) into keep[0 .. m). */
static void cdrop_keep_bytes(const cdrop_job *job, uint8_t *keep, int64_t a, int64_t m)
{
    cdrop_args k = job->args;
    k.dst = keep;
    k.g0 = job->args.g0 + (uint64_t)a;
    job->keep(&k, 0, m);
}

static int64_t cdrop_abs64(int64_t x) { return x < 0 ? -x : x; }
#define CDROP_PREFETCH_MAX (16 * 1024) /* bytes of a run: longer ones the hardware follows */
static inline void cdrop_prefetch(const char *p, int64_t st, int64_t span, int write);
#ifndef CDROP_ROWS_AHEAD      /* overridable with -D for measurements (0: no software prefetch) */
#define CDROP_ROWS_AHEAD 8192 /* bytes of rows between the one applied and the one prefetched */
#endif

/* Byte offsets (so, dof) of row r (a run along the last axis) of the merged layout. */
static void cdrop_row_offsets(const cdrop_job *job, int64_t r, int64_t *so, int64_t *dof)
{
    *so = *dof = 0;
    for (int d = job->ndim - 2; d >= 0; d--) {
        *so += (r % job->shape[d]) * job->sstr[d];
        *dof += (r % job->shape[d]) * job->dstr[d];
        r /= job->shape[d];
    }
}

/* Logical elements [lo, hi), in pieces that end at block boundaries of the stream (a piece that
 * started inside a block would seed that block again and skip up to 255 steps).  The shape and
 * strides were merged by the caller, so the contiguous kernels take every array that is
 * contiguous after merging and this walk sees only real strides.  Rows (runs along the last
 * axis) of up to CDROP_PREFETCH_MAX bytes that lie far apart, as in
 * (256, 128, 128).transpose(1, 0, 2), defeat the hardware prefetchers (65% of that case's time
 * was spent on its loads): the row CDROP_ROWS_AHEAD bytes of rows ahead is prefetched in
 * software. */
void cdrop_walk_strided(const cdrop_job *job, int64_t lo, int64_t hi, uint8_t *scratch)
{
    int64_t idx[CDROP_MAX_DIMS];
    const int last = job->ndim - 1;
    const int64_t *shape = job->shape, *sstr = job->sstr, *dstr = job->dstr;
    const int64_t inner = shape[last], is = sstr[last], id = dstr[last];
    const char *src = (const char *)job->args.src;
    char *dst = (char *)job->args.dst;
    /* multi-index of element lo, and the byte offsets of that element */
    int64_t rem = lo, so = 0, dof = 0;
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
        so += idx[d] * sstr[d];
        dof += idx[d] * dstr[d];
    }
    /* the software prefetch: row `ahead` rows after the current one, while there is one */
    const int64_t span_s = (inner - 1) * cdrop_abs64(is) + 1,
                  span_d = (inner - 1) * cdrop_abs64(id) + 1;
    const int64_t rows = job->n / inner, row_bytes = span_s > span_d ? span_s : span_d;
    /* only rows that lie a page or more apart beyond their span: rows that follow each other
     * (x[:, ::2]) the hardware prefetchers follow, and hints there only took fill buffers
     * (x[:, ::2] of a (2048, 4096) float32 array, in place: 1.49x -> 1.87x np.multiply) */
    const int far_s = last > 0 && cdrop_abs64(sstr[last - 1]) - span_s >= 4096;
    const int far_d = last > 0 && dst != src && cdrop_abs64(dstr[last - 1]) - span_d >= 4096;
    const int fetch = CDROP_ROWS_AHEAD > 0 && (far_s || far_d) && row_bytes >= 64 &&
                      row_bytes <= CDROP_PREFETCH_MAX;
    const int64_t ahead = fetch ? (CDROP_ROWS_AHEAD + row_bytes - 1) / row_bytes : 0;
    int64_t fr = lo / inner + ahead;
    for (int64_t a = lo, m; a < hi; a += m) {
        m = cdrop_in_block(job->args.g0 + (uint64_t)a, hi - a);
        cdrop_keep_bytes(job, scratch, a, m);
        for (int64_t k = 0; k < m;) {
            /* a run along the last axis, then a carry into the outer ones */
            const int64_t run = inner - idx[last] < m - k ? inner - idx[last] : m - k;
            if (fetch && idx[last] == 0 && fr < rows && fr * inner < hi + ahead * inner) {
                int64_t fs, fd;
                cdrop_row_offsets(job, fr++, &fs, &fd);
                if (far_s)
                    cdrop_prefetch(src + fs, is, span_s, 0);
                if (far_d)
                    cdrop_prefetch(dst + fd, id, span_d, 1);
            }
            cdrop_apply_keep(job, src + so, is, dst + dof, id, scratch + k, run);
            k += run;
            idx[last] += run;
            so += run * is;
            dof += run * id;
            for (int d = last; d > 0 && idx[d] == shape[d]; d--) {
                so += sstr[d - 1] - shape[d] * sstr[d];
                dof += dstr[d - 1] - shape[d] * dstr[d];
                idx[d] = 0;
                idx[d - 1] += 1;
            }
        }
    }
}

/* The tile walk (CDROP_WALK_BANDS).  The array is seen as (outer..., Q, R, C) with its last
 * three logical axes; a tile is k consecutive matrices of Q, or nr consecutive rows of one
 * matrix, or nr rows by cw columns, whichever is the largest that keeps CDROP_TILE_BYTES of keep
 * bytes.  Its keep bytes are made in index order, as few long ranges of the stream as possible
 * (one range for whole rows or matrices; else one per row segment of at least 4096 columns): a
 * range that starts inside a block seeds the block and skips up to 255 steps, which per short
 * segment cost more than the segment itself (a Fortran 4096 x 4096 float32 array took 6x
 * np.multiply's time, a (2**20, 2, 8) view 56x).  The keep bytes are then permuted into the
 * tile's memory order (the three axes sorted by the source's strides, 8 x 8 byte transposes for
 * the common 2-D case) and applied in that order, with the contiguous runs merged, so that a
 * transposed or Fortran-ordered tile is one vectorised pass over memory.  The tiles are the
 * pieces, numbered in C order of (outer, q tile, r tile, c tile); they do not depend on the
 * thread count, and a single band of rows is split by columns between threads. */
#define CDROP_TILE_BYTES (CDROP_SCRATCH_BYTES / 2) /* index order; the other half: memory order */
/* slices up to this many elements are permuted through a table of int32 at the end of the
 * memory-order half, past the CDROP_TILE_FILL bytes that a tile uses there */
#define CDROP_TABLE_MAX 16384
_Static_assert(CDROP_TABLE_MAX * 4 <= CDROP_TILE_BYTES / 8, "the table fits the spare end");
#define CDROP_TILE_FILL (CDROP_TILE_BYTES / 8 * 7) /* keep bytes per tile, before any padding */
#define CDROP_TILE_DEPTH 16 /* matrices of a tile when they interleave in memory */
#define CDROP_TILE_ROWS 32  /* rows of a tile cut by columns: cw >= 4096 columns */

typedef struct {
    int64_t Q, R, C, U; /* matrices per outer index, rows, columns; outer indices */
    int64_t k, nr, cw;  /* matrices, rows and columns per tile */
    int64_t tq, tr, tc; /* tiles along Q, R, C */
    int tall;           /* tall tiles: bands of nr whole rows, keep bits (walk_tall.c) */
} cdrop_tiles;

static void cdrop_tile_geom(const cdrop_job *job, cdrop_tiles *t)
{
    const int nd = job->ndim;
    t->R = job->shape[nd - 2];
    t->C = job->shape[nd - 1];
    t->Q = nd >= 3 ? job->shape[nd - 3] : 1;
    t->U = 1;
    for (int d = 0; d < nd - 3; d++)
        t->U *= job->shape[d];
    const int64_t M = t->R * t->C;
    /* When the matrix index q is the axis closest in memory ((512, 512, 16).transpose(2, 1, 0),
     * Fortran 3-D arrays), a tile of one matrix would read each cache line for one element of
     * it: then a tile takes CDROP_TILE_DEPTH matrices, and rows or row segments of each. */
    const int64_t sq = nd >= 3 ? cdrop_abs64(job->sstr[nd - 3]) : 0;
    const int q_inner = nd >= 3 && t->Q > 1 && sq < cdrop_abs64(job->sstr[nd - 2]) &&
                        sq < cdrop_abs64(job->sstr[nd - 1]);
    const int64_t depth = t->Q < CDROP_TILE_DEPTH ? t->Q : CDROP_TILE_DEPTH;
    int64_t fill = CDROP_TILE_FILL; /* keep bytes per matrix of a tile */
    t->k = 1;
    t->tall = 0;
    /* 2-D arrays too wide for tiles of whole rows (Fortran order, x.T): bands of whole rows
     * whose keep decisions are bits (walk_tall.c) */
    const int64_t tall_nr = cdrop_tall_rows(job);
    if (tall_nr >= 2 * CDROP_TILE_ROWS && t->C * tall_nr > fill) {
        t->tall = 1;
        t->nr = tall_nr;
        t->cw = t->C;
        t->tq = 1;
        t->tr = (t->R + t->nr - 1) / t->nr;
        t->tc = 1;
        return;
    }
    if (M <= CDROP_TILE_FILL && (!q_inner || CDROP_TILE_FILL / M >= depth)) {
        /* whole matrices */
        t->k = CDROP_TILE_FILL / M < t->Q ? CDROP_TILE_FILL / M : t->Q;
        if (q_inner && t->k < t->Q) /* runs of whole cache lines */
            t->k -= t->k % depth;
        t->nr = t->R;
        t->cw = t->C;
    } else {
        if (q_inner) {
            t->k = depth;
            fill = CDROP_TILE_FILL / depth;
        }
        /* Ranges of the stream that start on a block cost nothing to seek; one that starts
         * inside a block skips up to 255 steps, which for a range of one block costs more than
         * making its keep bytes (measured, (512, 512, 16).transpose(2, 1, 0): 38% of the time in
         * seeks).  So the rows of a tile are, where they can be, a whole number of blocks:
         * with offset 0, every range then starts on a block. */
        if (t->C * CDROP_TILE_ROWS <= fill) { /* whole rows */
            int64_t g = (int64_t)CDROP_BLOCK; /* rows per whole number of blocks */
            for (int64_t c = t->C; (c & 1) == 0 && g > 1; c >>= 1)
                g >>= 1;
            t->nr = fill / t->C;
            if (t->nr >= 64 && g <= 64) /* also whole cache lines down a Fortran column */
                t->nr &= ~(int64_t)63;
            else if (t->nr >= g)
                t->nr -= t->nr % g;
            if (t->nr > t->R)
                t->nr = t->R;
            t->cw = t->C;
        } else { /* rows cut by columns: a power of two that divides the rows, if one fits */
            t->nr = t->R < CDROP_TILE_ROWS ? t->R : CDROP_TILE_ROWS;
            t->cw = (fill / t->nr) & ~(int64_t)63;
            int64_t p2 = 64;
            while (p2 * 2 <= t->cw)
                p2 *= 2;
            if (t->C % p2 == 0)
                t->cw = p2;
        }
    }
    t->tq = (t->Q + t->k - 1) / t->k;
    t->tr = (t->R + t->nr - 1) / t->nr;
    t->tc = (t->C + t->cw - 1) / t->cw;
}

int64_t cdrop_band_count(const cdrop_job *job)
{
    cdrop_tiles t;
    cdrop_tile_geom(job, &t);
    return t.U * t.tq * t.tr * t.tc;
}

static int cdrop_slab_layout(const cdrop_job *job);

int cdrop_layout_walk(const cdrop_job *job)
{
    const int ndim = job->ndim;
    const int64_t *sstr = job->sstr, *dstr = job->dstr;
    if (ndim < 2)
        return CDROP_WALK_STRIDED;
    const int64_t sr = sstr[ndim - 2] < 0 ? -sstr[ndim - 2] : sstr[ndim - 2];
    const int64_t sc = sstr[ndim - 1] < 0 ? -sstr[ndim - 1] : sstr[ndim - 1];
    const int64_t dr = dstr[ndim - 2] < 0 ? -dstr[ndim - 2] : dstr[ndim - 2];
    const int64_t dc = dstr[ndim - 1] < 0 ? -dstr[ndim - 1] : dstr[ndim - 1];
    if (sr < sc && dr < dc)
        return CDROP_WALK_BANDS;
    return cdrop_slab_layout(job) ? CDROP_WALK_SLABS : CDROP_WALK_STRIDED;
}

#define CDROP_SWAP(x, y, sh, m)                                                                    \
    do {                                                                                           \
        const uint64_t t_ = (((x) >> (sh)) ^ (y)) & (m);                                           \
        (x) ^= t_ << (sh);                                                                         \
        (y) ^= t_;                                                                                 \
    } while (0)

/* out[i1 * n2 + i2] = in[i1 + i2 * ks2] for i1 < n1, i2 < n2: a transpose, in 8 x 8 blocks of
 * bytes (row i of a block = one uint64, column j = its byte j; three rounds of swaps), in
 * panels of columns whose output stays in L1. */
#if CDROP_HAVE_VECTOR_EXT
typedef uint8_t cdrop_v16 __attribute__((vector_size(16)));
/* The same transpose in 16 x 16 blocks, for n1 and n2 multiples of 16: four rounds of one
 * interleave (row k with row k + 8, low and high halves: SSE2's punpck, NEON's zip) transpose
 * a block, 64 shuffles per 256 bytes against the 8 x 8 blocks' ~300 integer operations. */
/* out[k * op + j] = in[j + k * ip] for j, k < 16 */
static CDROP_ALWAYS_INLINE void cdrop_block16(uint8_t *out, int64_t op, const uint8_t *in,
                                              int64_t ip)
{
    cdrop_v16 x[16], y[16];
    for (int k = 0; k < 16; k++)
        memcpy(&x[k], in + k * ip, 16);
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < 8; k++) {
            y[2 * k] = __builtin_shufflevector(x[k], x[k + 8], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5,
                                               21, 6, 22, 7, 23);
            y[2 * k + 1] = __builtin_shufflevector(x[k], x[k + 8], 8, 24, 9, 25, 10, 26, 11, 27, 12,
                                                   28, 13, 29, 14, 30, 15, 31);
        }
        memcpy(x, y, sizeof x);
    }
    for (int k = 0; k < 16; k++)
        memcpy(out + k * op, &x[k], 16);
}

static void cdrop_transpose_keep16(uint8_t *out, const uint8_t *in, int64_t n1, int64_t n2,
                                   int64_t ks2)
{
    const int64_t panel = 16384 / n2 > 16 ? (16384 / n2) & ~(int64_t)15 : 16;
    for (int64_t p1 = 0; p1 < n1; p1 += panel) {
        const int64_t e1 = p1 + panel < n1 ? p1 + panel : n1;
        for (int64_t i2 = 0; i2 < n2; i2 += 16)
            for (int64_t i1 = p1; i1 < e1; i1 += 16)
                cdrop_block16(out + i1 * n2 + i2, n2, in + i1 + i2 * ks2, ks2);
    }
}
#endif

static void cdrop_transpose_keep(uint8_t *out, const uint8_t *in, int64_t n1, int64_t n2,
                                 int64_t ks2)
{
#if CDROP_HAVE_VECTOR_EXT
    if (n1 % 16 == 0 && n2 % 16 == 0) {
        cdrop_transpose_keep16(out, in, n1, n2, ks2);
        return;
    }
#endif
    const int64_t b1 = n1 & ~(int64_t)7, b2 = n2 & ~(int64_t)7;
    const int64_t panel = 16384 / n2 > 8 ? (16384 / n2) & ~(int64_t)7 : 8;
    for (int64_t p1 = 0; p1 < b1; p1 += panel) {
        const int64_t e1 = p1 + panel < b1 ? p1 + panel : b1;
        for (int64_t i2 = 0; i2 < b2; i2 += 8)
            for (int64_t i1 = p1; i1 < e1; i1 += 8) {
                const uint8_t *q = in + i1 + i2 * ks2;
                uint64_t a0, a1, a2, a3, a4, a5, a6, a7;
                memcpy(&a0, q, 8);
                memcpy(&a1, q + ks2, 8);
                memcpy(&a2, q + 2 * ks2, 8);
                memcpy(&a3, q + 3 * ks2, 8);
                memcpy(&a4, q + 4 * ks2, 8);
                memcpy(&a5, q + 5 * ks2, 8);
                memcpy(&a6, q + 6 * ks2, 8);
                memcpy(&a7, q + 7 * ks2, 8);
                CDROP_SWAP(a0, a4, 32, 0x00000000FFFFFFFFull);
                CDROP_SWAP(a1, a5, 32, 0x00000000FFFFFFFFull);
                CDROP_SWAP(a2, a6, 32, 0x00000000FFFFFFFFull);
                CDROP_SWAP(a3, a7, 32, 0x00000000FFFFFFFFull);
                CDROP_SWAP(a0, a2, 16, 0x0000FFFF0000FFFFull);
                CDROP_SWAP(a1, a3, 16, 0x0000FFFF0000FFFFull);
                CDROP_SWAP(a4, a6, 16, 0x0000FFFF0000FFFFull);
                CDROP_SWAP(a5, a7, 16, 0x0000FFFF0000FFFFull);
                CDROP_SWAP(a0, a1, 8, 0x00FF00FF00FF00FFull);
                CDROP_SWAP(a2, a3, 8, 0x00FF00FF00FF00FFull);
                CDROP_SWAP(a4, a5, 8, 0x00FF00FF00FF00FFull);
                CDROP_SWAP(a6, a7, 8, 0x00FF00FF00FF00FFull);
                uint8_t *o = out + i1 * n2 + i2;
                memcpy(o, &a0, 8);
                memcpy(o + n2, &a1, 8);
                memcpy(o + 2 * n2, &a2, 8);
                memcpy(o + 3 * n2, &a3, 8);
                memcpy(o + 4 * n2, &a4, 8);
                memcpy(o + 5 * n2, &a5, 8);
                memcpy(o + 6 * n2, &a6, 8);
                memcpy(o + 7 * n2, &a7, 8);
            }
    }
    for (int64_t i1 = 0; i1 < n1; i1++) /* the edges */
        for (int64_t i2 = i1 < b1 ? b2 : 0; i2 < n2; i2++)
            out[i1 * n2 + i2] = in[i1 + i2 * ks2];
}

/* Elements [0, n) with byte strides is/id and contiguous keep flags.  Contiguous runs go
 * through the instruction set's own select-and-scale (job->drop_run, vectorised with the ISA's
 * width: this file is compiled for the baseline, where the compiler's loop was SSE2); strided
 * ones, and any without job->drop_run (the U8 op of a keep mask), through the scalar
 * consumers, whose strided loop is faster than the vrun's element-by-element one. */
void cdrop_apply_keep(const cdrop_job *job, const char *ps, int64_t is, char *pd, int64_t id,
                      const uint8_t *keep, int64_t n)
{
    const int64_t isz = cdrop_op_bytes(job->op);
    if (job->drop_run && is == isz && id == isz) {
        const cdrop_vconst c = {job->args.scale, 0.0, 0.0};
        const cdrop_run_ptrs p = {ps, ps, ps, (const char *)keep, pd, is, is, is, 1, id};
        job->drop_run(&c, &p, n);
    } else {
        cdrop_apply_run(job, ps, is, pd, id, keep, 1, n);
    }
}

/* Many small slices (views with small trailing axes) are permuted by one table, `from`, of
 * where byte j of a slice comes from.  Byte by byte, that loop took half of the time of a
 * (2**20, 8, 2).transpose(0, 2, 1) view; slices of 2 .. 64 bytes (a power of two) are permuted
 * here 64 bytes at a time with byte shuffles (SSSE3's pshufb, aarch64's tbl), every 64-byte
 * chunk by the same permutation.  Returns the number of slices done (the rest: the table loop);
 * slice i of `keep` starts at keep + i * m. */
#if CDROP_HAVE_X86_SIMD
#include <tmmintrin.h>
#define CDROP_HAVE_SHUFFLE 1
static __attribute__((target("ssse3"))) int64_t cdrop_shuffle_slices_ssse3(uint8_t *out,
                                                                           const uint8_t *keep,
                                                                           const uint8_t *perm64,
                                                                           int64_t nch)
{
    /* mask[o][v]: bytes of output vector o taken from input vector v, others 0x80 (zero) */
    uint8_t mb[4][4][16];
    int used[4][4];
    for (int o = 0; o < 4; o++)
        for (int v = 0; v < 4; v++) {
            used[o][v] = 0;
            for (int b = 0; b < 16; b++) {
                const int f = perm64[16 * o + b];
                mb[o][v][b] = (uint8_t)(f / 16 == v ? f % 16 : 0x80);
                used[o][v] |= f / 16 == v;
            }
        }
    __m128i mask[4][4];
    for (int o = 0; o < 4; o++)
        for (int v = 0; v < 4; v++)
            mask[o][v] = _mm_loadu_si128((const __m128i *)(const void *)mb[o][v]);
    if (used[0][0] && !used[0][1] && !used[0][2] && !used[0][3] &&
        memcmp(mb[0][0], mb[1][1], 16) == 0 && memcmp(mb[0][0], mb[2][2], 16) == 0 &&
        memcmp(mb[0][0], mb[3][3], 16) == 0) {
        /* slices of at most 16 bytes: every 16-byte vector by the same shuffle of its own bytes
         * (the general loop's 16 tests and ors per chunk took 0.4x np.multiply's time of a
         * (2**20, 8, 2).transpose(0, 2, 1) view) */
        for (int64_t v = 0; v < 4 * nch; v++)
            _mm_storeu_si128(
                (__m128i *)(void *)(out + 16 * v),
                _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(const void *)(keep + 16 * v)),
                                 mask[0][0]));
        return nch;
    }
    for (int64_t c = 0; c < nch; c++) {
        const uint8_t *p = keep + 64 * c;
        const __m128i in[4] = {_mm_loadu_si128((const __m128i *)(const void *)p),
                               _mm_loadu_si128((const __m128i *)(const void *)(p + 16)),
                               _mm_loadu_si128((const __m128i *)(const void *)(p + 32)),
                               _mm_loadu_si128((const __m128i *)(const void *)(p + 48))};
        for (int o = 0; o < 4; o++) {
            __m128i r = _mm_setzero_si128();
            for (int v = 0; v < 4; v++)
                if (used[o][v])
                    r = _mm_or_si128(r, _mm_shuffle_epi8(in[v], mask[o][v]));
            _mm_storeu_si128((__m128i *)(void *)(out + 64 * c + 16 * o), r);
        }
    }
    return nch;
}
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define CDROP_HAVE_SHUFFLE 1
#else
#define CDROP_HAVE_SHUFFLE 0
#endif

static int64_t cdrop_shuffle_slices(uint8_t *out, const uint8_t *keep, const int32_t *from,
                                    int64_t m, int64_t n0)
{
#if CDROP_HAVE_SHUFFLE
    if (m < 2 || m > 64 || (m & (m - 1)) != 0 || n0 * m < 64)
        return 0;
    uint8_t perm64[64]; /* byte j of a chunk comes from byte perm64[j] of it */
    for (int j = 0; j < 64; j++)
        perm64[j] = (uint8_t)(j / m * m + from[j % m]);
    const int64_t nch = n0 * m / 64;
#if CDROP_HAVE_X86_SIMD
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("ssse3"))
        return 0;
    cdrop_shuffle_slices_ssse3(out, keep, perm64, nch);
#else
    const uint8x16_t idx[4] = {vld1q_u8(perm64), vld1q_u8(perm64 + 16), vld1q_u8(perm64 + 32),
                               vld1q_u8(perm64 + 48)};
    for (int64_t c = 0; c < nch; c++) {
        const uint8x16x4_t in = vld1q_u8_x4(keep + 64 * c);
        for (int o = 0; o < 4; o++)
            vst1q_u8(out + 64 * c + 16 * o, vqtbl4q_u8(in, idx[o]));
    }
#endif
    return nch * 64 / m;
#else
    (void)out, (void)keep, (void)from, (void)m, (void)n0;
    return 0;
#endif
}

#ifndef CDROP_AHEAD   /* overridable with -D for measurements (0: no software prefetch) */
#define CDROP_AHEAD 4 /* runs */
#endif

/* Prefetch the cache lines of a run that starts at p with byte stride st and spans `span` bytes
 * (from its lowest to its highest byte). */
static inline void cdrop_prefetch(const char *p, int64_t st, int64_t span, int write)
{
    const char *lo = st < 0 ? p - (span - 1) : p;
    for (int64_t b = 0; b < span + 63; b += 64) {
        if (write)
            CDROP_PREFETCH(lo + b, 1);
        else
            CDROP_PREFETCH(lo + b, 0);
    }
}

typedef struct {
    int64_t n, s, d, k; /* length, source and destination byte strides, keep stride */
} cdrop_axis;

/* Tile b of the walk, with scratch of CDROP_SCRATCH_BYTES. */
static void cdrop_tile(const cdrop_job *job, const cdrop_tiles *t, int64_t b, uint8_t *scratch)
{
    const int nd = job->ndim;
    const int64_t ic = b % t->tc, ir = (b / t->tc) % t->tr, iq = (b / t->tc / t->tr) % t->tq;
    const int64_t u = b / t->tc / t->tr / t->tq;
    const int64_t q0 = iq * t->k, r0 = ir * t->nr, c0 = ic * t->cw;
    const int64_t kq = t->Q - q0 < t->k ? t->Q - q0 : t->k;
    const int64_t nr = t->R - r0 < t->nr ? t->R - r0 : t->nr;
    const int64_t cn = t->C - c0 < t->cw ? t->C - c0 : t->cw;
    const int64_t sq = nd >= 3 ? job->sstr[nd - 3] : 0, dq = nd >= 3 ? job->dstr[nd - 3] : 0;
    const int64_t sr = job->sstr[nd - 2], dr = job->dstr[nd - 2];
    const int64_t sc = job->sstr[nd - 1], dc = job->dstr[nd - 1];
    /* byte offsets of the tile's first element: outer index u (C order), then q0, r0, c0 */
    int64_t so = q0 * sq + r0 * sr + c0 * sc, dof = q0 * dq + r0 * dr + c0 * dc, rem = u;
    for (int d = nd - 4; d >= 0; d--) {
        const int64_t id = rem % job->shape[d];
        rem /= job->shape[d];
        so += id * job->sstr[d];
        dof += id * job->dstr[d];
    }
    /* the keep bytes, index order: (q, r, c) at q * kqs + r * krs + c */
    uint8_t *keep = scratch, *perm = scratch + CDROP_TILE_BYTES;
    const int64_t first = ((u * t->Q + q0) * t->R + r0) * t->C + c0; /* its logical index */
    /* rows of a multiple of 512 bytes get a padded pitch: read down a column of the tile, they
     * would otherwise fall into a few L1 sets (CDROP_TILE_FILL leaves room for the padding) */
    const int64_t rows = kq * nr, pitch = (cn % 512 == 0 && rows > 1) ? cn + 64 : cn;
    const int64_t M = t->R * t->C;
    if (cn == t->C) {
        if (nr == t->R || kq == 1) /* one range of the stream */
            cdrop_keep_bytes(job, keep, first, rows * cn);
        else /* one per matrix */
            for (int64_t q = 0; q < kq; q++)
                cdrop_keep_bytes(job, keep + q * nr * cn, first + q * M, nr * cn);
        if (pitch != cn)
            for (int64_t rr = rows - 1; rr > 0; rr--)
                memmove(keep + rr * pitch, keep + rr * cn, (size_t)cn);
    } else {
        for (int64_t q = 0; q < kq; q++)
            for (int64_t r = 0; r < nr; r++)
                cdrop_keep_bytes(job, keep + (q * nr + r) * pitch, first + q * M + r * t->C, cn);
    }
    const int64_t kqs = nr * pitch, krs = pitch;
    /* the three axes, outermost first, sorted by the source's strides (stable: ties and
     * length-1 axes keep the logical order) */
    cdrop_axis ax[3] = {{kq, sq, dq, kqs}, {nr, sr, dr, krs}, {cn, sc, dc, 1}};
    for (int i = 1; i < 3; i++)
        for (int j = i; j > 0; j--) {
            const cdrop_axis *a = &ax[j - 1], *z = &ax[j];
            const int64_t wa = a->n == 1 ? INT64_MAX : cdrop_abs64(a->s);
            const int64_t wz = z->n == 1 ? INT64_MAX : cdrop_abs64(z->s);
            if (wz > wa) {
                const cdrop_axis tmp = ax[j - 1];
                ax[j - 1] = ax[j];
                ax[j] = tmp;
            }
        }
    /* the keep bytes in that order, dense: perm[(i0 * n1 + i1) * n2 + i2] */
    const int64_t n0 = ax[0].n, n1 = ax[1].n, n2 = ax[2].n;
    const uint8_t *kp = keep;
    const int dense =
        (n2 == 1 || ax[2].k == 1) && (n1 == 1 || ax[1].k == n2) && (n0 == 1 || ax[0].k == n1 * n2);
    if (!dense) {
        kp = perm;
        const int64_t m = n1 * n2;
        if (n0 > 1 && m <= CDROP_TABLE_MAX && (n1 < 8 || n2 < 8 || m <= 64 || ax[1].k != 1)) {
            /* many small slices (the views with small trailing axes): one table of where each
             * byte of a slice comes from, in the scratch's spare end */
            int32_t *from = (int32_t *)(void *)(perm + CDROP_TILE_FILL);
            for (int64_t i1 = 0, j = 0; i1 < n1; i1++)
                for (int64_t i2 = 0; i2 < n2; i2++)
                    from[j++] = (int32_t)(i1 * ax[1].k + i2 * ax[2].k);
            const int64_t done = ax[0].k == m ? cdrop_shuffle_slices(perm, keep, from, m, n0) : 0;
            for (int64_t i0 = done; i0 < n0; i0++) {
                const uint8_t *in = keep + i0 * ax[0].k;
                uint8_t *o = perm + i0 * m;
                for (int64_t j = 0; j < m; j++)
                    o[j] = in[from[j]];
            }
        } else if (n2 > 1 && n1 > 1 && ax[1].k == 1) {
            for (int64_t i0 = 0; i0 < n0; i0++)
                cdrop_transpose_keep(perm + i0 * n1 * n2, keep + i0 * ax[0].k, n1, n2, ax[2].k);
        } else {
            uint8_t *o = perm;
            for (int64_t i0 = 0; i0 < n0; i0++)
                for (int64_t i1 = 0; i1 < n1; i1++) {
                    const uint8_t *in = keep + i0 * ax[0].k + i1 * ax[1].k;
                    for (int64_t i2 = 0; i2 < n2; i2++)
                        *o++ = in[i2 * ax[2].k];
                }
        }
    }
    /* apply in memory order, inner axes merged into runs where both arrays allow */
    int64_t m0 = n0, m1 = n1, m2 = n2;
    if (m1 > 1 && ax[1].s == m2 * ax[2].s && ax[1].d == m2 * ax[2].d) {
        m2 *= m1;
        m1 = 1;
    }
    if (m1 == 1 && m0 > 1 && ax[0].s == m2 * ax[2].s && ax[0].d == m2 * ax[2].d) {
        m2 *= m0;
        m0 = 1;
    }
    const char *ps = (const char *)job->args.src + so;
    char *pd = (char *)job->args.dst + dof;
    /* Runs of a few cache lines each, far apart (the columns of a Fortran array), defeat the
     * hardware prefetchers, which follow one page at a time: the memory of the run CDROP_AHEAD
     * runs ahead is prefetched in software. */
    const int64_t span_s = (m2 - 1) * cdrop_abs64(ax[2].s) + 1;
    const int64_t span_d = (m2 - 1) * cdrop_abs64(ax[2].d) + 1;
    const int64_t nruns = m0 * m1;
    const int fetch = CDROP_AHEAD > 0 && nruns > 1 && span_s >= 64 && span_s <= CDROP_PREFETCH_MAX;
    for (int64_t i0 = 0; i0 < m0; i0++)
        for (int64_t i1 = 0; i1 < m1; i1++) {
            const int64_t j = i0 * m1 + i1 + CDROP_AHEAD;
            if (fetch && j < nruns) {
                cdrop_prefetch(ps + (j / m1) * ax[0].s + (j % m1) * ax[1].s, ax[2].s, span_s, 0);
                if (pd != ps)
                    cdrop_prefetch(pd + (j / m1) * ax[0].d + (j % m1) * ax[1].d, ax[2].d, span_d,
                                   1);
            }
            cdrop_apply_keep(job, ps + i0 * ax[0].s + i1 * ax[1].s, ax[2].s,
                             pd + i0 * ax[0].d + i1 * ax[1].d, ax[2].d, kp + (i0 * m1 + i1) * m2,
                             m2);
        }
}

void cdrop_walk_bands(const cdrop_job *job, int64_t band_lo, int64_t band_hi, uint8_t *scratch)
{
    cdrop_tiles t;
    cdrop_tile_geom(job, &t);
    for (int64_t b = band_lo; b < band_hi; b++) {
        if (t.tall)
            cdrop_tall_band(job, t.nr, b, scratch);
        else
            cdrop_tile(job, &t, b, scratch);
    }
}

/* ---- slabs ---- */

/* The slab walk (CDROP_WALK_SLABS).  The array is seen as (outer..., A, B, C) with contiguous
 * rows of C elements, and the rows of consecutive a are closer in memory than those of
 * consecutive b: (256, 128, 128).transpose(1, 0, 2) is a Fortran-like (a, b) array of C rows.
 * The strided walk visits it in logical order, a row of 512 bytes every 64 KiB, which the
 * hardware prefetchers do not follow (2.2-2.5x np.multiply with software prefetch).  Here the
 * rows are visited in memory order instead: b outer, a inner.  Each a is a contiguous range of
 * the stream (its slab of B * C elements) that advances by C per b, so its keep bytes come from
 * its own cursor (job->resume, the resumable keep bytes): a tile is the rows of na a's by J b's,
 * made a's slab segment at a time (J * C keep bytes per call), then applied b by b, each row of
 * C elements a contiguous run of the instruction set's drop_run.  A piece is a band of at most
 * CDROP_SLAB_CURSORS a's by a segment of b's (a whole number of stream blocks of each slab where
 * the shape allows, so that a piece's first tile seeds blocks rather than skipping into them).
 * The scratch holds the tile's keep bytes, then the cursors' lanes and steps. */
#define CDROP_SLAB_CURSORS 256
#define CDROP_SLAB_KEEP (128 * 1024) /* keep bytes of a tile, at least: J * C >= 512 */
/* two tiles' keep bytes (one applied while the next is made), the cursors, a row's keep */
#define CDROP_SLAB_LANES (2 * CDROP_SLAB_KEEP)
#define CDROP_SLAB_NEXT (CDROP_SLAB_LANES + CDROP_SLAB_CURSORS * CDROP_CURSOR_BYTES)
#define CDROP_SLAB_ROW (CDROP_SLAB_NEXT + CDROP_SLAB_CURSORS * 8)
_Static_assert(CDROP_SLAB_ROW + CDROP_SLAB_KEEP <= CDROP_SCRATCH_BYTES, "slabs fit");

typedef struct {
    int64_t U, A, B, C; /* outer indices, a's, b's, row length */
    int64_t na, ta;     /* a's per band, bands */
    int64_t bs, tb;     /* b's per piece, pieces along B */
    int64_t J;          /* b's per tile */
} cdrop_slabs;

static void cdrop_slab_geom(const cdrop_job *job, cdrop_slabs *t)
{
    const int nd = job->ndim;
    t->C = job->shape[nd - 1];
    t->B = job->shape[nd - 2];
    t->A = job->shape[nd - 3];
    t->U = 1;
    for (int d = 0; d < nd - 3; d++)
        t->U *= job->shape[d];
    /* a's per band: their cursors, and a row of C keep bytes each, must fit */
    const int64_t na =
        CDROP_SLAB_KEEP / t->C < CDROP_SLAB_CURSORS ? CDROP_SLAB_KEEP / t->C : CDROP_SLAB_CURSORS;
    t->na = t->A < na ? t->A : na;
    t->ta = (t->A + t->na - 1) / t->na;
    /* b's per piece: whole blocks of the stream per slab where C allows (g b's make one), at
     * least a block; else at least 4 blocks' worth, so the seeks (<= 255 steps) stay small */
    int64_t g = (int64_t)CDROP_BLOCK;
    for (int64_t c = t->C; (c & 1) == 0 && g > 1; c >>= 1)
        g >>= 1;
    int64_t bs = g;
    while (bs * t->C < (int64_t)CDROP_BLOCK)
        bs += g;
    if (bs > t->B)
        bs = (4 * (int64_t)CDROP_BLOCK + t->C - 1) / t->C;
    t->bs = bs < t->B ? bs : t->B;
    t->tb = (t->B + t->bs - 1) / t->bs;
    const int64_t J = CDROP_SLAB_KEEP / (t->na * t->C);
    t->J = J < 1 ? 1 : J > t->bs ? t->bs : J;
}

/* Contiguous rows of at most CDROP_PREFETCH_MAX bytes (longer ones the strided walk streams),
 * a closer in memory than b in both arrays, slabs of at least a block (each slab's first tile
 * may seek), and the resumable producer.  In place, only rows shorter than CDROP_SLAB_INPLACE
 * bytes: for longer ones the strided walk's row prefetch hides the memory better (interleaved,
 * (256, 256, 256).transpose(1, 0, 2) in place: float32 1.33-1.55x np.multiply strided against
 * 1.55-1.75x in slabs, float64 1.06-1.18x against 1.28-1.35x), while out of place the slabs
 * win at every row length measured (512 B to 2 KiB). */
#define CDROP_SLAB_INPLACE 1024
static int cdrop_slab_layout(const cdrop_job *job)
{
    const int nd = job->ndim;
    const int64_t isz = cdrop_op_bytes(job->op);
    if (nd < 3 || !job->resume || !job->drop_run)
        return 0;
    const int64_t C = job->shape[nd - 1], B = job->shape[nd - 2];
    if (job->args.src == job->args.dst && C * isz >= CDROP_SLAB_INPLACE)
        return 0;
    return job->sstr[nd - 1] == isz && job->dstr[nd - 1] == isz && C * isz <= CDROP_PREFETCH_MAX &&
           cdrop_abs64(job->sstr[nd - 3]) < cdrop_abs64(job->sstr[nd - 2]) &&
           cdrop_abs64(job->dstr[nd - 3]) < cdrop_abs64(job->dstr[nd - 2]) &&
           B * C >= (int64_t)CDROP_BLOCK;
}

int64_t cdrop_slab_count(const cdrop_job *job)
{
    cdrop_slabs t;
    cdrop_slab_geom(job, &t);
    return t.U * t.ta * t.tb;
}

/* The keep bytes of a's [lo, hi) of the tile of b's [j0, j0 + jn) of a piece, each from its
 * a's cursor into a row of the scratch, then scattered into the tile in memory order: row
 * (j, a) at keep + (j * na + a) * C, so that the rows of one b are one run where the arrays'
 * rows of consecutive a's are adjacent. */
static void cdrop_slab_make(const cdrop_job *job, const cdrop_slabs *t, int64_t first, int64_t na,
                            int64_t j0, int64_t jn, int64_t lo, int64_t hi, uint8_t *keep,
                            uint8_t *scratch)
{
    uint8_t *lanes = scratch + CDROP_SLAB_LANES, *row = scratch + CDROP_SLAB_ROW;
    uint64_t *next = (uint64_t *)(void *)(scratch + CDROP_SLAB_NEXT);
    const int64_t C = t->C;
    for (int64_t a = lo; a < hi; a++) {
        cdrop_args k = job->args;
        k.dst = jn > 1 ? row : keep + a * C;
        k.g0 = job->args.g0 + (uint64_t)(first + a * t->B * C + j0 * C);
        job->resume(&k, 0, jn * C, lanes + a * CDROP_CURSOR_BYTES, next + a);
        for (int64_t j = 0; j < jn && jn > 1; j++)
            memcpy(keep + (j * na + a) * C, row + j * C, (size_t)C);
    }
}

/* Slab piece b: its tiles in order.  A tile is applied b by b while the next tile's keep bytes
 * are made, a few a's after each b: the generator's work then fills the time that the rows'
 * memory takes, where a phase of its own left the memory idle. */
static void cdrop_slab_piece(const cdrop_job *job, const cdrop_slabs *t, int64_t b,
                             uint8_t *scratch)
{
    const int nd = job->ndim;
    const int64_t ib = b % t->tb, ia = (b / t->tb) % t->ta, u = b / t->tb / t->ta;
    const int64_t a0 = ia * t->na, b0 = ib * t->bs;
    const int64_t na = t->A - a0 < t->na ? t->A - a0 : t->na;
    const int64_t bn = t->B - b0 < t->bs ? t->B - b0 : t->bs;
    const int64_t sa = job->sstr[nd - 3], da = job->dstr[nd - 3];
    const int64_t sb = job->sstr[nd - 2], db = job->dstr[nd - 2];
    const int64_t sc = job->sstr[nd - 1], dc = job->dstr[nd - 1], C = t->C;
    int64_t so = a0 * sa + b0 * sb, dof = a0 * da + b0 * db, rem = u;
    for (int d = nd - 4; d >= 0; d--) {
        const int64_t id = rem % job->shape[d];
        rem /= job->shape[d];
        so += id * job->sstr[d];
        dof += id * job->dstr[d];
    }
    const char *ps = (const char *)job->args.src + so;
    char *pd = (char *)job->args.dst + dof;
    /* the rows of one b as one run: consecutive a's adjacent in both arrays */
    const int merged = sa == C * sc && da == C * dc;
    uint8_t *buf[2] = {scratch, scratch + CDROP_SLAB_KEEP};
    uint64_t *next = (uint64_t *)(void *)(scratch + CDROP_SLAB_NEXT);
    const int64_t first = ((u * t->A + a0) * t->B + b0) * C; /* logical index of (a0, b0) */
    for (int64_t a = 0; a < na; a++)
        next[a] = CDROP_NO_STEP;
    cdrop_slab_make(job, t, first, na, 0, bn < t->J ? bn : t->J, 0, na, buf[0], scratch);
    for (int64_t j0 = 0, x = 0; j0 < bn; j0 += t->J, x = !x) {
        const int64_t jn = bn - j0 < t->J ? bn - j0 : t->J;
        const int64_t y0 = j0 + jn, yn = bn - y0 < t->J ? bn - y0 : t->J; /* the next tile */
        int64_t made = 0;
        for (int64_t j = 0; j < jn; j++) {
            const uint8_t *kp = buf[x] + j * na * C;
            const char *rs = ps + (j0 + j) * sb;
            char *rd = pd + (j0 + j) * db;
            if (merged)
                cdrop_apply_keep(job, rs, sc, rd, dc, kp, na * C);
            else
                for (int64_t a = 0; a < na; a++)
                    cdrop_apply_keep(job, rs + a * sa, sc, rd + a * da, dc, kp + a * C, C);
            if (yn > 0) {
                const int64_t upto = (j + 1) * na / jn;
                cdrop_slab_make(job, t, first, na, y0, yn, made, upto, buf[!x], scratch);
                made = upto;
            }
        }
    }
}

void cdrop_walk_slabs(const cdrop_job *job, int64_t lo, int64_t hi, uint8_t *scratch)
{
    cdrop_slabs t;
    cdrop_slab_geom(job, &t);
    for (int64_t b = lo; b < hi; b++)
        cdrop_slab_piece(job, &t, b, scratch);
}
