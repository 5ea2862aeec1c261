//! The pieces of a bare-metal aarch64 runtime that vpmu's three test programs share: the EL2
//! test binary of vpmu-hw (`hw/qemu-test`), the EL2 hypervisor (`hyp`) and its EL1 test guest
//! (`hyp/guests`), all on QEMU's `virt` machine with the MMU off.
//!
//! - [`asm_macros!`]: assembler macros for the entry code and the exception vectors (address
//!   of a symbol, BSS clearing, the register saves of a trap frame and of a call);
//! - [`uart`]: the PL011 console;
//! - [`psci`]: PSCI calls through `SMC` (QEMU's firmware at EL2, the hypervisor at EL1).
//!
//! What differs on purpose stays in each program: the vector tables (EL2 or EL1, which entries
//! go where), the full trap frame of the hypervisor, the stacks and the per-CPU entry.

#![no_std]

#[cfg(target_arch = "aarch64")]
pub mod psci;
#[cfg(target_arch = "aarch64")]
pub mod uart;

/// The assembler macros, as one string for the first template of a `global_asm!`. Define them
/// once per crate (every `global_asm!` of a crate lands in one assembly module under LTO, and
/// a macro defined twice is an error there).
///
/// - `ADR_L reg, sym`: `reg` = the address of `sym` (`ADRP` + `ADD :lo12:`, ±4 GiB).
/// - `ZERO_BSS cur, end`: zeroes `[__bss_start, __bss_end)` (8-byte aligned, from the linker
///   script) 8 bytes at a time; clobbers `cur`, `end` and the flags, uses local labels `0`
///   and `1`.
/// - `PAIRS_X0_TO op, last`: `op` (`stp` to save, `ldp` to restore) of x0 .. `last` (`x17`
///   or `x29`) in pairs at `[sp, #0]` .. `[sp, #8 * last]`: the start of every trap frame
///   here; the caller moves `sp` and saves the rest.
/// - `IRQ_CALL_ERET handler`: an interrupt entry at the current EL: x0–x18, x29, x30 (what an
///   AAPCS64 call may clobber; 176 bytes) saved on the current stack, `BL handler`, restored,
///   `ERET`. `ELR`/`SPSR` are not saved: the handler runs with interrupts masked and must take
///   no exception.
/// - `PUSH_X19_X30` / `POP_X19_X30`: the callee-saved registers x19–x30 (96 bytes, the frame
///   record x29, x30 at the bottom), for assembly that leaves the Rust caller's context.
///
/// # Examples
///
/// ```ignore
/// core::arch::global_asm!(
///     baremetal::asm_macros!(),
///     r#"
///     .section .text.boot, "ax"
///     .global _start
/// _start:
///     ADR_L x0, __stack_top
///     mov sp, x0
///     ZERO_BSS x0, x1
///     bl main
///     "#
/// );
/// ```
#[macro_export]
macro_rules! asm_macros {
    () => {
        r#"
.macro ADR_L reg, sym
    adrp \reg, \sym
    add \reg, \reg, :lo12:\sym
.endm

.macro ZERO_BSS cur, end
    ADR_L \cur, __bss_start
    ADR_L \end, __bss_end
0:  cmp \cur, \end
    b.hs 1f
    str xzr, [\cur], #8
    b 0b
1:
.endm

.macro PAIRS_X0_TO op, last
.ifnc \last, x17
.ifnc \last, x29
    .error "PAIRS_X0_TO: the last register is x17 or x29"
.endif
.endif
    \op x0, x1, [sp, #0]
    \op x2, x3, [sp, #16]
    \op x4, x5, [sp, #32]
    \op x6, x7, [sp, #48]
    \op x8, x9, [sp, #64]
    \op x10, x11, [sp, #80]
    \op x12, x13, [sp, #96]
    \op x14, x15, [sp, #112]
    \op x16, x17, [sp, #128]
.ifc \last, x29
    \op x18, x19, [sp, #144]
    \op x20, x21, [sp, #160]
    \op x22, x23, [sp, #176]
    \op x24, x25, [sp, #192]
    \op x26, x27, [sp, #208]
    \op x28, x29, [sp, #224]
.endif
.endm

.macro IRQ_CALL_ERET handler
    sub sp, sp, #176
    PAIRS_X0_TO stp, x17
    stp x18, x29, [sp, #144]
    str x30, [sp, #160]
    bl \handler
    PAIRS_X0_TO ldp, x17
    ldp x18, x29, [sp, #144]
    ldr x30, [sp, #160]
    add sp, sp, #176
    eret
.endm

.macro PUSH_X19_X30
    stp x29, x30, [sp, #-96]!
    stp x19, x20, [sp, #16]
    stp x21, x22, [sp, #32]
    stp x23, x24, [sp, #48]
    stp x25, x26, [sp, #64]
    stp x27, x28, [sp, #80]
.endm

.macro POP_X19_X30
    ldp x19, x20, [sp, #16]
    ldp x21, x22, [sp, #32]
    ldp x23, x24, [sp, #48]
    ldp x25, x26, [sp, #64]
    ldp x27, x28, [sp, #80]
    ldp x29, x30, [sp], #96
.endm
"#
    };
}
