#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects, missing_docs)]
//! Guest-level scenarios, in the spirit of kvm-unit-tests `arm/pmu.c` (software increment,
//! chained counters, chain promotion, overflow interrupt, basic event counting) and of the KVM
//! selftest `vpmu_counter_access.c` (every N from 0 to 31, direct and indirect counter access
//! from AArch64 and AArch32), written here from scratch.
//!
//! The guest talks to its PMU only through trapped `MSR`/`MRS` and `MCR`/`MRC` instructions: each
//! access is encoded as the ESR_EL2 syndrome a CPU would report (`SysregAccess::to_esr`) and handed
//! to `Pmu::handle_esr`, as a hypervisor does. The workload's events go to the `SoftBackend`
//! through `Pmu::count` and `Pmu::set_el`.

mod common;

use vpmu::backend::SoftBackend;
use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::decode::{Direction, SysregAccess, Xfer};
use vpmu::reg::PmuReg;
use vpmu::{El, Outcome, Pmu};

use common::arch::{
    BR_MIS_PRED, CHAIN, CPU_CYCLES, CYCLE_BIT, F_P, F_U, INST_RETIRED, PMCR_C, PMCR_E, PMCR_LP, PMCR_N_SHIFT, PMCR_P, PMUSERENR_ER, SW_INCR,
};
use common::{cnt, config, gpr, typ};

/// The low 32 bits: what an AArch32 `MCR`/`MRC` moves.
const LOW32: u64 = 0xffff_ffff;

/// kvm-unit-tests' "pre-overflow" values: this many events before the 32-bit wrap.
const PRE_OVERFLOW_32: u64 = 0xffff_fff0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    A64,
    A32,
}

/// A vCPU: its PMU, its general-purpose registers and the exception level it runs at.
struct Guest {
    pmu: Pmu<SoftBackend>,
    x: [u64; 31],
    el: El,
}

impl Guest {
    fn new(cfg: PmuConfig) -> Self {
        Self::with_backend(cfg, SoftBackend::new())
    }

    fn with_backend(cfg: PmuConfig, backend: SoftBackend) -> Self {
        Guest { pmu: Pmu::new(cfg, backend).unwrap(), x: [0; 31], el: El::El1 }
    }

    fn version(version: PmuVersion, n: u8) -> Self {
        Self::new(config(version, n))
    }

    /// One trapped instruction: encode the syndrome, let the PMU handle it.
    fn trap(&mut self, isa: Isa, reg: PmuReg, dir: Direction, rt: u8) -> Outcome {
        let rt = gpr(rt);
        let xfer = match isa {
            Isa::A64 => Xfer::A64 { rt },
            Isa::A32 => Xfer::A32 { rt, cond: None },
        };
        let esr = SysregAccess { reg, dir, xfer }.to_esr().unwrap();
        self.pmu.handle_esr(esr, self.el.into(), &mut self.x).unwrap().outcome().unwrap()
    }

    /// `MSR <reg>, X1` / `MCR ..., R1`.
    fn try_write(&mut self, isa: Isa, reg: PmuReg, v: u64) -> Outcome {
        self.x[1] = if isa == Isa::A32 { v & LOW32 } else { v };
        self.trap(isa, reg, Direction::Write, 1)
    }

    /// `MRS X2, <reg>` / `MRC ..., R2`; an answered read lands in X2.
    fn try_read(&mut self, isa: Isa, reg: PmuReg) -> Outcome {
        self.x[2] = 0xdead_beef_dead_beef;
        let o = self.trap(isa, reg, Direction::Read, 2);
        match o {
            Outcome::Read(v) => assert_eq!(self.x[2], v, "{reg}: X2 does not hold the value read"),
            _ => assert_eq!(self.x[2], 0xdead_beef_dead_beef, "{reg}: X2 written by a failed read"),
        }
        o
    }

    #[track_caller]
    fn msr(&mut self, reg: PmuReg, v: u64) {
        assert_eq!(self.try_write(Isa::A64, reg, v), Outcome::Written, "MSR {reg}, {v:#x}");
    }

    #[track_caller]
    fn mrs(&mut self, reg: PmuReg) -> u64 {
        match self.try_read(Isa::A64, reg) {
            Outcome::Read(v) => v,
            o => panic!("MRS {reg} gave {o:?}"),
        }
    }

    /// The workload: `k` occurrences of `event` at the current exception level.
    fn run(&mut self, event: u16, k: u64) {
        self.pmu.count(event, k);
    }

