// perf stat, in a guest: cycles, instructions and branches of a known loop.
//
// results[0] = PMCCNTR, [1] = PMEVCNTR0 (INST_RETIRED 0x08), [2] = PMEVCNTR1 (BR_RETIRED
// 0x21), [3] = the iteration count.
//
// Counted: from the MSR that sets PMCR.E (included: an access sees the instructions before
// it, and itself retires after) to the MSR that clears it (excluded): 1 + 4 * ITER
// instructions, ITER branches (the loop's B.NE, taken or not), cycles = instructions
// (the emulator's cycle model: IPC 1).

        .include "common.inc"
        .equ    ITER, 1000

        .text
        .global _start
_start:
        mov     x28, x0
        SET_VBAR
        mov     x1, #0x08               // INST_RETIRED
        msr     pmevtyper0_el0, x1
        mov     x1, #0x21               // BR_RETIRED
        msr     pmevtyper1_el0, x1
        mov     x1, #3
        orr     x1, x1, #0x80000000     // counters 0, 1 and the cycle counter
        msr     pmcntenset_el0, x1
        mov     x2, #ITER
        mov     x1, #7                  // PMCR: E, P (reset event counters), C (reset PMCCNTR)
        msr     pmcr_el0, x1            // counting starts here
loop:
        add     x3, x3, #1
        eor     x4, x4, x3
        subs    x2, x2, #1
        b.ne    loop
        msr     pmcr_el0, xzr           // counting stops here
        mrs     x5, pmccntr_el0
        mrs     x6, pmevcntr0_el0
        mrs     x7, pmevcntr1_el0
        mov     x8, #ITER
        stp     x5, x6, [x28]
        stp     x7, x8, [x28, #16]
        EXIT

        VECTORS unexpected, unexpected, unexpected, unexpected
