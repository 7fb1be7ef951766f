/*
 * ops.inc.h -- every operation's kernel for the instruction set of the file that includes it
 * (after its primitives): the consumers, then one walk.inc.h per operation.  A new operation is
 * a consumer and two lines here (and an entry in the tables of the isa_*.c files).
 */
#include "consumer_mask.inc.h"

#define CDROP_T float
#define CDROP_SFX f32
#include "consumer_float.inc.h"
#undef CDROP_T
#undef CDROP_SFX

#define CDROP_T double
#define CDROP_SFX f64
#include "consumer_float.inc.h"
#undef CDROP_T
#undef CDROP_SFX

#define CDROP_OP f32
#include "walk.inc.h"
#define CDROP_OP f64
#include "walk.inc.h"
#define CDROP_OP u8
#include "walk.inc.h"
#define CDROP_OP bits
#include "walk.inc.h"
