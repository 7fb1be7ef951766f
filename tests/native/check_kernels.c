/*
 * check_kernels.c -- every kernel of cdrop/_src, outside Python, against committed digests.
 *
 *   check_kernels [DIGESTS]           check every kernel path this CPU has against DIGESTS
 *   check_kernels --write [DIGESTS]   rewrite DIGESTS (after checking that all paths agree)
 *   (DIGESTS defaults to tests/native/digests.txt)
 *
 * Why: the stream is the contract (docs/rng.md), and an architecture without a machine here
 * (aarch64) can only be checked under emulation, where Python and NumPy are not at hand.  This
 * program is built from the package's own C sources (tests/native/build.sh: no Python, no
 * OpenMP) for the host or for aarch64 (tests/native/run_aarch64.sh runs it under qemu-user), and
 * runs, serially, for every kernel path that the build and the CPU have: every entry of the
 * kernel table, the dropout family's variant runs (walk_variant.c), the normal producer and the
 * strided and band walks (walk_layout.c), the block walk (walk_block.c), over a grid of (seed, offset, n, p) with block edges,
 * odd lengths, offsets near 2**64 and both the exact and the tie paths.  Each output is reduced
 * to a 64-bit digest; all paths must give the same digest (a cross-path bit-identity check) and
 * it must equal the committed one, made on x86.  tests/test_native_check.py recomputes some of
 * the cases with tests/reference.py (the NumPy oracle) and the installed package, so that the
 * file cannot drift from the Python-visible stream.  Exit status: 0 all equal, 1 a difference
 * (the failing case names are printed), 2 bad usage or an unreadable digest file.
 *
 * Inputs are deterministic functions of (operand, index) (in_word), mixing ordinary values with
 * random bit patterns (NaN of any payload, infinities, subnormals, values whose product
 * overflows float16 or bfloat16) and a table of special values.  A result is digested in logical
 * C order, so a layout case equals the contiguous case of the same (seed, offset, n, p).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* ---- the kernel paths: all that platform.h names, in any numbering ---- */
static const struct {
    int id;
    const char *name;
} PATHS[] = {
#ifdef CDROP_PATH_SCALAR
    {CDROP_PATH_SCALAR, "scalar"},
#endif
    {CDROP_PATH_PORTABLE, "portable"},
    {CDROP_PATH_AVX2, "avx2"},
    {CDROP_PATH_AVX512, "avx512"},
};
#define N_PATHS ((int)(sizeof PATHS / sizeof PATHS[0]))

/* ---- digests: FNV-1a over little-endian 64-bit words (the tail zero-padded), then the length;
 * word-wise so that the Python twin (tests/test_native_check.py) is fast ---- */
#define FNV_OFFSET UINT64_C(0xCBF29CE484222325)
#define FNV_PRIME UINT64_C(0x100000001B3)

static uint64_t digest(const void *p, size_t nbytes)
{
    const unsigned char *b = (const unsigned char *)p;
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < nbytes; i += 8) {
        uint64_t w = 0;
        for (size_t k = 0; k < 8 && i + k < nbytes; k++)
            w |= (uint64_t)b[i + k] << (8 * k);
        h = (h ^ w) * FNV_PRIME;
    }
    return (h ^ (uint64_t)nbytes) * FNV_PRIME;
}

/* ---- inputs ---- */
enum { SALT_X = 1, SALT_R = 2, SALT_B = 3, SALT_K = 4 };

static uint64_t in_word(uint64_t salt, uint64_t i) { return cdrop_hash64((salt << 40) ^ i); }

static const uint32_t SPECIAL32[] = {0x00000000,
                                     0x80000000,
                                     0x7F800000,
                                     0xFF800000,
                                     0x7FC00000,
                                     0x7FC12345,
                                     0xFF800001, /* a negative signalling NaN */
                                     0x00000001,
                                     0x007FFFFF,
                                     0x00800000,
                                     0x7F7FFFFF,
                                     0x477FE000 /* 65504 */,
                                     0x477FF000 /* 65520: float16's rounding edge */,
                                     0x7F7F0000 /* bfloat16's largest */,
                                     0x7F7F8000 /* rounds to bfloat16 inf */,
                                     0x3F800000,
                                     0xBF800000};
static const uint64_t SPECIAL64[] = {UINT64_C(0),
                                     UINT64_C(0x8000000000000000),
                                     UINT64_C(0x7FF0000000000000),
                                     UINT64_C(0xFFF0000000000000),
                                     UINT64_C(0x7FF8000000000000),
                                     UINT64_C(0x7FF8000012345678),
                                     UINT64_C(0xFFF0000000000001),
                                     UINT64_C(1),
                                     UINT64_C(0x000FFFFFFFFFFFFF),
                                     UINT64_C(0x0010000000000000),
                                     UINT64_C(0x7FEFFFFFFFFFFFFF),
                                     UINT64_C(0x3FF0000000000000),
                                     UINT64_C(0xBFF0000000000000),
                                     UINT64_C(0x47EFFFFFE0000000)};
static const uint16_t SPECIAL16[] = {0x0000, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7E15,
                                     0xFD01, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7BFE,
                                     0x77FF, 0x7800, 0x3C00, 0xBC00};
static const uint16_t SPECIALBF[] = {0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x7FC5,
                                     0xFF81, 0x0001, 0x007F, 0x0080, 0x7F7F, 0x7F00,
                                     0x3F80, 0xBF80, 0x477F, 0x4780};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Element i of operand `salt`, as the bits of each dtype: 1 in 8 a special value, 2 (halves:
 * 3) in 8 a random bit pattern, the rest ordinary numbers within a few binades of 1. */
static uint32_t in_f32(uint64_t salt, uint64_t i)
{
    const uint64_t w = in_word(salt, i);
    const uint32_t r = (uint32_t)(w >> 32), sel = (uint32_t)(w & 7);
    if (sel == 0)
        return SPECIAL32[(w >> 3) % NELEM(SPECIAL32)];
    if (sel <= 2)
        return r;
    return (r & 0x807FFFFFu) | ((120u + (uint32_t)((w >> 8) % 15)) << 23);
}

