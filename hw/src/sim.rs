//! [`SimPmu`]: a simulated physical PMUv3, as EL2 sees it, for testing the backend on any host.

use vpmu::field::{EvtypeFilter, Pmcr};

use crate::regs::{mdcr_el2, PmuRegs};

/// The exception level at which simulated events happen (see [`SimPmu::count`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimEl {
    /// The guest's applications.
    El0,
    /// The guest's kernel.
    El1,
    /// The hypervisor (never counted for a guest by a correct backend).
    El2,
}

const CYCLE: usize = 31;
const EVENT_CHAIN: u16 = 0x1e;
const EVENT_CPU_CYCLES: u16 = 0x11;
/// `MDCR_EL2.HLP`, bit 26: counters `HPMN..N` overflow at 64 bits.
const MDCR_HLP: u64 = 1 << 26;
/// The `PMCR_EL0` bits the simulated PMU stores (`LP` only from PMUv3p5).
const PMCR_STORED: u64 = 0xff & !0b110;
/// `IMP` = 0x41 (Arm), `IDCODE` = 0x01: what QEMU reports.
const PMCR_ID: u64 = 0x4101_0000;

/// A faithful model of the physical PMUv3 registers as EL2 reads and writes them, and of how
/// they count: `PMCR_EL0.N` event counters, 32 bits wide before PMUv3p5 (`ID_AA64DFR0_EL1.PMUVer`
/// below 6) and 64 bits from it with the overflow at bit 31 unless `PMCR_EL0.LP` (or
/// `MDCR_EL2.HLP` above `HPMN`); a 64-bit cycle counter overflowing at bit 31 unless `LC`, with
/// `PMCR.D`'s divider; overflow flags, counter and interrupt enables, the `HPMN` partition
/// (`PMCR.E` enables `0..HPMN`, `MDCR_EL2.HPME` the rest), the `P`/`U`/`NSK`/`NSU`/`NSH`
/// filters with `MDCR_EL2.HPMD`/`HCCD`, `CHAIN` between even/odd pairs, and `PMCR.P`/`C`.
///
/// Events are reported with [`SimPmu::count`]. What it leaves out: `PMSWINC`, `PMSELR`, the
/// AArch32 views, `PMCR.X`/`DP`, the Secure state and EL3 (no `M` bit effect).
///
/// # Examples
///
/// ```
/// use vpmu_hw::{sim::{SimEl, SimPmu}, PmuRegs};
///
/// let mut pmu = SimPmu::cortex_a57(); // 6 counters of 32 bits
/// pmu.write_pmevtyper(0, 0x08);        // INST_RETIRED at EL0 and EL1
/// pmu.write_pmevcntr(0, 0xffff_fff0);
/// pmu.write_pmcntenset(1);
/// pmu.write_pmintenset(1);
/// pmu.write_pmcr(1);                   // PMCR.E
/// pmu.count(0x08, SimEl::El1, 0x20);
/// assert_eq!(pmu.read_pmevcntr(0), 0x10);
/// assert_eq!(pmu.read_pmovsset(), 1);
/// assert!(pmu.irq_level());
/// pmu.count(0x08, SimEl::El2, 5); // NSH clear: EL2 is not counted
/// assert_eq!(pmu.read_pmevcntr(0), 0x10);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPmu {
    n: u8,
    pmuver: u8,
    pmcr: u64,
    cntr: [u64; 32],
    typer: [u64; 32],
    prescale: u8,
    cnten: u32,
    ovs: u32,
    inten: u32,
    ceid: [u64; 2],
    dfr0: u64,
    mdcr: u64,
}

