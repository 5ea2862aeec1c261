//! [`HwBackend`]: guest counters on the physical PMU.

use vpmu::backend::{BackendError, CountRequest, CounterBackend, CounterId, ErrorKind};
use vpmu::config::PmuVersion;
use vpmu::field::{EvtypeFilter, Pmcr};

use crate::regs::{mdcr_el2, PmuRegs};
use vpmu::backend::PendingOverflow;

const CYCLE: usize = 31;
const LOW32: u64 = 0xffff_ffff;

/// Why the physical PMU cannot back a request.
///
/// # Examples
///
/// ```
/// use vpmu::backend::{BackendError, CounterBackend, CounterId, CountRequest, ErrorKind};
/// use vpmu::reg::EventCounter;
/// use vpmu_hw::{mdcr_el2, sim::SimPmu, HwBackend, HwError};
/// let mut cpu = SimPmu::max();
/// cpu.write_mdcr_el2(mdcr_el2::for_guest(2));
/// let mut b = HwBackend::new(cpu);
/// let c2 = CounterId::Event(EventCounter::new(2).unwrap());
/// let e = b.program(c2, &CountRequest::new(0x08, true, true, 1)).unwrap_err();
/// assert_eq!((e, e.kind()), (HwError::NoCounter, ErrorKind::Exhausted));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HwError {
    /// The guest counter has no physical counter: its number is `HPMN` or more.
    NoCounter,
}

impl core::fmt::Display for HwError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HwError::NoCounter => f.write_str("no physical counter backs this guest counter (at or above MDCR_EL2.HPMN)"),
        }
    }
}

impl core::error::Error for HwError {}

impl BackendError for HwError {
    fn kind(&self) -> ErrorKind {
        match self {
            HwError::NoCounter => ErrorKind::Exhausted,
        }
    }
}

/// One vCPU's guest counters on the physical PMUv3, from EL2.
///
/// # Mapping
///
/// Guest event counter `i` is physical counter `i` (`PMEVCNTR<i>_EL0`, `PMEVTYPER<i>_EL0`),
/// inside the guest's partition `0..MDCR_EL2.HPMN`; the guest cycle counter is `PMCCNTR_EL0`
/// with `PMCCFILTR_EL0`. [`max_event_counters`](CounterBackend::max_event_counters) is
/// `min(PMCR_EL0.N, MDCR_EL2.HPMN)` as read when the backend is made. Counters the `Pmu`
/// counts itself (`SW_INCR`, an odd counter typed `CHAIN`) leave their physical counter idle.
///
/// # Counting
///
/// - `program`: `PMEVTYPER` = the event with `P` = !EL1, `U` = !EL0, `NSH` = 0 (EL2 never
///   counts); the counter preset to `2^w - period`, `w` its width: 64 for the cycle counter
///   (`PMCR.LC` = 1) and for event counters on PMUv3p5 (`PMCR.LP` = 1), else 32. A period
///   beyond 2^32 on a 32-bit counter overflows early (after 2^32 events): the `Pmu` folds, sees
///   no architectural overflow and sets the period again.
/// - `read`: the counter's value minus its value at the last read, modulo 2^w.
/// - overflow: the physical overflow flag (`PMOVSSET_EL0`), taken and cleared by
///   [`take_overflows`](CounterBackend::take_overflows), plus whatever an interrupt handler
///   recorded in [`pending`](HwBackend::pending). The counters' physical interrupt enables are
///   set while they count, so the physical PMU interrupt fires at EL2 on every overflow.
///
/// # vCPU switching
///
/// A new backend is *put*: it touches no counter until [`load`](CounterBackend::load). `put`
/// disables its counters and their interrupts, saves their values and overflow flags into an
/// image; `load` writes the types and values back, sets `PMCR_EL0.E`, `LC` (and `LP` on
/// PMUv3p5), re-raises saved overflows as pending, and re-enables them. While put, every call
/// works on the image. The physical counters of a put vCPU are left as they were (their values
/// are the image's): the next vCPU's `load` reprograms the counters it uses.
///
/// # Examples
///
/// ```
/// use core::cell::RefCell;
/// use vpmu_hw::{sim::{SimEl, SimPmu}, HwBackend};
/// use vpmu::backend::{CounterBackend, CounterId, CountRequest};
///
/// let cpu = RefCell::new(SimPmu::cortex_a57());
/// let mut b = HwBackend::new(&cpu);
/// assert_eq!(b.max_event_counters(), 6);
/// b.load();
/// let insns = CountRequest::new(0x08, true, true, 100);
/// b.program(CounterId::Cycle, &CountRequest::new(0x11, insns.el0, insns.el1, insns.period))?;
/// cpu.borrow_mut().count(0x11, SimEl::El1, 60);
/// cpu.borrow_mut().count(0x11, SimEl::El2, 1_000); // the hypervisor: never counted
/// assert_eq!(b.read(CounterId::Cycle), 60);
/// cpu.borrow_mut().count(0x11, SimEl::El0, 40);
/// assert_eq!(b.take_overflows(), 1 << 31); // the 100th cycle
/// assert_eq!(b.read(CounterId::Cycle), 40);
/// # Ok::<(), vpmu_hw::HwError>(())
/// ```
#[derive(Debug)]
pub struct HwBackend<R: PmuRegs> {
    regs: R,
    loaded: bool,
    /// Event counters backed: `min(PMCR.N, HPMN)`.
    counters: u8,
    /// `ID_AA64DFR0_EL1.PMUVer`.
    pmuver: u8,
    /// PMUv3p5: event counters are 64 bits and the backend sets `PMCR.LP`.
    long_events: bool,
    /// `PMCEID0`/`PMCEID1` of the physical PMU.
    ceid: [u64; 2],
    /// Counters programmed (counting whenever the vCPU is loaded).
    live: u32,
    /// Per counter: its `PMEVTYPER`/`PMCCFILTR` value (index 31: the cycle counter).
    typer: [u32; 32],
    /// Per counter: its value at the last `read`/`program`/`set_period`.
    last: [u64; 32],
    /// While put: per counter, its saved value.
    image: [u64; 32],
    /// While put: overflow flags saved at `put` and not yet taken.
    image_ovs: u32,
    pending: PendingOverflow,
}