static uint64_t in_f64(uint64_t salt, uint64_t i)
{
    const uint64_t w = in_word(salt, i), r = cdrop_hash64(w);
    const uint32_t sel = (uint32_t)(w & 7);
    if (sel == 0)
        return SPECIAL64[(w >> 3) % NELEM(SPECIAL64)];
    if (sel <= 2)
        return r;
    return (r & UINT64_C(0x800FFFFFFFFFFFFF)) | ((UINT64_C(1016) + (w >> 8) % 15) << 52);
}

static uint16_t in_half(uint64_t salt, uint64_t i, int bf16)
{
    const uint64_t w = in_word(salt, i);
    const uint16_t r = (uint16_t)(w >> 48);
    const uint32_t sel = (uint32_t)(w & 7), e = (uint32_t)((w >> 8) % 15);
    if (sel == 0)
        return bf16 ? SPECIALBF[(w >> 3) % NELEM(SPECIALBF)]
                    : SPECIAL16[(w >> 3) % NELEM(SPECIAL16)];
    if (sel <= 3)
        return r;
    return bf16 ? (uint16_t)((r & 0x807Fu) | ((120u + e) << 7))
                : (uint16_t)((r & 0x83FFu) | ((8u + e) << 10));
}

/* dtypes, by the variant walk's numbering */
static const int ITEMSIZE[CDROP_N_DT] = {4, 8, 2, 2};
static const char *const DT_NAME[CDROP_N_DT] = {"f32", "f64", "f16", "bf16"};

/* Element i of operand `salt` in dtype dt, stored at p. */
static void put_elem(char *p, int dt, uint64_t salt, uint64_t i)
{
    if (dt == CDROP_DT_F32) {
        const uint32_t v = in_f32(salt, i);
        memcpy(p, &v, 4);
    } else if (dt == CDROP_DT_F64) {
        const uint64_t v = in_f64(salt, i);
        memcpy(p, &v, 8);
    } else {
        const uint16_t v = in_half(salt, i, dt == CDROP_DT_BF16);
        memcpy(p, &v, 2);
    }
}

/* A contiguous operand of n elements, 64-byte aligned plus `skew` bytes. */
static char *fill(int dt, uint64_t salt, int64_t n, size_t skew, void **base)
{
    const size_t isz = (size_t)ITEMSIZE[dt];
    if (posix_memalign(base, 64, (size_t)n * isz + skew + 64) != 0) {
        fprintf(stderr, "check_kernels: out of memory\n");
        exit(2);
    }
    char *p = (char *)*base + skew;
    for (int64_t i = 0; i < n; i++)
        put_elem(p + (size_t)i * isz, dt, salt, (uint64_t)i);
    return p;
}

static char *zeros(size_t nbytes, size_t skew, void **base)
{
    if (posix_memalign(base, 64, nbytes + skew + 64) != 0) {
        fprintf(stderr, "check_kernels: out of memory\n");
        exit(2);
    }
    memset(*base, 0, nbytes + skew + 64);
    return (char *)*base + skew;
}

/* NaN -> the dtype's canonical quiet NaN, for dropout_add, where which payload survives a sum
 * of two NaNs is the hardware's (and the compiler's) choice (tests/test_properties.py). */
static void canon_nan(char *p, int dt, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (dt == CDROP_DT_F32) {
            uint32_t v;
            memcpy(&v, p + 4 * i, 4);
            if ((v & 0x7FFFFFFFu) > 0x7F800000u)
                v = 0x7FC00000u, memcpy(p + 4 * i, &v, 4);
        } else if (dt == CDROP_DT_F64) {
            uint64_t v;
            memcpy(&v, p + 8 * i, 8);
            if ((v & UINT64_C(0x7FFFFFFFFFFFFFFF)) > UINT64_C(0x7FF0000000000000))
                v = UINT64_C(0x7FF8000000000000), memcpy(p + 8 * i, &v, 8);
        } else {
            const int bf = dt == CDROP_DT_BF16;
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            if ((v & 0x7FFFu) > (bf ? 0x7F80u : 0x7C00u))
                v = bf ? 0x7FC0u : 0x7E00u, memcpy(p + 2 * i, &v, 2);
        }
    }
}

/* ---- results of one path: case names and digests, in a fixed order ---- */
typedef struct {
    char name[120];
    uint64_t d;
} result;
static result *RES;
static int NRES, CAPRES;

static void emit(uint64_t d, const char *op, const char *point)
{
    if (NRES == CAPRES) {
        CAPRES = CAPRES ? 2 * CAPRES : 1024;
        RES = (result *)realloc(RES, (size_t)CAPRES * sizeof *RES);
        if (!RES)
            exit(2);
    }
    snprintf(RES[NRES].name, sizeof RES[NRES].name, "%s %s", op, point);
    RES[NRES].d = d;
    NRES++;
}

/* ---- the grid ---- */
typedef struct {
    uint64_t seed, offset;
    int64_t n;
    double p;
} point;

static const uint64_t SEEDS[] = {0, 1, UINT64_C(0xDEADBEEFCAFEF00D), UINT64_C(0xFFFFFFFFFFFFFFFF)};
/* exact path (p a multiple of 1/256: no tie hashes), then the tie path */
static const double PS[] = {0.5, 0.1, 0.25, 0.3, 0.75, 0.9, 1e-9, 1 - 1e-9};
#define N_P ((int)NELEM(PS))

static void point_name(char *buf, size_t size, const point *q)
{
    snprintf(buf, size, "seed=%" PRIu64 " off=%" PRIu64 " n=%" PRId64 " p=%.10g", q->seed,
             q->offset, q->n, q->p);
}

