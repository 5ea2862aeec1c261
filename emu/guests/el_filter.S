// Exception level filters: counts split exactly between EL0 and EL1 across ERET and SVC.
//
// Counter 0: INST_RETIRED at EL0 only (PMEVTYPER.P), counter 1: INST_RETIRED at EL1 only
// (PMEVTYPER.U), counter 2: BR_RETIRED at EL0 only; PMCCNTR counts both.
// results[0..3] = PMEVCNTR0..2, [3] = PMCCNTR.
//
// EL1 counts: the MSR that sets PMCR.E, the ERET, and the vector's branch (3); EL0: MOV,
// 5 iterations of SUBS + B.NE, SVC (12); EL0 branches: 5.

        .include "common.inc"

        .text
        .global _start
_start:
        mov     x28, x0
        SET_VBAR
        mov     x1, #0x08
        orr     x1, x1, #0x80000000     // P: not at EL1
        msr     pmevtyper0_el0, x1
        mov     x1, #0x08
        orr     x1, x1, #0x40000000     // U: not at EL0
        msr     pmevtyper1_el0, x1
        mov     x1, #0x21
        orr     x1, x1, #0x80000000
        msr     pmevtyper2_el0, x1
        mov     x1, #7
        orr     x1, x1, #0x80000000
        msr     pmcntenset_el0, x1
        adr     x1, el0_code
        msr     elr_el1, x1
        mov     x1, #0x3c0              // EL0t, DAIF masked
        msr     spsr_el1, x1
        mov     x1, #7                  // E, P, C
        msr     pmcr_el0, x1            // EL1 1
        eret                            // EL1 2

el0_code:
        mov     x2, #5                  // EL0 1
1:      subs    x2, x2, #1              // EL0 2..11
        b.ne    1b
        svc     #0                      // EL0 12

lower_sync:                             // after the vector's branch (EL1 3)
        msr     pmcr_el0, xzr
        mrs     x2, pmevcntr0_el0
        mrs     x3, pmevcntr1_el0
        mrs     x4, pmevcntr2_el0
        mrs     x5, pmccntr_el0
        stp     x2, x3, [x28]
        stp     x4, x5, [x28, #16]
        EXIT

        VECTORS unexpected, unexpected, lower_sync, unexpected