impl SimPmu {
    /// A PMU with `n` event counters (at most 31), `ID_AA64DFR0_EL1.PMUVer` = `pmuver` (1:
    /// PMUv3, 4: p1, 5: p4, 6: p5...) and `[PMCEID0, PMCEID1]` = `ceid`, in its reset state with
    /// `MDCR_EL2.HPMN` = `n`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{sim::SimPmu, PmuRegs};
    /// let pmu = SimPmu::new(31, 8, [0x3fff, 0]); // PMUv3p8, 31 counters
    /// assert_eq!((pmu.read_pmcr() >> 11 & 0x1f, pmu.read_id_aa64dfr0() >> 8 & 0xf), (31, 8));
    /// ```
    #[must_use]
    pub const fn new(n: u8, pmuver: u8, ceid: [u64; 2]) -> Self {
        let n = if n > 31 { 31 } else { n };
        Self {
            n,
            pmuver,
            pmcr: 0,
            cntr: [0; 32],
            typer: [0; 32],
            prescale: 0,
            cnten: 0,
            ovs: 0,
            inten: 0,
            ceid,
            dfr0: (pmuver as u64 & 0xf) << 8,
            mdcr: n as u64,
        }
    }

    /// QEMU's `-cpu cortex-a57` under `-icount`: PMUv3, 6 counters of 32 bits, `SW_INCR`,
    /// `INST_RETIRED`, `CPU_CYCLES`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{sim::SimPmu, PmuRegs};
    /// let mut pmu = SimPmu::cortex_a57();
    /// pmu.write_pmevcntr(0, u64::MAX);
    /// assert_eq!(pmu.read_pmevcntr(0), 0xffff_ffff);
    /// ```
    #[must_use]
    pub const fn cortex_a57() -> Self {
        Self::new(6, 1, [0x2_0101, 0])
    }

    /// QEMU's `-cpu max` under `-icount`: PMUv3p5, 6 counters of 64 bits.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{sim::SimPmu, PmuRegs};
    /// let mut pmu = SimPmu::max();
    /// pmu.write_pmevcntr(0, u64::MAX);
    /// assert_eq!(pmu.read_pmevcntr(0), u64::MAX);
    /// ```
    #[must_use]
    pub const fn max() -> Self {
        Self::new(6, 6, [0x2_0101, 0])
    }

    /// Sets `MDCR_EL2` (the partition `HPMN`, `HPME`, `HPMD`, `HCCD`, `HLP`), as the hypervisor
    /// would.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{mdcr_el2, sim::{SimEl, SimPmu}, PmuRegs};
    /// let mut pmu = SimPmu::max();
    /// pmu.write_mdcr_el2(mdcr_el2::for_guest(6));
    /// pmu.write_pmevtyper(0, 0x08 | 1 << 27); // NSH: count EL2 too...
    /// pmu.write_pmcntenset(1);
    /// pmu.write_pmcr(1);
    /// pmu.count(0x08, SimEl::El2, 10);
    /// assert_eq!(pmu.read_pmevcntr(0), 0); // ...but HPMD forbids it
    /// ```
    pub fn write_mdcr_el2(&mut self, v: u64) {
        self.mdcr = v;
    }

    /// Reports `k` occurrences of `event` at `el`: every counter that counts it there adds `k`
    /// (the cycle counter counts `CPU_CYCLES`, 0x11), sets its overflow flag on a carry out of
    /// its overflow bit, and drives a `CHAIN` odd partner.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{sim::{SimEl, SimPmu}, PmuRegs};
    /// let mut pmu = SimPmu::cortex_a57();
    /// pmu.write_pmevtyper(0, 0x11);
    /// pmu.write_pmevtyper(1, 0x1e); // CHAIN
    /// pmu.write_pmevcntr(0, 0xffff_ffff);
    /// pmu.write_pmcntenset(0b11 | 1 << 31);
    /// pmu.write_pmcr(1);
    /// pmu.count(0x11, SimEl::El0, 2);
    /// assert_eq!([pmu.read_pmevcntr(0), pmu.read_pmevcntr(1), pmu.read_pmccntr()], [1, 1, 2]);
    /// ```
    pub fn count(&mut self, event: u16, el: SimEl, k: u64) {
        if event == EVENT_CHAIN {
            return;
        }
        let mask = if self.pmuver == 1 { 0x3ff } else { 0xffff };
        for i in 0..usize::from(self.n) {
            let typer = self.typer.get(i).copied().unwrap_or(0);
            if (typer as u16) & mask == event && (typer as u16) & mask != EVENT_CHAIN && self.counts(i, el) {
                self.add(i, el, k);
            }
        }
        if event == EVENT_CPU_CYCLES && self.counts(CYCLE, el) {
            let pmcr = Pmcr::from_bits_truncate(self.pmcr);
            let ticks = if pmcr.contains(Pmcr::D) && !pmcr.contains(Pmcr::LC) {
                let total = u128::from(self.prescale).wrapping_add(u128::from(k));
                self.prescale = (total % 64) as u8;
                u64::try_from(total / 64).unwrap_or(u64::MAX)
            } else {
                k
            };
            self.add(CYCLE, el, ticks);
        }
    }