/* Offsets for length n: block and group edges, and the last ones before 2**64. */
static int offsets_for(int64_t n, uint64_t *off)
{
    const uint64_t top = (uint64_t)0 - (uint64_t)n; /* 2**64 - n: the last element is 2**64 - 1 */
    int k = 0;
    off[k++] = 0;
    off[k++] = 1;
    off[k++] = 16383;
    off[k++] = top;
    if (n <= 1000) { /* small calls: the group edges too, and a block edge crossed */
        off[k++] = 63;
        off[k++] = 64;
        off[k++] = CDROP_BLOCK - 64;
        off[k++] = 3 * CDROP_BLOCK - (uint64_t)n / 2;
        off[k++] = top - 1;
        off[k++] = (UINT64_C(1) << 40) + 7;
    }
    return k;
}

static const int64_t NS[] = {1, 3, 63, 64, 65, 1000, 16383, 16384, 16385, 40000};

static int make_grid(point *pts)
{
    int np = 0, k = 0;
    for (int a = 0; a < (int)NELEM(NS); a++) {
        uint64_t off[16];
        const int no = offsets_for(NS[a], off);
        for (int b = 0; b < no; b++, k++) {
            point q = {SEEDS[k % 4], off[b], NS[a], PS[k % N_P]};
            pts[np++] = q;
        }
    }
    return np;
}

/* ---- running a contiguous job piece by piece, as threads would, last piece first ---- */
static void run_contig(cdrop_kernel_fn fn, const cdrop_args *a, int64_t n, int64_t gran)
{
    cdrop_job job;
    memset(&job, 0, sizeof job);
    job.fn = fn;
    job.args = *a;
    job.n = n;
    job.gran = gran;
    job.walk = CDROP_WALK_CONTIG;
    for (int64_t c = cdrop_job_pieces(&job) - 1; c >= 0; c--)
        cdrop_job_run(&job, c, c + 1, NULL);
}

static cdrop_args args_of(const point *q)
{
    cdrop_args a;
    memset(&a, 0, sizeof a);
    a.key = cdrop_key(q->seed);
    a.g0 = q->offset;
    a.thr = cdrop_threshold(q->p);
    a.scale = 1.0 / (1.0 - q->p);
    return a;
}

/* alpha_dropout's constants here are plain numbers (the kernels take any): c0 the scale */
#define ALPHA_C1 0.25
#define ALPHA_C2 (-1.7580993408473766)
#define BIAS_N 37

/* Every entry of the kernel table, contiguous. */
static void table_cases(const cdrop_kernel_table *t, const point *q, const char *pn)
{
    const int64_t n = q->n;
    void *bx[4], *br[4], *bb[4], *bd;
    const char *x[2], *r[2], *b[2];
    for (int dt = 0; dt < 2; dt++) {
        x[dt] = fill(dt, SALT_X, n, 0, &bx[dt]);
        r[dt] = fill(dt, SALT_R, n, 0, &br[dt]);
        b[dt] = fill(dt, SALT_B, BIAS_N, 0, &bb[dt]);
    }
    const cdrop_args base = args_of(q);
    /* select and scale, and the non-temporal variants into aligned and unaligned outputs */
    static const struct {
        int op, dt;
        size_t skew;
        const char *name;
    } SEL[] = {{CDROP_OP_F32, 0, 0, "f32"},
               {CDROP_OP_F64, 1, 0, "f64"},
               {CDROP_OP_F32_NT, 0, 0, "f32nt"},
               {CDROP_OP_F32_NT, 0, 4, "f32nt+4"},
               {CDROP_OP_F64_NT, 1, 0, "f64nt"},
               {CDROP_OP_F64_NT, 1, 8, "f64nt+8"},
               {CDROP_OP_ALPHA_F32, 0, 0, "alpha_f32"},
               {CDROP_OP_ALPHA_F64, 1, 0, "alpha_f64"},
               {CDROP_OP_ADD_F32, 0, 0, "add_f32"},
               {CDROP_OP_ADD_F64, 1, 0, "add_f64"},
               {CDROP_OP_ADDF_F32, 0, 0, "addf_f32"},
               {CDROP_OP_ADDF_F64, 1, 0, "addf_f64"}};
    for (int s = 0; s < (int)NELEM(SEL); s++) {
        const int dt = SEL[s].dt, op = SEL[s].op;
        const size_t nb = (size_t)n * (size_t)ITEMSIZE[dt];
        char *d = zeros(nb, SEL[s].skew, &bd);
        cdrop_args a = base;
        a.src = x[dt];
        a.dst = d;
        if (op == CDROP_OP_ALPHA_F32 || op == CDROP_OP_ALPHA_F64) {
            a.c1 = ALPHA_C1;
            a.c2 = ALPHA_C2;
        }
        const int add = op >= CDROP_OP_ADD_F32;
        if (add) {
            a.bias = b[dt];
            a.bias_n = BIAS_N;
            a.res = r[dt];
        }
        if (op == CDROP_OP_ADDF_F32 || op == CDROP_OP_ADDF_F64) { /* into the residual */
            memcpy(d, r[dt], nb);
            a.res = d;
        }
        run_contig(t->op[op], &a, n, 1);
        if (add)
            canon_nan(d, dt, n);
        emit(digest(d, nb), SEL[s].name, pn);
        free(bd);
    }
    /* half precision */
    for (int dt = CDROP_DT_F16; dt <= CDROP_DT_BF16; dt++) {
        void *bh;
        const char *xh = fill(dt, SALT_X, n, 0, &bh);
        char *d = zeros((size_t)n * 2, 0, &bd);
        cdrop_args a = base;
        a.src = xh;
        a.dst = d;
        run_contig(t->op[dt == CDROP_DT_F16 ? CDROP_OP_F16 : CDROP_OP_BF16], &a, n, 1);
        emit(digest(d, (size_t)n * 2), DT_NAME[dt], pn);
        free(bd);
        free(bh);
    }
    /* masks: bytes, and bits (zero on entry, pieces on whole bytes) */
    {
        char *d = zeros((size_t)n, 0, &bd);
        cdrop_args a = base;
        a.dst = d;
        run_contig(t->op[CDROP_OP_U8], &a, n, 1);
        emit(digest(d, (size_t)n), "u8", pn);
        free(bd);
        const size_t nbits = (size_t)(n + 7) / 8;
        d = zeros(nbits, 0, &bd);
        a.dst = d;
        run_contig(t->op[CDROP_OP_BITS], &a, n, 8);
        emit(digest(d, nbits), "bits", pn);
        free(bd);
    }
    /* the normal producer, in the pieces that walk_variant.c asks for */
    {
        float *z = (float *)(void *)zeros((size_t)n * 4, 0, &bd);
        const uint64_t key = cdrop_key(q->seed);
        for (int64_t c = cdrop_chunk_count(q->offset, n) - 1; c >= 0; c--) {
            const int64_t lo = cdrop_chunk_start(q->offset, n, c);
            const int64_t hi = cdrop_chunk_start(q->offset, n, c + 1);
            t->normals(key, q->offset + (uint64_t)lo, hi - lo, z + lo);
        }
        emit(digest(z, (size_t)n * 4), "normals", pn);
        free(bd);
    }
    for (int dt = 0; dt < 2; dt++) {
        free(bx[dt]);
        free(br[dt]);
        free(bb[dt]);
    }
}

