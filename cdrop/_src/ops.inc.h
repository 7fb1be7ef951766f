/*
 * ops.inc.h -- every operation's kernel for the instruction set of the file that includes it
 * (after its primitives), and its kernel table CDROP_ISA_TABLE: the consumers, then one
 * walk.inc.h per operation.  CDROP_ISA_STREAMS: the instruction set has the streaming
 * (non-temporal store) primitives of consumer_stream.inc.h.  A new operation is a consumer, two
 * lines here and an entry in the table.  CDROP_ISA_RESUME names the resumable keep-bytes
 * kernel (kernels.h's cdrop_resume_fn).  The dropout family's run functions and the normal
 * producer (variant.h) follow: CDROP_ISA_VRUNS and CDROP_ISA_NORMALS name them.
 */
#include "consumer_mask.inc.h"

#define CDROP_T float
#define CDROP_SFX f32
#include "consumer_family.inc.h"
#include "consumer_float.inc.h"
#ifdef CDROP_ISA_STREAMS
#include "consumer_stream.inc.h"
#endif
#undef CDROP_T
#undef CDROP_SFX

#define CDROP_T double
#define CDROP_SFX f64
#include "consumer_family.inc.h"
#include "consumer_float.inc.h"
#ifdef CDROP_ISA_STREAMS
#include "consumer_stream.inc.h"
#endif
#undef CDROP_T
#undef CDROP_SFX

#define CDROP_SFX f16
#include "consumer_half.inc.h"
#undef CDROP_SFX
#define CDROP_SFX bf16
#include "consumer_half.inc.h"
#undef CDROP_SFX

#define CDROP_OP f32
#include "walk.inc.h"
#define CDROP_OP f64
#include "walk.inc.h"
#define CDROP_OP u8
#define CDROP_RESUME_FN CDROP_ISA_RESUME /* the tall tiles' keep bytes (walk_layout.c) */
#include "walk.inc.h"
#define CDROP_OP bits
#include "walk.inc.h"
#define CDROP_OP f16
#include "walk.inc.h"
#define CDROP_OP bf16
#include "walk.inc.h"
#define CDROP_OP alpha_f32
#include "walk.inc.h"
#define CDROP_OP alpha_f64
#include "walk.inc.h"
#define CDROP_OP add_f32
#include "walk.inc.h"
#define CDROP_OP add_f64
#include "walk.inc.h"
#define CDROP_OP addf_f32
#define CDROP_OP_FINAL 1
#include "walk.inc.h"
#define CDROP_OP addf_f64
#define CDROP_OP_FINAL 1
#include "walk.inc.h"

#ifdef CDROP_ISA_STREAMS
#define CDROP_OP f32nt
#define CDROP_OP_FINAL 1
#include "walk.inc.h"
#define CDROP_OP f64nt
#define CDROP_OP_FINAL 1
#include "walk.inc.h"
#endif

const cdrop_kernel_fn CDROP_ISA_TABLE[CDROP_N_OPS] = {
    cdrop_kernel_f32,     cdrop_kernel_f64,     cdrop_kernel_u8,        cdrop_kernel_bits,
#ifdef CDROP_ISA_STREAMS
    cdrop_kernel_f32nt,   cdrop_kernel_f64nt,
#else /* no streaming stores: the ordinary kernels */
    cdrop_kernel_f32,     cdrop_kernel_f64,
#endif
    cdrop_kernel_f16,     cdrop_kernel_bf16,    cdrop_kernel_alpha_f32, cdrop_kernel_alpha_f64,
    cdrop_kernel_add_f32, cdrop_kernel_add_f64, cdrop_kernel_addf_f32,  cdrop_kernel_addf_f64,
};

#include "producer_normal.inc.h"
#include "variant_runs.inc.h"