    /// The PMU interrupt request: an enabled counter with both its overflow flag and its
    /// interrupt enable set.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{sim::SimPmu, PmuRegs};
    /// let mut pmu = SimPmu::max();
    /// pmu.write_pmcntenset(1);
    /// pmu.write_pmcr(1);
    /// pmu.write_pmovsset(1);
    /// assert!(!pmu.irq_level());
    /// pmu.write_pmintenset(1);
    /// assert!(pmu.irq_level());
    /// ```
    #[must_use]
    pub fn irq_level(&self) -> bool {
        (0..32).any(|i| self.enabled(i) && self.ovs & self.inten & bit(i) != 0)
    }

    fn hpmn(&self) -> usize {
        usize::from((self.mdcr & mdcr_el2::HPMN_MASK) as u8)
    }

    /// Counter `i` exists and is enabled (its `PMCNTENSET` bit and `PMCR.E` or `HPME`).
    fn enabled(&self, i: usize) -> bool {
        let global = if i == CYCLE || i < self.hpmn() { self.pmcr & Pmcr::E.bits() != 0 } else { self.mdcr & mdcr_el2::HPME != 0 };
        (i == CYCLE || i < usize::from(self.n)) && global && self.cnten & bit(i) != 0
    }

    /// Counter `i` is enabled and its filter counts at `el`.
    fn counts(&self, i: usize, el: SimEl) -> bool {
        let f = EvtypeFilter::from_bits_truncate(self.typer.get(i).copied().unwrap_or(0));
        self.enabled(i)
            && match el {
                SimEl::El1 => f.contains(EvtypeFilter::P) == f.contains(EvtypeFilter::NSK),
                SimEl::El0 => f.contains(EvtypeFilter::U) == f.contains(EvtypeFilter::NSU),
                SimEl::El2 => {
                    let prohibited =
                        if i == CYCLE { self.mdcr & mdcr_el2::HCCD != 0 } else { i < self.hpmn() && self.mdcr & mdcr_el2::HPMD != 0 };
                    f.contains(EvtypeFilter::NSH) && !prohibited
                }
            }
    }

    /// Whether counter `i` overflows at bit 63 (else at bit 31).
    fn long(&self, i: usize) -> bool {
        if i == CYCLE {
            self.pmcr & Pmcr::LC.bits() != 0
        } else if self.pmuver < 6 {
            false
        } else if i < self.hpmn() {
            self.pmcr & Pmcr::LP.bits() != 0
        } else {
            self.mdcr & MDCR_HLP != 0
        }
    }

    /// Bits of counter `i` that exist.
    fn width_mask(&self, i: usize) -> u64 {
        if i == CYCLE || self.pmuver >= 6 {
            u64::MAX
        } else {
            0xffff_ffff
        }
    }

    fn add(&mut self, i: usize, el: SimEl, k: u64) {
        let (long, mask) = (self.long(i), self.width_mask(i));
        let Some(c) = self.cntr.get_mut(i) else { return };
        let low = if long { u128::from(*c) } else { u128::from(*c & 0xffff_ffff) };
        let carries = low.wrapping_add(u128::from(k)) >> if long { 64 } else { 32 };
        *c = c.wrapping_add(k) & mask;
        if carries == 0 {
            return;
        }
        self.ovs |= bit(i);
        let odd = i.wrapping_add(1);
        let chain = i % 2 == 0
            && odd < usize::from(self.n)
            && !long
            && (self.typer.get(odd).copied().unwrap_or(0) as u16) & 0x3ff == EVENT_CHAIN
            && self.counts(odd, el);
        if chain {
            self.add(odd, el, u64::try_from(carries).unwrap_or(u64::MAX));
        }
    }

