/*
 * kernels.h -- the interface between the C kernels and cdrop/_kernels.pyx (whose
 * `cdef extern from "kernels.h"` block declares what is used from here: keep both in sync).
 *
 * The architecture, in one paragraph.  Every kernel has one signature, cdrop_kernel_fn: it handles
 * the local elements [lo, hi) of one call, whose element i has global stream index args->g0 + i
 * (cdrop_rng.h), so any range can run on any thread.  A kernel is a MASK PRODUCER (one per
 * instruction set: isa_scalar.c, isa_portable.c, isa_avx2.c, isa_avx512.c, each making the keep
 * decisions of 64 elements per step in its registers) joined to a CONSUMER (one per operation:
 * consumer_float.inc.h selects and scales float32/float64, consumer_half.inc.h float16/bfloat16
 * through float32 vectors, consumer_mask.inc.h writes keep bytes and bits, consumer_stream.inc.h is
 * AVX-512's non-temporal variant) by walk.inc.h, which is instantiated once per (instruction set,
 * operation) so that the consumer is inlined into the producer's loop.  A new dtype or variant is a
 * new consumer and one line per instruction set.  Arrays that are not contiguous go through
 * walk_layout.c (strided, band and slab walks), which takes keep bytes from the table's CDROP_OP_U8
 * kernel, piece by piece, into caller-provided scratch; its tall tiles (walk_tall.c) take keep bits
 * from CDROP_OP_BITS and apply them with the table's bits_run (bits_run.inc.h).
 * The dropout family (variant.h) adds fused consumers (consumer_family.inc.h) and a walk of its
 * own (walk_variant.c) whose run functions each instruction set compiles (variant_runs.inc.h).
 */
#ifndef CDROP_KERNELS_H
#define CDROP_KERNELS_H

#include <stdint.h>

#include "chunks.h"
#include "platform.h"

/* One call's arguments, shared by every kernel. */
typedef struct {
    const void *src; /* float operations: the input (may be dst); unused by the mask kernels */
    void *dst;       /* the output: floats, keep bytes (0/1) or packed bits (zero on entry) */
    double scale;    /* 1 / (1 - p) in binary64; a consumer rounds it to its dtype once */
    uint64_t key;    /* cdrop_key(seed) */
    uint64_t g0;     /* global index of local element 0 (the call's offset) */
    uint32_t thr;    /* cdrop_threshold(p): kept iff draw < thr */
    /* the dropout family's fused consumers only (consumer_family.inc.h) */
    const void *res;  /* dropout_add: the residual (may be dst, then with final masks) */
    const void *bias; /* dropout_add: a row of bias_n elements, repeated along the array */
    int64_t bias_n;
    double c1, c2; /* alpha_dropout: kept x * scale + c1, dropped c2 */
} cdrop_args;

typedef void (*cdrop_kernel_fn)(const cdrop_args *a, int64_t lo, int64_t hi);

#include "variant.h" /* the dropout family: variant operations, their runs and the normals */

/* The operations, the index of a kernel in the table. */
enum {
    CDROP_OP_F32 = 0, /* dst[i] = keep ? src[i] * scale : +0.0, float32 */
    CDROP_OP_F64,     /* the same in float64 */
    CDROP_OP_U8,      /* dst[i] = keep (one byte, NumPy's bool) */
    CDROP_OP_BITS,    /* bit i % 8 of dst[i / 8] = keep; lo a multiple of 8, hi too or the end */
    CDROP_OP_F32_NT,  /* CDROP_OP_F32 with non-temporal stores (dst must not overlap src) */
    CDROP_OP_F64_NT,
    CDROP_OP_F16,  /* dst[i] = keep ? narrow(widen(src[i]) * (float)scale) : +0.0, float16 */
    CDROP_OP_BF16, /* the same in bfloat16 (half_scalar.h has the rounding rule) */
    /* the dropout family, fused (consumer_family.inc.h): contiguous float32/float64 only */
    CDROP_OP_ALPHA_F32, /* dst[i] = keep ? src[i] * scale + c1 : c2 */
    CDROP_OP_ALPHA_F64,
    CDROP_OP_ADD_F32, /* dst[i] = res[i] + (keep ? (src[i] + bias[i % bias_n]) * scale : +0.0) */
    CDROP_OP_ADD_F64,
    CDROP_OP_ADDF_F32, /* the same with final masks, for dst == res */
    CDROP_OP_ADDF_F64,
    CDROP_N_OPS
};

