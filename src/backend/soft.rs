//! [`SoftBackend`]: deterministic counting for emulators and tests.

use super::{CountRequest, CounterBackend, CounterId, EmulatedBackend};
use crate::pmu::{bit, El};
use crate::Pmu;

/// Events counted for one `(event, EL filter)` pair, shared by every counter that counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// Events counted while programmed, at the exception levels in `els`.
    total: u64,
    /// Events (at the current EL) until the earliest deadline among its counters;
    /// `NO_DEADLINE` when none counts at the current EL.
    next: u64,
    /// Bit `i`: counter `i` counts here.
    users: u32,
    event: u16,
    /// Bit 0: counts at EL0, bit 1: counts at EL1.
    els: u8,
}

const NO_SLOT: u8 = u8::MAX;
/// `Slot::next` when no counter of the slot has a deadline at the current EL.
const NO_DEADLINE: u64 = u64::MAX;
const SLOTS: usize = 32;

/// A deterministic, allocation-free backend: the emulator reports what the guest did, in
/// batches, and the backend counts lazily.
///
/// - [`Pmu::count`] reports `k` occurrences of an event at the current exception level
///   (report `CPU_CYCLES`, 0x11, to drive `PMCCNTR` too); its cost does not depend on how many
///   counters count that event: counters that share an event and a filter share one running
///   total, and each counter remembers only where that total stood when it was last read.
/// - [`Pmu::set_el`] reports a change of exception level.
/// - [`Pmu::events_until_overflow`] answers how many more occurrences of an event make a
///   counter overflow, so an emulator can stop exactly there and take the interrupt on the
///   right instruction.
///
/// Counting is exact as long as fewer than 2^63 events of one kind are reported between two
/// overflows of a counter that counts them.
///
/// # Examples
///
/// ```
/// use vpmu::{backend::SoftBackend, config::PmuConfig, El, Pmu, reg::{EventCounter, PmuReg}};
///
/// let mut pmu = Pmu::new(PmuConfig::builder().counters(2).build()?, SoftBackend::new())?;
/// let c0 = EventCounter::new(0).unwrap();
/// let _ = pmu.write(PmuReg::Pmevtyper(c0), 0x08, El::El1); // INST_RETIRED
/// let _ = pmu.write(PmuReg::Pmevcntr(c0), 0xffff_fff0, El::El1);
/// let _ = pmu.write(PmuReg::Pmcntenset, 1, El::El1);
/// let _ = pmu.write(PmuReg::Pmintenset, 1, El::El1);
/// let _ = pmu.write(PmuReg::Pmcr, 1, El::El1);
///
/// assert_eq!(pmu.events_until_overflow(0x08), Some(16));
/// pmu.count(0x08, 15);
/// assert!(!pmu.irq_level());
/// pmu.count(0x08, 1); // the 16th instruction overflows counter 0 (at 32 bits: PMCR.LP = 0)
/// assert!(pmu.irq_level());
/// // a PMUv3p5 event counter is 64 bits wide: it keeps carrying into bit 32
/// assert_eq!(pmu.read(PmuReg::Pmevcntr(c0), El::El1).value(), Some(1 << 32));
/// # Ok::<(), vpmu::config::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoftBackend {
    slots: [Slot; SLOTS],
    /// Per counter: the slot's `total` when the counter was last programmed or taken.
    start: [u64; 32],
    /// Per counter: the slot's `total` at which the counter reaches its period.
    deadline: [u64; 32],
    /// Per counter: its slot, or `NO_SLOT`.
    slot_of: [u8; 32],
    nslots: u8,
    el: El,
    /// Supported common events 0x00..=0x3F, 0x4000..=0x403F, and whether any other is.
    supported: [u64; 2],
    others: bool,
}

impl Default for SoftBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl SoftBackend {
    const EMPTY: Slot = Slot { total: 0, next: NO_DEADLINE, users: 0, event: 0, els: 0 };

