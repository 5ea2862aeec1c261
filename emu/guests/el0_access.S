// EL0 code under every PMUSERENR setting.
//
// For each setting s in {0, EN, SW, CR, ER, all}, EL1 writes PMUSERENR_EL0 and ERETs to the
// EL0 probe, which makes seven accesses and returns with SVC. Every access that traps comes
// to EL1's lower-EL sync handler, which records ESR_EL1 and steps over it.
//
// results[16s + 0..7] = the ESRs of the traps, in order; [16s + 8] = how many;
// [16s + 9] = PMUSERENR_EL0 as EL0 read it; [16s + 10] = PMCCNTR as EL0 read it (0x77 if
// it trapped); [16s + 11] = the ELR of the first trap; [16s + 12] = the address of the
// first probe instruction.

        .include "common.inc"

        .text
        .global _start
_start:
        mov     x28, x0
        SET_VBAR
        mov     x1, #0x08
        msr     pmevtyper0_el0, x1
        mov     x1, #1
        orr     x1, x1, #0x80000000
        msr     pmcntenset_el0, x1
        mov     x1, #1
        msr     pmcr_el0, x1
        msr     pmselr_el0, xzr
        adr     x20, settings
        mov     x21, #0                 // setting index
next:
        ldrb    w1, [x20, x21]
        cmp     w1, #0xff
        b.eq    done
        msr     pmuserenr_el0, x1
        add     x22, x28, x21, lsl #7   // this setting's 16 words
        mov     x23, #0                 // traps
        adr     x1, el0_probe
        msr     elr_el1, x1
        mov     x1, #0x3c0              // EL0t, DAIF masked
        msr     spsr_el1, x1
        movz    x1, #0x4038, lsl #16    // EL0_STACK
        msr     sp_el0, x1
        eret
el0_back:                               // from the SVC handler, at EL1
        str     x23, [x22, #64]
        add     x21, x21, #1
        b       next
done:
        EXIT

settings:
        .byte   0, 1, 2, 4, 8, 15, 0xff
        .balign 4

el0_probe:
        mov     x1, #0x77
        mov     x2, #0x77
        mrs     x0, pmuserenr_el0       // always allowed
        str     x0, [x22, #72]
probe1:
        mrs     x1, pmccntr_el0         // EN or CR
        str     x1, [x22, #80]
        mrs     x2, pmevcntr0_el0       // EN or ER
        mov     x3, #1
        msr     pmswinc_el0, x3         // EN or SW
        mrs     x4, pmcr_el0            // EN
        mrs     x5, pmxevcntr_el0       // EN or ER
        msr     pmintenset_el1, x6      // never: UNDEFINED
        adr     x7, probe1
        str     x7, [x22, #96]
        svc     #0

lower_sync:
        mrs     x10, esr_el1
        lsr     x11, x10, #26
        cmp     x11, #0x15              // SVC: back to EL1's loop
        b.eq    el0_back
        str     x10, [x22, x23, lsl #3]
        mrs     x11, elr_el1
        cbnz    x23, 1f
        str     x11, [x22, #88]
1:      add     x23, x23, #1
        add     x11, x11, #4
        msr     elr_el1, x11
        eret

        VECTORS unexpected, unexpected, lower_sync, unexpected
