// The known loop: LOOPS iterations of SUBS + B.NE, then exit(0). Static, no libc: at EL0 it
// retires exactly 2 * LOOPS + 5 instructions (movz, movk, the loop, mov, mov, svc).
    .global _start
_start:
    movz x0, #(LOOPS & 0xffff)
    movk x0, #(LOOPS >> 16), lsl #16
1:  subs x0, x0, #1
    b.ne 1b
    mov x8, #93
    mov x0, #0
    svc #0