impl<R: PmuRegs> HwBackend<R> {
    /// A backend over `regs`, not loaded. Reads `PMCR_EL0.N`, `MDCR_EL2.HPMN`, `PMCEID0/1` and
    /// `ID_AA64DFR0_EL1.PMUVer`; writes nothing. Make it after the hypervisor has set
    /// `MDCR_EL2` on this CPU.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::CounterBackend;
    /// use vpmu_hw::{mdcr_el2, sim::SimPmu, HwBackend};
    /// let mut cpu = SimPmu::max();
    /// cpu.write_mdcr_el2(mdcr_el2::for_guest(4)); // keep counters 4 and 5 for the hypervisor
    /// let b = HwBackend::new(cpu);
    /// assert_eq!(b.max_event_counters(), 4);
    /// assert!(b.supports(0x08) && !b.supports(0x13)); // from PMCEID0
    /// assert!(!b.is_loaded());
    /// ```
    pub fn new(regs: R) -> Self {
        let n = ((regs.read_pmcr() >> Pmcr::N_SHIFT) & 0x1f) as u8;
        let hpmn = (regs.read_mdcr_el2() & mdcr_el2::HPMN_MASK) as u8;
        let pmuver = ((regs.read_id_aa64dfr0() >> 8) & 0xf) as u8;
        Self {
            counters: n.min(hpmn),
            pmuver,
            // 6 = PMUv3p5 and later; 0xf is an IMPLEMENTATION DEFINED PMU, not PMUv3.
            long_events: (6..0xf).contains(&pmuver),
            ceid: regs.read_pmceid(),
            regs,
            loaded: false,
            live: 0,
            typer: [0; 32],
            last: [0; 32],
            image: [0; 32],
            image_ovs: 0,
            pending: PendingOverflow::new(),
        }
    }

    /// The register access (the simulated PMU in a test).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{sim::SimPmu, HwBackend, PmuRegs};
    /// let b = HwBackend::new(SimPmu::cortex_a57());
    /// assert_eq!(b.regs().read_pmcr() >> 11 & 0x1f, 6);
    /// ```
    #[must_use]
    pub const fn regs(&self) -> &R {
        &self.regs
    }

