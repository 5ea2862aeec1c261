//! The physical PMU's registers, as the backend reaches them: the [`PmuRegs`] trait.
//!
//! Everything in this crate is generic over [`PmuRegs`]. On aarch64, [`SysRegs`](crate::SysRegs)
//! implements it with `MRS`/`MSR` (the crate's only `unsafe`); on any host,
//! [`SimPmu`](crate::sim::SimPmu) implements it with a simulated PMUv3, so the backend's logic is
//! tested without hardware.

use core::cell::RefCell;

/// Access to the physical PMUv3 registers as EL2 sees them (no `HPMN` view: `PMCR_EL0.N` is the
/// whole PMU).
///
/// Counter numbers `n` are `0..=30`; an implementation ignores writes to a counter that does
/// not exist and reads it as 0. The set/clear bitmap pairs take the bits to set or clear, as
/// the registers do (bit 31: the cycle counter).
///
/// # Examples
///
/// A wrapper that counts every register write, for a test:
///
/// ```
/// use vpmu_hw::{sim::SimPmu, PmuRegs};
///
/// struct Counting { inner: SimPmu, writes: u32 }
/// impl PmuRegs for Counting {
///     fn read_pmcr(&self) -> u64 { self.inner.read_pmcr() }
///     fn write_pmcr(&mut self, v: u64) { self.writes += 1; self.inner.write_pmcr(v) }
///     fn read_pmevcntr(&self, n: u8) -> u64 { self.inner.read_pmevcntr(n) }
///     fn write_pmevcntr(&mut self, n: u8, v: u64) { self.writes += 1; self.inner.write_pmevcntr(n, v) }
///     fn read_pmevtyper(&self, n: u8) -> u64 { self.inner.read_pmevtyper(n) }
///     fn write_pmevtyper(&mut self, n: u8, v: u64) { self.writes += 1; self.inner.write_pmevtyper(n, v) }
///     fn read_pmccntr(&self) -> u64 { self.inner.read_pmccntr() }
///     fn write_pmccntr(&mut self, v: u64) { self.writes += 1; self.inner.write_pmccntr(v) }
///     fn read_pmccfiltr(&self) -> u64 { self.inner.read_pmccfiltr() }
///     fn write_pmccfiltr(&mut self, v: u64) { self.writes += 1; self.inner.write_pmccfiltr(v) }
///     fn read_pmcntenset(&self) -> u32 { self.inner.read_pmcntenset() }
///     fn write_pmcntenset(&mut self, b: u32) { self.writes += 1; self.inner.write_pmcntenset(b) }
///     fn write_pmcntenclr(&mut self, b: u32) { self.writes += 1; self.inner.write_pmcntenclr(b) }
///     fn read_pmovsset(&self) -> u32 { self.inner.read_pmovsset() }
///     fn write_pmovsset(&mut self, b: u32) { self.writes += 1; self.inner.write_pmovsset(b) }
///     fn write_pmovsclr(&mut self, b: u32) { self.writes += 1; self.inner.write_pmovsclr(b) }
///     fn read_pmintenset(&self) -> u32 { self.inner.read_pmintenset() }
///     fn write_pmintenset(&mut self, b: u32) { self.writes += 1; self.inner.write_pmintenset(b) }
///     fn write_pmintenclr(&mut self, b: u32) { self.writes += 1; self.inner.write_pmintenclr(b) }
///     fn read_pmceid(&self) -> [u64; 2] { self.inner.read_pmceid() }
///     fn read_id_aa64dfr0(&self) -> u64 { self.inner.read_id_aa64dfr0() }
///     fn read_mdcr_el2(&self) -> u64 { self.inner.read_mdcr_el2() }
/// }
///
/// let mut r = Counting { inner: SimPmu::cortex_a57(), writes: 0 };
/// r.write_pmcr(1);
/// assert_eq!((r.read_pmcr() & 1, r.writes), (1, 1));
/// ```
pub trait PmuRegs {
    /// `PMCR_EL0`.
    fn read_pmcr(&self) -> u64;
    /// Writes `PMCR_EL0` (`P` and `C` reset counters, as the register does).
    fn write_pmcr(&mut self, v: u64);
    /// `PMEVCNTR<n>_EL0`.
    fn read_pmevcntr(&self, n: u8) -> u64;
    /// Writes `PMEVCNTR<n>_EL0`.
    fn write_pmevcntr(&mut self, n: u8, v: u64);
    /// `PMEVTYPER<n>_EL0`.
    fn read_pmevtyper(&self, n: u8) -> u64;
    /// Writes `PMEVTYPER<n>_EL0`.
    fn write_pmevtyper(&mut self, n: u8, v: u64);
    /// `PMCCNTR_EL0`.
    fn read_pmccntr(&self) -> u64;
    /// Writes `PMCCNTR_EL0`.
    fn write_pmccntr(&mut self, v: u64);
    /// `PMCCFILTR_EL0`.
    fn read_pmccfiltr(&self) -> u64;
    /// Writes `PMCCFILTR_EL0`.
    fn write_pmccfiltr(&mut self, v: u64);
    /// `PMCNTENSET_EL0`: the counter enables.
    fn read_pmcntenset(&self) -> u32;
    /// Enables the counters whose bits are set.
    fn write_pmcntenset(&mut self, bits: u32);
    /// Disables the counters whose bits are set (`PMCNTENCLR_EL0`).
    fn write_pmcntenclr(&mut self, bits: u32);
    /// `PMOVSSET_EL0`: the overflow flags.
    fn read_pmovsset(&self) -> u32;
    /// Sets overflow flags.
    fn write_pmovsset(&mut self, bits: u32);
    /// Clears overflow flags (`PMOVSCLR_EL0`).
    fn write_pmovsclr(&mut self, bits: u32);
    /// `PMINTENSET_EL1`: the overflow interrupt enables.
    fn read_pmintenset(&self) -> u32;
    /// Enables the overflow interrupt of the counters whose bits are set.
    fn write_pmintenset(&mut self, bits: u32);
    /// Disables the overflow interrupt of the counters whose bits are set (`PMINTENCLR_EL1`).
    fn write_pmintenclr(&mut self, bits: u32);
    /// `[PMCEID0_EL0, PMCEID1_EL0]`: the common events the PMU implements.
    fn read_pmceid(&self) -> [u64; 2];
    /// `ID_AA64DFR0_EL1` (its `PMUVer`, bits \[11:8\], gives the counters' width).
    fn read_id_aa64dfr0(&self) -> u64;
    /// `MDCR_EL2` (its `HPMN`, bits \[4:0\], bounds the counters a guest may have).
    fn read_mdcr_el2(&self) -> u64;
}

