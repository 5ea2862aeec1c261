// The overflow interrupt at the exact instruction.
//
// Counter 0 counts INST_RETIRED with its interrupt enabled; each case presets it to
// 2^32 - k and sets PMCR.E: the MSR that sets it is instruction 1, so the k-th instruction
// from there overflows it and the IRQ is taken right after that instruction. The IRQ handler
// records ELR_EL1, X2 and PMOVSCLR, clears the overflow (which lowers the interrupt line:
// there is no GIC, the PMU's line goes straight to the CPU) and stops the counter.
//
// results[4c + 0] = ELR_EL1 in the handler, [4c + 1] = the address the guest expects,
// [4c + 2] = X2 at the interrupt, [4c + 3] = PMOVSCLR in the handler; [60] = IRQs taken.
// Case 5 does the same with counter 1 counting BR_RETIRED.

        .include "common.inc"

        .text
        .global _start
_start:
        mov     x28, x0
        mov     x23, #0                 // IRQs taken
        SET_VBAR
        mov     x1, #0x08               // counter 0: INST_RETIRED
        msr     pmevtyper0_el0, x1
        mov     x1, #1
        msr     pmintenset_el1, x1
        msr     pmcntenset_el0, x1
        msr     daifclr, #2             // take IRQs

        // Case 0: k = 10 in straight-line code (the overflow falls inside a block).
        mov     x22, #0
        adr     x1, expect0
        str     x1, [x28, #8]
        mov     w1, #-10
        msr     pmevcntr0_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1            // 1
        .rept   9                       // 2..10
        nop
        .endr
expect0:
        nop
        nop

        // Case 1: k = 1: the MSR that enables the counter overflows it.
        mov     x22, #32
        adr     x1, expect1
        str     x1, [x28, #40]
        mov     w1, #-1
        msr     pmevcntr0_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1            // 1
expect1:
        nop

        // Case 2: k = 1000 ending on a taken branch: 1 (MSR) + 1 (MOV) + 499 iterations of
        // 2: the IRQ returns to the loop head, with X2 = 600 - 499.
        mov     x22, #64
        adr     x1, loop2
        str     x1, [x28, #72]
        mov     w1, #-1000
        msr     pmevcntr0_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1            // 1
        mov     x2, #600                // 2
loop2:
        subs    x2, x2, #1
        b.ne    loop2

        // Case 3: k = 1001: inside the loop's block, right after the SUBS of iteration 500.
        mov     x22, #96
        adr     x1, loop3
        add     x1, x1, #4
        str     x1, [x28, #104]
        mov     w1, #-1001
        msr     pmevcntr0_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1
        mov     x2, #600
loop3:
        subs    x2, x2, #1
        b.ne    loop3

        // Case 4: the counter overflows while PSTATE.I masks the IRQ: it is taken right
        // after the instruction that unmasks it.
        mov     x22, #128
        adr     x1, expect4
        str     x1, [x28, #136]
        msr     daifset, #2
        mov     w1, #-5
        msr     pmevcntr0_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1
        .rept   20
        nop
        .endr
        msr     daifclr, #2
expect4:
        nop

        // Case 5: counter 1 counts BR_RETIRED, preset to overflow on the 3rd branch: the
        // IRQ returns to that branch's target, the loop head, with X2 = 10 - 3.
        mov     x22, #160
        adr     x1, loop5
        str     x1, [x28, #168]
        mov     x1, #0x21
        msr     pmevtyper1_el0, x1
        mov     x1, #2
        msr     pmintenset_el1, x1
        msr     pmcntenset_el0, x1
        mov     w1, #-3
        msr     pmevcntr1_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1
        mov     x2, #10
loop5:
        subs    x2, x2, #1
        b.ne    loop5

        str     x23, [x28, #480]
        EXIT

irq:
        mrs     x10, elr_el1
        add     x11, x28, x22
        str     x10, [x11]
        str     x2, [x11, #16]
        mrs     x10, pmovsclr_el0
        str     x10, [x11, #24]
        msr     pmovsclr_el0, x10       // acknowledge: the line goes low
        msr     pmcr_el0, xzr
        add     x23, x23, #1
        eret

        VECTORS unexpected, irq, unexpected, unexpected
