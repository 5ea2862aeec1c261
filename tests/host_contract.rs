#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
//! The host contract (issue 9): what a real backend — a physical PMU at EL2, perf with its
//! signals — can rely on, and the four bugs that hid behind `SoftBackend`.
//!
//! - exact guest reads while an overflow signal is still pending (`PMOVS*`, a `CHAIN`ed
//!   64-bit value read high then low, the interrupt level);
//! - a trapped AArch32 instruction whose condition fails does nothing;
//! - `CHAIN` counts only where the odd counter's own filter counts;
//! - which backend call the `Pmu` makes when (`program`, `set_period`, `stop`, `release`,
//!   `load`, `put`), that `handle_overflows` touches only the counters reported, and that a
//!   backend narrower than the period (early reports) changes nothing the guest sees.
//!
//! (Bug 4, the snapshot's identity, is tested in `tests/snapshot.rs`; bug 2, the perf
//! backend's thread, in `tests/perf_backend.rs`.)

mod common;
#[path = "common/delayed.rs"]
mod delayed;
#[path = "common/model.rs"]
mod model;

use common::arch::{CHAIN, CPU_CYCLES, CYCLE_BIT, F_P, F_U, INST_RETIRED, PMCR_E};
use common::{cnt, gpr, rd, typ, wr};
use delayed::Delayed;
use vpmu::backend::{CountRequest, CounterBackend, CounterId, EmulatedBackend, PendingOverflow};
use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::decode::{Cond, Direction, SysregAccess, Xfer};
use vpmu::reg::PmuReg;
use vpmu::{El, Outcome, Pmu, Pstate, SoftBackend, Trap};

fn delayed_pmu(version: PmuVersion, n: u8) -> Pmu<Delayed> {
    let cfg = PmuConfig::builder().version(version).counters(n).build().unwrap();
    Pmu::new(cfg, Delayed::new(SoftBackend::new(), true)).unwrap()
}

// ---- bug 1: stale reads with a late overflow signal -------------------------------------

/// The hardware counted past the overflow, its interrupt not yet handled: `PMOVSSET`,
/// `PMOVSCLR` and the interrupt level already show it.
#[test]
fn a_pending_overflow_is_visible_in_pmovs_and_the_interrupt_level() {
    for reg in [PmuReg::Pmovsset, PmuReg::Pmovsclr] {
        let mut p = delayed_pmu(PmuVersion::V3p1, 2);
        wr(&mut p, typ(0), INST_RETIRED.into());
        wr(&mut p, cnt(0), 0xffff_fff0);
        wr(&mut p, PmuReg::Pmintenset, 1);
        wr(&mut p, PmuReg::Pmcntenset, 1);
        wr(&mut p, PmuReg::Pmcr, PMCR_E);
        p.count(INST_RETIRED, 0x20);
        assert!(p.backend().pending(), "the signal is late");
        assert_eq!(rd(&mut p, reg), 1, "{reg} must show the overflow the backend already had");
        assert!(p.irq_level());
    }
    let mut p = delayed_pmu(PmuVersion::V3p1, 2);
    wr(&mut p, PmuReg::Pmccntr, u64::MAX - 5);
    wr(&mut p, PmuReg::Pmintenset, CYCLE_BIT);
    wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    p.count(CPU_CYCLES, 6);
    assert!(p.irq_level(), "the interrupt level handles the pending overflow itself");
}

/// Linux's arm_pmuv3 reads a chained 64-bit counter high (odd) then low (even). With the even
/// counter's overflow still pending, the odd counter used to read the old high half: the
/// guest saw 0x10 instead of 0x1_0000_0010.
#[test]
fn a_chained_pair_read_high_then_low_does_not_tear() {
    let mut p = delayed_pmu(PmuVersion::V3p1, 2);
    wr(&mut p, typ(0), INST_RETIRED.into());
    wr(&mut p, cnt(0), 0xffff_fff0);
    wr(&mut p, typ(1), CHAIN.into());
    wr(&mut p, PmuReg::Pmcntenset, 0b11);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    p.count(INST_RETIRED, 0x20);
    let high = rd(&mut p, cnt(1));
    let low = rd(&mut p, cnt(0));
    assert_eq!(high << 32 | low, 0x1_0000_0010);
}

// ---- bug 3: a trapped AArch32 instruction whose condition fails ------------------------