/// Shares one physical PMU between several backends (one per vCPU) where the registers are a
/// value, not the CPU's: a simulated PMU in a test. [`SysRegs`](crate::SysRegs) needs no such
/// thing: it is a handle to the CPU's own registers, one per backend.
impl<T: PmuRegs> PmuRegs for &RefCell<T> {
    fn read_pmcr(&self) -> u64 {
        self.borrow().read_pmcr()
    }
    fn write_pmcr(&mut self, v: u64) {
        self.borrow_mut().write_pmcr(v);
    }
    fn read_pmevcntr(&self, n: u8) -> u64 {
        self.borrow().read_pmevcntr(n)
    }
    fn write_pmevcntr(&mut self, n: u8, v: u64) {
        self.borrow_mut().write_pmevcntr(n, v);
    }
    fn read_pmevtyper(&self, n: u8) -> u64 {
        self.borrow().read_pmevtyper(n)
    }
    fn write_pmevtyper(&mut self, n: u8, v: u64) {
        self.borrow_mut().write_pmevtyper(n, v);
    }
    fn read_pmccntr(&self) -> u64 {
        self.borrow().read_pmccntr()
    }
    fn write_pmccntr(&mut self, v: u64) {
        self.borrow_mut().write_pmccntr(v);
    }
    fn read_pmccfiltr(&self) -> u64 {
        self.borrow().read_pmccfiltr()
    }
    fn write_pmccfiltr(&mut self, v: u64) {
        self.borrow_mut().write_pmccfiltr(v);
    }
    fn read_pmcntenset(&self) -> u32 {
        self.borrow().read_pmcntenset()
    }
    fn write_pmcntenset(&mut self, bits: u32) {
        self.borrow_mut().write_pmcntenset(bits);
    }
    fn write_pmcntenclr(&mut self, bits: u32) {
        self.borrow_mut().write_pmcntenclr(bits);
    }
    fn read_pmovsset(&self) -> u32 {
        self.borrow().read_pmovsset()
    }
    fn write_pmovsset(&mut self, bits: u32) {
        self.borrow_mut().write_pmovsset(bits);
    }
    fn write_pmovsclr(&mut self, bits: u32) {
        self.borrow_mut().write_pmovsclr(bits);
    }
    fn read_pmintenset(&self) -> u32 {
        self.borrow().read_pmintenset()
    }
    fn write_pmintenset(&mut self, bits: u32) {
        self.borrow_mut().write_pmintenset(bits);
    }
    fn write_pmintenclr(&mut self, bits: u32) {
        self.borrow_mut().write_pmintenclr(bits);
    }
    fn read_pmceid(&self) -> [u64; 2] {
        self.borrow().read_pmceid()
    }
    fn read_id_aa64dfr0(&self) -> u64 {
        self.borrow().read_id_aa64dfr0()
    }
    fn read_mdcr_el2(&self) -> u64 {
        self.borrow().read_mdcr_el2()
    }
}