    /// A backend that can count every event, starting at EL1.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            slots: [Self::EMPTY; SLOTS],
            start: [0; 32],
            deadline: [0; 32],
            slot_of: [NO_SLOT; 32],
            nslots: 0,
            el: El::El1,
            supported: [u64::MAX; 2],
            others: true,
        }
    }

    /// A backend that counts only `events` (and says so through `PMCEID`).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::{CounterBackend, SoftBackend};
    /// let b = SoftBackend::with_events(&[0x08, 0x11]);
    /// assert!(b.supports(0x11) && !b.supports(0x10));
    /// ```
    #[must_use]
    pub fn with_events(events: &[u16]) -> Self {
        let mut b = Self::new();
        b.supported = [0; 2];
        b.others = false;
        for &e in events {
            match e {
                0..=0x3f => b.supported[0] |= 1 << e,
                0x4000..=0x403f => b.supported[1] |= 1 << (e & 0x3f),
                _ => b.others = true,
            }
        }
        b
    }

    /// The exception level events are currently reported at.
    #[must_use]
    pub const fn el(&self) -> El {
        self.el
    }

    /// Changes the exception level events are reported at. O(programmed counters).
    pub fn set_el(&mut self, el: El) {
        if el != self.el {
            self.el = el;
            for s in 0..self.nslots {
                self.recompute_next(s);
            }
        }
    }

    /// Records `k` occurrences of `event` at the current exception level. Returns whether a
    /// counter reached its period (an overflow): the caller must then call
    /// [`Pmu::sync`]. [`Pmu::count`](crate::Pmu::count) does both.
    ///
    /// O(distinct (event, filter) pairs programmed), independent of how many counters count
    /// `event`.
    pub fn record(&mut self, event: u16, k: u64) -> bool {
        let bit = el_bit(self.el);
        let mut reached = false;
        let n = usize::from(self.nslots);
        for s in self.slots.iter_mut().take(n) {
            if s.event == event && s.els & bit != 0 {
                s.total = s.total.wrapping_add(k);
                if s.next == NO_DEADLINE {
                    // Nothing here can overflow: stays so until a counter is (re)programmed.
                } else if k >= s.next {
                    reached = true;
                    s.next = 0;
                } else {
                    s.next = s.next.wrapping_sub(k);
                }
            }
        }
        if reached {
            for s in 0..self.nslots {
                if self.slots.get(usize::from(s)).is_some_and(|x| x.next == 0) {
                    self.recompute_next(s);
                }
            }
        }
        reached
    }

    /// Occurrences of `event` at the current exception level after which a counter overflows
    /// (`>= 1`), or `None` if no counter counts `event` here (or its overflow is 2^64 - 1 or
    /// more events away).
    #[must_use]
    pub fn events_until_overflow(&self, event: u16) -> Option<u64> {
        let bit = el_bit(self.el);
        self.slots
            .iter()
            .take(usize::from(self.nslots))
            .filter(|s| s.event == event && s.els & bit != 0)
            .map(|s| s.next)
            .min()
            .filter(|&n| n != NO_DEADLINE)
    }

    fn recompute_next(&mut self, s: u8) {
        let bit = el_bit(self.el);
        let Some(slot) = self.slots.get(usize::from(s)).copied() else { return };
        let mut next = NO_DEADLINE;
        if slot.els & bit != 0 {
            let mut users = slot.users;
            while users != 0 {
                let i = users.trailing_zeros() as usize;
                users &= users.wrapping_sub(1);
                let d = self.deadline.get(i).copied().unwrap_or(0).wrapping_sub(slot.total);
                // 0: reached, and being handled by the caller's sync, which re-arms the counter.
                if d != 0 {
                    next = next.min(d);
                }
            }
        }
        if let Some(x) = self.slots.get_mut(usize::from(s)) {
            x.next = next;
        }
    }

    fn detach(&mut self, i: usize) {
        let Some(s) = self.slot_of.get(i).copied().filter(|&s| s != NO_SLOT) else { return };
        if let Some(x) = self.slot_of.get_mut(i) {
            *x = NO_SLOT;
        }
        let Some(slot) = self.slots.get_mut(usize::from(s)) else { return };
        slot.users &= !bit(i);
        if slot.users != 0 {
            self.recompute_next(s);
            return;
        }
        // Free the slot: move the last one into its place.
        let last = self.nslots.saturating_sub(1);
        if s != last {
            let moved = self.slots.get(usize::from(last)).copied().unwrap_or(Self::EMPTY);
            if let Some(x) = self.slots.get_mut(usize::from(s)) {
                *x = moved;
            }
            for so in &mut self.slot_of {
                if *so == last {
                    *so = s;
                }
            }
        }
        if let Some(x) = self.slots.get_mut(usize::from(last)) {
            *x = Self::EMPTY;
        }
        self.nslots = last;
    }
}