const PMCR_A32_WRITE: fn(Option<Cond>) -> SysregAccess =
    |cond| SysregAccess { reg: PmuReg::Pmcr, dir: Direction::Write, xfer: Xfer::A32 { rt: gpr(0), cond } };

/// `MCR<c> p15, 0, R0, c9, c12, 0` (PMCR) with R0 = 0 under every condition and every NZCV:
/// the write happens (PMCR.E falls) exactly when the condition holds; otherwise the outcome is
/// `ConditionFailed` and PMCR.E stays 1. The seed's case, `MCRNE` with Z = 1, among them.
#[test]
fn a32_every_condition_and_flags() {
    for c in 0..16u8 {
        for nzcv in 0..16u8 {
            let mut p = Pmu::new(PmuConfig::default(), SoftBackend::new()).unwrap();
            wr(&mut p, PmuReg::Pmcr, PMCR_E);
            let esr = PMCR_A32_WRITE(Cond::new(c)).to_esr().unwrap();
            let pstate = Pstate::from_spsr(u64::from(nzcv) << 28 | 0x1d3).unwrap(); // svc, A32
            let mut x = [0u64; 31];
            let out = p.handle_esr(esr, pstate, &mut x).unwrap().outcome().unwrap();
            let holds = model::condition_holds(c, nzcv);
            assert_eq!(out, if holds { Outcome::Written } else { Outcome::ConditionFailed }, "cond {c:#06b}, NZCV {nzcv:#06b}");
            assert_eq!(rd(&mut p, PmuReg::Pmcr) & PMCR_E, u64::from(!holds), "cond {c:#06b}, NZCV {nzcv:#06b}: PMCR.E");
        }
    }
}

/// A T32 instruction may trap with CV = 0: then the IT state decides. Inside an IT block whose
/// condition fails, nothing happens; outside one (IT = 0), the instruction executes. The 64-bit
/// `MRRC`/`MCRR` (EC 0x04) obey their condition the same way.
#[test]
fn t32_cv0_uses_the_it_state_and_mcrr_obeys_its_condition() {
    for c in 0..15u8 {
        for nzcv in 0..16u8 {
            let it = u64::from(c) << 4 | 0b1000; // IT<c>, one instruction
            let spsr = u64::from(nzcv) << 28 | (it & 3) << 25 | (it >> 2) << 10 | 1 << 5 | 0x13; // T32, svc
            let mut p = Pmu::new(PmuConfig::default(), SoftBackend::new()).unwrap();
            wr(&mut p, PmuReg::Pmcr, PMCR_E);
            let mut x = [0u64; 31];
            let out =
                p.handle_esr(PMCR_A32_WRITE(None).to_esr().unwrap(), Pstate::from_spsr(spsr).unwrap(), &mut x).unwrap().outcome().unwrap();
            let holds = model::condition_holds(c, nzcv);
            assert_eq!(out, if holds { Outcome::Written } else { Outcome::ConditionFailed }, "IT cond {c:#06b}, NZCV {nzcv:#06b}");
        }
    }
    // Outside an IT block, CV = 0: unconditional, whatever the flags.
    let mut p = Pmu::new(PmuConfig::default(), SoftBackend::new()).unwrap();
    let mut x = [0u64; 31];
    let t32 = Pstate::from_spsr(0x4000_0000 | 1 << 5 | 0x13).unwrap();
    assert_eq!(p.handle_esr(PMCR_A32_WRITE(None).to_esr().unwrap(), t32, &mut x), Ok(Trap::Pmu(Outcome::Written)));

    // MCRR p15, 0, R0, R1, c9 (PMCCNTR) with EQ, Z clear: skipped, PMCCNTR unchanged.
    let mcrr =
        SysregAccess { reg: PmuReg::Pmccntr, dir: Direction::Write, xfer: Xfer::A32Wide { rt: gpr(0), rt2: gpr(1), cond: Cond::new(0) } };
    let mut p = Pmu::new(PmuConfig::default(), SoftBackend::new()).unwrap();
    x[0] = 5;
    let z_clear = Pstate::from_spsr(0x13).unwrap();
    assert_eq!(p.handle_esr(mcrr.to_esr().unwrap(), z_clear, &mut x), Ok(Trap::Pmu(Outcome::ConditionFailed)));
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 0);
    let z_set = Pstate::from_spsr(0x4000_0013).unwrap();
    assert_eq!(p.handle_esr(mcrr.to_esr().unwrap(), z_set, &mut x), Ok(Trap::Pmu(Outcome::Written)));
    assert_eq!(rd(&mut p, PmuReg::Pmccntr), 5);
}

