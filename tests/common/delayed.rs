//! `Delayed`: a `SoftBackend` whose overflow signal comes late, as a physical PMU interrupt
//! that is pending while EL2 handles a trap, or a perf signal not yet delivered.
//!
//! `record` never reports that a counter reached its period; the report waits in a pending
//! bitmap until the `Pmu` asks for it (`take_overflows`). Every guest read must be exact all
//! the same. The pending bitmap says "every counter": a spurious report must be harmless too.

use vpmu::backend::{CountRequest, CounterBackend, CounterId, EmulatedBackend};
use vpmu::{El, SoftBackend};

/// A `SoftBackend` with a late overflow signal (or, with `delay` false, the `SoftBackend`
/// itself, so one test body runs both).
#[derive(Clone, Debug)]
pub struct Delayed {
    inner: SoftBackend,
    pending: u32,
    delay: bool,
}

impl Delayed {
    /// Wraps `inner`; `delay` false passes every signal through at once.
    pub fn new(inner: SoftBackend, delay: bool) -> Self {
        Self { inner, pending: 0, delay }
    }

    /// Whether a report is waiting.
    #[allow(dead_code)]
    pub fn pending(&self) -> bool {
        self.pending != 0
    }
}

impl CounterBackend for Delayed {
    type Error = core::convert::Infallible;
    fn max_event_counters(&self) -> u8 {
        self.inner.max_event_counters()
    }
    fn supports(&self, event: u16) -> bool {
        self.inner.supports(event)
    }
    fn program(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), Self::Error> {
        self.inner.program(counter, req)
    }
    fn read(&mut self, counter: CounterId) -> u64 {
        self.inner.read(counter)
    }
    fn release(&mut self, counter: CounterId) {
        self.inner.release(counter);
    }
    fn take_overflows(&mut self) -> u32 {
        std::mem::take(&mut self.pending)
    }
}

impl EmulatedBackend for Delayed {
    fn record(&mut self, event: u16, k: u64) -> bool {
        let reached = self.inner.record(event, k);
        if reached && self.delay {
            self.pending = u32::MAX;
            return false;
        }
        reached
    }
    fn set_el(&mut self, el: El) {
        self.inner.set_el(el);
    }
    fn events_until_overflow(&self, event: u16) -> Option<u64> {
        self.inner.events_until_overflow(event)
    }
}