    fn eret_to(&mut self, el: El) {
        self.el = el;
        self.pmu.set_el(el);
    }

    fn irq(&mut self) -> bool {
        self.pmu.irq_level()
    }
}

// ---------------------------------------------------------------------------------------------
// Software increment
// ---------------------------------------------------------------------------------------------

#[test]
fn software_increment() {
    // (version, PMCR.LP)
    for (version, lp) in [(PmuVersion::V3, 0), (PmuVersion::V3p4, 0), (PmuVersion::V3p5, 0), (PmuVersion::V3p5, PMCR_LP)] {
        let what = format!("{version:?} LP={}", lp != 0);
        let mut g = Guest::version(version, 6);
        g.msr(PmuReg::Pmcr, lp | PMCR_P);
        g.msr(typ(0), u64::from(SW_INCR));
        g.msr(typ(1), u64::from(SW_INCR));
        g.msr(PmuReg::Pmcntenset, 0b11);

        // Globally disabled: PMSWINC does nothing.
        for _ in 0..100 {
            g.msr(PmuReg::Pmswinc, 0b11);
        }
        assert_eq!((g.mrs(cnt(0)), g.mrs(cnt(1))), (0, 0), "{what}: PMCR.E = 0");

        g.msr(PmuReg::Pmcr, lp | PMCR_E);
        for _ in 0..100 {
            g.msr(PmuReg::Pmswinc, 0b11);
        }
        assert_eq!((g.mrs(cnt(0)), g.mrs(cnt(1))), (100, 100), "{what}");
        assert_eq!(g.mrs(PmuReg::Pmovsset), 0);

        // Counter 0 from just below the 32-bit wrap: 100 increments cross it.
        let preset = LOW32 - 49;
        g.msr(cnt(0), preset);
        g.msr(cnt(1), 0);
        for _ in 0..100 {
            g.msr(PmuReg::Pmswinc, 0b11);
        }
        let (value, overflow) = match (version >= PmuVersion::V3p5, lp != 0) {
            (false, _) => (50, true),               // 32-bit counter wraps
            (true, false) => (0x1_0000_0032, true), // 64-bit counter, overflow at the 32-bit wrap
            (true, true) => (0x1_0000_0032, false), // 64-bit overflow point
        };
        assert_eq!(g.mrs(cnt(0)), value, "{what}");
        assert_eq!(g.mrs(cnt(1)), 100, "{what}");
        assert_eq!(g.mrs(PmuReg::Pmovsset), u64::from(overflow), "{what}");

        if lp != 0 {
            g.msr(cnt(0), u64::MAX - 49);
            for _ in 0..100 {
                g.msr(PmuReg::Pmswinc, 0b01);
            }
            assert_eq!(g.mrs(cnt(0)), 50, "{what}: 64-bit wrap");
            assert_eq!(g.mrs(PmuReg::Pmovsset), 1, "{what}: 64-bit wrap");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chained counters
// ---------------------------------------------------------------------------------------------

/// Counter 0 counts `INST_RETIRED` in the backend, counter 1 counts `CHAIN`; both enabled.
fn chained(version: PmuVersion) -> Guest {
    let mut g = Guest::version(version, 2);
    g.msr(typ(0), u64::from(INST_RETIRED));
    g.msr(typ(1), u64::from(CHAIN));
    g.msr(PmuReg::Pmcntenset, 0b11);
    g.msr(PmuReg::Pmcr, PMCR_E | PMCR_P);
    g
}

#[test]
fn chained_counters() {
    for version in [PmuVersion::V3, PmuVersion::V3p5] {
        let long = version >= PmuVersion::V3p5;
        let mut g = chained(version);
        g.msr(cnt(0), PRE_OVERFLOW_32);
        assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), Some(16));
        g.run(INST_RETIRED, 20);
        assert_eq!(g.mrs(cnt(0)), if long { 0x1_0000_0004 } else { 4 }, "{version:?}");
        assert_eq!(g.mrs(cnt(1)), 1, "{version:?}: one overflow chained");
        assert_eq!(g.mrs(PmuReg::Pmovsset), 0b01, "{version:?}");

        // The odd counter itself wraps: both flags.
        g.msr(PmuReg::Pmovsclr, 0b11);
        g.msr(cnt(1), LOW32);
        g.msr(cnt(0), PRE_OVERFLOW_32);
        g.run(INST_RETIRED, 16);
        assert_eq!(g.mrs(cnt(1)), if long { 0x1_0000_0000 } else { 0 }, "{version:?}");
        assert_eq!(g.mrs(PmuReg::Pmovsset), 0b11, "{version:?}");

        // One batch that crosses three 32-bit wraps: CHAIN counts all three.
        g.msr(PmuReg::Pmovsclr, 0b11);
        g.msr(cnt(0), 0);
        g.msr(cnt(1), 10);
        g.run(INST_RETIRED, (3 << 32) + 5);
        assert_eq!(g.mrs(cnt(0)), if long { 0x3_0000_0005 } else { 5 }, "{version:?}");
        assert_eq!(g.mrs(cnt(1)), 13, "{version:?}");
        assert_eq!(g.mrs(PmuReg::Pmovsset), 0b01);
    }
}

#[test]
fn chained_software_increments() {
    let mut g = Guest::version(PmuVersion::V3p5, 2);
    g.msr(typ(0), u64::from(SW_INCR));
    g.msr(typ(1), u64::from(CHAIN));
    g.msr(PmuReg::Pmcntenset, 0b11);
    g.msr(PmuReg::Pmcr, PMCR_E | PMCR_P);
    g.msr(cnt(0), LOW32 - 9);
    for _ in 0..100 {
        g.msr(PmuReg::Pmswinc, 0b01);
    }
    assert_eq!(g.mrs(cnt(0)), 0x1_0000_005a);
    assert_eq!(g.mrs(cnt(1)), 1);
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b01);
}

