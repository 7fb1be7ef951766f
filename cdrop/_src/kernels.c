/*
 * kernels.c -- the kernel table (which instruction set runs) and the runner of a whole call's
 * pieces, which cdrop/_kernels.pyx shares out to threads.  Pure C, no Python.
 */
#include "kernels.h"

#include <string.h>

/* Each instruction set's file (isa_*.c, through ops.inc.h) defines its three tables. */
#define CDROP_ISA_EXTERNS(isa)                                                                     \
    extern const cdrop_kernel_fn cdrop_ops_##isa[CDROP_N_OPS];                                     \
    extern const cdrop_vrun_fn cdrop_vruns_##isa[CDROP_N_VOPS][CDROP_N_DT];                        \
    void cdrop_normals_##isa(uint64_t key, uint64_t g0, int64_t n, float *z);                      \
    void cdrop_resume_##isa(const cdrop_args *a, int64_t lo, int64_t hi, uint8_t *lanes,           \
                            uint64_t *next);                                                       \
    extern const cdrop_bits_run_fn cdrop_bits_runs_##isa[2];                                       \
    void cdrop_bits_t_##isa(const uint8_t *bits, int64_t C, int64_t rows, int64_t c0, int64_t nc,  \
                            uint64_t *tb);
CDROP_ISA_EXTERNS(scalar)
#if CDROP_HAVE_VECTOR_EXT
CDROP_ISA_EXTERNS(portable)
#endif
#if CDROP_HAVE_X86_SIMD
CDROP_ISA_EXTERNS(avx2)
CDROP_ISA_EXTERNS(avx512)
#endif

static cdrop_kernel_table cdrop_table(int path, const cdrop_kernel_fn *ops,
                                      const cdrop_vrun_fn (*vruns)[CDROP_N_DT],
                                      cdrop_normal_fn normals, cdrop_resume_fn resume,
                                      const cdrop_bits_run_fn *bits_runs, cdrop_bits_t_fn bits_t)
{
    cdrop_kernel_table t;
    t.path = path;
    for (int k = 0; k < CDROP_N_OPS; k++)
        t.op[k] = ops[k];
    memcpy(t.vrun, vruns, sizeof t.vrun);
    t.normals = normals;
    t.resume = resume;
    t.bits_run[0] = bits_runs[0];
    t.bits_run[1] = bits_runs[1];
    t.bits_t = bits_t;
    return t;
}

cdrop_kernel_table cdrop_kernels_for(int path)
{
#if CDROP_HAVE_X86_SIMD
    if (path == CDROP_PATH_AVX512 && cdrop_cpu_has_avx512())
        return cdrop_table(CDROP_PATH_AVX512, cdrop_ops_avx512, cdrop_vruns_avx512,
                           cdrop_normals_avx512, cdrop_resume_avx512, cdrop_bits_runs_avx512,
                           cdrop_bits_t_avx512);
    if (path >= CDROP_PATH_AVX2 && cdrop_cpu_has_avx2())
        return cdrop_table(CDROP_PATH_AVX2, cdrop_ops_avx2, cdrop_vruns_avx2, cdrop_normals_avx2,
                           cdrop_resume_avx2, cdrop_bits_runs_avx2, cdrop_bits_t_avx2);
#endif
#if CDROP_HAVE_VECTOR_EXT
    if (path >= CDROP_PATH_PORTABLE)
        return cdrop_table(CDROP_PATH_PORTABLE, cdrop_ops_portable, cdrop_vruns_portable,
                           cdrop_normals_portable, cdrop_resume_portable, cdrop_bits_runs_portable,
                           cdrop_bits_t_portable);
#endif
    (void)path;
    return cdrop_table(CDROP_PATH_SCALAR, cdrop_ops_scalar, cdrop_vruns_scalar,
                       cdrop_normals_scalar, cdrop_resume_scalar, cdrop_bits_runs_scalar,
                       cdrop_bits_t_scalar);
}

/* walk_layout.c */
void cdrop_walk_strided(const cdrop_job *job, int64_t lo, int64_t hi, uint8_t *scratch);
void cdrop_walk_bands(const cdrop_job *job, int64_t band_lo, int64_t band_hi, uint8_t *scratch);
int64_t cdrop_band_count(const cdrop_job *job);
void cdrop_walk_slabs(const cdrop_job *job, int64_t lo, int64_t hi, uint8_t *scratch);
int64_t cdrop_slab_count(const cdrop_job *job);
/* walk_block.c */
void cdrop_walk_block(const cdrop_job *job, int64_t p0, int64_t p1, uint8_t *scratch);
int64_t cdrop_block_pieces(const cdrop_job *job);

/* CONTIG and STRIDED: one piece per block of the stream in the range, so that the thread count
 * cannot change which numbers an element gets; BANDS: one piece per band of rows; BLOCK: rows
 * or row segments (walk_block.c); SLABS: bands of slabs (walk_layout.c). */
int64_t cdrop_job_pieces(const cdrop_job *job)
{
    if (job->walk == CDROP_WALK_BANDS)
        return cdrop_band_count(job);
    if (job->walk == CDROP_WALK_BLOCK)
        return cdrop_block_pieces(job);
    if (job->walk == CDROP_WALK_SLABS)
        return cdrop_slab_count(job);
    return cdrop_chunk_count(job->args.g0, job->n);
}

void cdrop_job_run(const cdrop_job *job, int64_t c0, int64_t c1, uint8_t *scratch)
{
    if (job->walk == CDROP_WALK_BANDS) {
        cdrop_walk_bands(job, c0, c1, scratch);
        return;
    }
    if (job->walk == CDROP_WALK_BLOCK) {
        cdrop_walk_block(job, c0, c1, scratch);
        return;
    }
    if (job->walk == CDROP_WALK_SLABS) {
        cdrop_walk_slabs(job, c0, c1, scratch);
        return;
    }
    /* chunk starts rounded up to whole granules (the packed mask's bytes: no byte is written
     * by two threads; a chunk then reaches at most gran - 1 elements into the next block) */
    int64_t lo = cdrop_round_up(cdrop_chunk_start(job->args.g0, job->n, c0), job->gran);
    int64_t hi = cdrop_round_up(cdrop_chunk_start(job->args.g0, job->n, c1), job->gran);
    if (hi > job->n)
        hi = job->n;
    if (lo >= hi)
        return;
    if (job->walk == CDROP_WALK_CONTIG)
        job->fn(&job->args, lo, hi);
    else
        cdrop_walk_strided(job, lo, hi, scratch);
}

void cdrop_scale_f32(float *x, int64_t n, float c)
{
    for (int64_t i = 0; i < n; i++) /* a plain loop that every compiler vectorises */
        x[i] *= c;
}
