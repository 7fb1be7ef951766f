/*
 * xoshiro.inc.h -- one xoshiro128++ step of a vector of lanes, the same statements as
 * cdrop_lanes_next (cdrop_rng.h), written once over the including instruction set's 32-bit lane
 * primitives: isa_u32v, isa_add32, isa_xor, isa_shl32 and isa_rotl32.  always_inline: an
 * out-of-line copy takes and returns the lanes through memory (GCC made one in isa_avx2.c).
 */
static CDROP_ALWAYS_INLINE isa_u32v cdrop_xoshiro_step(isa_u32v *s0, isa_u32v *s1, isa_u32v *s2,
                                                       isa_u32v *s3)
{
    const isa_u32v out = isa_add32(isa_rotl32(isa_add32(*s0, *s3), 7), *s0);
    const isa_u32v t = isa_shl32(*s1, 9);
    *s2 = isa_xor(*s2, *s0);
    *s3 = isa_xor(*s3, *s1);
    *s1 = isa_xor(*s1, *s2);
    *s0 = isa_xor(*s0, *s3);
    *s2 = isa_xor(*s2, t);
    *s3 = isa_rotl32(*s3, 11);
    return out;
}
