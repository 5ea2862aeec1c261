//! Checks that need a backend that really counts (vpmu-hw on QEMU's PMU) and `-icount
//! shift=0` (QEMU counts instructions exactly only then, and cycles equal instructions).
//! Every PMU access traps to EL2, which counts nothing (`MDCR_EL2.HPMD`/`HCCD`), so the
//! guest sees exactly the instructions it executes itself at EL1 — plus one: QEMU 7.2's TCG
//! counts an instruction that traps to EL2 as executed at EL1 (architecturally it is not),
//! so the trapped access that stops or reads the counters adds [`TRAPPED`]. Running the same
//! sequences directly on QEMU's PMU, without traps, the stopping access retires and counts
//! the same way.

use core::sync::atomic::Ordering;

use crate::arch::{self, mrs, msr};
use crate::check;
use crate::checks::{gic_cpu_on, wait_irqs, wrapped, IRQS, LAST_INTID, OVS_SEEN, PMU_PPI};

const INST_RETIRED: u64 = 0x08;
const CHAIN: u64 = 0x1e;
/// PMEVTYPER: U (bit 30) set: do not count EL0.
const EL1_ONLY: u64 = 1 << 30;
const PMCR_E: u64 = 1;
const PMCR_P: u64 = 1 << 1;
const PMCR_C: u64 = 1 << 2;
const PMCR_LC: u64 = 1 << 6;
const CYCLE: u64 = 1 << 31;
/// The trapped access that ends a measured span, counted by QEMU's TCG (see above).
const TRAPPED: u64 = 1;

fn reset() {
    msr!("pmcntenclr_el0", u64::from(u32::MAX));
    msr!("pmintenclr_el1", u64::from(u32::MAX));
    msr!("pmovsclr_el0", u64::from(u32::MAX));
    msr!("pmcr_el0", PMCR_E | PMCR_P | PMCR_C | PMCR_LC);
}

pub fn run() {
    const N: u64 = 100_000;

    // A known loop's INST_RETIRED, exactly.
    reset();
    msr!("pmevtyper0_el0", INST_RETIRED | EL1_ONLY);
    msr!("pmevcntr0_el0", 0);
    arch::span(N, 1);
    let c = mrs!("pmevcntr0_el0");
    check("inst-retired-loop", c == 2 * N + TRAPPED, format_args!("INST_RETIRED {c}, want {} (2 x {N} + {TRAPPED})", 2 * N + TRAPPED));

    // CPU_CYCLES equals instructions under icount; the cycle counter at EL1 only.
    reset();
    msr!("pmccfiltr_el0", EL1_ONLY);
    msr!("pmccntr_el0", 0);
    msr!("pmevtyper0_el0", INST_RETIRED | EL1_ONLY);
    msr!("pmevcntr0_el0", 0);
    arch::span(N, 1 | CYCLE);
    let (i, cy) = (mrs!("pmevcntr0_el0"), mrs!("pmccntr_el0"));
    check("cycles-equal-instructions", i == 2 * N + TRAPPED && cy == i, format_args!("INST_RETIRED {i}, PMCCNTR {cy}"));

    // Two reads of PMCCNTR_EL0 around one NOP: both MRS trap; the NOP and the second MRS count.
    reset();
    msr!("pmccfiltr_el0", EL1_ONLY);
    msr!("pmcntenset_el0", CYCLE);
    let d = arch::ccnt_nop();
    check("pmccntr-around-nop", d == 1 + TRAPPED, format_args!("difference {d}"));

    // Overflow at exactly the programmed count, its interrupt through the GIC.
    reset();
    let c3 = 3;
    msr!("pmevtyper3_el0", INST_RETIRED | EL1_ONLY);
    msr!("pmevcntr3_el0", 0xffff_ffff - 999); // overflows on the 1000th instruction
    msr!("pmintenset_el1", 1 << c3);
    gic_cpu_on();
    IRQS[0].store(0, Ordering::Relaxed);
    arch::span(1000, 1 << c3); // 2000 instructions, IRQs masked
    let (v, ovs) = (mrs!("pmevcntr3_el0"), mrs!("pmovsset_el0"));
    let want = wrapped() + 1000 + TRAPPED;
    arch::irq_on();
    let got = wait_irqs(0, 1);
    arch::irq_off();
    let (id, seen) = (LAST_INTID[0].load(Ordering::Relaxed), OVS_SEEN[0].load(Ordering::Relaxed));
    check(
        "overflow-exact",
        v == want && ovs == 1 << c3 && got && id == PMU_PPI && seen == 1 << c3,
        format_args!("counter {v:#x} (want {want:#x}), PMOVSSET {ovs:#x}, interrupt {got} INTID {id} PMOVSSET in handler {seen:#x}"),
    );

    // The physical PMU interrupt path: the cycle counter overflows in the middle of a loop
    // that makes no PMU access, so only the physical interrupt (taken at EL2, fed to the
    // Pmu) can make the virtual one pending before the loop ends.
    reset();
    msr!("pmccfiltr_el0", EL1_ONLY);
    msr!("pmccntr_el0", 5000u64.wrapping_neg());
    msr!("pmintenset_el1", CYCLE);
    IRQS[0].store(0, Ordering::Relaxed);
    msr!("pmcntenset_el0", CYCLE);
    arch::irq_on();
    arch::loop_n(10_000); // 20,000 instructions
    let during = IRQS[0].load(Ordering::Acquire);
    arch::irq_off();
    let (id, seen) = (LAST_INTID[0].load(Ordering::Relaxed), OVS_SEEN[0].load(Ordering::Relaxed));
    check(
        "overflow-irq-physical",
        during == 1 && id == PMU_PPI && seen == CYCLE,
        format_args!("interrupts during the loop {during}, INTID {id}, PMOVSSET in handler {seen:#x}"),
    );

    // A CHAINed pair across the 32-bit wrap, counting real instructions.
    reset();
    msr!("pmevtyper0_el0", INST_RETIRED | EL1_ONLY);
    msr!("pmevtyper1_el0", CHAIN);
    msr!("pmevcntr0_el0", 0xffff_ffff - 99);
    msr!("pmevcntr1_el0", 7);
    arch::span(100, 0b11); // 200 instructions
    let (lo, hi) = (mrs!("pmevcntr0_el0"), mrs!("pmevcntr1_el0"));
    check("chain-real-events", lo & 0xffff_ffff == 100 + TRAPPED && hi == 8, format_args!("PMEVCNTR1:0 = {hi}:{lo:#x}"));
    reset();
}
