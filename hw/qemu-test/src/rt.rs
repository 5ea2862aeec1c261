//! The bare-metal runtime: entry at EL2, the EL2 vectors, entering a guest at EL1 and coming
//! back on its `HVC`; the PL011, PSCI and the assembly macros come from `baremetal`.

use core::arch::{asm, global_asm};

use baremetal::psci;

pub use psci::{affinity_info, cpu_off};

global_asm!(
    baremetal::asm_macros!(),
    r#"
    // EL2 set-up of each CPU: the vectors; HCR_EL2.RW, EL1 is AArch64. Nothing else: no
    // stage 2, no traps but the PMU's (MDCR_EL2).
.macro EL2_SETUP
    ADR_L x0, el2_vectors
    msr vbar_el2, x0
    mov x0, #(1 << 31)
    msr hcr_el2, x0
    isb
.endm

    .section .text.boot, "ax"
    .global _start
_start:
    ADR_L x0, __stack_top
    mov sp, x0
    ZERO_BSS x0, x1
    EL2_SETUP
    bl main
3:  wfi
    b 3b

    // CPU 1, started at EL2 by PSCI CPU_ON: its own stack, vectors and HCR_EL2.
    .global secondary_start
secondary_start:
    ADR_L x0, __stack2_top
    mov sp, x0
    EL2_SETUP
    bl secondary_main
4:  wfi
    b 4b

    .section .text, "ax"
    .balign 2048
el2_vectors:
    .irp off, 0x000, 0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380
    .org el2_vectors + \off
    mov x0, #\off
    b el2_unexpected
    .endr
    .org el2_vectors + 0x400
    b guest_exit
    .org el2_vectors + 0x480
    b guest_irq
    .irp off, 0x500, 0x580, 0x600, 0x680, 0x700, 0x780
    .org el2_vectors + \off
    mov x0, #\off
    b el2_unexpected
    .endr
    .org el2_vectors + 0x800

el2_unexpected:
    mrs x1, esr_el2
    mrs x2, elr_el2
    ADR_L x3, __stack_top
    mov sp, x3
    bl unexpected_exception
    b .

    // u64 run_guest(entry, arg): runs `entry` at EL1h (DAIF masked) with x0 = arg, until its
    // HVC; returns the guest's x0.
    .global run_guest
run_guest:
    PUSH_X19_X30
    mov x9, sp
    adrp x10, saved_el2_sp
    str x9, [x10, :lo12:saved_el2_sp]
    msr elr_el2, x0
    mov x0, #0x3c5
    msr spsr_el2, x0
    mov x0, x1
    eret

guest_exit:
    adrp x10, saved_el2_sp
    ldr x9, [x10, :lo12:saved_el2_sp]
    mov sp, x9
    POP_X19_X30
    ret

    // A physical IRQ while the guest runs: the caller-saved registers on the EL2 stack (below
    // run_guest's frame), handled in Rust, back to the guest.
guest_irq:
    IRQ_CALL_ERET el2_irq

    // Guest code at EL1: x0 = iterations (>= 1). 2 * x0 instructions, then HVC.
    .global guest_loop
    .balign 64
guest_loop:
1:  subs x0, x0, #1
    b.ne 1b
    hvc #0

    // The same loop at EL2, for "EL2 is never counted".
    .global el2_loop
    .balign 64
el2_loop:
1:  subs x0, x0, #1
    b.ne 1b
    ret

    .section .bss
    .balign 8
saved_el2_sp:
    .quad 0
"#
);

extern "C" {
    fn run_guest(entry: usize, arg: u64) -> u64;
    fn guest_loop();
    fn el2_loop(n: u64);
}

/// Runs `guest_loop` at EL1 for `n` iterations (2n instructions and the `HVC`).
pub fn guest(n: u64) {
    // SAFETY: `run_guest` saves the callee-saved registers and the stack pointer, enters
    // `guest_loop` at EL1 (which touches only x0 and the flags) and returns here on its HVC.
    unsafe {
        run_guest(guest_loop as *const () as usize, n);
    }
}

/// The same loop at EL2.
pub fn at_el2(n: u64) {
    // SAFETY: a leaf loop on x0 and the flags.
    unsafe { el2_loop(n) }
}

#[no_mangle]
extern "C" fn unexpected_exception(vector: u64, esr: u64, elr: u64) -> ! {
    crate::println!("FAIL unexpected exception: vector {vector:#x} ESR_EL2 {esr:#x} ELR_EL2 {elr:#x}");
    power_off()
}

/// Prints a line on the PL011 (QEMU needs no initialisation).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!(baremetal::uart::Uart, $($arg)*);
    }};
}

extern "C" {
    fn secondary_start();
}

/// PSCI `CPU_ON` of the CPU with MPIDR `target` at `secondary_start`: PSCI's return code (0:
/// success). The new CPU starts at EL2 on its own stack and touches only the mailbox and the
/// vCPU it is handed.
pub fn cpu_on(target: u64) -> i64 {
    psci::cpu_on(target, secondary_start as *const () as u64, 0)
}

/// PSCI `SYSTEM_OFF` through `SMC` (QEMU answers it: there is no EL3).
pub fn power_off() -> ! {
    psci::system_off()
}

/// `MDCR_EL2`.
pub fn write_mdcr_el2(v: u64) {
    // SAFETY: MDCR_EL2 at EL2 configures the debug/PMU traps and partition only.
    unsafe { asm!("msr mdcr_el2, {}", "isb", in(reg) v, options(nomem, nostack)) };
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::println!("FAIL panic: {info}");
    power_off()
}