/* The resumable keep-bytes producer (walk.inc.h's loop with a cursor): CDROP_OP_U8's keep bytes of
 * local [lo, hi) into a->dst, starting from the cursor (lanes, *next) if *next is lo's step, else
 * seeking; on return the cursor is positioned at hi's step (*next = its global index), or *next =
 * CDROP_NO_STEP when hi is on a block edge (the next block is seeded: no skip).  A segment that
 * ends inside a step saves the lanes from before that step: the next segment makes the step again
 * and takes its remaining bytes.  lanes: CDROP_CURSOR_BYTES, any alignment (copied by memcpy). */
#define CDROP_CURSOR_BYTES 256
#define CDROP_NO_STEP UINT64_MAX
typedef void (*cdrop_resume_fn)(const cdrop_args *a, int64_t lo, int64_t hi, uint8_t *lanes,
                                uint64_t *next);

/* A contiguous run of n float32 (bits_run[0]) or float64 (bits_run[1]) elements from src to dst
 * (dst may be src): element i kept, times scale, when bit i & 63 of bits[i >> 6] is set, else
 * +0.0 (bits_run.inc.h, one per instruction set; the tall tiles of walk_tall.c). */
typedef void (*cdrop_bits_run_fn)(const char *src, char *dst, const uint64_t *bits, int64_t n,
                                  double scale);
/* Columns [c0, c0 + nc) of a band of `rows` rows of C keep bits (element (r, c) on bit r * C + c,
 * 16 readable bytes past the last word) into tb: column c0 + j's bits for rows [0, rows) at
 * tb + j * ceil(rows / 64), 64 x 64 bit transposes (bits_run.inc.h, one per instruction set). */
typedef void (*cdrop_bits_t_fn)(const uint8_t *bits, int64_t C, int64_t rows, int64_t c0,
                                int64_t nc, uint64_t *tb);

typedef struct {
    int path;                        /* CDROP_PATH_* */
    cdrop_kernel_fn op[CDROP_N_OPS]; /* paths without streaming stores repeat F32/F64 there */
    cdrop_resume_fn resume;          /* op[CDROP_OP_U8], resumable */
    cdrop_bits_run_fn bits_run[2];   /* float32, float64 */
    cdrop_bits_t_fn bits_t;
    cdrop_vrun_fn vrun[CDROP_N_VOPS][CDROP_N_DT]; /* variant runs, by operation and dtype */
    cdrop_normal_fn normals;                      /* the normal producer */
} cdrop_kernel_table;

/* The table for `path`; a path the CPU (or compiler) lacks falls back to the next one down:
 * AVX-512 -> AVX2 -> portable -> scalar (kernels.c). */
cdrop_kernel_table cdrop_kernels_for(int path);

/* ---- Whole calls, cut into pieces that threads share (kernels.c, walk_layout.c) ---- */

#define CDROP_MAX_DIMS 64
enum {
    CDROP_WALK_CONTIG = 0,
    CDROP_WALK_STRIDED,
    CDROP_WALK_BANDS,
    CDROP_WALK_BLOCK,
    CDROP_WALK_SLABS
};

/* Scratch bytes a piece of a strided or band walk needs (keep bytes of a block, or of a tile in
 * index order and again in memory order); the caller provides them, one buffer per thread, so
 * that no kernel needs a large stack.  A tile of 512 KiB of keep bytes is 16 blocks of the stream
 * for each of 16 matrices (walk_layout.c), and both halves stay in a 2 MiB L2. */
#ifndef CDROP_SCRATCH_KIB /* overridable with -D for measurements */
#define CDROP_SCRATCH_KIB 1024
#endif
#define CDROP_SCRATCH_BYTES ((int64_t)CDROP_SCRATCH_KIB * 1024)