// ---------------------------------------------------------------------------------------------
// Chain promotion: the odd counter changes role mid-count
// ---------------------------------------------------------------------------------------------

#[test]
fn chain_promotion() {
    let mut g = Guest::version(PmuVersion::V3p5, 2);
    g.msr(typ(0), u64::from(INST_RETIRED));
    g.msr(typ(1), u64::from(CHAIN));
    g.msr(PmuReg::Pmcntenset, 0b01); // the odd counter is not enabled yet
    g.msr(PmuReg::Pmcr, PMCR_E | PMCR_P);

    // 1. Odd counter disabled: the even counter overflows alone.
    g.msr(cnt(0), PRE_OVERFLOW_32);
    g.run(INST_RETIRED, 20);
    assert_eq!(g.mrs(cnt(1)), 0, "disabled odd counter chained");
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b01);

    // 2. Enabled mid-count: the next overflow chains.
    g.msr(PmuReg::Pmovsclr, 0b11);
    g.msr(PmuReg::Pmcntenset, 0b10);
    g.msr(cnt(0), PRE_OVERFLOW_32);
    g.run(INST_RETIRED, 20);
    assert_eq!(g.mrs(cnt(1)), 1);

    // 3. CHAIN -> INST_RETIRED: the odd counter now counts events itself, not overflows.
    g.msr(typ(1), u64::from(INST_RETIRED));
    g.run(INST_RETIRED, 5);
    assert_eq!(g.mrs(cnt(1)), 6);
    g.msr(cnt(0), LOW32 - 9);
    g.run(INST_RETIRED, 10); // the even counter overflows on the last one
    assert_eq!(g.mrs(cnt(0)), 0x1_0000_0000);
    assert_eq!(g.mrs(cnt(1)), 16, "counted 10 events, and the overflow did not chain");
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b01);

    // 4. INST_RETIRED -> CHAIN: events no longer count, overflows do.
    g.msr(typ(1), u64::from(CHAIN));
    g.run(INST_RETIRED, 100);
    assert_eq!(g.mrs(cnt(1)), 16);
    g.msr(cnt(0), LOW32);
    g.run(INST_RETIRED, 1);
    assert_eq!(g.mrs(cnt(1)), 17);

    // 5. The even counter changes event mid-count: the chain follows it.
    g.msr(typ(0), u64::from(CPU_CYCLES));
    g.msr(cnt(0), PRE_OVERFLOW_32);
    g.run(INST_RETIRED, 100);
    assert_eq!(g.mrs(cnt(0)), PRE_OVERFLOW_32, "counts CPU_CYCLES now");
    g.run(CPU_CYCLES, 16);
    assert_eq!(g.mrs(cnt(1)), 18);

    // 6. PMCR.LP = 1 mid-count: 64-bit counters, no chaining any more.
    g.msr(PmuReg::Pmcr, PMCR_E | PMCR_LP);
    g.msr(cnt(0), PRE_OVERFLOW_32);
    g.run(CPU_CYCLES, 16);
    assert_eq!(g.mrs(cnt(0)), 0x1_0000_0000);
    assert_eq!(g.mrs(cnt(1)), 18, "LP = 1: no overflow at 32 bits, nothing to chain");
    g.msr(PmuReg::Pmovsclr, 0b11);
    g.msr(cnt(0), u64::MAX - 15);
    g.run(CPU_CYCLES, 16);
    assert_eq!(g.mrs(cnt(0)), 0);
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b01);
    assert_eq!(g.mrs(cnt(1)), 18, "LP = 1: the 64-bit overflow does not chain");

    // 7. And back to LP = 0: chaining resumes.
    g.msr(PmuReg::Pmcr, PMCR_E);
    g.msr(cnt(0), PRE_OVERFLOW_32);
    g.run(CPU_CYCLES, 16);
    assert_eq!(g.mrs(cnt(1)), 19);
}

