// SW_INCR, and a CHAINed pair across an overflow.
//
// results[0] = PMEVCNTR2 (SW_INCR) after three writes of PMSWINC bit 2 (and bit 3, whose
// counter counts INST_RETIRED and so ignores them); [1] = PMEVCNTR3;
// [2] = PMEVCNTR0 (INST_RETIRED, preset 0xffff_fff0), [3] = PMEVCNTR1 (CHAIN, preset 5),
// [4] = PMOVSSET, after 1 + 32 counted instructions.

        .include "common.inc"

        .text
        .global _start
_start:
        mov     x28, x0
        SET_VBAR
        // SW_INCR on counter 2; counter 3 counts instructions.
        msr     pmevtyper2_el0, xzr     // SW_INCR (0x00)
        mov     x1, #0x08
        msr     pmevtyper3_el0, x1
        mov     x1, #0xc
        msr     pmcntenset_el0, x1
        mov     x1, #3                  // E, P
        msr     pmcr_el0, x1
        mov     x1, #0xc
        msr     pmswinc_el0, x1
        msr     pmswinc_el0, x1
        msr     pmswinc_el0, x1
        msr     pmcr_el0, xzr
        mrs     x2, pmevcntr2_el0
        mrs     x3, pmevcntr3_el0
        stp     x2, x3, [x28]

        // CHAIN: counter 1 counts counter 0's overflows.
        mov     x1, #0xc
        msr     pmcntenclr_el0, x1
        mov     x1, #0x08
        msr     pmevtyper0_el0, x1
        mov     x1, #0x1e               // CHAIN
        msr     pmevtyper1_el0, x1
        mov     w1, #0xfffffff0
        msr     pmevcntr0_el0, x1
        mov     x1, #5
        msr     pmevcntr1_el0, x1
        mov     x1, #3
        msr     pmcntenset_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1            // 1
        .rept   32                      // 2..33
        nop
        .endr
        msr     pmcr_el0, xzr
        mrs     x2, pmevcntr0_el0
        mrs     x3, pmevcntr1_el0
        mrs     x4, pmovsset_el0
        stp     x2, x3, [x28, #16]
        str     x4, [x28, #32]
        EXIT

        VECTORS unexpected, unexpected, unexpected, unexpected