    /// Whether the vCPU's counters are on the physical PMU now.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::CounterBackend;
    /// use vpmu_hw::{sim::SimPmu, HwBackend};
    /// let mut b = HwBackend::new(SimPmu::cortex_a57());
    /// b.load();
    /// assert!(b.is_loaded());
    /// ```
    #[must_use]
    pub const fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// The PMU version to give guests: the physical one (`ID_AA64DFR0_EL1.PMUVer`), capped at
    /// what vpmu emulates; `None` if the physical PMU is not a PMUv3.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::config::{PmuConfig, PmuVersion};
    /// use vpmu::CounterBackend;
    /// use vpmu_hw::{sim::SimPmu, HwBackend};
    /// let b = HwBackend::new(SimPmu::cortex_a57());
    /// assert_eq!(b.pmu_version(), Some(PmuVersion::V3));
    /// let _cfg = PmuConfig::builder().counters(b.max_event_counters()).version(PmuVersion::V3).build()?;
    /// assert_eq!(HwBackend::new(SimPmu::max()).pmu_version(), Some(PmuVersion::V3p5));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    #[must_use]
    pub const fn pmu_version(&self) -> Option<PmuVersion> {
        match self.pmuver {
            1..=3 => Some(PmuVersion::V3),
            4 => Some(PmuVersion::V3p1),
            5 => Some(PmuVersion::V3p4),
            6..=0xe => Some(PmuVersion::V3p5),
            _ => None,
        }
    }

    /// Whether the event counters are 64 bits wide (PMUv3p5 and later).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu_hw::{sim::SimPmu, HwBackend};
    /// assert!(HwBackend::new(SimPmu::max()).long_event_counters());
    /// assert!(!HwBackend::new(SimPmu::cortex_a57()).long_event_counters());
    /// ```
    #[must_use]
    pub const fn long_event_counters(&self) -> bool {
        self.long_events
    }

    /// The pending-overflow record an interrupt handler may write through a shared reference
    /// (see [`HwBackend::ack_irq`]); [`take_overflows`](CounterBackend::take_overflows) drains it.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::CounterBackend;
    /// use vpmu_hw::{sim::SimPmu, HwBackend};
    /// let mut b = HwBackend::new(SimPmu::cortex_a57());
    /// b.pending().raise(1); // as an interrupt handler would, for counter 0
    /// assert_eq!(b.take_overflows(), 0); // counter 0 is not programmed: nothing to report
    /// ```
    #[must_use]
    pub const fn pending(&self) -> &PendingOverflow {
        &self.pending
    }

    /// The physical PMU interrupt's handler, for a hypervisor that defers the `Pmu`'s work:
    /// moves the physical overflow flags of this vCPU's counters into [`pending`](Self::pending)
    /// and clears them, which lowers the interrupt. Returns the bits moved. Most hypervisors
    /// call [`Pmu::handle_overflows`](vpmu::Pmu::handle_overflows) instead, which does this and the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// use core::cell::RefCell;
    /// use vpmu::backend::{CounterBackend, CounterId, CountRequest};
    /// use vpmu_hw::{sim::{SimEl, SimPmu}, HwBackend};
    /// let cpu = RefCell::new(SimPmu::cortex_a57());
    /// let mut b = HwBackend::new(&cpu);
    /// b.load();
    /// b.program(CounterId::Cycle, &CountRequest::new(0x11, true, true, 5))?;
    /// cpu.borrow_mut().count(0x11, SimEl::El1, 5);
    /// assert!(cpu.borrow().irq_level());
    /// assert_eq!(b.ack_irq(), 1 << 31); // in the interrupt handler
    /// assert!(!cpu.borrow().irq_level());
    /// assert_eq!(b.take_overflows(), 1 << 31); // later, through Pmu::handle_overflows
    /// # Ok::<(), vpmu_hw::HwError>(())
    /// ```
    pub fn ack_irq(&mut self) -> u32 {
        if !self.loaded {
            return 0;
        }
        let ovs = self.regs.read_pmovsset() & self.live;
        if ovs != 0 {
            self.regs.write_pmovsclr(ovs);
            self.pending.raise(ovs);
        }
        ovs
    }

