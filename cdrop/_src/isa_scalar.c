/*
 * isa_scalar.c -- the scalar mask producer, the reference path "scalar": plain C over the 16
 * lanes, one byte per keep flag, which the compiler may vectorise as it can.  Every compiler and
 * platform has it (MSVC, big-endian hosts and GCC before 12 run it where "portable" is asked
 * for: isa_portable.c needs GCC's or Clang's vector extensions).  Same stream and the same keep
 * test as the SIMD producers, so the same bits.
 */
#include "consumers_scalar.h"
#include "kernels.h"
#include "producer_scalar.h"

/* The lanes and the keep flags of their last step, where the mask points: a mask passed by
 * value as a 64-byte struct kept GCC from vectorising the consumers' loops. */
typedef struct {
    cdrop_lanes st;
    uint8_t keep[CDROP_GROUP]; /* 1: element k of the step is kept (or ties, when not exact) */
} isa_lanes;
typedef const uint8_t *isa_mask;
typedef uint8_t isa_top;

static inline isa_top isa_top_of(uint32_t thr) { return (uint8_t)((thr >> 24) ^ 0x80u); }

/* The lanes of a seeded block. */
static inline void isa_load_lanes(isa_lanes *v, const cdrop_lanes *st) { v->st = *st; }

static inline uint32_t isa_seek(isa_lanes *v, uint64_t key, uint64_t g)
{
    return cdrop_lanes_at(&v->st, key, g);
}

static inline void isa_step_out(isa_lanes *v, uint32_t out[CDROP_LANES])
{
    cdrop_lanes_next(&v->st, out);
}

static inline isa_mask isa_next(isa_lanes *v, isa_top top, int exact, uint64_t *tw)
{
    uint32_t out[CDROP_LANES];
    uint8_t b[CDROP_GROUP];
    uint8_t *m = v->keep;
    int any = 0;
    cdrop_lanes_next(&v->st, out);
    cdrop_step_bytes(b, out);
    for (int k = 0; k < CDROP_GROUP; k++) {
        m[k] = (uint8_t)(exact ? (int8_t)b[k] < (int8_t)top : (int8_t)b[k] <= (int8_t)top);
        any |= b[k] == top;
    }
    if (!exact && any) { /* a step has a tie in 22% of cases: only then build the tie word */
        uint64_t t = 0;
        for (int k = 0; k < CDROP_GROUP; k++)
            t |= (uint64_t)(b[k] == top) << k;
        *tw = t;
    }
    return m;
}

/* One element per "vector": the consumers' loops are plain C loops, for the compiler to
 * vectorise. */
typedef float isa_v_f32;
typedef double isa_v_f64;
enum { isa_width_f32 = 1, isa_width_f64 = 1 };
static inline float isa_set1_f32(float x) { return x; }
static inline double isa_set1_f64(double x) { return x; }
static inline float isa_load_f32(const float *p) { return *p; }
static inline double isa_load_f64(const double *p) { return *p; }
static inline void isa_store_f32(float *p, float x) { *p = x; }
static inline void isa_store_f64(double *p, double x) { *p = x; }

static inline float isa_keep_mul_f32(isa_mask m, int q, float x, float sc)
{
    return cdrop_select_f32(x, sc, m[q]);
}

static inline double isa_keep_mul_f64(isa_mask m, int q, double x, double sc)
{
    return cdrop_select_f64(x, sc, m[q]);
}

/* The dropout family's fused consumers (consumer_family.inc.h): an add, and kept ? a : b. */
static inline float isa_add_f32(float a, float b) { return a + b; }
static inline double isa_add_f64(double a, double b) { return a + b; }
static inline float isa_keep_sel_f32(isa_mask m, int q, float a, float b)
{
    const uint32_t k = 0u - (uint32_t)m[q];
    return cdrop_bits_f32((cdrop_f32_bits(a) & k) | (cdrop_f32_bits(b) & ~k));
}
static inline double isa_keep_sel_f64(isa_mask m, int q, double a, double b)
{
    const uint64_t k = 0u - (uint64_t)m[q];
    uint64_t ua, ub;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & k) | (ub & ~k);
    memcpy(&a, &ua, sizeof a);
    return a;
}

/* Final masks for consumers that cannot clear a lost tie afterwards (dropout_add into its
 * residual): the flags are the lanes' own array (isa_lanes.keep), cleared in place. */
static inline isa_mask isa_mask_settle(isa_mask m, uint64_t tw, uint64_t key, uint64_t g,
                                       uint32_t thr)
{
    uint8_t *k = (uint8_t *)(uintptr_t)m;
    for (; tw; tw &= tw - 1) {
        const int e = cdrop_ctz64(tw);
        k[e] &= (uint8_t)(cdrop_tie24(key, g + (uint64_t)e) < (thr & 0xFFFFFFu));
    }
    return m;
}

/* float16 and bfloat16: one element at a time, through the branch-free conversions of
 * half_scalar.h, which the compiler vectorises.  The keep flag clears the 16-bit result (the
 * scalar select of half_scalar.inc.h, the same bits as clearing the product): a 16-bit mask
 * is one widening of the flags where a 32-bit one is three. */
enum { isa_width_f16 = 1, isa_width_bf16 = 1 };
static inline void isa_keep_mul_f16(uint16_t *d, const uint16_t *s, isa_mask m, int q, float sc)
{
    *d = cdrop_select_f16(*s, sc, m[q]);
}

static inline void isa_keep_mul_bf16(uint16_t *d, const uint16_t *s, isa_mask m, int q, float sc)
{
    *d = cdrop_select_bf16(*s, sc, m[q]);
}

static inline void isa_store_keep_u8(uint8_t *dst, isa_mask m) { memcpy(dst, m, CDROP_GROUP); }

static inline uint64_t isa_keep_bits(isa_mask m)
{
    uint64_t bits = 0;
    for (int w = 0; w < CDROP_GROUP / 8; w++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        /* eight 0/1 bytes -> eight bits: byte k lands on bit 56 + k of the product, with no
         * carries between the partial products (their positions are all distinct) */
        uint64_t x;
        memcpy(&x, m + 8 * w, 8);
        bits |= ((x * UINT64_C(0x0102040810204080)) >> 56) << (8 * w);
#else
        for (int k = 0; k < 8; k++)
            bits |= (uint64_t)m[8 * w + k] << (8 * w + k);
#endif
    }
    return bits;
}

#define CDROP_ISA_TABLE cdrop_ops_scalar
#define CDROP_ISA_VRUNS cdrop_vruns_scalar
#define CDROP_ISA_NORMALS cdrop_normals_scalar
#define CDROP_ISA_RESUME cdrop_resume_scalar
#define isa_cursor_bytes sizeof(cdrop_lanes) /* keep[] is one step's scratch */
#include "ops.inc.h"