// ---------------------------------------------------------------------------------------------
// Overflow interrupt
// ---------------------------------------------------------------------------------------------

#[test]
fn overflow_interrupt() {
    let mut g = Guest::version(PmuVersion::V3p5, 2);
    g.msr(typ(0), u64::from(INST_RETIRED));
    g.msr(typ(1), u64::from(CPU_CYCLES));
    g.msr(PmuReg::Pmcntenset, 0b11);
    g.msr(cnt(0), PRE_OVERFLOW_32);
    g.msr(cnt(1), PRE_OVERFLOW_32);

    // PMCR.E = 0: nothing counts, nothing overflows.
    g.run(INST_RETIRED, 1000);
    g.run(CPU_CYCLES, 1000);
    assert_eq!((g.mrs(cnt(0)), g.mrs(cnt(1))), (PRE_OVERFLOW_32, PRE_OVERFLOW_32));
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0);
    assert!(!g.irq());

    // Enabled, interrupts masked: the flags set, the line stays low.
    g.msr(PmuReg::Pmcr, PMCR_E);
    g.run(INST_RETIRED, 16);
    g.run(CPU_CYCLES, 16);
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b11);
    assert!(!g.irq());
    g.msr(PmuReg::Pmovsclr, 0b11);

    // Unmasked: the line rises on exactly the overflowing event.
    g.msr(PmuReg::Pmintenset, 0b11);
    g.msr(cnt(0), PRE_OVERFLOW_32);
    let k = g.pmu.events_until_overflow(INST_RETIRED).unwrap();
    assert_eq!(k, 16);
    g.run(INST_RETIRED, k - 1);
    assert!(!g.irq(), "one event early");
    g.run(INST_RETIRED, 1);
    assert!(g.irq(), "the overflowing event");
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b01);
    // The handler acknowledges it.
    g.msr(PmuReg::Pmovsclr, 0b01);
    assert!(!g.irq());

    // The cycle counter's event counter overflows next.
    g.msr(cnt(1), PRE_OVERFLOW_32);
    g.run(CPU_CYCLES, 16);
    assert!(g.irq());
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b10);
    // The line does not depend on the counter still being enabled.
    g.msr(PmuReg::Pmcntenclr, 0b11);
    assert!(g.irq(), "PMCNTENCLR must not lower the line");
    // Masking lowers it, unmasking raises it again.
    g.msr(PmuReg::Pmintenclr, 0b10);
    assert!(!g.irq());
    g.msr(PmuReg::Pmintenset, 0b10);
    assert!(g.irq());
    // PMCR.E gates it.
    g.msr(PmuReg::Pmcr, 0);
    assert!(!g.irq());
    g.msr(PmuReg::Pmcr, PMCR_E);
    assert!(g.irq());
    g.msr(PmuReg::Pmovsclr, u64::MAX);
    assert!(!g.irq());

    // Software can raise it through PMOVSSET (e.g. a restored context).
    g.msr(PmuReg::Pmovsset, 0b01);
    assert!(g.irq());
}