    /// Bits of counter `i`'s value that exist.
    fn mask(&self, i: usize) -> u64 {
        if i == CYCLE || self.long_events {
            u64::MAX
        } else {
            LOW32
        }
    }

    /// The value that makes counter `i` overflow after `period` events (or after 2^32 if it is
    /// 32 bits wide and the period larger).
    fn preset(&self, i: usize, period: u64) -> u64 {
        if self.mask(i) == u64::MAX {
            period.wrapping_neg()
        } else if period >= 1 << 32 {
            0
        } else {
            (1u64 << 32).wrapping_sub(period)
        }
    }

    fn value(&self, i: usize) -> u64 {
        if !self.loaded {
            return self.image.get(i).copied().unwrap_or(0);
        }
        match u8::try_from(i) {
            Ok(31) => self.regs.read_pmccntr(),
            Ok(n) => self.regs.read_pmevcntr(n),
            Err(_) => 0,
        }
    }

    fn write_typer(&mut self, i: usize, t: u32) {
        match u8::try_from(i) {
            Ok(31) => self.regs.write_pmccfiltr(t.into()),
            Ok(n) => self.regs.write_pmevtyper(n, t.into()),
            Err(_) => {}
        }
    }

    fn write_value(&mut self, i: usize, v: u64) {
        match u8::try_from(i) {
            Ok(31) => self.regs.write_pmccntr(v),
            Ok(n) => self.regs.write_pmevcntr(n, v),
            Err(_) => {}
        }
    }

    fn check(&self, counter: CounterId) -> Result<(usize, u32), HwError> {
        let i = counter.index();
        if i != CYCLE && i >= usize::from(self.counters) {
            return Err(HwError::NoCounter);
        }
        Ok((i, 1 << i))
    }

    /// (Re)starts counter `i` from `preset`, with type `typer` if given.
    fn start(&mut self, i: usize, bit: u32, typer: Option<u32>, preset: u64) {
        if let Some(t) = typer {
            if let Some(x) = self.typer.get_mut(i) {
                *x = t;
            }
        }
        if let Some(l) = self.last.get_mut(i) {
            *l = preset;
        }
        self.live |= bit;
        if self.loaded {
            self.regs.write_pmcntenclr(bit);
            if let Some(t) = typer {
                self.write_typer(i, t);
            }
            self.write_value(i, preset);
            self.regs.write_pmovsclr(bit);
            self.regs.write_pmintenset(bit);
            self.regs.write_pmcntenset(bit);
        } else {
            if let Some(x) = self.image.get_mut(i) {
                *x = preset;
            }
            self.image_ovs &= !bit;
        }
    }
}

/// A put (or dropped) backend leaves nothing running: its counters and their interrupts are
/// disabled, so no overflow interrupt can arrive that no loaded vCPU owns.
impl<R: PmuRegs> Drop for HwBackend<R> {
    fn drop(&mut self) {
        if self.loaded {
            let live = self.live;
            self.regs.write_pmcntenclr(live);
            self.regs.write_pmintenclr(live);
            self.regs.write_pmovsclr(live);
        }
    }
}

/// Stops every counter of the guest partition (`0..MDCR_EL2.HPMN` and the cycle counter):
/// disables them and their overflow interrupts and clears their overflow flags. The
/// hypervisor's own counters (`HPMN..N`) are untouched.
///
/// Call it once per physical CPU at boot, after setting `MDCR_EL2` and before the first
/// vCPU is loaded (firmware or a previous kernel may have left counters running), and from
/// the physical PMU interrupt handler when no vCPU is loaded on the CPU (nothing should then
/// be pending; this makes sure the level-sensitive interrupt drops).
///
/// # Examples
///
/// ```
/// use vpmu_hw::{quiesce, sim::SimPmu, PmuRegs};
/// let mut cpu = SimPmu::max();
/// cpu.write_pmcntenset(0b11 | 1 << 31);
/// cpu.write_pmovsset(1);
/// quiesce(&mut cpu);
/// assert_eq!((cpu.read_pmcntenset(), cpu.read_pmovsset()), (0, 0));
/// ```
pub fn quiesce<R: PmuRegs>(regs: &mut R) {
    let n = ((regs.read_pmcr() >> Pmcr::N_SHIFT) & 0x1f) as u8;
    let hpmn = (regs.read_mdcr_el2() & mdcr_el2::HPMN_MASK) as u8;
    let guest = 1u32.checked_shl(u32::from(n.min(hpmn))).map_or(u32::MAX, |b| b.wrapping_sub(1)) | 1 << CYCLE;
    regs.write_pmcntenclr(guest);
    regs.write_pmintenclr(guest);
    regs.write_pmovsclr(guest);
}