/// SPSR values that are not a guest's (EL2, EL3, reserved modes) give no `Pstate`.
#[test]
fn pstate_from_spsr_knows_the_modes() {
    for (spsr, el) in [
        (0x0, Some(El::El0)),
        (0x4, Some(El::El1)),
        (0x5, Some(El::El1)),
        (0x10, Some(El::El0)),
        (0x13, Some(El::El1)),
        (0x1f, Some(El::El1)),
    ] {
        assert_eq!(Pstate::from_spsr(spsr).map(Pstate::el), el, "{spsr:#x}");
    }
    for spsr in [0x8, 0x9, 0xc, 0xd, 0x1, 0x1a, 0x16, 0x14] {
        assert_eq!(Pstate::from_spsr(spsr), None, "{spsr:#x}");
    }
}

// ---- CHAIN and the odd counter's filter ------------------------------------------------

/// Arm ARM J1 `AArch64.PMUCycle`: the odd counter counts `CHAIN` only when
/// `CountPMUEvents(idx + 1)`, which includes its own exception-level filter. KVM ignores it.
#[test]
fn chain_counts_only_where_the_odd_counters_filter_counts() {
    for (odd_filter, el, want) in [(0, El::El0, 1), (F_U, El::El0, 0), (F_P, El::El0, 1), (F_P, El::El1, 0), (F_U, El::El1, 1)] {
        let mut p = Pmu::new(PmuConfig::builder().version(PmuVersion::V3p1).counters(2).build().unwrap(), SoftBackend::new()).unwrap();
        wr(&mut p, typ(0), INST_RETIRED.into());
        wr(&mut p, cnt(0), 0xffff_ffff);
        wr(&mut p, typ(1), u64::from(CHAIN) | odd_filter);
        wr(&mut p, PmuReg::Pmcntenset, 0b11);
        wr(&mut p, PmuReg::Pmcr, PMCR_E);
        p.set_el(el);
        p.count(INST_RETIRED, 1);
        assert_eq!(rd(&mut p, cnt(1)), want, "odd filter {odd_filter:#x}, overflow at {el}");
        assert_eq!(rd(&mut p, PmuReg::Pmovsset) & 1, 1, "the even counter's own overflow flag sets either way");
    }
}

// ---- which backend call, when -----------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Program(usize),
    SetPeriod(usize),
    Read(usize),
    Stop(usize),
    Release(usize),
    Take,
    Load,
    Put,
}

/// A `SoftBackend` that logs every call, and reports overflows only through
/// `take_overflows` (the bits set in `pending`).
#[derive(Clone, Debug, Default)]
struct Traced {
    inner: SoftBackend,
    log: Vec<Call>,
    pending: u32,
}

impl CounterBackend for Traced {
    type Error = core::convert::Infallible;
    fn max_event_counters(&self) -> u8 {
        31
    }
    fn supports(&self, event: u16) -> bool {
        self.inner.supports(event)
    }
    fn program(&mut self, c: CounterId, req: &CountRequest) -> Result<(), Self::Error> {
        self.log.push(Call::Program(c.index()));
        self.inner.program(c, req)
    }
    fn set_period(&mut self, c: CounterId, req: &CountRequest) -> Result<(), Self::Error> {
        self.log.push(Call::SetPeriod(c.index()));
        self.inner.program(c, req)
    }
    fn read(&mut self, c: CounterId) -> u64 {
        self.log.push(Call::Read(c.index()));
        self.inner.read(c)
    }
    fn stop(&mut self, c: CounterId) {
        self.log.push(Call::Stop(c.index()));
        self.inner.release(c);
    }
    fn release(&mut self, c: CounterId) {
        self.log.push(Call::Release(c.index()));
        self.inner.release(c);
    }
    fn take_overflows(&mut self) -> u32 {
        self.log.push(Call::Take);
        std::mem::take(&mut self.pending)
    }
    fn load(&mut self) {
        self.log.push(Call::Load);
    }
    fn put(&mut self) {
        self.log.push(Call::Put);
    }
}

impl EmulatedBackend for Traced {
    fn record(&mut self, event: u16, k: u64) -> bool {
        if self.inner.record(event, k) {
            self.pending = u32::MAX;
        }
        false
    }
    fn set_el(&mut self, el: El) {
        self.inner.set_el(el);
    }
    fn events_until_overflow(&self, event: u16) -> Option<u64> {
        self.inner.events_until_overflow(event)
    }
}