#[test]
fn overflow_interrupt_from_the_cycle_counter_with_a_64_bit_overflow_point() {
    let mut g = Guest::version(PmuVersion::V3p5, 0);
    g.msr(PmuReg::Pmcntenset, CYCLE_BIT);
    g.msr(PmuReg::Pmintenset, CYCLE_BIT);
    g.msr(PmuReg::Pmcr, PMCR_E | (1 << 6)); // LC
    g.msr(PmuReg::Pmccntr, PRE_OVERFLOW_32);
    g.run(CPU_CYCLES, 100);
    assert!(!g.irq(), "LC = 1: no overflow at 32 bits");
    g.msr(PmuReg::Pmccntr, u64::MAX - 99);
    assert_eq!(g.pmu.events_until_overflow(CPU_CYCLES), Some(100));
    g.run(CPU_CYCLES, 100);
    assert!(g.irq());
    assert_eq!(g.mrs(PmuReg::Pmovsset), CYCLE_BIT);
    assert_eq!(g.mrs(PmuReg::Pmccntr), 0);
}

/// An emulator asks how far it may run before the next overflow, runs exactly that far, and takes
/// the interrupt on the right instruction, across exception-level changes and counters that
/// share an event.
#[test]
fn emulator_stops_exactly_at_each_overflow() {
    let mut g = Guest::version(PmuVersion::V3p5, 3);
    g.msr(typ(0), u64::from(INST_RETIRED) | F_P); // EL0 only
    g.msr(typ(1), u64::from(INST_RETIRED)); // both ELs
    g.msr(typ(2), u64::from(INST_RETIRED)); // both ELs, the same event and filter as counter 1
    g.msr(cnt(0), PRE_OVERFLOW_32); // 16 EL0 instructions to go
    g.msr(cnt(1), LOW32 - 99); // 100 to go
    g.msr(cnt(2), LOW32 - 29); // 30 to go
    g.msr(PmuReg::Pmcntenset, 0b111);
    g.msr(PmuReg::Pmintenset, 0b111);
    g.msr(PmuReg::Pmcr, PMCR_E);

    // At EL1 counter 0 does not count: counter 2 is the nearest.
    assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), Some(30));
    g.run(INST_RETIRED, 10);
    g.eret_to(El::El0);
    assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), Some(16), "counter 0 counts at EL0");
    g.run(INST_RETIRED, 15);
    assert!(!g.irq());
    assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), Some(1));
    g.run(INST_RETIRED, 1);
    assert!(g.irq());
    // The interrupt is taken to the kernel, which acknowledges it.
    g.eret_to(El::El1);
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b001);
    g.msr(PmuReg::Pmovsclr, 0b001);
    assert!(!g.irq());
    // 26 instructions so far on counters 1 and 2.
    assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), Some(4));
    g.run(INST_RETIRED, 3);
    assert!(!g.irq());
    g.run(INST_RETIRED, 1);
    assert!(g.irq());
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b100);
    g.msr(PmuReg::Pmovsclr, 0b100);
    assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), Some(70));
    g.run(INST_RETIRED, 70);
    assert_eq!(g.mrs(PmuReg::Pmovsset), 0b010);
    // Counter 2 wrapped 70 events ago, counter 1 just now; counter 0 is stopped at EL1.
    assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), Some((1 << 32) - 70));
    assert_eq!(g.mrs(cnt(0)), 0x1_0000_0000);
    assert_eq!(g.mrs(cnt(1)), 0x1_0000_0000);
    assert_eq!(g.mrs(cnt(2)), 0x1_0000_0000 + 70);

    // Nothing counts this event once the counters are disabled.
    g.msr(PmuReg::Pmcntenclr, 0b111);
    assert_eq!(g.pmu.events_until_overflow(INST_RETIRED), None);
}

// ---------------------------------------------------------------------------------------------
// Basic event counting
// ---------------------------------------------------------------------------------------------