/* ---- the dropout family's variant runs, through a cdrop_vjob as apply_variant builds it ---- */
static const char *const VOP_NAME[CDROP_N_VOPS] = {"drop", "alpha", "add",
                                                   "gmul", "gadd",  "add_nb"};

static void vconst_of(int vop, double p, cdrop_vconst *c)
{
    c->c0 = 1.0 / (1.0 - p);
    c->c1 = c->c2 = 0.0;
    if (vop == CDROP_VOP_ALPHA) {
        c->c1 = ALPHA_C1;
        c->c2 = ALPHA_C2;
    } else if (vop == CDROP_VOP_GMUL) {
        c->c0 = sqrt(p / (1.0 - p)); /* gaussian_dropout's sigma */
    } else if (vop == CDROP_VOP_GADD) {
        c->c0 = p; /* gaussian_noise's stddev */
    }
}

/* One variant job over a 2-D logical shape (R, C) with byte strides per operand (x, y, r, b:
 * index 0 rows, 1 columns; k: keep bytes, or NULL for the stream / normals).  The result is
 * gathered in logical order for the digest. */
static void vjob_case(const cdrop_kernel_table *t, const point *q, int vop, int dt, int src,
                      int64_t R, int64_t C, const int64_t *sx, const int64_t *sb, const int64_t *sk,
                      const char *layout, const char *pn)
{
    const int64_t n = R * C, isz = ITEMSIZE[dt];
    void *bx, *by, *br, *bb, *bk = NULL;
    /* x: element (i, j) at i * sx[0] + j * sx[1] (non-negative strides), logical input i*C+j */
    int64_t xspan = (R - 1) * sx[0] + (C - 1) * sx[1] + isz;
    char *x = zeros((size_t)xspan, 0, &bx);
    for (int64_t i = 0; i < R; i++)
        for (int64_t j = 0; j < C; j++)
            put_elem(x + i * sx[0] + j * sx[1], dt, SALT_X, (uint64_t)(i * C + j));
    char *y = zeros((size_t)(n * isz), 0, &by);
    const char *r = fill(dt, SALT_R, n, 0, &br);
    const int64_t bspan = (R - 1) * sb[0] + (C - 1) * sb[1] + isz;
    char *b = zeros((size_t)bspan, 0, &bb);
    for (int64_t e = 0; e < bspan / isz; e++)
        put_elem(b + e * isz, dt, SALT_B, (uint64_t)e);
    uint8_t *k = NULL;
    if (src == CDROP_SRC_KEEP_ARRAY) {
        const int64_t kspan = (R - 1) * sk[0] + (C - 1) * sk[1] + 1;
        k = (uint8_t *)zeros((size_t)kspan, 0, &bk);
        for (int64_t e = 0; e < kspan; e++)
            k[e] = (uint8_t)((in_word(SALT_K, (uint64_t)e) >> 17) & 1);
    }
    cdrop_vjob job;
    memset(&job, 0, sizeof job);
    job.src = src;
    job.run = t->vrun[vop][dt];
    job.keep = t->op[CDROP_OP_U8];
    job.normals = t->normals;
    vconst_of(vop, q->p, &job.c);
    job.key = cdrop_key(q->seed);
    job.g0 = q->offset;
    job.thr = src == CDROP_SRC_KEEP_STREAM ? cdrop_threshold(q->p) : 0;
    job.x = x;
    job.y = y;
    const int add = vop == CDROP_VOP_ADD || vop == CDROP_VOP_ADD_NB;
    job.r = add ? r : x;
    job.b = vop == CDROP_VOP_ADD ? b : x;
    job.k = (const char *)k;
    job.n = n;
    /* the layout, as _vlayout leaves it (length-1 axes dropped) */
    int nd = 0;
    for (int d = 0; d < 2; d++) {
        const int64_t len = d ? C : R;
        if (len == 1)
            continue;
        job.shape[nd] = len;
        job.sx[nd] = sx[d];
        job.sy[nd] = d ? isz : C * isz;
        job.sr[nd] = add ? (d ? isz : C * isz) : sx[d];
        job.sb[nd] = vop == CDROP_VOP_ADD ? sb[d] : sx[d];
        job.sk[nd] = k ? sk[d] : 0;
        nd++;
    }
    if (nd == 0) {
        job.shape[0] = 1;
        nd = 1;
    }
    job.ndim = nd;
    void *bs;
    uint8_t *scratch = (uint8_t *)zeros((size_t)CDROP_SCRATCH_BYTES, 0, &bs);
    for (int64_t c = cdrop_vjob_pieces(&job) - 1; c >= 0; c--)
        cdrop_vjob_run(&job, c, c + 1, scratch);
    if (add)
        canon_nan(y, dt, n);
    char name[64];
    snprintf(name, sizeof name, "v_%s_%s_%s%s", VOP_NAME[vop], DT_NAME[dt],
             src == CDROP_SRC_KEEP_STREAM  ? "stream"
             : src == CDROP_SRC_KEEP_ARRAY ? "array"
                                           : "normal",
             layout);
    emit(digest(y, (size_t)(n * isz)), name, pn);
    free(bs);
    free(bx);
    free(by);
    free(br);
    free(bb);
    free(bk);
}

