//! The bare-metal runtime: entry at EL2, the EL2 vectors, entering a guest at EL1 and coming
//! back on its `HVC`, the PL011 and PSCI `SYSTEM_OFF`.

use core::arch::{asm, global_asm};
use core::fmt;

global_asm!(
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    adrp x0, __stack_top
    add x0, x0, :lo12:__stack_top
    mov sp, x0
    adrp x0, __bss_start
    add x0, x0, :lo12:__bss_start
    adrp x1, __bss_end
    add x1, x1, :lo12:__bss_end
1:  cmp x0, x1
    b.hs 2f
    str xzr, [x0], #8
    b 1b
2:  adrp x0, el2_vectors
    add x0, x0, :lo12:el2_vectors
    msr vbar_el2, x0
    // HCR_EL2.RW: EL1 is AArch64. Nothing else: no stage 2, no traps but the PMU's (MDCR_EL2).
    mov x0, #(1 << 31)
    msr hcr_el2, x0
    isb
    bl main
3:  wfi
    b 3b

    // CPU 1, started at EL2 by PSCI CPU_ON: its own stack, vectors and HCR_EL2.
    .global secondary_start
secondary_start:
    adrp x0, __stack2_top
    add x0, x0, :lo12:__stack2_top
    mov sp, x0
    adrp x0, el2_vectors
    add x0, x0, :lo12:el2_vectors
    msr vbar_el2, x0
    mov x0, #(1 << 31)
    msr hcr_el2, x0
    isb
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
    adrp x3, __stack_top
    add x3, x3, :lo12:__stack_top
    mov sp, x3
    bl unexpected_exception
    b .

    // u64 run_guest(entry, arg): runs `entry` at EL1h (DAIF masked) with x0 = arg, until its
    // HVC; returns the guest's x0.
    .global run_guest
run_guest:
    stp x29, x30, [sp, #-96]!
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
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
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]
    ldp x27, x28, [sp, #80]
    ldp x29, x30, [sp], #96
    ret

    // A physical IRQ while the guest runs: save the caller-saved registers on the EL2 stack
    // (below run_guest's frame), handle it in Rust, return to the guest.
guest_irq:
    sub sp, sp, #176
    stp x0, x1, [sp, #0]
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x29, [sp, #144]
    str x30, [sp, #160]
    bl el2_irq
    ldp x0, x1, [sp, #0]
    ldp x2, x3, [sp, #16]
    ldp x4, x5, [sp, #32]
    ldp x6, x7, [sp, #48]
    ldp x8, x9, [sp, #64]
    ldp x10, x11, [sp, #80]
    ldp x12, x13, [sp, #96]
    ldp x14, x15, [sp, #112]
    ldp x16, x17, [sp, #128]
    ldp x18, x29, [sp, #144]
    ldr x30, [sp, #160]
    add sp, sp, #176
    eret

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

const UART_DR: *mut u32 = 0x0900_0000 as *mut u32;
const UART_FR: *const u32 = 0x0900_0018 as *const u32;

/// The PL011 at 0x09000000 (QEMU needs no initialisation).
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // SAFETY: QEMU virt's PL011 registers; MMIO with the MMU off (Device memory).
            unsafe {
                while UART_FR.read_volatile() & (1 << 5) != 0 {}
                UART_DR.write_volatile(u32::from(b));
            }
        }
        Ok(())
    }
}

/// Prints a line on the PL011.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::rt::Uart, $($arg)*);
    }};
}

extern "C" {
    fn secondary_start();
}

/// PSCI `CPU_ON` of the CPU with MPIDR `target` at `secondary_start`: PSCI's return code (0:
/// success).
pub fn cpu_on(target: u64) -> i64 {
    let ret: i64;
    // SAFETY: PSCI CPU_ON through SMC (QEMU answers it); the new CPU starts at EL2 on its own
    // stack at `secondary_start` and touches only the mailbox and the vCPU it is handed.
    unsafe {
        asm!("smc #0", inout("x0") 0xc400_0003u64 => ret, in("x1") target,
             in("x2") secondary_start as *const () as u64, in("x3") 0u64, options(nomem, nostack))
    };
    ret
}

/// PSCI `CPU_OFF` of the calling CPU.
pub fn cpu_off() -> ! {
    // SAFETY: PSCI CPU_OFF does not return when it works.
    unsafe { asm!("smc #0", in("x0") 0x8400_0002u64, options(nomem, nostack)) };
    loop {
        // SAFETY: as in `power_off`.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// PSCI `AFFINITY_INFO` of the CPU with MPIDR `target` (0: on, 1: off, 2: on pending).
pub fn affinity_info(target: u64) -> i64 {
    let ret: i64;
    // SAFETY: a PSCI query through SMC; no memory is touched.
    unsafe { asm!("smc #0", inout("x0") 0xc400_0004u64 => ret, in("x1") target, in("x2") 0u64, options(nomem, nostack)) };
    ret
}

/// PSCI `SYSTEM_OFF` through `SMC` (QEMU answers it: there is no EL3).
pub fn power_off() -> ! {
    // SAFETY: PSCI SYSTEM_OFF does not return when it works.
    unsafe { asm!("smc #0", in("x0") 0x8400_0008u64, options(nomem, nostack)) };
    loop {
        // SAFETY: waits for an interrupt that never comes.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
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
