//! vpmu as the PMU of a CPU emulator: real AArch64 guest code on unicorn-engine, exact
//! instruction and cycle counts, the overflow interrupt at the exact instruction.
//!
//! A harness, an example and a benchmark; never published: unicorn is GPL-2.0 and must never
//! become a dependency of `vpmu` (`cargo tree -p vpmu` shows no unicorn).
//!
//! - [`Machine`] ([`machine`]): the integration a unicorn user copies.
//! - [`glue`]: every call into vpmu, in one small module.
//! - [`guests`]: the guest programs, bare-metal EL1 A64 assembly in `emu/guests/*.S`,
//!   assembled by `build.rs` with GNU `as` (`binutils-aarch64-linux-gnu`).
//!
//! # What the machine counts
//!
//! | event | how |
//! |---|---|
//! | `INST_RETIRED` (0x08) | exactly: a block hook adds each translation block once it has run to its end; where a run is cut (an exception, an emulated access, a stop) the PC's offset in the block says how many of its instructions retired |
//! | `CPU_CYCLES` (0x11) | the cycle model: one cycle per retired instruction (IPC 1.00, like QEMU's `-icount shift=0`); drives `PMCCNTR` too |
//! | `BR_RETIRED` (0x21) | exactly: a block that ran to its end and whose last instruction is a branch (B, BL, B.cond, CBZ/CBNZ, TBZ/TBNZ, BR, BLR, RET, ERET) counts one |
//! | `SW_INCR` (0x00), `CHAIN` (0x1E) | by vpmu itself |
//!
//! `PMCEID0/1` advertise exactly these. An access sees the instructions retired before it
//! and itself retires after: two `MRS PMCCNTR_EL0` around one instruction differ by 2.
//!
//! Counting is lazy: vpmu hears of instructions only before a PMU access, an exception level
//! change, an overflow or the end of a run. Branches and the exception level at every `ERET`
//! are tracked only while a programmed counter needs them (`BR_RETIRED`, or different
//! filters for EL0 and EL1); otherwise the block hook does a handful of loads and stores and
//! the exception level is read from PSTATE when an access needs it.
//!
//! # PMU registers
//!
//! The `MRS`/`MSR` hook hands the instruction word to vpmu. An access that succeeds on a
//! register QEMU's Cortex-A72 model defines itself is skipped in place (the fast path: the
//! translation block goes on). Everything else goes back to QEMU: a register it does not
//! define (`PMEVCNTR4..30`, `PMMIR`) is UNDEFINED to it, and every PMU access it would perform
//! itself traps, because the machine sets `MDCR_EL3.TPM`. The interrupt hook then emulates
//! the access and steps over it, or injects what vpmu says into the guest's EL1 vectors:
//! UNDEFINED (EC 0x00) or the trapped access (EC 0x18, ISS from the instruction). unicorn
//! never delivers exceptions itself: the machine writes `ESR_EL1`, `ELR_EL1`, `SPSR_EL1`
//! (coprocessor access (3,0,4,0,0)), banks `SP`, sets PSTATE and jumps to `VBAR_EL1` plus
//! the vector offset; `SVC` and `BRK` from the guest are delivered the same way.
//!
//! # The overflow interrupt
//!
//! Before each block, the block hook compares the instructions retired with the next
//! overflow vpmu predicts (`events_until_overflow`). A block that would cross it is not run
//! here: it is run again with unicorn's stop address right after the overflowing instruction
//! (translated code is flushed around such a run, as the stop address is compiled into it),
//! so the IRQ is taken after exactly that instruction, with `ELR_EL1` pointing at the next.
//! An overflow on the last instruction of a block, or on a branch, stops before the next
//! block. There is no GIC: the PMU's one interrupt, a level-sensitive PPI, is wired straight
//! to the CPU's IRQ input and taken whenever vpmu's level is high and PSTATE.I is clear (a
//! masked line is polled at each block, so unmasking takes it at the next instruction). The
//! guest acknowledges it as Linux does, by clearing `PMOVSCLR_EL0`, which lowers the line.
//!
//! # Limits
//!
//! One vCPU; AArch64 EL0/EL1 only; MMU off in the guests (the machine itself does not care,
//! but its block-tail cache is keyed by virtual address and assumes code does not change
//! under it); the IRQ after an `MRS` that raised the line (none does today) would be taken at
//! the end of its block.

#![deny(unsafe_code)]

pub mod glue;
pub mod guests;
pub mod machine;
mod syshook;

pub use machine::{Error, Machine, Stats};