    fn event_mask(&self) -> u64 {
        let ev = if self.pmuver == 1 { 0x3ff } else { 0xffff };
        ev | EvtypeFilter::all().bits()
    }

    fn valid(&self) -> u32 {
        let events = 1u32.checked_shl(u32::from(self.n)).map_or(u32::MAX, |b| b.wrapping_sub(1));
        events | 1 << CYCLE
    }
}

fn bit(i: usize) -> u32 {
    u32::try_from(i).ok().and_then(|s| 1u32.checked_shl(s)).unwrap_or(0)
}

impl PmuRegs for SimPmu {
    fn read_pmcr(&self) -> u64 {
        self.pmcr | u64::from(self.n) << Pmcr::N_SHIFT | PMCR_ID
    }
    fn write_pmcr(&mut self, v: u64) {
        let mut stored = PMCR_STORED;
        if self.pmuver < 6 {
            stored &= !Pmcr::LP.bits();
        }
        self.pmcr = v & stored;
        if v & Pmcr::P.bits() != 0 {
            // At EL2, P resets every event counter, the hypervisor's too.
            for c in self.cntr.iter_mut().take(CYCLE) {
                *c = 0;
            }
        }
        if v & Pmcr::C.bits() != 0 {
            if let Some(c) = self.cntr.get_mut(CYCLE) {
                *c = 0;
            }
            self.prescale = 0;
        }
    }
    fn read_pmevcntr(&self, n: u8) -> u64 {
        if n < self.n {
            self.cntr.get(usize::from(n)).copied().unwrap_or(0)
        } else {
            0
        }
    }
    fn write_pmevcntr(&mut self, n: u8, v: u64) {
        let mask = self.width_mask(usize::from(n));
        if n < self.n {
            if let Some(c) = self.cntr.get_mut(usize::from(n)) {
                *c = v & mask;
            }
        }
    }
    fn read_pmevtyper(&self, n: u8) -> u64 {
        if n < self.n {
            self.typer.get(usize::from(n)).copied().unwrap_or(0)
        } else {
            0
        }
    }
    fn write_pmevtyper(&mut self, n: u8, v: u64) {
        let mask = self.event_mask();
        if n < self.n {
            if let Some(t) = self.typer.get_mut(usize::from(n)) {
                *t = v & mask;
            }
        }
    }
    fn read_pmccntr(&self) -> u64 {
        self.cntr.get(CYCLE).copied().unwrap_or(0)
    }
    fn write_pmccntr(&mut self, v: u64) {
        if let Some(c) = self.cntr.get_mut(CYCLE) {
            *c = v;
        }
    }
    fn read_pmccfiltr(&self) -> u64 {
        self.typer.get(CYCLE).copied().unwrap_or(0)
    }
    fn write_pmccfiltr(&mut self, v: u64) {
        if let Some(t) = self.typer.get_mut(CYCLE) {
            *t = v & EvtypeFilter::all().bits();
        }
    }
    fn read_pmcntenset(&self) -> u32 {
        self.cnten
    }
    fn write_pmcntenset(&mut self, bits: u32) {
        self.cnten |= bits & self.valid();
    }
    fn write_pmcntenclr(&mut self, bits: u32) {
        self.cnten &= !bits;
    }
    fn read_pmovsset(&self) -> u32 {
        self.ovs
    }
    fn write_pmovsset(&mut self, bits: u32) {
        self.ovs |= bits & self.valid();
    }
    fn write_pmovsclr(&mut self, bits: u32) {
        self.ovs &= !bits;
    }
    fn read_pmintenset(&self) -> u32 {
        self.inten
    }
    fn write_pmintenset(&mut self, bits: u32) {
        self.inten |= bits & self.valid();
    }
    fn write_pmintenclr(&mut self, bits: u32) {
        self.inten &= !bits;
    }
    fn read_pmceid(&self) -> [u64; 2] {
        self.ceid
    }
    fn read_id_aa64dfr0(&self) -> u64 {
        self.dfr0
    }
    fn read_mdcr_el2(&self) -> u64 {
        self.mdcr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3p5_counters_are_64_bits_and_overflow_at_32_unless_lp() {
        let mut p = SimPmu::max();
        p.write_pmevtyper(1, 0x11);
        p.write_pmevcntr(1, 0xffff_ffff);
        p.write_pmcntenset(0b10);
        p.write_pmcr(1);
        p.count(0x11, SimEl::El0, 1);
        assert_eq!((p.read_pmevcntr(1), p.read_pmovsset()), (1 << 32, 0b10));
        p.write_pmovsclr(0b10);
        p.write_pmcr(1 | Pmcr::LP.bits());
        p.write_pmevcntr(1, 0xffff_ffff);
        p.count(0x11, SimEl::El0, 1);
        assert_eq!((p.read_pmevcntr(1), p.read_pmovsset()), (1 << 32, 0));
        p.write_pmevcntr(1, u64::MAX);
        p.count(0x11, SimEl::El0, 2);
        assert_eq!((p.read_pmevcntr(1), p.read_pmovsset()), (1, 0b10));
    }

    #[test]
    fn v3_counters_are_32_bits_and_lp_is_res0() {
        let mut p = SimPmu::cortex_a57();
        p.write_pmevcntr(0, u64::MAX);
        assert_eq!(p.read_pmevcntr(0), 0xffff_ffff);
        p.write_pmcr(1 | Pmcr::LP.bits());
        assert_eq!(p.read_pmcr() & 0xff, 1);
        assert_eq!(p.read_pmcr() >> 11 & 0x1f, 6);
    }

    #[test]
    fn filters_partition_and_hpmd() {
        let mut p = SimPmu::cortex_a57();
        p.write_mdcr_el2(4); // HPMN = 4
        let nsh = EvtypeFilter::NSH.bits();
        p.write_pmevtyper(0, 0x08 | EvtypeFilter::P.bits()); // EL0 only
        p.write_pmevtyper(1, 0x08 | EvtypeFilter::U.bits()); // EL1 only
        p.write_pmevtyper(2, 0x08 | nsh); // EL0, EL1, EL2
        p.write_pmevtyper(4, 0x08); // the hypervisor's: HPME
        p.write_pmcntenset(0b1_0111);
        p.write_pmcr(1);
        p.count(0x08, SimEl::El0, 1);
        p.count(0x08, SimEl::El1, 10);
        p.count(0x08, SimEl::El2, 100);
        let got: [u64; 5] = core::array::from_fn(|i| p.read_pmevcntr(i as u8));
        assert_eq!(got, [1, 10, 111, 0, 0]);
        p.write_mdcr_el2(4 | mdcr_el2::HPMD | mdcr_el2::HPME);
        p.count(0x08, SimEl::El2, 100);
        p.count(0x08, SimEl::El1, 1);
        let got: [u64; 5] = core::array::from_fn(|i| p.read_pmevcntr(i as u8));
        assert_eq!(got, [1, 11, 112, 0, 1]);
    }

    #[test]
    fn chain_and_the_cycle_divider() {
        let mut p = SimPmu::cortex_a57();
        p.write_pmevtyper(2, 0x11);
        p.write_pmevtyper(3, 0x1e);
        p.write_pmevcntr(2, 0xffff_fffe);
        p.write_pmcntenset(0b1100 | 1 << 31);
        p.write_pmcr(1 | Pmcr::D.bits());
        p.count(0x11, SimEl::El1, 130);
        assert_eq!((p.read_pmevcntr(2), p.read_pmevcntr(3), p.read_pmovsset()), (128, 1, 0b100));
        assert_eq!(p.read_pmccntr(), 2);
        p.write_pmcr(1 | Pmcr::C.bits() | Pmcr::P.bits());
        assert_eq!((p.read_pmccntr(), p.read_pmevcntr(2)), (0, 0));
    }

    #[test]
    fn the_interrupt_needs_enable_flag_and_inten() {
        let mut p = SimPmu::max();
        p.write_pmcntenset(1 << 31);
        p.write_pmccntr(0xffff_ffff);
        p.write_pmcr(1);
        p.count(0x11, SimEl::El1, 1);
        assert!(!p.irq_level());
        p.write_pmintenset(1 << 31);
        assert!(p.irq_level());
        p.write_pmcr(0);
        assert!(!p.irq_level());
    }
}