fn el_bit(el: El) -> u8 {
    match el {
        El::El0 => 1,
        El::El1 => 2,
    }
}

impl CounterBackend for SoftBackend {
    type Error = core::convert::Infallible;

    fn max_event_counters(&self) -> u8 {
        crate::reg::MAX_EVENT_COUNTERS
    }

    fn supports(&self, event: u16) -> bool {
        match event {
            0..=0x3f => self.supported[0] & (1 << event) != 0,
            0x4000..=0x403f => self.supported[1] & (1 << (event & 0x3f)) != 0,
            _ => self.others,
        }
    }

    fn program(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), Self::Error> {
        let i = counter.index();
        self.detach(i);
        let els = u8::from(req.el0) | (u8::from(req.el1) << 1);
        if els == 0 {
            return Ok(());
        }
        let n = self.nslots;
        let found = (0..n).find(|&s| self.slots.get(usize::from(s)).is_some_and(|x| x.event == req.event && x.els == els));
        let s = match found {
            Some(s) => s,
            None => {
                // At most 32 counters, so at most 32 slots: there is always room.
                if let Some(x) = self.slots.get_mut(usize::from(n)) {
                    *x = Slot { total: 0, next: NO_DEADLINE, users: 0, event: req.event, els };
                }
                self.nslots = n.saturating_add(1);
                n
            }
        };
        let Some(slot) = self.slots.get_mut(usize::from(s)) else { return Ok(()) };
        slot.users |= bit(i);
        let total = slot.total;
        if let (Some(st), Some(dl), Some(so)) = (self.start.get_mut(i), self.deadline.get_mut(i), self.slot_of.get_mut(i)) {
            *st = total;
            *dl = total.wrapping_add(req.period);
            *so = s;
        }
        self.recompute_next(s);
        Ok(())
    }

    #[inline]
    fn read(&mut self, counter: CounterId) -> u64 {
        let i = counter.index();
        let Some(s) = self.slot_of.get(i).copied().filter(|&s| s != NO_SLOT) else { return 0 };
        let total = self.slots.get(usize::from(s)).map_or(0, |x| x.total);
        match self.start.get_mut(i) {
            Some(st) => {
                let since = total.wrapping_sub(*st);
                *st = total;
                since
            }
            None => 0,
        }
    }

    fn release(&mut self, counter: CounterId) {
        self.detach(counter.index());
    }
}

impl EmulatedBackend for SoftBackend {
    #[inline]
    fn record(&mut self, event: u16, k: u64) -> bool {
        SoftBackend::record(self, event, k)
    }

    fn set_el(&mut self, el: El) {
        SoftBackend::set_el(self, el);
    }

    fn events_until_overflow(&self, event: u16) -> Option<u64> {
        SoftBackend::events_until_overflow(self, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CounterBackend;

    fn req(event: u16, period: u64) -> CountRequest {
        CountRequest { event, el0: true, el1: true, period }
    }

    #[test]
    fn a_far_deadline_counts_down_exactly_and_the_nearest_wins() {
        let mut b = SoftBackend::new();
        let far = (1u64 << 62) + 7;
        assert_eq!(b.program(CounterId::Cycle, &req(0x11, far)), Ok(()));
        assert!(!b.record(0x11, 1000));
        assert_eq!(b.events_until_overflow(0x11), Some(far - 1000));
        let c0 = CounterId::Event(crate::reg::EventCounter::new_truncate(0));
        assert_eq!(b.program(c0, &req(0x11, 5)), Ok(()));
        assert_eq!(b.events_until_overflow(0x11), Some(5));
        assert!(b.record(0x11, 5));
        assert_eq!(b.read(c0), 5);
        assert_eq!(b.read(CounterId::Cycle), 1005);
        // c0's deadline is spent until it is re-armed: the cycle counter's bounds again.
        assert_eq!(b.events_until_overflow(0x11), Some(far - 1005));
        b.release(CounterId::Cycle);
        b.release(c0);
        assert_eq!(b.events_until_overflow(0x11), None);
        assert!(!b.record(0x11, u64::MAX));
    }
}

// Issue 6's budget: a whole vPMU with its backend fits in 2 KiB.
static_assertions::const_assert!(core::mem::size_of::<Pmu<SoftBackend>>() <= 2048);