static void variant_cases(const cdrop_kernel_table *t, const point *q, const char *pn, int two_d)
{
    for (int vop = 0; vop < CDROP_N_VOPS; vop++)
        for (int dt = 0; dt < CDROP_N_DT; dt++) {
            const int64_t isz = ITEMSIZE[dt];
            int srcs[2], ns = 0;
            if (vop == CDROP_VOP_GMUL || vop == CDROP_VOP_GADD) {
                srcs[ns++] = CDROP_SRC_NORMAL;
            } else {
                srcs[ns++] = CDROP_SRC_KEEP_STREAM;
                srcs[ns++] = CDROP_SRC_KEEP_ARRAY;
            }
            for (int s = 0; s < ns; s++) {
                if (!two_d) { /* 1-D contiguous, a full-size bias and keep array */
                    const int64_t sx[2] = {0, isz}, sb[2] = {0, isz}, sk[2] = {0, 1};
                    vjob_case(t, q, vop, dt, srcs[s], 1, q->n, sx, sb, sk, "", pn);
                } else { /* (n / 37, 37): x transposed, bias row and keep row broadcast */
                    const int64_t R = q->n / BIAS_N, C = BIAS_N;
                    const int64_t sx[2] = {isz, R * isz}, sb[2] = {0, isz}, sk[2] = {0, 1};
                    char pn2[160];
                    point q2 = *q;
                    q2.n = R * C;
                    point_name(pn2, sizeof pn2, &q2);
                    vjob_case(t, &q2, vop, dt, srcs[s], R, C, sx, sb, sk, "_2d", pn2);
                }
            }
        }
}

/* ---- the strided and band walks (walk_layout.c) through cdrop_job_run ---- */
static void layout_case(const cdrop_kernel_table *t, const point *q0, int dt, int nd,
                        const int64_t *shape, const int64_t *sstr, int64_t sspan,
                        const int64_t *dstr, int64_t dbase, int64_t dspan, const char *name)
{
    static const int OPS[CDROP_N_DT] = {CDROP_OP_F32, CDROP_OP_F64, CDROP_OP_F16, CDROP_OP_BF16};
    const int64_t isz = ITEMSIZE[dt];
    int64_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= shape[d];
    point q = *q0;
    q.n = n;
    if (q.offset > (uint64_t)0 - (uint64_t)n) /* offset + n <= 2**64 */
        q.offset = (uint64_t)0 - (uint64_t)n;
    void *bs, *bd;
    char *s = zeros((size_t)sspan, 0, &bs), *dbuf = zeros((size_t)dspan, 0, &bd);
    char *d = dbuf + dbase;
    int64_t idx[4] = {0, 0, 0, 0};
    char *out = (char *)malloc((size_t)(n * isz));
    for (int64_t i = 0; i < n; i++) { /* logical element i in C order */
        int64_t rem = i, so = 0;
        for (int a = nd - 1; a >= 0; a--) {
            idx[a] = rem % shape[a];
            rem /= shape[a];
            so += idx[a] * sstr[a];
        }
        put_elem(s + so, dt, SALT_X, (uint64_t)i);
    }
    cdrop_job job;
    memset(&job, 0, sizeof job);
    job.args = args_of(&q);
    job.args.src = s;
    job.args.dst = d;
    job.keep = t->op[CDROP_OP_U8];
    job.resume = t->resume;
    job.bits = t->op[CDROP_OP_BITS]; /* tall tiles, as cdrop._kernels.apply sets them */
    job.bits_t = t->bits_t;
    job.bits_run = dt == 0 ? t->bits_run[0] : dt == 1 ? t->bits_run[1] : NULL;
    job.fn = t->op[OPS[dt]];
    job.op = OPS[dt];
    job.drop_run = t->vrun[CDROP_VOP_DROP][dt]; /* as cdrop._kernels.apply sets it */
    job.n = n;
    job.gran = 1;
    job.ndim = nd;
    for (int a = 0; a < nd; a++) {
        job.shape[a] = shape[a];
        job.sstr[a] = sstr[a];
        job.dstr[a] = dstr[a];
    }
    job.walk = cdrop_layout_walk(&job);
    void *bscr;
    uint8_t *scratch = (uint8_t *)zeros((size_t)CDROP_SCRATCH_BYTES, 0, &bscr);
    for (int64_t c = cdrop_job_pieces(&job) - 1; c >= 0; c--)
        cdrop_job_run(&job, c, c + 1, scratch);
    for (int64_t i = 0; i < n; i++) { /* gather in logical order */
        int64_t rem = i, dof = 0;
        for (int a = nd - 1; a >= 0; a--) {
            dof += (rem % shape[a]) * dstr[a];
            rem /= shape[a];
        }
        memcpy(out + i * isz, d + dof, (size_t)isz);
    }
    char pn[160], op[64];
    point_name(pn, sizeof pn, &q);
    snprintf(op, sizeof op, "%s_%s_%s", name,
             job.walk == CDROP_WALK_BANDS   ? "bands"
             : job.walk == CDROP_WALK_SLABS ? "slabs"
                                            : "strided",
             DT_NAME[dt]);
    emit(digest(out, (size_t)(n * isz)), op, pn);
    free(out);
    free(bscr);
    free(bs);
    free(bd);
}