typedef struct {
    cdrop_kernel_fn fn;     /* CONTIG: the kernel */
    cdrop_kernel_fn keep;   /* STRIDED, BANDS: the table's CDROP_OP_U8 kernel */
    cdrop_resume_fn resume; /* SLABS: the table's resumable U8 producer */
    cdrop_args args;
    int64_t n;    /* elements */
    int64_t gran; /* CONTIG: chunk starts are rounded up to a multiple of this */
    int walk;     /* CDROP_WALK_* */
    int op;       /* STRIDED, BANDS: CDROP_OP_F32, F64, F16 or BF16 */
    int ndim;     /* STRIDED, BANDS: the merged layout (no length-1 axes) */
    int64_t shape[CDROP_MAX_DIMS], sstr[CDROP_MAX_DIMS], dstr[CDROP_MAX_DIMS]; /* bytes */
    uint64_t gstr[CDROP_MAX_DIMS]; /* BLOCK: counter strides (elements); gstr[ndim - 1] == 1 */
    /* STRIDED, BANDS, SLABS, BLOCK: the table's vrun[CDROP_VOP_DROP][dtype], or NULL (the
     * scalar consumers: slow, for a keep mask's U8 op) */
    cdrop_vrun_fn drop_run;
    cdrop_kernel_fn bits; /* BANDS: the table's CDROP_OP_BITS kernel, or NULL (no tall tiles) */
    cdrop_bits_run_fn bits_run; /* BANDS: the table's bits_run of a float32/float64 op, or NULL */
    cdrop_bits_t_fn bits_t;     /* BANDS: the table's bits_t (with bits) */
} cdrop_job;

/* Which walk suits a job's merged layout (ndim, shape, strides; op, resume and drop_run set):
 * BANDS when rows are closer in memory than columns for both arrays, SLABS for contiguous rows
 * whose third-last axis is closer in memory than the second-last (walk_layout.c), else STRIDED
 * (CONTIG is decided by the caller). */
int cdrop_layout_walk(const cdrop_job *job);

/* The item size of a STRIDED/BANDS/BLOCK job's op. */
static inline int64_t cdrop_op_bytes(int op)
{
    switch (op) {
    case CDROP_OP_F64:
        return 8;
    case CDROP_OP_F16:
    case CDROP_OP_BF16:
        return 2;
    case CDROP_OP_U8:
        return 1;
    default:
        return 4;
    }
}

/* Elements [0, n) of a run of a strided or block walk (walk_layout.c): read from ps, written
 * to pd (byte strides is, id), element r kept if keep[r * ks]; job->op says the dtype, and
 * CDROP_OP_U8 copies the keep flags themselves into pd (a block's keep mask, ps unused). */
void cdrop_apply_run(const cdrop_job *job, const char *ps, int64_t is, char *pd, int64_t id,
                     const uint8_t *keep, int64_t ks, int64_t n);
/* The same with contiguous keep flags (ks = 1), through job->drop_run where it is set. */
void cdrop_apply_keep(const cdrop_job *job, const char *ps, int64_t is, char *pd, int64_t id,
                      const uint8_t *keep, int64_t n);

/* Tall tiles (walk_tall.c): the rows of a band of whole rows whose keep decisions are made as
 * bits, 0 when the job cannot take them; and band b of such a job (bands of nr rows). */
int64_t cdrop_tall_rows(const cdrop_job *job);
void cdrop_tall_band(const cdrop_job *job, int64_t nr, int64_t b, uint8_t *scratch);

/* How many pieces the job has (blocks of the stream, or bands of rows), and run pieces
 * [c0, c1) with `scratch` (CDROP_SCRATCH_BYTES, or NULL for CONTIG). */
int64_t cdrop_job_pieces(const cdrop_job *job);
void cdrop_job_run(const cdrop_job *job, int64_t c0, int64_t c1, uint8_t *scratch);

/* x *= c: not dropout, the benchmarks' bandwidth floor for several threads. */
void cdrop_scale_f32(float *x, int64_t n, float c);

#endif /* CDROP_KERNELS_H */
