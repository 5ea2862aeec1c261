//! Every vpmu call of the test, in one place: a vCPU's `Pmu` on the physical PMU, driven the
//! way a guest's trapped register accesses drive it.

use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Pmu};
use vpmu_hw::{HwBackend, SysRegs};

/// One vCPU: its `Pmu` with `PMCR.E` set.
pub struct Vcpu {
    pmu: Pmu<HwBackend<SysRegs>>,
}

fn ev(i: u8) -> EventCounter {
    EventCounter::new_truncate(i)
}

impl Vcpu {
    /// `None` if the backend cannot back `counters` event counters.
    pub fn try_new(counters: u8) -> Option<Self> {
        let cfg = PmuConfig::builder().counters(counters).version(PmuVersion::V3).build().ok()?;
        let mut pmu = Pmu::new(cfg, HwBackend::new(SysRegs::new())).ok()?;
        let _ = pmu.write(PmuReg::Pmcr, 1, El::El1);
        Some(Self { pmu })
    }
    pub fn new(counters: u8) -> Self {
        let cfg = match PmuConfig::builder().counters(counters).version(PmuVersion::V3).build() {
            Ok(c) => c,
            Err(e) => panic!("config: {e}"),
        };
        let mut pmu = match Pmu::new(cfg, HwBackend::new(SysRegs::new())) {
            Ok(p) => p,
            Err(e) => panic!("Pmu::new: {e}"),
        };
        let _ = pmu.write(PmuReg::Pmcr, 1, El::El1);
        Self { pmu }
    }
    fn write(&mut self, reg: PmuReg, v: u64) {
        let out = self.pmu.write(reg, v, El::El1);
        if out != vpmu::Outcome::Written {
            crate::println!("FAIL write {reg:?} = {v:#x}: {out:?}");
        }
    }
    fn read(&mut self, reg: PmuReg) -> u64 {
        match self.pmu.read(reg, El::El1) {
            vpmu::Outcome::Read(v) => v,
            out => {
                crate::println!("FAIL read {reg:?}: {out:?}");
                u64::MAX
            }
        }
    }
    pub fn write_typer(&mut self, i: u8, v: u64) {
        self.write(PmuReg::Pmevtyper(ev(i)), v);
    }
    pub fn write_cycle_filter(&mut self, v: u64) {
        self.write(PmuReg::Pmccfiltr, v);
    }
    pub fn write_counter(&mut self, i: u8, v: u64) {
        self.write(PmuReg::Pmevcntr(ev(i)), v);
    }
    pub fn write_cycles(&mut self, v: u64) {
        self.write(PmuReg::Pmccntr, v);
    }
    pub fn write_pmcr(&mut self, v: u64) {
        self.write(PmuReg::Pmcr, v);
    }
    pub fn enable(&mut self, bits: u32) {
        self.write(PmuReg::Pmcntenset, bits.into());
    }
    pub fn disable(&mut self, bits: u32) {
        self.write(PmuReg::Pmcntenclr, bits.into());
    }
    pub fn enable_irq(&mut self, bits: u32) {
        self.write(PmuReg::Pmintenset, bits.into());
    }
    pub fn counter(&mut self, i: u8) -> u64 {
        self.read(PmuReg::Pmevcntr(ev(i)))
    }
    pub fn cycles(&mut self) -> u64 {
        self.read(PmuReg::Pmccntr)
    }
    pub fn ovs(&mut self) -> u64 {
        self.read(PmuReg::Pmovsset)
    }
    pub fn pmceid0(&mut self) -> u64 {
        self.read(PmuReg::Pmceid0)
    }
    pub fn irq_level(&mut self) -> bool {
        self.pmu.irq_level()
    }
    pub fn load(&mut self) {
        self.pmu.vcpu_load();
    }
    pub fn put(&mut self) {
        self.pmu.vcpu_put();
    }
    /// What the hypervisor calls on the physical PMU interrupt.
    pub fn handle_overflows(&mut self) {
        self.pmu.handle_overflows();
    }
    /// Runs the guest loop at EL1 for `n` iterations.
    pub fn run(&mut self, n: u64) {
        crate::rt::guest(n);
    }
}
