// Accesses at EL1 that are UNDEFINED when the counter does not exist (n >= PMCR.N), and
// the same accesses where it does.
//
// Probe i: results[4i + 0] = ESR_EL1 if it trapped (else 0), [4i + 1] = its ELR_EL1,
// [4i + 2] = X2 after it (written value read back, or 0x77 if it trapped), [4i + 3] = the
// probe's address.

        .include "common.inc"

        .macro  PROBE i, insn:vararg
        add     x24, x28, #(\i * 32)
        adr     x25, 1f
        str     x25, [x24, #24]
        mov     x2, #0x77
1:      \insn
        str     x2, [x24, #16]
        .endm

        .text
        .global _start
_start:
        mov     x28, x0
        SET_VBAR
        mov     x3, #0x1234
        mov     x4, #0x11
        msr     pmevcntr1_el0, x3
        PROBE   0, mrs x2, pmevcntr1_el0        // exists for N >= 2
        PROBE   1, mrs x2, pmevcntr3_el0        // QEMU defines it; vpmu: N = 2 -> UNDEFINED
        PROBE   2, msr pmevtyper2_el0, x4
        PROBE   3, mrs x2, pmevtyper2_el0
        PROBE   4, msr pmevcntr5_el0, x3        // QEMU does not define it
        PROBE   5, mrs x2, pmevcntr5_el0
        PROBE   6, mrs x2, pmevcntr30_el0       // never exists
        PROBE   7, mrs x2, pmccntr_el0          // always exists
        EXIT

sync:
        mrs     x10, esr_el1
        mrs     x11, elr_el1
        stp     x10, x11, [x24]
        add     x11, x11, #4
        msr     elr_el1, x11
        eret

        VECTORS sync, unexpected, unexpected, unexpected
