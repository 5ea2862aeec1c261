//! Per-CPU state: the vCPU that runs on this physical CPU (one vCPU per CPU), found through
//! `TPIDR_EL2`, and statistics every CPU can read.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::boot::MAX_CPUS;
use crate::sysreg::{mrs, msr};
use crate::vm::{VPmu, REG_NAMES};

/// What one physical CPU owns.
pub struct PerCpu {
    /// The CPU's index (MPIDR Aff0).
    pub cpu: usize,
    /// The vCPU's PMU.
    pub pmu: Option<VPmu>,
    /// The virtual PMU interrupt's level as last driven.
    pub virq: bool,
    /// Interrupts (INTID < 128) waiting for a free list register; those ≥ 16 are still
    /// active physically and go in hardware-mapped.
    pub queued: u128,
}

const EMPTY: PerCpu = PerCpu { cpu: 0, pmu: None, virq: false, queued: 0 };
static mut PERCPU: [PerCpu; MAX_CPUS] = [EMPTY; MAX_CPUS];

/// Makes `cpu`'s slot this CPU's (`TPIDR_EL2`).
pub fn init(cpu: usize) {
    let cpu = cpu.min(MAX_CPUS - 1);
    // SAFETY: only the address of the slot is taken; no reference is created here.
    let slot = unsafe { core::ptr::addr_of_mut!(PERCPU[cpu]) };
    msr!("tpidr_el2", slot as u64);
    this().cpu = cpu;
}

/// This CPU's state.
pub fn this() -> &'static mut PerCpu {
    let p = mrs!("tpidr_el2") as *mut PerCpu;
    // SAFETY: TPIDR_EL2 holds this CPU's own slot (set by `init` before any trap can be
    // taken); no other CPU ever touches it, and the hypervisor runs with exceptions masked,
    // so at most one reference is live: each handler takes it once at its start.
    unsafe { &mut *p }
}

/// Counters of one CPU, readable from any CPU.
pub struct Stats {
    /// Trapped PMU accesses by register (slots of [`REG_NAMES`]).
    pub regs: [AtomicU64; REG_NAMES.len()],
    /// Times the virtual PMU interrupt was made pending.
    pub pmu_irqs_injected: AtomicU64,
    /// Physical PMU interrupts taken.
    pub pmu_irqs_physical: AtomicU64,
    /// UNDEFINED exceptions injected.
    pub undef: AtomicU64,
    /// EC 0x18 traps delivered to the guest's EL1.
    pub el1_traps: AtomicU64,
    /// Physical interrupts forwarded.
    pub forwarded: AtomicU64,
    /// Interrupts dropped because no list register was free (INTID ≥ 128 only).
    pub lr_full: AtomicU64,
    /// Interrupts queued until a list register was free.
    pub queued: AtomicU64,
    /// SGIs sent for the guest.
    pub sgis: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const Z: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const ZSTATS: Stats = Stats {
    regs: [Z; REG_NAMES.len()],
    pmu_irqs_injected: Z,
    pmu_irqs_physical: Z,
    undef: Z,
    el1_traps: Z,
    forwarded: Z,
    lr_full: Z,
    queued: Z,
    sgis: Z,
};
/// Every CPU's statistics.
pub static STATS: [Stats; MAX_CPUS] = [ZSTATS; MAX_CPUS];

/// Adds one (single writer: the CPU that owns the counter).
pub fn bump(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// This CPU's statistics.
pub fn stats(cpu: usize) -> &'static Stats {
    &STATS[cpu.min(MAX_CPUS - 1)]
}

/// Prints the statistics summed over the CPUs.
pub fn print_stats() {
    let sum = |f: &dyn Fn(&Stats) -> &AtomicU64| STATS.iter().map(|s| f(s).load(Ordering::Relaxed)).sum::<u64>();
    let total: u64 = (0..REG_NAMES.len()).map(|i| sum(&|s: &Stats| &s.regs[i])).sum();
    crate::hprintln!("stats: trapped PMU accesses {total}");
    for (i, name) in REG_NAMES.iter().enumerate() {
        let n = sum(&|s: &Stats| &s.regs[i]);
        if n != 0 {
            crate::hprintln!("stats:   {name:<20} {n}");
        }
    }
    crate::hprintln!(
        "stats: vPMU interrupts injected {}, physical PMU interrupts {}, UNDEF injected {}, EL0 traps delivered {}",
        sum(&|s: &Stats| &s.pmu_irqs_injected),
        sum(&|s: &Stats| &s.pmu_irqs_physical),
        sum(&|s: &Stats| &s.undef),
        sum(&|s: &Stats| &s.el1_traps)
    );
    crate::hprintln!(
        "stats: interrupts forwarded {}, SGIs replayed {}, queued for a list register {}, dropped {}",
        sum(&|s: &Stats| &s.forwarded),
        sum(&|s: &Stats| &s.sgis),
        sum(&|s: &Stats| &s.queued),
        sum(&|s: &Stats| &s.lr_full)
    );
}
