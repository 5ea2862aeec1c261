//! Where the counting happens: the [`CounterBackend`] trait and its implementations.
//!
//! A [`Pmu`](crate::Pmu) keeps the guest-visible value of every counter as a base plus what
//! the backend has counted since the counter was last programmed (lazy accounting: nothing is
//! done per counted event). It asks the backend to count an event under an exception-level
//! filter ([`CounterBackend::program`]), reads the count ([`CounterBackend::read`]) when the
//! guest reads the counter or changes its configuration, and stops it
//! ([`CounterBackend::release`]). Every request carries the distance to the counter's next
//! architectural overflow ([`CountRequest::period`]); a backend that can signal when a count
//! reaches it tells its host, and the host calls [`Pmu::sync`](crate::Pmu::sync), which folds
//! the counts, sets the overflow flags and re-arms the counters.
//!
//! `SW_INCR` and `CHAIN` never reach a backend: the `Pmu` counts them itself.
//!
//! # The three real backends
//!
//! | host | `program` | `read` | overflow |
//! |---|---|---|---|
//! | Linux (`perf_event_open`) | a perf event per counter: `config` the event, `exclude_user` / `exclude_kernel` from the EL filter, `exclude_hv` always, `exclude_host` for a hardware-virtualized guest, `sample_period = period` | the event's count minus the count at the last read | the perf overflow signal; the host calls `sync` |
//! | bare-metal hypervisor | a physical counter per virtual one: `PMEVTYPER` with the event and `U`/`P` bits, the counter preset to `2^32 - period` (or `2^64 - period`) | the physical counter minus its value at the last read | the physical PMU interrupt; the host calls `sync` |
//! | emulator | [`SoftBackend`]: the emulator reports retired instructions, cycles and any event | the shared running total minus its value at the last read | [`Pmu::count`](crate::Pmu::count) syncs on the batch that reaches it |
//!
//! # Writing a backend
//!
//! ```
//! use vpmu::backend::{BackendError, CounterBackend, CounterId, CountRequest, ErrorKind};
//!
//! /// A host whose only source is a retired-instruction count it samples itself.
//! struct InsnOnly {
//!     now: u64,                    // the host's instruction count
//!     start: [Option<u64>; 32],    // per counter: the count when it was programmed
//! }
//!
//! #[derive(Debug)]
//! struct Unsupported;
//! impl BackendError for Unsupported {
//!     fn kind(&self) -> ErrorKind { ErrorKind::Unsupported }
//! }
//!
//! impl CounterBackend for InsnOnly {
//!     type Error = Unsupported;
//!     fn max_event_counters(&self) -> u8 { 31 }
//!     fn supports(&self, event: u16) -> bool { event == 0x08 } // INST_RETIRED
//!     fn program(&mut self, c: CounterId, req: &CountRequest) -> Result<(), Unsupported> {
//!         if req.event != 0x08 { return Err(Unsupported) }
//!         if let Some(s) = self.start.get_mut(c.index()) { *s = Some(self.now) }
//!         Ok(())
//!     }
//!     fn read(&mut self, c: CounterId) -> u64 {
//!         match self.start.get_mut(c.index()) {
//!             Some(Some(s)) => self.now.wrapping_sub(core::mem::replace(s, self.now)),
//!             _ => 0,
//!         }
//!     }
//!     fn release(&mut self, c: CounterId) {
//!         if let Some(s) = self.start.get_mut(c.index()) { *s = None }
//!     }
//! }
//!
//! use vpmu::{config::PmuConfig, El, Pmu, reg::{EventCounter, PmuReg}};
//! let mut pmu = Pmu::new(PmuConfig::builder().counters(1).build()?, InsnOnly { now: 0, start: [None; 32] })?;
//! let c0 = PmuReg::Pmevcntr(EventCounter::new(0).unwrap());
//! let _ = pmu.write(PmuReg::Pmevtyper(EventCounter::new(0).unwrap()), 0x08, El::El1);
//! let _ = pmu.write(PmuReg::Pmcntenset, 1, El::El1);
//! let _ = pmu.write(PmuReg::Pmcr, 1, El::El1); // PMCR.E
//! pmu.backend_mut().now += 1000;
//! assert_eq!(pmu.read(c0, El::El1).value(), Some(1000));
//! # Ok::<(), vpmu::config::ConfigError>(())
//! ```

