// The speed table's guest: a counting loop and a PMU access loop, run on unicorn (with and
// without vpmu) and on qemu-system-aarch64 -M virt (its own PMU).
//
// The harness patches the parameter block at offset 8 before loading; it also patches the
// access loop's first instruction (MRS X3, PMCCNTR_EL0) into a NOP for the baseline.
// Under QEMU the image is loaded by -kernel at RAM + 0x80000: only PC-relative references.

        .include "common.inc"

        .text
        .global _start
_start:
        b       start
        .balign 8
params:
iters_a:        .quad   1000000         // counting loop iterations (10 instructions each)
iters_b:        .quad   1000000         // access loop iterations (3 instructions each)
use_psci:       .quad   0               // 1: end with PSCI SYSTEM_OFF (QEMU), 0: BRK
counters:       .quad   1               // bit 0: PMCCNTR, INST_RETIRED, CPU_CYCLES; bit 1: + BR_RETIRED

start:
        adr     x20, params
        ldr     x1, [x20, #24]
        cbz     x1, 1f
        mov     x1, #0x08               // INST_RETIRED
        msr     pmevtyper0_el0, x1
        mov     x1, #0x11               // CPU_CYCLES
        msr     pmevtyper1_el0, x1
        mov     x1, #3
        orr     x1, x1, #0x80000000
        msr     pmcntenset_el0, x1
        ldr     x1, [x20, #24]
        tbz     x1, #1, 0f
        mov     x1, #0x21               // BR_RETIRED
        msr     pmevtyper2_el0, x1
        mov     x1, #4
        msr     pmcntenset_el0, x1
0:      mov     x1, #1
        msr     pmcr_el0, x1
1:
        ldr     x2, [x20]
        cbz     x2, 3f
2:      add     x3, x3, #1              // the counting loop: 10 instructions
        add     x4, x4, x3
        eor     x5, x5, x4
        add     x6, x6, #3
        orr     x7, x7, x6
        add     x8, x8, x7
        eor     x9, x9, x8
        add     x10, x10, #1
        subs    x2, x2, #1
        b.ne    2b
3:
        ldr     x2, [x20, #8]
        cbz     x2, 5f
4:      mrs     x3, pmccntr_el0         // the access loop (patched to NOP for the baseline)
        subs    x2, x2, #1
        b.ne    4b
5:
        ldr     x1, [x20, #16]
        cbnz    x1, psci_off
        EXIT
psci_off:
        movz    w0, #0x0008
        movk    w0, #0x8400, lsl #16    // PSCI SYSTEM_OFF
        hvc     #0
        b       .
