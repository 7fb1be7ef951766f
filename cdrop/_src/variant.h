/*
 * variant.h -- the dropout family (issue 11): operations that combine a keep flag or a normal
 * number with one to three inputs, for any layout.  Included by kernels.h.
 *
 * How a variant runs.  A SOURCE gives each logical element its random input: the keep byte of
 * the mask producer (CDROP_SRC_KEEP_STREAM: the table's CDROP_OP_U8 kernel, the same mask as
 * cdrop.dropout), a keep array the caller made at noise-shape size and broadcast
 * (CDROP_SRC_KEEP_ARRAY: noise_shape, Dropout1d/2d/3d, drop_path, FeatureAlphaDropout), or a
 * float32 standard normal (CDROP_SRC_NORMAL: producer_normal.inc.h over normal.h).  A RUN
 * function of the operation and dtype (variant_run.inc.h, written once and compiled for each
 * instruction set, so that the compiler vectorises it with that set's registers) combines them
 * along one axis.  walk_variant.c cuts a call into pieces of the stream, fills a piece's keep
 * bytes or normals into per-thread scratch, and hands the run function the rows of the piece.
 * Pure C, no Python.  Included by kernels.h, after cdrop_args and cdrop_kernel_fn.
 */
#ifndef CDROP_VARIANT_H
#define CDROP_VARIANT_H

#include <stdint.h>

/* The operations (y: result, x: input, r: residual, B: bias, k: keep flag, z: normal), each in
 * the dtype's working precision (float32 for float16/bfloat16, float32, float64):
 *   DROP   y = k ? x * C0 : +0.0
 *   ALPHA  y = k ? x * C0 + C1 : C2
 *   ADD    t = x + B, d = k ? t * C0 : +0.0, y = r + d   (half: rounded to the dtype each step)
 *   GMUL   y = x * (1 + C0 * z)
 *   GADD   y = x + C0 * z
 * C0..C2 are the binary64 constants rounded once to the working type.  No operation is fused:
 * the build compiles with -ffp-contract=off, so that a * b + c is two roundings on every
 * instruction set and equals NumPy's (x * a) + b. */
enum {
    CDROP_VOP_DROP = 0,
    CDROP_VOP_ALPHA,
    CDROP_VOP_ADD,
    CDROP_VOP_GMUL,
    CDROP_VOP_GADD,
    CDROP_VOP_ADD_NB, /* ADD without a bias (t = x): chosen by the walk when b is NULL */
    CDROP_N_VOPS
};
enum { CDROP_DT_F32 = 0, CDROP_DT_F64, CDROP_DT_F16, CDROP_DT_BF16, CDROP_N_DT };
enum { CDROP_SRC_KEEP_STREAM = 0, CDROP_SRC_KEEP_ARRAY, CDROP_SRC_NORMAL };

typedef struct {
    double c0, c1, c2;
} cdrop_vconst;

/* One run: n elements, element e at x + e * sx, ... (byte strides, any sign, 0 allowed for
 * r, b and k); k points to keep bytes (0/1) or, for GMUL/GADD, to float32 normals.  Operations
 * that read no residual or bias get x's pointer and strides there (never dereferenced
 * differently from x). */
typedef struct {
    const char *x, *r, *b, *k;
    char *y;
    int64_t sx, sr, sb, sk, sy;
} cdrop_run_ptrs;

typedef void (*cdrop_vrun_fn)(const cdrop_vconst *c, const cdrop_run_ptrs *p, int64_t n);

/* n float32 normals of global indices g0 .. g0 + n - 1 for stream key `key` (= cdrop_key(seed))
 * into z. */
typedef void (*cdrop_normal_fn)(uint64_t key, uint64_t g0, int64_t n, float *z);

#define CDROP_VMAX_DIMS 64

typedef struct {
    int src;                 /* CDROP_SRC_* */
    cdrop_vrun_fn run;       /* the table's vrun[op][dtype] */
    cdrop_kernel_fn keep;    /* KEEP_STREAM: the table's CDROP_OP_U8 kernel */
    cdrop_normal_fn normals; /* NORMAL */
    cdrop_vconst c;
    uint64_t key, g0;          /* stream key and the call's offset */
    uint32_t thr;              /* KEEP_STREAM: cdrop_threshold(p) */
    const char *x, *r, *b, *k; /* r, b, k may be NULL (b: no bias; k: not KEEP_ARRAY) */
    char *y;
    int64_t n;
    int ndim; /* merged layout, >= 1 */
    int64_t shape[CDROP_VMAX_DIMS];
    int64_t sx[CDROP_VMAX_DIMS], sy[CDROP_VMAX_DIMS], sr[CDROP_VMAX_DIMS], sb[CDROP_VMAX_DIMS],
        sk[CDROP_VMAX_DIMS];
} cdrop_vjob;

/* Pieces of the job (blocks of the stream, as for cdrop_job), and running pieces [c0, c1) with
 * CDROP_SCRATCH_BYTES of scratch (walk_variant.c). */
int64_t cdrop_vjob_pieces(const cdrop_vjob *job);
void cdrop_vjob_run(const cdrop_vjob *job, int64_t c0, int64_t c1, uint8_t *scratch);

#endif /* CDROP_VARIANT_H */