/// `PMEVTYPER`/`PMCCFILTR` for a request: the event, `P`/`U` from the EL filter, `NSH` clear.
fn typer(counter: CounterId, req: &CountRequest) -> u32 {
    let mut t = 0u64;
    if !req.el1 {
        t |= EvtypeFilter::P.bits();
    }
    if !req.el0 {
        t |= EvtypeFilter::U.bits();
    }
    if let CounterId::Event(_) = counter {
        t |= u64::from(req.event);
    }
    t as u32
}

impl<R: PmuRegs> CounterBackend for HwBackend<R> {
    type Error = HwError;

    fn max_event_counters(&self) -> u8 {
        self.counters
    }

    /// The common events in the physical `PMCEID0_EL0`/`PMCEID1_EL0`; no other.
    fn supports(&self, event: u16) -> bool {
        let [c0, c1] = self.ceid;
        let (reg, bit) = match event {
            0x00..=0x1f => (c0, event),
            0x20..=0x3f => (c1, event & 0x1f),
            0x4000..=0x401f => (c0, 32 | (event & 0x1f)),
            0x4020..=0x403f => (c1, 32 | (event & 0x1f)),
            _ => return false,
        };
        reg >> bit & 1 != 0
    }

    fn program(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), HwError> {
        let (i, bit) = self.check(counter)?;
        let preset = self.preset(i, req.period);
        self.start(i, bit, Some(typer(counter, req)), preset);
        Ok(())
    }

    fn read(&mut self, counter: CounterId) -> u64 {
        let Ok((i, bit)) = self.check(counter) else { return 0 };
        if self.live & bit == 0 {
            return 0;
        }
        let now = self.value(i);
        let mask = self.mask(i);
        match self.last.get_mut(i) {
            Some(l) => {
                let d = now.wrapping_sub(*l) & mask;
                *l = now;
                d
            }
            None => 0,
        }
    }

    fn release(&mut self, counter: CounterId) {
        let Ok((_, bit)) = self.check(counter) else { return };
        if self.live & bit == 0 {
            return;
        }
        self.live &= !bit;
        self.image_ovs &= !bit;
        if self.loaded {
            self.regs.write_pmcntenclr(bit);
            self.regs.write_pmintenclr(bit);
            self.regs.write_pmovsclr(bit);
        }
    }

    /// Presets the counter for the new period; its type and filter are already in place.
    fn set_period(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), HwError> {
        let (i, bit) = self.check(counter)?;
        let preset = self.preset(i, req.period);
        let typer = if self.live & bit == 0 { Some(typer(counter, req)) } else { None };
        self.start(i, bit, typer, preset);
        Ok(())
    }

    /// The physical overflow flags of this vCPU's counters (taken and cleared, which lowers
    /// the physical interrupt), or the saved ones while put, plus [`HwBackend::pending`].
    fn take_overflows(&mut self) -> u32 {
        let mut bits = self.pending.take();
        if self.loaded {
            let ovs = self.regs.read_pmovsset() & self.live;
            if ovs != 0 {
                self.regs.write_pmovsclr(ovs);
            }
            bits |= ovs;
        } else {
            bits |= self.image_ovs;
            self.image_ovs = 0;
        }
        bits & self.live
    }