static void layout_cases(const cdrop_kernel_table *t, const point *q, int big)
{
    for (int dt = 0; dt < CDROP_N_DT; dt++) {
        const int64_t i = ITEMSIZE[dt];
        { /* Fortran-ordered (100, 75): one band of whole rows */
            const int64_t sh[2] = {100, 75}, st[2] = {i, 100 * i};
            layout_case(t, q, dt, 2, sh, st, 7500 * i, st, 0, 7500 * i, "fortran");
        }
        if (big) { /* Fortran (20, 4096): a 4 KiB pitch, so tiles of columns with a padded pitch */
            const int64_t sh[2] = {20, 4096}, st[2] = {i, 20 * i};
            layout_case(t, q, dt, 2, sh, st, 81920 * i, st, 0, 81920 * i, "fortran");
        }
        { /* Fortran (48, 80): both sides of the keep-byte transpose multiples of 16 */
            const int64_t sh[2] = {48, 80}, st[2] = {i, 48 * i};
            layout_case(t, q, dt, 2, sh, st, 3840 * i, st, 0, 3840 * i, "fortran16");
        }
        { /* (301, 8, 2).transpose(0, 2, 1) and (75, 8, 8).transpose(0, 2, 1): slices of 16 and
           * 64 keep bytes permuted by byte shuffles, the first with a tail of one slice */
            const int64_t sh[3] = {301, 2, 8}, st[3] = {16 * i, i, 2 * i};
            layout_case(t, q, dt, 3, sh, st, 4816 * i, st, 0, 4816 * i, "slices16");
            const int64_t sh8[3] = {75, 8, 8}, st8[3] = {64 * i, i, 8 * i};
            layout_case(t, q, dt, 3, sh8, st8, 4800 * i, st8, 0, 4800 * i, "slices64");
        }
        { /* 3-D strided: source x[:, ::2, ::3] of a (7, 10, 99) array, output C-ordered with the
           * last axis reversed */
            const int64_t sh[3] = {7, 5, 33}, ss[3] = {990 * i, 198 * i, 3 * i};
            const int64_t ds[3] = {165 * i, 33 * i, -i};
            layout_case(t, q, dt, 3, sh, ss, 6930 * i, ds, 32 * i, 1155 * i, "strided3d");
        }
    }
}

/* Tall tiles (walk_layout.c): Fortran arrays too wide for tiles of whole rows, whose row
 * segments are made from the rows' cursors (the table's resume entry).  Widths that cut rows
 * inside a step and across block edges (odd), a last column tile narrower than a step, a last
 * band of fewer rows, and negative strides. */
static void tall_cases(const cdrop_kernel_table *t, const point *q)
{
    for (int dt = 0; dt < CDROP_N_DT; dt++) {
        const int64_t i = ITEMSIZE[dt];
        { /* (1100, 700): a band of 1024 rows (512 for float64) and a short one */
            const int64_t sh[2] = {1100, 700}, st[2] = {i, 1100 * i};
            layout_case(t, q, dt, 2, sh, st, 770000 * i, st, 0, 770000 * i, "tall");
        }
        { /* (1030, 529): a last tile of 17 columns (float32) */
            const int64_t sh[2] = {1030, 529}, st[2] = {i, 1030 * i};
            layout_case(t, q, dt, 2, sh, st, 544870 * i, st, 0, 544870 * i, "tall_edge");
        }
        { /* (600, 1001) Fortran into an output with both strides negative (x[::-1, ::-1]) */
            const int64_t sh[2] = {600, 1001}, ss[2] = {i, 600 * i}, ds[2] = {-i, -600 * i};
            layout_case(t, q, dt, 2, sh, ss, 600600 * i, ds, 600599 * i, 600600 * i, "tall_neg");
        }
    }
}

/* The table's bits_run entries (bits_run.inc.h) directly: runs of n float32/float64 elements,
 * element i kept by bit i of the stream's keep bits of q with length n (the CDROP_OP_BITS
 * kernel), from a source 4 bytes past a cache line (unaligned) into another array, and in
 * place; whole words of bits, a tail, and runs shorter than a word. */
static void bits_run_cases(const cdrop_kernel_table *t, const point *q0)
{
    static const int64_t LENS[] = {1, 63, 64, 65, 1000};
    for (int dt = 0; dt < 2; dt++)
        for (int li = 0; li < (int)(sizeof LENS / sizeof LENS[0]); li++) {
            point q = *q0;
            q.n = LENS[li];
            if (q.offset > (uint64_t)0 - (uint64_t)q.n)
                q.offset = (uint64_t)0 - (uint64_t)q.n;
            const int64_t n = q.n, isz = ITEMSIZE[dt];
            void *bb, *bs, *bd;
            uint64_t *bits = (uint64_t *)(void *)zeros((size_t)((n + 63) / 64 * 8), 0, &bb);
            cdrop_args a = args_of(&q);
            a.dst = bits;
            t->op[CDROP_OP_BITS](&a, 0, n);
            char *s = fill(dt, SALT_X, n, 4, &bs), *d = zeros((size_t)(n * isz), 0, &bd);
            t->bits_run[dt](s, d, bits, n, a.scale);
            t->bits_run[dt](s, s, bits, n, a.scale); /* in place */
            char pn[160], op[64];
            point_name(pn, sizeof pn, &q);
            snprintf(op, sizeof op, "bits_run_%s", DT_NAME[dt]);
            emit(digest(d, (size_t)(n * isz)), op, pn);
            snprintf(op, sizeof op, "bits_run_inplace_%s", DT_NAME[dt]);
            emit(digest(s, (size_t)(n * isz)), op, pn);
            free(bb);
            free(bs);
            free(bd);
        }
}

/* Slabs (walk_layout.c): contiguous rows whose third-last axis is closer in memory than the
 * second-last ((B, A, C).transpose(1, 0, 2)), each a's keep bytes made from its cursor.  Bands
 * of a's and segments of b's with a short last one, tiles of b's that cut a slab inside a step
 * and across block edges, rows of a's that are not adjacent, an outer axis, negative strides. */