/// `MDCR_EL2` bits a hypervisor sets for a guest whose PMU is emulated by vpmu on this backend.
///
/// The backend never writes `MDCR_EL2`: it is the hypervisor's, per physical CPU, set once
/// before the first guest entry. See the [crate docs](crate#wiring-it-into-a-hypervisor).
pub mod mdcr_el2 {
    /// `HPMN`, bits \[4:0\]: event counters `0..HPMN` belong to the guest's partition (enabled by
    /// `PMCR_EL0.E`); `HPMN..N` stay the hypervisor's (enabled by `HPME`). The backend backs
    /// guest counter `i` with physical counter `i`, so it offers `HPMN` counters.
    pub const HPMN_MASK: u64 = 0x1f;
    /// `TPMCR`, bit 5: trap the guest's `PMCR_EL0` accesses to EL2.
    pub const TPMCR: u64 = 1 << 5;
    /// `TPM`, bit 6: trap every other guest PMU register access to EL2. With vpmu emulating the
    /// PMU, the guest must never reach the physical registers: set both `TPM` and `TPMCR`.
    pub const TPM: u64 = 1 << 6;
    /// `HPME`, bit 7: enables the counters `HPMN..N` (the hypervisor's own).
    pub const HPME: u64 = 1 << 7;
    /// `HPMD`, bit 17 (FEAT_PMUv3p1): event counters `0..HPMN` do not count at EL2, whatever
    /// their `NSH` bit. The backend already clears `NSH`; set `HPMD` anyway, so a guest counter
    /// never counts the hypervisor's trap handling.
    pub const HPMD: u64 = 1 << 17;
    /// `HCCD`, bit 23 (FEAT_PMUv3p5): the cycle counter does not count at EL2.
    pub const HCCD: u64 = 1 << 23;

    /// The `MDCR_EL2` value for a guest with the physical counters `0..hpmn`: `TPM | TPMCR |
    /// HPMD | HCCD | HPMN` (`HPMD`/`HCCD` are RES0 where not implemented, and harmless).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::mdcr_el2;
    /// assert_eq!(mdcr_el2::for_guest(6), 0x82_0066);
    /// ```
    #[must_use]
    pub const fn for_guest(hpmn: u8) -> u64 {
        TPM | TPMCR | HPMD | HCCD | (hpmn as u64 & HPMN_MASK)
    }
}
