//! Entry, exception vectors, EL0 trampolines and register access of the test guest.

use core::arch::global_asm;

global_asm!(
    baremetal::asm_macros!(),
    r#"
    .section .text.boot, "ax"
    .global _start
_start:
    mov x19, x0
    ZERO_BSS x1, x2
    ADR_L x1, __stacks
    add sp, x1, #0x4000
    ADR_L x1, guest_vectors
    msr vbar_el1, x1
    isb
    mov x0, x19
    bl guest_main
    b .

    .global secondary_start
secondary_start:
    /* x0: the CPU_ON context id (the CPU's index) */
    ADR_L x1, __stacks
    add x2, x0, #1
    lsl x2, x2, #14
    add sp, x1, x2
    ADR_L x1, guest_vectors
    msr vbar_el1, x1
    isb
    bl secondary_main
    b .

.macro RECORD
    /* x0, x1 saved by the caller. EXC: esr, elr, count. Skips the instruction. */
    adrp x1, EXC
    add x1, x1, :lo12:EXC
    mrs x0, esr_el1
    str x0, [x1]
    mrs x0, elr_el1
    str x0, [x1, #8]
    add x0, x0, #4
    msr elr_el1, x0
    ldr x0, [x1, #16]
    add x0, x0, #1
    str x0, [x1, #16]
.endm

    .balign 0x800
    .global guest_vectors
guest_vectors:
    /* Current EL with SP0, with SPx, lower EL AArch64, lower EL AArch32: sync, IRQ, FIQ, SError. */
    .irp h, hang, hang, hang, hang, el1_sync, el1_irq, hang, hang, el0_sync, hang, hang, hang, hang, hang, hang, hang
    .balign 0x80
    b \h
    .endr

hang:
    mrs x0, esr_el1
    mrs x1, elr_el1
    bl guest_fatal
    b .

el1_sync:
    sub sp, sp, #16
    stp x0, x1, [sp]
    RECORD
    ldp x0, x1, [sp]
    add sp, sp, #16
    eret

el0_sync:
    sub sp, sp, #16
    stp x0, x1, [sp]
    mrs x0, esr_el1
    lsr x0, x0, #26
    cmp x0, #0x15
    b.eq 2f
    RECORD
    ldp x0, x1, [sp]
    add sp, sp, #16
    eret
2:  ldp x0, x1, [sp]
    add sp, sp, #16
    b el0_return

el1_irq:
    IRQ_CALL_ERET guest_irq

    /* run_el0(pc) -> the EL0 code's x0 at its SVC. */
    .global run_el0
run_el0:
    PUSH_X19_X30
    ADR_L x1, EL1_SP
    mov x2, sp
    str x2, [x1]
    msr elr_el1, x0
    mov x1, #0x3c0
    msr spsr_el1, x1
    ADR_L x1, __stacks_end
    msr sp_el0, x1
    isb
    eret
el0_return:
    ADR_L x1, EL1_SP
    ldr x2, [x1]
    mov sp, x2
    POP_X19_X30
    ret

    /* EL0 probes: each does one PMU access, then SVC back. x0 starts as a sentinel. */
    .global el0_read_pmccntr
el0_read_pmccntr:
    mov x0, #0x5a5a
    mrs x0, pmccntr_el0
    svc #0
    .global el0_read_pmevcntr0
el0_read_pmevcntr0:
    mov x0, #0x5a5a
    mrs x0, pmevcntr0_el0
    svc #0
    .global el0_write_pmevcntr0
el0_write_pmevcntr0:
    mov x0, #0
    mov x1, #77
    msr pmevcntr0_el0, x1
    svc #0
    .global el0_write_pmswinc
el0_write_pmswinc:
    mov x0, #0
    mov x1, #1
    msr pmswinc_el0, x1
    svc #0
    .global el0_read_pmcr
el0_read_pmcr:
    mov x0, #0x5a5a
    mrs x0, pmcr_el0
    svc #0

    /* The known loop: x0 iterations of SUBS + B.NE. */
    .global known_loop
known_loop:
1:  subs x0, x0, #1
    b.ne 1b
    ret

    /* Two PMCCNTR_EL0 reads around one NOP: returns the difference. */
    .global ccnt_around_nop
ccnt_around_nop:
    mrs x1, pmccntr_el0
    nop
    mrs x2, pmccntr_el0
    sub x0, x2, x1
    ret

    /* Timing loops for the EL2 cost figure: x0 iterations of `insn`, SUBS, B.NE; return the
       CNTVCT_EL0 delta. x1 is the MSR's value. */
.macro TIMED_LOOP name, insn:vararg
    .global \name
\name:
    isb
    mrs x3, cntvct_el0
1:  \insn
    subs x0, x0, #1
    b.ne 1b
    isb
    mrs x4, cntvct_el0
    sub x0, x4, x3
    ret
.endm
    TIMED_LOOP time_mrs_pmccntr, mrs x1, pmccntr_el0
    TIMED_LOOP time_msr_pmcr, msr pmcr_el0, x1
    TIMED_LOOP time_nop, nop

    /* measure_span(n): enables the counters in x1 (PMCNTENSET), runs the known loop n times,
       disables them. Both MSRs trap: the loop's 2n instructions are all that EL1 retires. */
    .global measure_span
measure_span:
    msr pmcntenset_el0, x1
1:  subs x0, x0, #1
    b.ne 1b
    msr pmcntenclr_el0, x1
    ret

    /* The UNDEF probe: PMEVCNTR<N>_EL0 for the N the caller checked. */
    .global read_pmevcntr6
read_pmevcntr6:
    mov x0, #0x5a5a
    mrs x0, pmevcntr6_el0
    ret
"#
);

extern "C" {
    fn run_el0(pc: usize) -> u64;
    fn el0_read_pmccntr();
    fn el0_read_pmevcntr0();
    fn el0_write_pmevcntr0();
    fn el0_write_pmswinc();
    fn el0_read_pmcr();
    #[cfg_attr(not(feature = "exact"), allow(dead_code))]
    fn known_loop(n: u64);
    #[allow(dead_code)]
    fn ccnt_around_nop() -> u64;
    fn read_pmevcntr6() -> u64;
    fn time_mrs_pmccntr(n: u64) -> u64;
    fn time_msr_pmcr(n: u64, v: u64) -> u64;
    fn time_nop(n: u64) -> u64;
    #[allow(dead_code)]
    fn measure_span(n: u64, counters: u64);
}

/// Enables `counters`, runs the known loop `n` times (2n instructions), disables them.
#[allow(dead_code)]
pub fn span(n: u64, counters: u64) {
    // SAFETY: a register-only loop between two trapped PMU writes.
    unsafe { measure_span(n, counters) }
}

/// What a timing loop runs per iteration besides SUBS and B.NE.
#[derive(Clone, Copy)]
pub enum Timed {
    /// `MRS X1, PMCCNTR_EL0` (trapped).
    MrsPmccntr,
    /// `MSR PMCR_EL0, X1` (trapped), writing PMCR's current value.
    MsrPmcr(u64),
    /// `NOP`.
    Nop,
}

/// `CNTVCT_EL0` ticks for `n` iterations of a timing loop.
pub fn time(t: Timed, n: u64) -> u64 {
    // SAFETY: register-only loops; the PMU accesses are emulated by the hypervisor (the PMCR
    // write stores the value it already holds).
    unsafe {
        match t {
            Timed::MrsPmccntr => time_mrs_pmccntr(n),
            Timed::MsrPmcr(v) => time_msr_pmcr(n, v),
            Timed::Nop => time_nop(n),
        }
    }
}

/// The exception the vectors recorded: `ESR_EL1`, `ELR_EL1`, how many.
#[no_mangle]
static mut EXC: [u64; 3] = [0; 3];
#[no_mangle]
static mut EL1_SP: u64 = 0;

/// The last recorded exception (ESR, ELR, count), and resets the record.
pub fn take_exception() -> (u64, u64, u64) {
    // SAFETY: EXC is written only by this CPU's vectors (CPU 1 never takes synchronous
    // exceptions) while this code is not running; volatile so each read sees the latest.
    unsafe {
        let p = core::ptr::addr_of_mut!(EXC);
        let v = core::ptr::read_volatile(p);
        core::ptr::write_volatile(p, [0; 3]);
        (v[0], v[1], v[2])
    }
}

/// An EL0 probe.
#[derive(Clone, Copy)]
pub enum El0 {
    /// `MRS X0, PMCCNTR_EL0`.
    ReadPmccntr,
    /// `MRS X0, PMEVCNTR0_EL0`.
    ReadPmevcntr0,
    /// `MSR PMEVCNTR0_EL0, X1` (77).
    WritePmevcntr0,
    /// `MSR PMSWINC_EL0, X1` (1).
    WritePmswinc,
    /// `MRS X0, PMCR_EL0`.
    ReadPmcr,
}

/// Runs one EL0 probe; returns its x0 and the address of its PMU instruction.
pub fn el0(p: El0) -> (u64, u64) {
    let f: unsafe extern "C" fn() = match p {
        El0::ReadPmccntr => el0_read_pmccntr,
        El0::ReadPmevcntr0 => el0_read_pmevcntr0,
        El0::WritePmevcntr0 => el0_write_pmevcntr0,
        El0::WritePmswinc => el0_write_pmswinc,
        El0::ReadPmcr => el0_read_pmcr,
    };
    let pc = f as usize;
    // The PMU instruction: after one MOV (reads) or two (writes).
    let insn = match p {
        El0::WritePmevcntr0 | El0::WritePmswinc => pc + 8,
        _ => pc + 4,
    };
    // SAFETY: the probe is EL0 code that ends in SVC, which `el0_return` turns into a return
    // from `run_el0` with the callee-saved registers and SP restored.
    (unsafe { run_el0(pc) }, insn as u64)
}

/// Runs the known loop.
#[cfg_attr(not(feature = "exact"), allow(dead_code))]
pub fn loop_n(n: u64) {
    // SAFETY: a register-only loop.
    unsafe { known_loop(n) }
}

/// `PMCCNTR_EL0` difference around one NOP.
#[allow(dead_code)]
pub fn ccnt_nop() -> u64 {
    // SAFETY: two register reads.
    unsafe { ccnt_around_nop() }
}

/// Reads `PMEVCNTR6_EL0`; returns (value, address of the MRS).
pub fn pmevcntr6() -> (u64, u64) {
    // SAFETY: an MRS that the hypervisor emulates or turns into UNDEFINED, which the
    // vectors record and skip.
    (unsafe { read_pmevcntr6() }, read_pmevcntr6 as *const () as u64 + 4)
}

macro_rules! mrs {
    ($r:literal) => {{
        let v: u64;
        // SAFETY: a system register read at EL1 (PMU ones trap to the hypervisor).
        unsafe { core::arch::asm!(concat!("mrs {}, ", $r), out(reg) v, options(nomem, nostack)) };
        v
    }};
}
macro_rules! msr {
    ($r:literal, $v:expr) => {{
        let v: u64 = $v;
        // SAFETY: a system register write at EL1 of a register this test owns.
        unsafe { core::arch::asm!(concat!("msr ", $r, ", {}"), "isb", in(reg) v, options(nostack)) };
    }};
}
pub(crate) use mrs;
pub(crate) use msr;

/// Unmasks IRQs.
pub fn irq_on() {
    // SAFETY: the vectors handle IRQs.
    unsafe { core::arch::asm!("msr daifclr, #2", "isb", options(nostack)) };
}

/// Masks IRQs.
pub fn irq_off() {
    // SAFETY: masking interrupts has no other effect.
    unsafe { core::arch::asm!("msr daifset, #2", "isb", options(nostack)) };
}

/// `YIELD`: QEMU switches to the next vCPU.
pub fn yield_cpu() {
    // SAFETY: a hint instruction.
    unsafe { core::arch::asm!("yield", options(nomem, nostack)) };
}

/// 32-bit MMIO write (the GIC redistributor).
pub fn mmio_write(addr: usize, v: u32) {
    // SAFETY: only called with QEMU virt GICv3 redistributor registers.
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) };
}

/// The secondary entry point.
pub fn secondary_entry() -> u64 {
    extern "C" {
        fn secondary_start();
    }
    secondary_start as *const () as u64
}

#[no_mangle]
extern "C" fn guest_fatal(esr: u64, elr: u64) -> ! {
    crate::gprintln!("check unexpected-exception: FAIL (ESR {esr:#x} ELR {elr:#x})");
    baremetal::psci::system_off()
}