static void slab_cases(const cdrop_kernel_table *t, const point *q)
{
    for (int dt = 0; dt < CDROP_N_DT; dt++) {
        const int64_t i = ITEMSIZE[dt];
        { /* (9, 66, 2048).transpose(1, 0, 2): bands of 64 a's and 2, segments of 8 b's and 1 */
            const int64_t sh[3] = {66, 9, 2048}, st[3] = {2048 * i, 66 * 2048 * i, i};
            layout_case(t, q, dt, 3, sh, st, 1216512 * i, st, 0, 1216512 * i, "slab_bands");
        }
        { /* (130, 37, 129).transpose(1, 0, 2): tiles of 27 b's (float32), the last of 22 */
            const int64_t sh[3] = {37, 130, 129}, st[3] = {129 * i, 37 * 129 * i, i};
            layout_case(t, q, dt, 3, sh, st, 620490 * i, st, 0, 620490 * i, "slab_odd");
        }
        { /* (2, 130, 5, 129).transpose(0, 2, 1, 3) into rows 3 elements apart, a reversed */
            const int64_t sh[4] = {2, 5, 130, 129};
            const int64_t ss[4] = {130 * 5 * 129 * i, 129 * i, 5 * 129 * i, i};
            const int64_t ds[4] = {130 * 5 * 132 * i, -132 * i, 5 * 132 * i, i};
            layout_case(t, q, dt, 4, sh, ss, 167700 * i, ds, 4 * 132 * i, 171600 * i, "slab_neg");
        }
    }
}

/* ---- blocks of a larger array (walk_block.c) through cdrop_job_run ---- */
static void block_case(const cdrop_kernel_table *t, const point *q0, int dt, int nd,
                       const int64_t *gshape, const int64_t *start, const int64_t *shape,
                       int fortran, const char *name)
{
    static const int OPS[CDROP_N_DT] = {CDROP_OP_F32, CDROP_OP_F64, CDROP_OP_F16, CDROP_OP_BF16};
    const int64_t isz = ITEMSIZE[dt];
    int64_t n = 1, gn = 1, st[3], gst[3];
    for (int d = 0; d < nd; d++) {
        n *= shape[d];
        gn *= gshape[d];
    }
    int64_t ms = isz, gs = 1;
    for (int d = nd - 1; d >= 0; d--) { /* C order (or Fortran below) */
        st[d] = ms;
        gst[d] = gs;
        ms *= shape[d];
        gs *= gshape[d];
    }
    ms = isz;
    for (int d = 0; fortran && d < nd; d++) {
        st[d] = ms;
        ms *= shape[d];
    }
    point q = *q0;
    q.n = n;
    if (q.offset > (uint64_t)0 - (uint64_t)gn) /* offset + prod(global shape) <= 2**64 */
        q.offset = (uint64_t)0 - (uint64_t)gn;
    uint64_t base = q.offset;
    for (int d = 0; d < nd; d++)
        base += (uint64_t)(start[d] * gst[d]);
    void *bs, *bd;
    char *s = zeros((size_t)(n * isz), 0, &bs), *dst = zeros((size_t)(n * isz), 0, &bd);
    char *out = (char *)malloc((size_t)(n * isz));
    for (int64_t i = 0; i < n; i++) { /* logical element i in C order */
        int64_t rem = i, so = 0;
        for (int a = nd - 1; a >= 0; a--) {
            so += (rem % shape[a]) * st[a];
            rem /= shape[a];
        }
        put_elem(s + so, dt, SALT_X, (uint64_t)i);
    }
    cdrop_job job;
    memset(&job, 0, sizeof job);
    job.args = args_of(&q);
    job.args.g0 = base;
    job.args.src = s;
    job.args.dst = dst;
    job.keep = t->op[CDROP_OP_U8];
    job.fn = t->op[OPS[dt]];
    job.op = OPS[dt];
    job.drop_run = t->vrun[CDROP_VOP_DROP][dt];
    job.n = n;
    job.gran = 1;
    job.ndim = nd;
    job.walk = CDROP_WALK_BLOCK;
    for (int a = 0; a < nd; a++) {
        job.shape[a] = shape[a];
        job.sstr[a] = job.dstr[a] = st[a];
        job.gstr[a] = (uint64_t)gst[a];
    }
    void *bscr;
    uint8_t *scratch = (uint8_t *)zeros((size_t)CDROP_SCRATCH_BYTES, 0, &bscr);
    for (int64_t c = cdrop_job_pieces(&job) - 1; c >= 0; c--)
        cdrop_job_run(&job, c, c + 1, scratch);
    for (int64_t i = 0; i < n; i++) { /* gather in logical order */
        int64_t rem = i, dof = 0;
        for (int a = nd - 1; a >= 0; a--) {
            dof += (rem % shape[a]) * st[a];
            rem /= shape[a];
        }
        memcpy(out + i * isz, dst + dof, (size_t)isz);
    }
    char pn[160], op[64];
    point_name(pn, sizeof pn, &q);
    snprintf(op, sizeof op, "block_%s_%s", name, DT_NAME[dt]);
    emit(digest(out, (size_t)(n * isz)), op, pn);
    free(out);
    free(bscr);
    free(bs);
    free(bd);
}

static void block_cases(const cdrop_kernel_table *t, const point *q)
{
    for (int dt = 0; dt < CDROP_N_DT; dt++) {
        { /* rows of 300 (one range of keep bytes per stream block, runs joined) */
            const int64_t g[2] = {100, 1000}, s0[2] = {5, 123}, sh[2] = {37, 300};
            block_case(t, q, dt, 2, g, s0, sh, 0, "narrow");
            block_case(t, q, dt, 2, g, s0, sh, 1, "narrow_fortran");
        }
        { /* rows of 5000 (the contiguous kernel per row), longer than a stream block apart */
            const int64_t g[2] = {10, 20000}, s0[2] = {2, 7}, sh[2] = {3, 5000};
            block_case(t, q, dt, 2, g, s0, sh, 0, "wide");
        }
        { /* 3-D, and a last axis of length 1 */
            const int64_t g[3] = {9, 10, 64}, s0[3] = {1, 2, 3}, sh[3] = {4, 6, 50};
            block_case(t, q, dt, 3, g, s0, sh, 0, "3d");
            const int64_t g1[2] = {300, 7}, s1[2] = {3, 4}, sh1[2] = {200, 1};
            block_case(t, q, dt, 2, g1, s1, sh1, 0, "column");
        }
    }
}

