//! Entry points and exception vectors, in assembly: the hypervisor's first instructions, the
//! secondary CPUs' entry (the address `CPU_ON` is redirected to), the EL2 vector table, and
//! the guest entry. Every trap saves the guest's x0–x30, `ELR_EL2` and `SPSR_EL2` in a
//! [`Frame`](crate::trap::Frame) on this CPU's EL2 stack and calls a Rust handler, which may
//! change them; the frame is then restored and the guest resumed with `ERET`.

use core::arch::global_asm;

/// Size of one CPU's EL2 stack (the `.stacks` section in `link.ld` holds [`MAX_CPUS`] of them).
pub const STACK_SIZE: u64 = 0x1_0000;
/// The most CPUs the hypervisor runs on.
pub const MAX_CPUS: usize = 4;

global_asm!(
    baremetal::asm_macros!(),
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    /* QEMU starts the ELF here at EL2, every register zero, on CPU 0 only. */
    ZERO_BSS x2, x3
    mov x0, #1
    b 2f

    .global _secondary_entry
_secondary_entry:
    /* PSCI CPU_ON (redirected by the hypervisor) starts a secondary here at EL2. */
    mov x0, #0
2:  mrs x1, mpidr_el1
    and x1, x1, #0xff
    cmp x1, #{max_cpus}
    b.hs 9f
    ADR_L x2, __stacks_start
    add x3, x1, #1
    mov x4, #{stack_size}
    mul x3, x3, x4
    add sp, x2, x3
    bl hyp_main
9:  wfe
    b 9b

    .global enter_guest
enter_guest:
    /* x0: the guest's x0, x1: its entry point, x2: SPSR_EL2, x3: the EL2 stack top. */
    msr elr_el2, x1
    msr spsr_el2, x2
    mov sp, x3
    .irp n, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30
    mov x\n, xzr
    .endr
    isb
    eret

.macro SAVE_FRAME
    sub sp, sp, #272
    PAIRS_X0_TO stp, x29
    mrs x0, elr_el2
    mrs x1, spsr_el2
    stp x30, x0, [sp, #240]
    str x1, [sp, #256]
    mov x0, sp
.endm

.macro VECTOR handler, kind
    .balign 0x80
    SAVE_FRAME
    mov x1, #\kind
    bl \handler
    b restore_frame
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global el2_vectors
el2_vectors:
    VECTOR el2_unexpected, 0
    VECTOR el2_unexpected, 1
    VECTOR el2_unexpected, 2
    VECTOR el2_unexpected, 3
    VECTOR el2_unexpected, 4
    VECTOR el2_unexpected, 5
    VECTOR el2_unexpected, 6
    VECTOR el2_unexpected, 7
    VECTOR lower_sync, 8
    VECTOR lower_irq, 9
    VECTOR lower_irq, 10
    VECTOR el2_unexpected, 11
    VECTOR el2_unexpected, 12
    VECTOR el2_unexpected, 13
    VECTOR el2_unexpected, 14
    VECTOR el2_unexpected, 15

restore_frame:
    ldr x1, [sp, #256]
    ldp x30, x0, [sp, #240]
    msr elr_el2, x0
    msr spsr_el2, x1
    PAIRS_X0_TO ldp, x29
    add sp, sp, #272
    eret
"#,
    max_cpus = const MAX_CPUS,
    stack_size = const STACK_SIZE,
);

extern "C" {
    /// The EL2 vector table.
    pub static el2_vectors: u8;
    /// The secondary CPUs' entry point.
    pub static _secondary_entry: u8;
    /// Start of the stacks.
    pub static __stacks_start: u8;
    /// ERETs to the guest; never returns.
    fn enter_guest(x0: u64, entry: u64, spsr: u64, sp: u64) -> !;
}

/// `SPSR_EL2` for the guest's first instruction: EL1h, D, A, I, F masked.
pub const GUEST_SPSR: u64 = 0x3c5;

/// Enters the guest at `entry` with `x0` in X0, X1–X30 zero, on a fresh EL2 stack for `cpu`.
pub fn run_guest(cpu: usize, entry: u64, x0: u64) -> ! {
    // The top of this CPU's stack; the Rust frames below us are abandoned.
    let base = core::ptr::addr_of!(__stacks_start) as u64;
    let top = base + (cpu as u64 + 1) * STACK_SIZE;
    // SAFETY: `enter_guest` leaves Rust for good: it resets SP to this CPU's own stack top
    // (which nothing else uses) and ERETs to the guest; later traps start on that stack.
    unsafe { enter_guest(x0, entry, GUEST_SPSR, top) }
}

/// The address secondaries enter at (the redirected `CPU_ON` entry point).
pub fn secondary_entry() -> u64 {
    core::ptr::addr_of!(_secondary_entry) as u64
}

/// The vector table's address, for `VBAR_EL2`.
pub fn vectors() -> u64 {
    core::ptr::addr_of!(el2_vectors) as u64
}