use core::fmt::Debug;

use crate::reg::{EventCounter, CYCLE_COUNTER_BIT};

#[cfg(all(feature = "perf", target_os = "linux"))]
#[cfg_attr(docsrs, doc(cfg(feature = "perf")))]
pub mod perf;
mod soft;
pub use soft::SoftBackend;

/// A counter a backend counts for: an event counter or the cycle counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CounterId {
    /// `PMEVCNTR<n>`.
    Event(EventCounter),
    /// `PMCCNTR`.
    Cycle,
}

impl CounterId {
    /// The counter's bit in `PMCNTENSET`/`PMOVSSET`: `n` for an event counter, 31 for the cycle
    /// counter. Also a convenient index into a 32-entry table.
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            CounterId::Event(n) => n.get() as usize,
            CounterId::Cycle => CYCLE_COUNTER_BIT as usize,
        }
    }

    /// The counter whose bit is `bit`: `0..=30` an event counter, 31 the cycle counter.
    #[must_use]
    pub const fn from_bit(bit: u8) -> Option<CounterId> {
        if bit == CYCLE_COUNTER_BIT {
            Some(CounterId::Cycle)
        } else {
            match EventCounter::new(bit) {
                Some(n) => Some(CounterId::Event(n)),
                None => None,
            }
        }
    }
}

/// What a backend is asked to count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CountRequest {
    /// The event number (`CPU_CYCLES`, 0x11, for the cycle counter). Never `SW_INCR` or `CHAIN`.
    pub event: u16,
    /// Count while the guest runs at EL0.
    pub el0: bool,
    /// Count while the guest runs at EL1.
    pub el1: bool,
    /// Events from now until the counter's next architectural overflow, `>= 1`: a backend
    /// that can signal should do so when its count reaches this.
    pub period: u64,
}

/// The kind of a backend error, for code that handles any backend's errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The host cannot count this event.
    Unsupported,
    /// The host ran out of counters or another resource.
    Exhausted,
    /// The host refused (permissions, policy).
    Denied,
    /// Anything else.
    Other,
}

/// A backend's error (embedded-hal style): any type, as long as it says its kind.
pub trait BackendError: Debug {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;
}

impl BackendError for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// The host's side of counting: see the [module docs](self) for the contract and a worked
/// example.
pub trait CounterBackend {
    /// Why programming a counter failed; [`core::convert::Infallible`] for a backend that
    /// cannot fail.
    type Error: BackendError;

    /// How many event counters the backend can back at once (`0..=31`). A [`Pmu`](crate::Pmu)
    /// with more refuses to be built.
    fn max_event_counters(&self) -> u8;

    /// Whether the host can count `event`. Builds `PMCEID0`/`PMCEID1`; an event that is not
    /// supported never counts.
    fn supports(&self, event: u16) -> bool;

    /// Starts counting for `counter` from zero, replacing whatever it counted before.
    ///
    /// # Contract
    ///
    /// - After it returns `Ok`, [`read`](Self::read) gives the events counted since this call.
    /// - Count only at the exception levels `req` allows; never count host or EL2 time.
    ///
    /// # Errors
    ///
    /// The backend's error when it cannot count the request. The counter then does not count;
    /// the `Pmu` keeps the error for [`Pmu::take_backend_error`](crate::Pmu::take_backend_error).
    fn program(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), Self::Error>;

    /// Events counted for `counter` since the last `read` or `program` of it, wrapping at
    /// 2^64: every event is reported by exactly one `read`.
    ///
    /// # Contract
    ///
    /// Infallible: a backend that cannot read now reports 0 and the events in a later `read`,
    /// so the guest's counter never goes backwards. A counter that is not programmed reads 0.
    fn read(&mut self, counter: CounterId) -> u64;

    /// Stops counting for `counter` and frees what backs it. Releasing a counter that is not
    /// programmed does nothing.
    fn release(&mut self, counter: CounterId);
}
