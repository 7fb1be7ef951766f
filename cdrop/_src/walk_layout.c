/*
 * walk_layout.c -- arrays that are not contiguous: the strided walk (any strides, logical C
 * order) and the band walk (rows closer in memory than columns: Fortran order, transposes).
 * Both take the keep bytes of a contiguous range of the stream from the kernel table's
 * CDROP_OP_U8 kernel into caller-provided scratch, then apply them with the scalar
 * select-and-scale of the dtype.  The keep decision of logical element i is the one of global
 * index g0 + i, so any layout gets the mask of its C-ordered copy.  Pure C, no Python.
 */
#include "consumers_scalar.h"
#include "kernels.h"

/* Elements [0, n) of a run: byte strides is/id, element r's keep flag keep[r * ks]. */
static void cdrop_apply_run(const cdrop_job *job, const char *ps, int64_t is, char *pd, int64_t id,
                            const uint8_t *keep, int64_t ks, int64_t n)
{
    switch (job->op) {
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

/* Logical elements [lo, hi), in pieces that end at block boundaries of the stream (a piece that
 * started inside a block would seed that block again and skip up to 255 steps).  The shape and
 * strides were merged by the caller, so the contiguous kernels take every array that is
 * contiguous after merging and this walk sees only real strides. */
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
    for (int64_t a = lo, m; a < hi; a += m) {
        m = cdrop_in_block(job->args.g0 + (uint64_t)a, hi - a);
        cdrop_keep_bytes(job, scratch, a, m);
        for (int64_t k = 0; k < m;) {
            /* a run along the last axis, then a carry into the outer ones */
            const int64_t run = inner - idx[last] < m - k ? inner - idx[last] : m - k;
            cdrop_apply_run(job, src + so, is, dst + dof, id, scratch + k, 1, run);
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

/* The band walk.  Walking a Fortran-ordered array in logical C order touches a new cache line
 * for every element, and with a power-of-two row pitch the lines even collide in the same cache
 * sets (a Fortran 4096 x 4096 float32 array took 200 ms against 2.4 ms in C order).  The array
 * is seen as (outer..., R, C) with the last two logical axes; a band is up to CDROP_BAND_ROWS
 * consecutive rows of one outer index, cut into tiles of columns whose keep bytes fit the
 * scratch.  Each row segment of a tile is a contiguous range of the stream, and the tile is then
 * visited column by column, rows innermost, which follows memory when the row stride is the
 * small one.  The keep rows are stored with a pitch that is not a multiple of 4 KiB, so that
 * reading them down a column does not hit one cache set.  Measured, float32 in place on one
 * thread: Fortran 4096 x 4096 200 -> 50 ms (the rest is the transposed access: NumPy's own
 * F -> C copy of it takes 130 ms).  Bands are numbered o * ceil(R / rows) + band. */
#define CDROP_BAND_ROWS 32
#define CDROP_BAND_BYTES CDROP_SCRATCH_BYTES

/* Rows per band: at least CDROP_BAND_ROWS, and as many whole rows as the scratch holds when rows
 * are short (a Fortran (2^20, 16) array has 16-element rows: 32-row bands would visit each
 * column, 4 MiB apart, for 32 elements only). */
static int64_t cdrop_band_rows(int64_t C)
{
    return (C > 0 && C * CDROP_BAND_ROWS < CDROP_BAND_BYTES) ? CDROP_BAND_BYTES / C
                                                             : CDROP_BAND_ROWS;
}

int64_t cdrop_band_count(const cdrop_job *job)
{
    int64_t outer = 1;
    const int64_t rows = cdrop_band_rows(job->shape[job->ndim - 1]);
    for (int d = 0; d < job->ndim - 2; d++)
        outer *= job->shape[d];
    return outer * ((job->shape[job->ndim - 2] + rows - 1) / rows);
}

int cdrop_layout_walk(int ndim, const int64_t *sstr, const int64_t *dstr)
{
    if (ndim < 2)
        return CDROP_WALK_STRIDED;
    const int64_t sr = sstr[ndim - 2] < 0 ? -sstr[ndim - 2] : sstr[ndim - 2];
    const int64_t sc = sstr[ndim - 1] < 0 ? -sstr[ndim - 1] : sstr[ndim - 1];
    const int64_t dr = dstr[ndim - 2] < 0 ? -dstr[ndim - 2] : dstr[ndim - 2];
    const int64_t dc = dstr[ndim - 1] < 0 ? -dstr[ndim - 1] : dstr[ndim - 1];
    return (sr < sc && dr < dc) ? CDROP_WALK_BANDS : CDROP_WALK_STRIDED;
}

/* Band b: rows r0 .. r0 + nr - 1 of outer index o, in tiles of cb columns. */
static void cdrop_band(const cdrop_job *job, int64_t b, uint8_t *keep)
{
    const int nd = job->ndim;
    const int64_t R = job->shape[nd - 2], C = job->shape[nd - 1];
    const int64_t sr = job->sstr[nd - 2], sc = job->sstr[nd - 1];
    const int64_t dr = job->dstr[nd - 2], dc = job->dstr[nd - 1];
    const int64_t rows = cdrop_band_rows(C), bands_per_outer = (R + rows - 1) / rows;
    const int64_t o = b / bands_per_outer, r0 = (b % bands_per_outer) * rows;
    const int64_t nr = R - r0 < rows ? R - r0 : rows;
    /* byte offsets of the outer index o (C order over the first ndim - 2 axes) */
    int64_t so = 0, dof = 0, rem = o;
    for (int d = nd - 3; d >= 0; d--) {
        const int64_t id = rem % job->shape[d];
        rem /= job->shape[d];
        so += id * job->sstr[d];
        dof += id * job->dstr[d];
    }
    const int64_t row0 = o * R + r0; /* logical row of the band's top */
    /* Whole rows in one range of the stream when they fit and their pitch C is not a multiple of
     * 4 KiB; otherwise tiles of columns, one range per row segment, rows stored with a padded
     * pitch.  Not whole: then nr <= CDROP_BAND_ROWS (cdrop_band_rows), so cb >= 1984. */
    const int whole = nr * C <= CDROP_BAND_BYTES && (C % 4096 != 0 || nr == 1);
    const int64_t cb =
        whole ? C : (CDROP_BAND_BYTES / nr - 64 < C ? CDROP_BAND_BYTES / nr - 64 : C);
    for (int64_t c0 = 0; c0 < C; c0 += cb) {
        const int64_t cn = C - c0 < cb ? C - c0 : cb;
        const int64_t pitch = whole ? C : cn + 64;
        if (whole)
            cdrop_keep_bytes(job, keep, row0 * C, nr * C);
        else
            for (int64_t r = 0; r < nr; r++)
                cdrop_keep_bytes(job, keep + r * pitch, (row0 + r) * C + c0, cn);
        const char *ps = (const char *)job->args.src + so + r0 * sr + c0 * sc;
        char *pd = (char *)job->args.dst + dof + r0 * dr + c0 * dc;
        for (int64_t c = 0; c < cn; c++) /* down each column of the tile: rows are adjacent */
            cdrop_apply_run(job, ps + c * sc, sr, pd + c * dc, dr, keep + c, pitch, nr);
    }
}

void cdrop_walk_bands(const cdrop_job *job, int64_t band_lo, int64_t band_hi, uint8_t *scratch)
{
    for (int64_t b = band_lo; b < band_hi; b++)
        cdrop_band(job, b, scratch);
}