#[test]
fn basic_event_counting_with_filters() {
    // The host counts instructions and cycles, not branch mispredictions.
    let cfg = PmuConfig::builder().counters(4).build().unwrap();
    let mut g = Guest::with_backend(cfg, SoftBackend::with_events(&[INST_RETIRED, CPU_CYCLES]));
    let ceid0 = g.mrs(PmuReg::Pmceid0);
    assert_ne!(ceid0 & (1 << INST_RETIRED), 0);
    assert_ne!(ceid0 & (1 << CPU_CYCLES), 0);
    assert_eq!(ceid0 & (1 << BR_MIS_PRED), 0);

    g.msr(typ(0), u64::from(INST_RETIRED) | F_P); // user instructions
    g.msr(typ(1), u64::from(INST_RETIRED) | F_U); // kernel instructions
    g.msr(typ(2), u64::from(CPU_CYCLES)); // all cycles
    g.msr(typ(3), u64::from(BR_MIS_PRED)); // not supported: never counts
    g.msr(PmuReg::Pmccfiltr, F_U); // kernel cycles
    g.msr(PmuReg::Pmcntenset, 0b1111 | CYCLE_BIT);
    g.msr(PmuReg::Pmcr, PMCR_E | PMCR_P | PMCR_C);

    // Kernel, then a user program, then the kernel again.
    g.run(INST_RETIRED, 200);
    g.run(CPU_CYCLES, 700);
    g.eret_to(El::El0);
    g.run(INST_RETIRED, 1000);
    g.run(CPU_CYCLES, 3000);
    g.run(BR_MIS_PRED, 17);
    g.eret_to(El::El1);
    g.run(INST_RETIRED, 50);
    g.run(CPU_CYCLES, 100);

    assert_eq!(g.mrs(cnt(0)), 1000, "user instructions");
    assert_eq!(g.mrs(cnt(1)), 250, "kernel instructions");
    assert_eq!(g.mrs(cnt(2)), 3800, "all cycles");
    assert_eq!(g.mrs(cnt(3)), 0, "an event the host cannot count");
    assert_eq!(g.mrs(PmuReg::Pmccntr), 800, "kernel cycles");

    // Stop counter 2, run, restart it: it resumes from where it stopped.
    g.msr(PmuReg::Pmcntenclr, 0b100);
    g.run(CPU_CYCLES, 500);
    assert_eq!(g.mrs(cnt(2)), 3800);
    g.msr(PmuReg::Pmcntenset, 0b100);
    g.run(CPU_CYCLES, 5);
    assert_eq!(g.mrs(cnt(2)), 3805);
    assert_eq!(g.mrs(PmuReg::Pmccntr), 1305);

    // The user program reads its own counter, as PMUSERENR.ER lets it.
    g.msr(PmuReg::Pmuserenr, PMUSERENR_ER);
    g.eret_to(El::El0);
    g.run(INST_RETIRED, 7);
    assert_eq!(g.mrs(cnt(0)), 1007);
    assert_eq!(g.try_read(Isa::A64, PmuReg::Pmccntr), Outcome::TrapToEl1, "CR is not set");
    assert_eq!(g.try_write(Isa::A64, cnt(0), 0), Outcome::TrapToEl1, "EN is not set");
}

#[test]
fn counters_are_exact_across_many_small_batches() {
    let mut g = Guest::version(PmuVersion::V3p5, 3);
    for n in 0..3 {
        g.msr(typ(n), u64::from(INST_RETIRED));
    }
    g.msr(PmuReg::Pmcntenset, 0b111);
    g.msr(PmuReg::Pmcr, PMCR_E);
    g.msr(cnt(1), 1_000_000);
    let mut total = 0;
    for k in 1..=200u64 {
        g.run(INST_RETIRED, k);
        total += k;
        if k % 50 == 0 {
            assert_eq!(g.mrs(cnt(0)), total);
        }
    }
    assert_eq!(g.mrs(cnt(0)), 20_100);
    assert_eq!(g.mrs(cnt(1)), 1_020_100);
    assert_eq!(g.mrs(cnt(2)), 20_100);
}

// ---------------------------------------------------------------------------------------------
// vpmu_counter_access: every N, every counter, four access styles, two instruction sets
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Style {
    /// `PMEVCNTR<n>` / `PMEVTYPER<n>`.
    Direct,
    /// `PMSELR` = n, then `PMXEVCNTR` / `PMXEVTYPER`.
    Indirect,
}

fn counter_reg(style: Style, n: u8) -> PmuReg {
    match style {
        Style::Direct => cnt(n),
        Style::Indirect => PmuReg::Pmxevcntr,
    }
}

fn typer_reg(style: Style, n: u8) -> PmuReg {
    match style {
        Style::Direct => typ(n),
        Style::Indirect => PmuReg::Pmxevtyper,
    }
}