fn traced(n: u8) -> Pmu<Traced> {
    Pmu::new(PmuConfig::builder().counters(n).build().unwrap(), Traced::default()).unwrap()
}

/// What the backend is told: a new event type is `program`; a new value or overflow point of a
/// counting counter only `set_period`; disabling is `stop` (resources kept); enabling again is
/// `program`; reset is `release`.
#[test]
fn the_pmu_reprograms_only_when_the_event_changes() {
    let mut p = traced(2);
    wr(&mut p, typ(0), INST_RETIRED.into());
    wr(&mut p, PmuReg::Pmcntenset, 1);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    assert_eq!(p.backend().log.last(), Some(&Call::Program(0)));
    p.backend_mut().log.clear();

    wr(&mut p, cnt(0), 1000);
    assert!(p.backend().log.contains(&Call::SetPeriod(0)) && !p.backend().log.contains(&Call::Program(0)), "{:?}", p.backend().log);
    p.backend_mut().log.clear();

    wr(&mut p, PmuReg::Pmcr, PMCR_E | 1 << 7); // LP: the overflow point moves
    assert!(p.backend().log.contains(&Call::SetPeriod(0)) && !p.backend().log.contains(&Call::Program(0)), "{:?}", p.backend().log);
    p.backend_mut().log.clear();

    wr(&mut p, typ(0), CPU_CYCLES.into());
    assert_eq!(p.backend().log.last(), Some(&Call::Program(0)));
    p.backend_mut().log.clear();

    wr(&mut p, PmuReg::Pmcntenclr, 1);
    assert_eq!(p.backend().log.last(), Some(&Call::Stop(0)));
    wr(&mut p, PmuReg::Pmcntenset, 1);
    assert_eq!(p.backend().log.last(), Some(&Call::Program(0)));
    p.backend_mut().log.clear();

    wr(&mut p, PmuReg::Pmcntenclr, 1);
    p.reset();
    assert!(p.backend().log.contains(&Call::Release(0)), "a stopped counter is still released: {:?}", p.backend().log);
}

/// `handle_overflows` reads exactly the counters the backend reports: one of six live counters
/// overflowed, one counter is read.
#[test]
fn handle_overflows_touches_only_the_reported_counters() {
    let mut p = traced(6);
    for i in 0..6 {
        wr(&mut p, typ(i), INST_RETIRED.into());
    }
    wr(&mut p, cnt(3), 0xffff_fffe);
    wr(&mut p, PmuReg::Pmcntenset, 0x3f);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    p.count(INST_RETIRED, 2);
    p.backend_mut().pending = 1 << 3;
    p.backend_mut().log.clear();
    p.handle_overflows();
    let reads: Vec<_> = p.backend().log.iter().filter(|c| matches!(c, Call::Read(_))).collect();
    assert_eq!(reads, [&Call::Read(3)]);
    assert_eq!(p.backend().log.last(), Some(&Call::SetPeriod(3)), "re-armed in place");
    assert_eq!(rd(&mut p, PmuReg::Pmovsset), 1 << 3);
}

/// `vcpu_load`/`vcpu_put` reach the backend once each; while put, save and restore still work.
#[test]
fn load_and_put_reach_the_backend_and_the_pmu_works_while_put() {
    let mut p = traced(2);
    assert!(!p.is_loaded());
    p.vcpu_load();
    p.vcpu_load();
    wr(&mut p, PmuReg::Pmcntenset, CYCLE_BIT);
    wr(&mut p, PmuReg::Pmcr, PMCR_E);
    p.count(CPU_CYCLES, 100);
    p.vcpu_put();
    p.vcpu_put();
    let log = &p.backend().log;
    assert_eq!(log.iter().filter(|c| **c == Call::Load).count(), 1);
    assert_eq!(log.iter().filter(|c| **c == Call::Put).count(), 1);
    let put_at = log.iter().position(|c| *c == Call::Put).unwrap();
    assert_eq!(log[put_at - 1], Call::Take, "pending overflows are handled before the backend saves");
    let saved = p.save();
    assert_eq!(saved.pmccntr, 100);
    let mut q = traced(2);
    q.restore(&saved).unwrap();
    assert_eq!(rd(&mut q, PmuReg::Pmccntr), 100);
}

