// The seed's test: two reads of PMCCNTR_EL0 around one instruction.
//
// results[0] = first read, [1] = second read. Under the cycle model (one cycle per
// instruction) the delta is 2: the first MRS and the ADD retire between the two reads.

        .include "common.inc"

        .text
        .global _start
_start:
        mov     x28, x0
        SET_VBAR
        mov     x1, #0x80000000
        msr     pmcntenset_el0, x1
        mov     x1, #5                  // PMCR: E, C
        msr     pmcr_el0, x1
        nop
        nop
        mrs     x2, pmccntr_el0
        add     x5, x5, #1
        mrs     x3, pmccntr_el0
        stp     x2, x3, [x28]
        EXIT

        VECTORS unexpected, unexpected, unexpected, unexpected
