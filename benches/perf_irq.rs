//! One guest PMU interrupt on `PerfBackend`: what the VMM's vCPU thread pays, in traps and
//! perf syscalls, when the guest's Linux `arm_pmuv3` driver handles an overflow interrupt
//! with seven live counters (six event counters and the cycle counter).
//!
//! The guest's handler (`armv8pmu_handle_irq`) does, and each access traps to
//! `Pmu::handle_esr`:
//!
//! 1. read `PMOVSCLR_EL0` and write the bits back to clear them;
//! 2. `PMCR_EL0.E` off (read, then write): the seven counters stop;
//! 3. for each counter, read it and write its next start value (`armpmu_event_set_period`);
//! 4. `PMCR_EL0.E` on (read, then write): the seven counters count again.
//!
//! That is 20 traps, each followed by the VMM's `irq_level()` before it enters the guest
//! again. On the backend, step 2 stops seven perf events and step 4 starts them
//! again with the same event and filter. The events are software events (`task-clock`,
//! `cpu-clock`, `page-faults`, `context-switches`...: they open on any Linux, with or without
//! a hardware PMU), counting user time only (`Attribution::UserSpace`, no privilege needed).
//! The written values are far from an overflow, so no event reaches its period here.
//!
//! Run: `cargo bench --features perf --bench perf_irq` (needs perf events: root, or
//! `kernel.perf_event_paranoid` <= 2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use vpmu::backend::perf::{Attribution, PerfBackend, PerfEventSpec};
use vpmu::backend::CounterBackend;
use vpmu::config::PmuConfig;
use vpmu::decode::{Direction, Gpr, SysregAccess, Xfer};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{Outcome, Pmu, Pstate};

/// Event counters; with the cycle counter, seven live counters.
const COUNTERS: u8 = 6;
/// `PMCR.E`.
const PMCR_E: u64 = 1;
/// `PMCR.LC`: the cycle counter overflows at 64 bits (Linux sets it).
const PMCR_LC: u64 = 1 << 6;
/// `PMEVTYPER.P`/`PMCCFILTR.P`: do not count at EL1 (user time only is what every host opens).
const F_P: u64 = 1 << 31;
/// The value the driver writes back: 2^31 events before the next overflow.
const START: u64 = 0x8000_0000;

/// The guest's events: each a software event on the host.
fn mapping(event: u16) -> Option<PerfEventSpec> {
    match event {
        0x11 => Some(PerfEventSpec::TASK_CLOCK),  // CPU_CYCLES
        0x08 => Some(PerfEventSpec::CPU_CLOCK),   // INST_RETIRED
        0x03 => Some(PerfEventSpec::PAGE_FAULTS), // L1D_CACHE_REFILL
        0x04 => Some(PerfEventSpec::software(3)), // L1D_CACHE: context-switches
        0x10 => Some(PerfEventSpec::software(4)), // BR_MIS_PRED: cpu-migrations
        0x12 => Some(PerfEventSpec::software(5)), // BR_PRED: minor-faults
        0x13 => Some(PerfEventSpec::software(6)), // MEM_ACCESS: major-faults
        _ => None,
    }
}

fn esr(reg: PmuReg, dir: Direction, rt: u8) -> u64 {
    SysregAccess { reg, dir, xfer: Xfer::A64 { rt: Gpr::new(rt).unwrap() } }.to_esr().unwrap()
}

fn ctr(n: u8) -> EventCounter {
    EventCounter::new(n).unwrap()
}

/// The syndromes of the trapped accesses of one interrupt.
struct Irq {
    ovsclr_r: u64,
    ovsclr_w: u64,
    pmcr_r: u64,
    pmcr_w: u64,
    cnt_r: Vec<u64>,
    cnt_w: Vec<u64>,
}

impl Irq {
    fn new() -> Self {
        let mut cnt_r = Vec::new();
        let mut cnt_w = Vec::new();
        for n in 0..COUNTERS {
            cnt_r.push(esr(PmuReg::Pmevcntr(ctr(n)), Direction::Read, 2));
            cnt_w.push(esr(PmuReg::Pmevcntr(ctr(n)), Direction::Write, 3));
        }
        cnt_r.push(esr(PmuReg::Pmccntr, Direction::Read, 2));
        cnt_w.push(esr(PmuReg::Pmccntr, Direction::Write, 3));
        Self {
            ovsclr_r: esr(PmuReg::Pmovsclr, Direction::Read, 0),
            ovsclr_w: esr(PmuReg::Pmovsclr, Direction::Write, 0),
            pmcr_r: esr(PmuReg::Pmcr, Direction::Read, 1),
            pmcr_w: esr(PmuReg::Pmcr, Direction::Write, 1),
            cnt_r,
            cnt_w,
        }
    }