/* ---- one path: every case ---- */
static void run_path(const cdrop_kernel_table *t)
{
    static point pts[256];
    const int np = make_grid(pts);
    NRES = 0;
    for (int k = 0; k < np; k++) {
        char pn[160];
        point_name(pn, sizeof pn, &pts[k]);
        table_cases(t, &pts[k], pn);
        if (pts[k].n <= 16385)
            variant_cases(t, &pts[k], pn, 0);
        if (pts[k].n == 1000 || pts[k].n == 16385)
            variant_cases(t, &pts[k], pn, 1);
        if (pts[k].n == 1000)
            layout_cases(t, &pts[k], pts[k].offset == 1 || pts[k].offset >= (uint64_t)1 << 63);
    }
    for (int k = 0; k < np; k++) /* appended later than the cases above: the file's order */
        if (pts[k].n == 1000)
            block_cases(t, &pts[k]);
    for (int k = 0; k < np; k++) /* appended after the block cases, likewise */
        if (pts[k].n == 1000 && (pts[k].offset == 1 || pts[k].offset >= (uint64_t)1 << 63))
            tall_cases(t, &pts[k]);
    for (int k = 0; k < np; k++) /* appended after the tall cases, likewise */
        if (pts[k].n == 1000 && (pts[k].offset == 1 || pts[k].offset >= (uint64_t)1 << 63))
            bits_run_cases(t, &pts[k]);
    for (int k = 0; k < np; k++) /* appended after the bits_run cases, likewise */
        if (pts[k].n == 1000 && (pts[k].offset == 1 || pts[k].offset >= (uint64_t)1 << 63))
            slab_cases(t, &pts[k]);
}

/* ---- the digest file ---- */
static int read_digests(const char *path, result **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0, cap = 0;
    char line[256];
    *out = NULL;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *tab = strrchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            *out = (result *)realloc(*out, (size_t)cap * sizeof **out);
        }
        snprintf((*out)[n].name, sizeof(*out)[n].name, "%s", line);
        (*out)[n].d = strtoull(tab + 1, NULL, 16);
        n++;
    }
    fclose(f);
    return n;
}

/* Every path, then the digest file: the exit status. */
static result *FIRST, *WANT;

static int check(int write, const char *file)
{
    result *first = NULL;
    int nfirst = 0, npaths = 0, fails = 0;
    char names[128] = "";
    const char *first_name = "";
    for (int k = 0; k < N_PATHS; k++) {
        const cdrop_kernel_table t = cdrop_kernels_for(PATHS[k].id);
        if (t.path != PATHS[k].id) /* this build or CPU lacks the path */
            continue;
        run_path(&t);
        strcat(names, npaths ? ", " : "");
        strcat(names, PATHS[k].name);
        npaths++;
        if (!first) {
            first_name = PATHS[k].name;
            FIRST = first = RES;
            nfirst = NRES;
            RES = NULL;
            NRES = CAPRES = 0;
            continue;
        }
        for (int i = 0; i < NRES; i++) /* every path gives the first path's bits */
            if (RES[i].d != first[i].d) {
                printf("FAIL %s: path %s %016" PRIx64 " != path %s %016" PRIx64 "\n", RES[i].name,
                       PATHS[k].name, RES[i].d, first_name, first[i].d);
                fails++;
            }
    }
    if (fails) {
        printf("check_kernels: %d cases differ between kernel paths (%s)\n", fails, names);
        return 1;
    }
    if (write) {
        FILE *f = fopen(file, "w");
        if (!f) {
            perror(file);
            return 2;
        }
        fprintf(f,
                "# tests/native/check_kernels.c --write: case<TAB>digest (FNV-1a 64 of the "
                "output bytes), made on x86 by paths %s\n",
                names);
        for (int i = 0; i < nfirst; i++)
            fprintf(f, "%s\t%016" PRIx64 "\n", first[i].name, first[i].d);
        fclose(f);
        printf("check_kernels: wrote %d cases (paths %s agree) to %s\n", nfirst, names, file);
        return 0;
    }
    result *want = NULL;
    const int nwant = read_digests(file, &want);
    WANT = want;
    if (nwant < 0) {
        perror(file);
        return 2;
    }
    for (int i = 0; i < nfirst || i < nwant; i++) {
        if (i >= nfirst || i >= nwant || strcmp(first[i].name, want[i].name) != 0) {
            printf("FAIL the case list differs from %s at case %d (%s / %s): regenerate it with "
                   "--write if the grid changed on purpose\n",
                   file, i + 1, i < nfirst ? first[i].name : "-", i < nwant ? want[i].name : "-");
            return 1;
        }
        if (first[i].d != want[i].d) {
            printf("FAIL %s: %016" PRIx64 ", expected %016" PRIx64 "\n", first[i].name, first[i].d,
                   want[i].d);
            fails++;
        }
    }
    if (fails) {
        printf("check_kernels: %d of %d cases differ from %s (paths %s)\n", fails, nfirst, file,
               names);
        return 1;
    }
    printf("check_kernels: %d cases x %d paths (%s): all equal to %s\n", nfirst, npaths, names,
           file);
    return 0;
}

int main(int argc, char **argv)
{
    int write = 0;
    const char *file = "tests/native/digests.txt";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--write") == 0)
            write = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: check_kernels [--write] [DIGESTS]\n");
            return 2;
        } else
            file = argv[i];
    }
    const int status = check(write, file);
    free(RES);
    free(FIRST);
    free(WANT);
    return status;
}
