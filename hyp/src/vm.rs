//! Every call the hypervisor makes into vpmu, in one place: the VM-wide configuration, one
//! `Pmu` per vCPU, the trapped-access entry point, the interrupt level, and the physical PMU
//! interrupt. A change of vpmu's API is a change of this file only.

pub use vpmu::config::PmuConfig;
use vpmu::config::PmuIrq;
use vpmu::{CounterBackend, GuestRegs, Outcome, Pmu, Pstate, Trap};

use crate::sysreg::mrs;

/// The counter backend of every vCPU's PMU: the physical PMU, from EL2 (`vpmu-hw`).
pub type Backend = vpmu_hw::HwBackend<vpmu_hw::SysRegs>;
/// One vCPU's virtual PMU.
pub type VPmu = Pmu<Backend>;

/// vpmu reads and writes the guest's X registers in the trap frame.
impl GuestRegs for crate::trap::Frame {
    fn get(&self, n: u8) -> u64 {
        self.x.as_slice().get(usize::from(n)).copied().unwrap_or(0)
    }
    fn set(&mut self, n: u8, value: u64) {
        if let Some(x) = self.x.as_mut_slice().get_mut(usize::from(n)) {
            *x = value;
        }
    }
}

/// The physical PMU's `PMCR_EL0.N`: how many event counters the guest gets (`MDCR_EL2.HPMN`).
pub fn physical_counters() -> u8 {
    ((mrs!("pmcr_el0") >> 11) & 0x1f) as u8
}

/// `MDCR_EL2` for the guest: `TPM | TPMCR` trap every PMU access, `HPMN` = N gives the guest
/// every counter, `HPMD | HCCD` keep EL2 out of every count.
pub fn mdcr_el2() -> u64 {
    vpmu_hw::mdcr_el2::for_guest(physical_counters())
}

/// The VM-wide configuration: as many counters as the backend has (`HPMN`), the physical
/// PMU's version, the PMU interrupt on the DT's PPI. Call after `MDCR_EL2` is set.
pub fn vm_config() -> Option<PmuConfig> {
    let hw = Backend::new(vpmu_hw::SysRegs::new());
    let version = hw.pmu_version()?;
    PmuConfig::builder().counters(hw.max_event_counters()).version(version).irq(PmuIrq::Ppi(crate::gic::PMU_PPI as u16)).build().ok()
}

/// A vCPU's PMU in its reset state, its configuration fixed, loaded on this CPU (one vCPU
/// per physical CPU: it is never put).
pub fn new_pmu(cfg: PmuConfig) -> Option<VPmu> {
    let mut pmu = Pmu::new(cfg, Backend::new(vpmu_hw::SysRegs::new())).ok()?;
    pmu.lock_config();
    pmu.vcpu_load();
    Some(pmu)
}

/// What a trapped system register access became.
pub enum Access {
    /// Emulated (the value, for a read, is in Rt), or an AArch32 condition that failed: skip
    /// the instruction. The statistics slot.
    Done(usize),
    /// Inject UNDEFINED into the guest.
    Undefined(usize),
    /// Inject the EC 0x18 trap into the guest's EL1 (EL0 access that `PMUSERENR` forbids).
    TrapToEl1(usize),
    /// Not a PMU register.
    NotPmu,
}

/// Hands a trapped `MRS`/`MSR` (EC 0x18; `MRC`/`MCR`/`MRRC`/`MCRR`, EC 0x03/0x04, from an
/// AArch32 EL0) to the vCPU's PMU.
pub fn handle_sysreg(pmu: &mut VPmu, esr: u64, spsr: u64, regs: &mut impl GuestRegs) -> Access {
    let slot = reg_slot(esr);
    #[cfg(feature = "passthrough")]
    if passthrough(esr, regs) {
        return Access::Done(slot);
    }
    // SPSR_EL2 of a trap from the guest is always EL0 or EL1.
    let Some(pstate) = Pstate::from_spsr(spsr) else { return Access::Undefined(slot) };
    match pmu.handle_esr(esr, pstate, regs) {
        Ok(Trap::Pmu(Outcome::Read(_) | Outcome::Written | Outcome::ConditionFailed)) => Access::Done(slot),
        Ok(Trap::Pmu(Outcome::TrapToEl1)) => Access::TrapToEl1(slot),
        Ok(Trap::Pmu(_)) => Access::Undefined(slot),
        Ok(Trap::NotPmu(_)) | Err(_) => Access::NotPmu,
    }
}