    /// Writes the saved types and values back, sets `PMCR_EL0.E`, `LC` (and `LP` on PMUv3p5),
    /// re-raises saved overflows as pending, and enables the counters and their interrupts.
    fn load(&mut self) {
        if self.loaded {
            return;
        }
        // Keep X and DP (the hypervisor's); no D divider; overflow at 64 bits where possible.
        let mut pmcr = self.regs.read_pmcr() & (Pmcr::X | Pmcr::DP).bits();
        pmcr |= (Pmcr::E | Pmcr::LC).bits();
        if self.long_events {
            pmcr |= Pmcr::LP.bits();
        }
        self.regs.write_pmcr(pmcr);
        let live = self.live;
        self.regs.write_pmcntenclr(live);
        let mut bits = live;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits.wrapping_sub(1);
            let (t, v) = (self.typer.get(i).copied().unwrap_or(0), self.image.get(i).copied().unwrap_or(0));
            self.write_typer(i, t);
            self.write_value(i, v);
        }
        self.regs.write_pmovsclr(live);
        self.pending.raise(self.image_ovs);
        self.image_ovs = 0;
        self.loaded = true;
        self.regs.write_pmintenset(live);
        self.regs.write_pmcntenset(live);
    }

    /// Disables the counters and their interrupts, saves their values and overflow flags
    /// (clearing the physical ones).
    fn put(&mut self) {
        if !self.loaded {
            return;
        }
        let live = self.live;
        self.regs.write_pmcntenclr(live);
        self.regs.write_pmintenclr(live);
        let mut bits = live;
        while bits != 0 {
            let i = bits.trailing_zeros() as usize;
            bits &= bits.wrapping_sub(1);
            let v = self.value(i);
            if let Some(x) = self.image.get_mut(i) {
                *x = v;
            }
        }
        let ovs = self.regs.read_pmovsset() & live;
        self.regs.write_pmovsclr(ovs);
        self.image_ovs |= ovs;
        self.loaded = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimEl, SimPmu};
    use core::cell::RefCell;

    fn req(event: u16, period: u64) -> CountRequest {
        CountRequest::new(event, true, true, period)
    }

    fn c(i: u8) -> CounterId {
        CounterId::from_bit(i).unwrap_or(CounterId::Cycle)
    }

    #[test]
    fn an_overflow_at_put_is_kept_in_the_image_and_reported_once() {
        let cpu = RefCell::new(SimPmu::cortex_a57());
        let mut b = HwBackend::new(&cpu);
        b.load();
        assert_eq!(b.program(c(2), &req(0x08, 10)), Ok(()));
        cpu.borrow_mut().count(0x08, SimEl::El1, 12);
        assert!(cpu.borrow().irq_level());
        b.put();
        assert!(!cpu.borrow().irq_level(), "put lowers the physical interrupt");
        assert_eq!(cpu.borrow().read_pmcntenset(), 0);
        assert_eq!(b.read(c(2)), 12);
        assert_eq!(b.take_overflows(), 0b100);
        assert_eq!(b.take_overflows(), 0);
        // Not taken while put: re-raised at load.
        b.load();
        assert_eq!(b.set_period(c(2), &req(0x08, 3)), Ok(()));
        cpu.borrow_mut().count(0x08, SimEl::El0, 3);
        b.put();
        b.load();
        assert_eq!(b.take_overflows(), 0b100);
        assert_eq!(b.read(c(2)), 3);
    }

    #[test]
    fn ack_irq_moves_the_flags_to_pending_and_lowers_the_line() {
        let cpu = RefCell::new(SimPmu::max());
        let mut b = HwBackend::new(&cpu);
        b.load();
        assert_eq!(b.program(CounterId::Cycle, &req(0x11, 1)), Ok(()));
        cpu.borrow_mut().count(0x11, SimEl::El1, 1);
        assert!(cpu.borrow().irq_level());
        assert_eq!(b.ack_irq(), 1 << 31);
        assert!(!cpu.borrow().irq_level());
        assert_eq!(b.pending().peek(), 1 << 31);
        assert_eq!(b.take_overflows(), 1 << 31);
        assert_eq!(b.pending().peek(), 0);
    }

    #[test]
    fn programming_writes_the_filter_without_nsh_and_the_preset() {
        let cpu = RefCell::new(SimPmu::cortex_a57());
        let mut b = HwBackend::new(&cpu);
        b.load();
        let r = CountRequest::new(0x08, false, true, 100);
        assert_eq!(b.program(c(1), &r), Ok(()));
        assert_eq!(cpu.borrow().read_pmevtyper(1), 0x08 | 1 << 30); // U: not EL0; P, NSH clear
        assert_eq!(cpu.borrow().read_pmevcntr(1), 0xffff_ff9c);
        let r = CountRequest::new(0x11, true, false, 1 << 40);
        assert_eq!(b.program(c(31), &r), Ok(()));
        assert_eq!(cpu.borrow().read_pmccfiltr(), 1 << 31);
        assert_eq!(cpu.borrow().read_pmccntr(), (1u64 << 40).wrapping_neg());
        // A period beyond 32 bits on a 32-bit counter: overflow after 2^32.
        assert_eq!(b.program(c(0), &req(0x08, 1 << 40)), Ok(()));
        assert_eq!(cpu.borrow().read_pmevcntr(0), 0);
        assert_eq!(cpu.borrow().read_pmcr() & 0xff, 0x41); // E, LC; LP is RES0 here
    }

    #[test]
    fn v3p5_hardware_counts_64_bits_with_lp() {
        let cpu = RefCell::new(SimPmu::max());
        let mut b = HwBackend::new(&cpu);
        assert!(b.long_event_counters());
        b.load();
        assert_eq!(cpu.borrow().read_pmcr() & 0xff, 0xc1);
        assert_eq!(b.program(c(0), &req(0x08, 1 << 40)), Ok(()));
        assert_eq!(cpu.borrow().read_pmevcntr(0), (1u64 << 40).wrapping_neg());
    }

    #[test]
    fn errors_unsupported_events_and_unprogrammed_counters() {
        let mut sim = SimPmu::new(6, 4, [1 << 8 | 1 << 33, 1 << 2 | 1 << 63]);
        sim.write_mdcr_el2(3);
        let cpu = RefCell::new(sim);
        let mut b = HwBackend::new(&cpu);
        assert_eq!(b.max_event_counters(), 3);
        assert_eq!(b.program(c(3), &req(0x08, 1)), Err(HwError::NoCounter));
        assert_eq!(HwError::NoCounter.kind(), ErrorKind::Exhausted);
        assert_eq!(b.read(c(0)), 0);
        b.release(c(0));
        let supported: [bool; 6] = [0x08, 0x4001, 0x22, 0x403f, 0x11, 0x400].map(|e| b.supports(e));
        assert_eq!(supported, [true, true, true, true, false, false]);
    }

    #[test]
    fn dropping_a_loaded_backend_stops_its_counters_and_quiesce_spares_the_hypervisors() {
        let mut sim = SimPmu::max();
        sim.write_mdcr_el2(4);
        sim.write_pmcntenset(1 << 5); // the hypervisor's counter
        let cpu = RefCell::new(sim);
        {
            let mut b = HwBackend::new(&cpu);
            b.load();
            assert_eq!(b.program(c(1), &req(0x08, 1)), Ok(()));
            cpu.borrow_mut().count(0x08, SimEl::El1, 1);
            assert!(cpu.borrow().irq_level());
        }
        assert!(!cpu.borrow().irq_level());
        assert_eq!(cpu.borrow().read_pmcntenset(), 1 << 5);
        cpu.borrow_mut().write_pmcntenset(0b1111 | 1 << 31);
        quiesce(&mut &cpu);
        assert_eq!(cpu.borrow().read_pmcntenset(), 1 << 5);
    }

    #[test]
    fn release_while_loaded_and_while_put() {
        let cpu = RefCell::new(SimPmu::cortex_a57());
        let mut b = HwBackend::new(&cpu);
        b.load();
        assert_eq!(b.program(c(0), &req(0x08, 5)), Ok(()));
        assert_eq!(b.program(c(1), &req(0x08, 5)), Ok(()));
        b.release(c(0));
        assert_eq!((cpu.borrow().read_pmcntenset(), cpu.borrow().read_pmintenset()), (0b10, 0b10));
        cpu.borrow_mut().count(0x08, SimEl::El1, 7);
        b.put();
        b.release(c(1));
        assert_eq!(b.take_overflows(), 0);
        b.load();
        assert_eq!(cpu.borrow().read_pmcntenset(), 0);
        assert_eq!(b.read(c(1)), 0);
    }
}