// ---- early reports: hardware narrower than the period -----------------------------------

/// A `SoftBackend` whose counters are 16 bits wide: a period beyond 2^16 reports early.
#[derive(Clone, Debug)]
struct Narrow(SoftBackend);

impl CounterBackend for Narrow {
    type Error = core::convert::Infallible;
    fn max_event_counters(&self) -> u8 {
        31
    }
    fn supports(&self, event: u16) -> bool {
        self.0.supports(event)
    }
    fn program(&mut self, c: CounterId, req: &CountRequest) -> Result<(), Self::Error> {
        self.0.program(c, &req.with_period(req.period.min(1 << 16)))
    }
    fn read(&mut self, c: CounterId) -> u64 {
        self.0.read(c)
    }
    fn release(&mut self, c: CounterId) {
        self.0.release(c);
    }
    fn take_overflows(&mut self) -> u32 {
        // Which counter wrapped is not kept: every one is reported (spurious ones included).
        u32::MAX
    }
}

impl EmulatedBackend for Narrow {
    fn record(&mut self, event: u16, k: u64) -> bool {
        self.0.record(event, k)
    }
    fn set_el(&mut self, el: El) {
        self.0.set_el(el);
    }
    fn events_until_overflow(&self, event: u16) -> Option<u64> {
        self.0.events_until_overflow(event)
    }
}

/// Early and spurious reports change nothing the guest sees: the same values, flags and
/// interrupt, batch by batch, as the exact backend, across several 32-bit wraps.
#[test]
fn a_narrow_backend_is_invisible_to_the_guest() {
    let cfg = PmuConfig::builder().version(PmuVersion::V3p1).counters(2).build().unwrap();
    let mut exact = Pmu::new(cfg, SoftBackend::new()).unwrap();
    let mut narrow = Pmu::new(cfg, Narrow(SoftBackend::new())).unwrap();
    fn setup<B: CounterBackend>(p: &mut Pmu<B>) {
        wr(p, typ(0), INST_RETIRED.into());
        wr(p, cnt(0), 0xffff_0000);
        wr(p, typ(1), CHAIN.into());
        wr(p, PmuReg::Pmintenset, 0b11 | CYCLE_BIT);
        wr(p, PmuReg::Pmcntenset, 0b11 | CYCLE_BIT);
        wr(p, PmuReg::Pmcr, PMCR_E | 1 << 3); // D: the cycle counter ticks every 64 cycles
    }
    setup(&mut exact);
    setup(&mut narrow);
    for step in 0..400u64 {
        let k = 1 + step * 7_919_993 % 100_000_000;
        exact.count(INST_RETIRED, k);
        exact.count(CPU_CYCLES, k * 3);
        narrow.count(INST_RETIRED, k);
        narrow.count(CPU_CYCLES, k * 3);
        for reg in [PmuReg::Pmovsset, cnt(0), cnt(1), PmuReg::Pmccntr] {
            assert_eq!(rd(&mut narrow, reg), rd(&mut exact, reg), "step {step}: {reg}");
        }
        assert_eq!(narrow.irq_level(), exact.irq_level(), "step {step}");
        // The narrow backend re-armed after every early report: its next report is due at the
        // architectural overflow or at its width, whichever comes first.
        let want = exact.events_until_overflow(INST_RETIRED).map(|d| d.min(1 << 16));
        assert_eq!(narrow.events_until_overflow(INST_RETIRED), want, "step {step}");
        if step % 50 == 49 {
            wr(&mut narrow, PmuReg::Pmovsclr, u64::from(u32::MAX));
            wr(&mut exact, PmuReg::Pmovsclr, u64::from(u32::MAX));
        }
    }
    assert!(rd(&mut exact, cnt(1)) > 2, "the test crossed several 32-bit wraps");
}

// ---- threads ------------------------------------------------------------------------------

/// A `Pmu` moves to its vCPU thread; a `PendingOverflow` is shared with a handler.
#[test]
fn send_and_sync_where_a_host_needs_them() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Pmu<SoftBackend>>();
    sync::<PendingOverflow>();
    static PENDING: PendingOverflow = PendingOverflow::new();
    std::thread::scope(|s| {
        for i in 0..4 {
            s.spawn(move || PENDING.raise(1 << i));
        }
    });
    assert_eq!(PENDING.take(), 0b1111);
    assert_eq!(PENDING.peek(), 0);
}