#[test]
fn every_n_every_counter_every_access_style() {
    for n in 0..=31u8 {
        let mut g = Guest::version(PmuVersion::V3p5, n);
        // What each counter holds, as the guest wrote it.
        let mut value = [0u64; 31];
        let mut typer = [0u64; 31];

        // PMCR.N says N, and the guest cannot change it.
        assert_eq!((g.mrs(PmuReg::Pmcr) >> PMCR_N_SHIFT) & 0x1f, u64::from(n));
        g.msr(PmuReg::Pmcr, 0x1f << PMCR_N_SHIFT);
        assert_eq!((g.mrs(PmuReg::Pmcr) >> PMCR_N_SHIFT) & 0x1f, u64::from(n));

        for i in 0..31u8 {
            let valid = i < n;
            for (k, (style, isa)) in
                [(Style::Direct, Isa::A64), (Style::Indirect, Isa::A64), (Style::Direct, Isa::A32), (Style::Indirect, Isa::A32)]
                    .into_iter()
                    .enumerate()
            {
                let what = format!("N={n} counter {i} {style:?} {isa:?}");
                if let Style::Indirect = style {
                    // Writing any SEL is fine, even one that selects nothing.
                    assert_eq!(g.try_write(isa, PmuReg::Pmselr, u64::from(i)), Outcome::Written, "{what}: PMSELR");
                    assert_eq!(g.try_read(isa, PmuReg::Pmselr), Outcome::Read(u64::from(i)), "{what}: PMSELR");
                }
                let k = k as u64;
                let new_value = 0x1234_5678_0000_0000 | (u64::from(i) << 16) | k;
                let new_typer = (0x100 + u64::from(i) * 4 + k) | if k % 2 == 0 { F_P } else { F_U };
                let (creg, treg) = (counter_reg(style, i), typer_reg(style, i));
                let w = g.try_write(isa, creg, new_value);
                let wt = g.try_write(isa, treg, new_typer);
                let r = g.try_read(isa, creg);
                let rt = g.try_read(isa, treg);
                if valid {
                    assert_eq!((w, wt), (Outcome::Written, Outcome::Written), "{what}");
                    let idx = usize::from(i);
                    value[idx] = match isa {
                        Isa::A64 => new_value,
                        // MCR: bits [31:0] replaced, [63:32] kept.
                        Isa::A32 => (value[idx] & !LOW32) | (new_value & LOW32),
                    };
                    typer[idx] = new_typer;
                    let seen = if isa == Isa::A32 { value[idx] & LOW32 } else { value[idx] };
                    assert_eq!(r, Outcome::Read(seen), "{what}: counter read back");
                    assert_eq!(rt, Outcome::Read(new_typer), "{what}: type read back");
                } else {
                    for o in [w, wt, r, rt] {
                        assert_eq!(o, Outcome::Undefined, "{what}");
                    }
                }
            }
        }
        // Nothing leaked between counters: each holds what was last written to it.
        for i in 0..n {
            assert_eq!(g.mrs(cnt(i)), value[usize::from(i)], "N={n}: PMEVCNTR{i}");
            assert_eq!(g.mrs(typ(i)), typer[usize::from(i)], "N={n}: PMEVTYPER{i}");
        }

        // The bitmaps show only counters 0..N and the cycle counter.
        let implemented = ((1u64 << n) - 1) | CYCLE_BIT;
        for (set, clr) in
            [(PmuReg::Pmcntenset, PmuReg::Pmcntenclr), (PmuReg::Pmintenset, PmuReg::Pmintenclr), (PmuReg::Pmovsset, PmuReg::Pmovsclr)]
        {
            for isa in [Isa::A64, Isa::A32] {
                assert_eq!(g.try_write(isa, set, LOW32), Outcome::Written);
                assert_eq!(g.try_read(isa, set), Outcome::Read(implemented), "N={n} {isa:?} {set}");
                assert_eq!(g.try_read(isa, clr), Outcome::Read(implemented), "N={n} {isa:?} {clr}");
                assert_eq!(g.try_write(isa, clr, LOW32), Outcome::Written);
                assert_eq!(g.try_read(isa, set), Outcome::Read(0), "N={n} {isa:?} {set} after {clr}");
            }
        }
    }
}

#[test]
fn every_n_before_v3p5_counters_are_32_bits_wide() {
    for n in [1u8, 6, 31] {
        let mut g = Guest::version(PmuVersion::V3p4, n);
        for i in 0..n {
            g.msr(cnt(i), 0xffff_0000_0000_0000 | u64::from(i));
            assert_eq!(g.mrs(cnt(i)), u64::from(i), "N={n}: PMEVCNTR{i}");
            g.msr(PmuReg::Pmselr, u64::from(i));
            assert_eq!(g.mrs(PmuReg::Pmxevcntr), u64::from(i));
        }
    }
}