    /// The guest's interrupt handler, trap by trap; after each trap the VMM samples the
    /// interrupt line before it enters the guest again, as the interrupt rule says.
    fn handle<B: CounterBackend>(&self, pmu: &mut Pmu<B>, x: &mut [u64; 31]) {
        // 1. Read and clear the overflow flags.
        trap(pmu, self.ovsclr_r, x);
        trap(pmu, self.ovsclr_w, x);
        // 2. PMCR.E off.
        trap(pmu, self.pmcr_r, x);
        x[1] &= !PMCR_E;
        trap(pmu, self.pmcr_w, x);
        // 3. Update each counter's event and write its next start value.
        for (&r, &w) in self.cnt_r.iter().zip(&self.cnt_w) {
            trap(pmu, r, x);
            x[3] = START;
            trap(pmu, w, x);
        }
        // 4. PMCR.E on.
        trap(pmu, self.pmcr_r, x);
        x[1] |= PMCR_E;
        trap(pmu, self.pmcr_w, x);
    }
}

/// One trapped access as the VMM's vCPU loop handles it: emulate, then sample the interrupt
/// line before the next guest entry.
fn trap<B: CounterBackend>(pmu: &mut Pmu<B>, esr: u64, x: &mut [u64; 31]) {
    let out = pmu.handle_esr(esr, Pstate::EL1, x).unwrap().outcome().unwrap();
    assert!(matches!(out, Outcome::Read(_) | Outcome::Written), "{out:?}");
    black_box(pmu.irq_level());
}

/// The guest's PMU as `perf record` leaves it: seven counters on distinct events, user time
/// only, enabled, interrupts on, `PMCR.E` = 1.
fn running_pmu() -> Pmu<PerfBackend> {
    let backend = PerfBackend::builder().mapping(mapping).attribution(Attribution::UserSpace).build();
    for e in [0x11, 0x08, 0x03, 0x04, 0x10, 0x12, 0x13] {
        assert!(backend.supports(e), "perf event for Arm event {e:#x} does not open here: {:?}", backend.check(e).err());
    }
    let mut pmu = Pmu::new(PmuConfig::builder().counters(COUNTERS).build().unwrap(), backend).unwrap();
    for (n, e) in [0x08u64, 0x03, 0x04, 0x10, 0x12, 0x13].into_iter().enumerate() {
        assert_eq!(pmu.write(PmuReg::Pmevtyper(ctr(n as u8)), F_P | e, vpmu::El::El1), Outcome::Written);
        assert_eq!(pmu.write(PmuReg::Pmevcntr(ctr(n as u8)), START, vpmu::El::El1), Outcome::Written);
    }
    assert_eq!(pmu.write(PmuReg::Pmccfiltr, F_P, vpmu::El::El1), Outcome::Written);
    assert_eq!(pmu.write(PmuReg::Pmintenset, 0x8000_003f, vpmu::El::El1), Outcome::Written);
    assert_eq!(pmu.write(PmuReg::Pmcntenset, 0x8000_003f, vpmu::El::El1), Outcome::Written);
    assert_eq!(pmu.write(PmuReg::Pmcr, PMCR_E | PMCR_LC, vpmu::El::El1), Outcome::Written);
    assert!(pmu.take_backend_error().is_none());
    pmu
}

fn perf_irq(c: &mut Criterion) {
    let mut pmu = running_pmu();
    let irq = Irq::new();
    let mut x = [0u64; 31];
    // One handler run, checked: every counter counts again afterwards, none failed.
    irq.handle(&mut pmu, &mut x);
    assert!(pmu.take_backend_error().is_none());
    assert_eq!(x[1] & PMCR_E, PMCR_E);

    let mut g = c.benchmark_group("perf_irq");
    g.bench_function("guest PMU interrupt, 7 live counters (20 traps)", |b| b.iter(|| irq.handle(black_box(&mut pmu), black_box(&mut x))));
    g.finish();
    assert!(pmu.take_backend_error().is_none());
    // The cycle counter (task-clock) still counts after all those interrupts.
    let before = pmu.read(PmuReg::Pmccntr, vpmu::El::El1).value().unwrap();
    let mut y = 0u64;
    for i in 0..1_000_000u64 {
        y = black_box(y.wrapping_add(i));
    }
    assert!(pmu.read(PmuReg::Pmccntr, vpmu::El::El1).value().unwrap() > before);
}

criterion_group!(benches, perf_irq);
criterion_main!(benches);