/// The pass-through baseline (feature `passthrough`, for the cost figure only): forwards a
/// trapped `MRS PMCCNTR_EL0` or `MSR PMCR_EL0` to the physical register.
#[cfg(feature = "passthrough")]
fn passthrough(esr: u64, regs: &mut impl GuestRegs) -> bool {
    let rt = ((esr >> 5) & 0x1f) as u8;
    // ESR with Rt cleared: EC 0x18, IL, and the register's fields.
    match esr & !(0x1f << 5) {
        0x6233_e401 => {
            if rt != 31 {
                regs.set(rt, crate::sysreg::mrs!("pmccntr_el0"));
            }
            true
        }
        0x6233_e400 => {
            let v = if rt == 31 { 0 } else { regs.get(rt) };
            crate::sysreg::msr!("pmcr_el0", v);
            true
        }
        _ => false,
    }
}

/// The level of the vCPU's PMU interrupt.
pub fn irq_level(pmu: &mut VPmu) -> bool {
    pmu.irq_level()
}

/// The physical PMU interrupt fired on this CPU: the `Pmu` takes the physical overflow flags
/// (clearing them lowers the level-sensitive PPI), folds the counters that overflowed and
/// re-arms them.
pub fn physical_pmu_interrupt(pmu: &mut VPmu) {
    pmu.handle_overflows();
}

/// Names of the statistics slots.
pub const REG_NAMES: [&str; 15] = [
    "PMCR_EL0",
    "PMCNTENSET/CLR_EL0",
    "PMOVSSET/CLR_EL0",
    "PMSWINC_EL0",
    "PMSELR_EL0",
    "PMCEID0-3_EL0",
    "PMCCNTR_EL0",
    "PMXEVTYPER_EL0",
    "PMXEVCNTR_EL0",
    "PMUSERENR_EL0",
    "PMINTENSET/CLR_EL1",
    "PMMIR_EL1",
    "PMEVCNTR<n>_EL0",
    "PMEVTYPER<n>_EL0",
    "PMCCFILTR_EL0",
];

/// The statistics slot of an AArch64 PMU register access, from its ESR (Op1, CRn, CRm,
/// Op2); AArch32 accesses all count as slot 0 (`PMCR`'s) but for `PMCCNTR`.
fn reg_slot(esr: u64) -> usize {
    let (op2, op1, crn, crm) = ((esr >> 17) & 7, (esr >> 14) & 7, (esr >> 10) & 0xf, (esr >> 1) & 0xf);
    match (crn, op1, crm, op2) {
        (9, 3, 12, 0) => 0,
        (9, 3, 12, 1 | 2) => 1,
        (9, 3, 12, 3) | (9, 3, 14, 3) => 2,
        (9, 3, 12, 4) => 3,
        (9, 3, 12, 5) => 4,
        (9, 3, 12, 6 | 7) => 5,
        (9, 3, 13, 0) => 6,
        (9, 3, 13, 1) => 7,
        (9, 3, 13, 2) => 8,
        (9, 3, 14, 0) => 9,
        (9, 0, 14, 1 | 2) => 10,
        (9, 0, 14, 6) => 11,
        (14, 3, 8..=11, _) => 12,
        (14, 3, 15, 7) => 14,
        (14, 3, 12..=15, _) => 13,
        _ => 0,
    }
}
