//! What the integration tests share: the architecture's numbers (`arch`) and the small helpers
//! every file used to write again (a counter number, a register, a `Pmu<SoftBackend>` from a
//! configuration, reads and writes at EL1 that must succeed).
//!
//! Each test file includes it with `mod common;` and imports what it uses; a helper that only
//! one file needs stays in that file. The reference model, `model.rs` beside this file, is not
//! part of it: it is included on its own (`#[path = "common/model.rs"] mod model;`) by the tests
//! that use it, the benches and the fuzz crate. So are the fuzz targets' per-input checks,
//! `fuzz_check/` beside this file (`#[path = "common/fuzz_check/mod.rs"] mod fuzz_check;`),
//! which are also the fuzz crate's library.
#![allow(dead_code)] // every test binary uses a different part

/// The architecture's numbers, from the Arm ARM: see the file.
pub mod arch;

use vpmu::config::{El0Denial, FilterAction, PmuConfig, PmuVersion};
use vpmu::decode::Gpr;
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{CounterBackend, El, Outcome, Pmu, SoftBackend};

/// The PMU under test: vpmu over its software backend.
pub type SoftPmu = Pmu<SoftBackend>;

/// Event counter `n` (0..=30).
pub fn ev(n: u8) -> EventCounter {
    EventCounter::new(n).unwrap()
}

/// `PMEVCNTR<n>_EL0`.
pub fn cnt(n: u8) -> PmuReg {
    PmuReg::Pmevcntr(ev(n))
}

/// `PMEVTYPER<n>_EL0`.
pub fn typ(n: u8) -> PmuReg {
    PmuReg::Pmevtyper(ev(n))
}

/// General-purpose register `n` (0..=31, 31 the zero register).
pub fn gpr(n: u8) -> Gpr {
    Gpr::new(n).unwrap()
}

/// The default configuration but for the version and `N` event counters.
pub fn config(version: PmuVersion, n: u8) -> PmuConfig {
    PmuConfig::builder().version(version).counters(n).build().unwrap()
}

/// A PMU in its reset state over a `SoftBackend` that counts every event.
pub fn pmu_with(cfg: PmuConfig) -> SoftPmu {
    Pmu::new(cfg, SoftBackend::new()).unwrap()
}

/// `pmu_with(config(version, n))`.
pub fn pmu(version: PmuVersion, n: u8) -> SoftPmu {
    pmu_with(config(version, n))
}

/// A PMU over a `SoftBackend` that counts only `supported` (`None`: every event).
pub fn pmu_supporting(cfg: PmuConfig, supported: Option<&[u16]>) -> SoftPmu {
    let backend = match supported {
        Some(events) => SoftBackend::with_events(events),
        None => SoftBackend::new(),
    };
    Pmu::new(cfg, backend).unwrap()
}

/// Reads `reg` at EL1; the read must be answered.
#[track_caller]
pub fn rd<B: CounterBackend>(p: &mut Pmu<B>, reg: PmuReg) -> u64 {
    match p.read(reg, El::El1) {
        Outcome::Read(v) => v,
        other => panic!("reading {reg} at EL1 gave {other:?}"),
    }
}

/// Writes `v` to `reg` at EL1; the write must take.
#[track_caller]
pub fn wr<B: CounterBackend>(p: &mut Pmu<B>, reg: PmuReg, v: u64) {
    assert_eq!(p.write(reg, v, El::El1), Outcome::Written, "writing {v:#x} to {reg} at EL1");
}

/// A configuration as the proptest strategies draw it, field by field.
pub struct DrawnConfig {
    /// `PMCR.N`.
    pub n: u8,
    pub version: PmuVersion,
    pub aarch32_el0: bool,
    pub el3: bool,
    pub imp: u8,
    pub idcode: u8,
    /// Used only from PMUv3p4 (before, `PMMIR` does not exist and the builder refuses it).
    pub pmmir: u32,
    /// `El0Denial::Undefined` rather than the default trap to EL1.
    pub el0_undefined: bool,
    /// Filter actions in order: (allow, first event, how many more events).
    pub filter: Vec<(bool, u16, u16)>,
}

impl DrawnConfig {
    /// The configuration; every draw the strategies make is a valid one.
    pub fn build(self) -> PmuConfig {
        let mut b = PmuConfig::builder()
            .counters(self.n)
            .version(self.version)
            .aarch32_el0(self.aarch32_el0)
            .el3(self.el3)
            .identity(self.imp, self.idcode)
            .pmmir(if self.version >= PmuVersion::V3p4 { self.pmmir } else { 0 })
            .el0_denial(if self.el0_undefined { El0Denial::Undefined } else { El0Denial::TrapToEl1 });
        for (allow, first, len) in self.filter {
            let action = if allow { FilterAction::Allow } else { FilterAction::Deny };
            b = b.filter(action, first..=first + len).unwrap();
        }
        b.build().unwrap()
    }
}
