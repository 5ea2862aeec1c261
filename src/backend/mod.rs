//! Where the counting happens: the [`CounterBackend`] trait and its implementations.
//!
//! A [`Pmu`](crate::Pmu) keeps the guest-visible value of every counter as a base plus what
//! the backend has counted since it last looked (lazy accounting: nothing is done per counted
//! event). It asks the backend to count an event under an exception-level filter
//! ([`CounterBackend::program`]), collects the count ([`CounterBackend::read`]) when the guest
//! reads the counter or changes its configuration, and stops or frees it
//! ([`CounterBackend::stop`], [`CounterBackend::release`]). Every request carries the distance
//! to the counter's next architectural overflow ([`CountRequest::period`]); a backend that can
//! signal when a count reaches it records the counter in a [`PendingOverflow`] from its
//! interrupt or signal handler, and the host calls [`Pmu::handle_overflows`](crate::Pmu::handle_overflows),
//! which handles exactly those counters.
//!
//! `SW_INCR` and `CHAIN` never reach a backend: the `Pmu` counts them itself.
//!
//! # The contract
//!
//! Each method's docs carry its part. Taken together:
//!
//! - **Exact reads with any backend.** The `Pmu` folds whatever a read depends on before it
//!   answers: the counter itself, the even partner of a `CHAIN` counter, the backend's pending
//!   overflows for `PMOVSSET`/`PMOVSCLR` and for [`Pmu::irq_level`](crate::Pmu::irq_level).
//!   A late signal costs the interrupt's timeliness, never a wrong value.
//! - **Periods.** A period counts from `program` or `set_period`; `read` never re-arms. A
//!   backend narrower than the period reports early; a report that is early or spurious is
//!   harmless (the `Pmu` reads, sees no architectural overflow, and re-arms with what remains).
//! - **Stop versus free, re-arm versus reprogram.** `stop` (the guest disabled the counter)
//!   may keep resources; `release` (reset, shrinking N) frees them. `set_period` keeps the
//!   event and filter and changes only the period (after an overflow, a counter write, a
//!   change of `PMCR.LP`/`LC`/`D`); `program` is for a new event or filter. Defaults make a
//!   simple backend implement only `program`, `read` and `release`.
//! - **Scheduling.** [`Pmu::vcpu_load`](crate::Pmu::vcpu_load) and
//!   [`Pmu::vcpu_put`](crate::Pmu::vcpu_put) call [`CounterBackend::load`] and
//!   [`CounterBackend::put`]. A backend that owns hardware restores and saves it there. While
//!   put, the `Pmu` may still call in — [`Pmu::save`](crate::Pmu::save),
//!   [`Pmu::restore`](crate::Pmu::restore), one-reg access, [`Pmu::reset`](crate::Pmu::reset),
//!   reads from the VMM — and the backend works on its saved image.
//! - **Asynchronous overflow.** An interrupt or signal handler cannot touch the `Pmu` (the
//!   vCPU thread may be inside it). It calls [`PendingOverflow::raise`]: one atomic OR, no
//!   lock, no allocation. [`CounterBackend::take_overflows`] hands the bits over.
//! - **Threads.** `Pmu<B>` is `Send` when `B` is, and every call on one `Pmu` comes from one
//!   thread at a time (`&mut self`). A backend whose counting is bound to a thread (perf
//!   counts the thread it was opened for) says which thread in its own docs and refuses
//!   others with [`ErrorKind::WrongContext`]. `PendingOverflow` is `Sync`: share it by
//!   `&'static` or `Arc` with the handler.
//! - **Errors.** A backend's error is any type with [`BackendError::kind`], `Display` and
//!   `core::error::Error`; [`core::convert::Infallible`] when it cannot fail.
//! - **The interrupt.** The caller drives the PMU interrupt from
//!   [`Pmu::irq_level`](crate::Pmu::irq_level), sampled before every guest entry.
//!
//! # The three real backends
//!
//! | host | `program` | `read` | overflow |
//! |---|---|---|---|
//! | Linux (`perf_event_open`) | a perf event per counter, opened for the vCPU's thread: `config` the event, `exclude_user` / `exclude_kernel` from the EL filter, `exclude_hv` always, `exclude_host` for a hardware-virtualized guest, `sample_period = period`; `set_period` is `PERF_EVENT_IOC_PERIOD` | the event's count minus the count at the last read | the perf overflow signal raises a [`PendingOverflow`] |
//! | bare-metal hypervisor (`vpmu-hw`) | a physical counter per virtual one: `PMEVTYPER` with the event and `U`/`P` bits, the counter preset to `2^32 - period` (or `2^64 - period`) | the physical counter minus its value at the last read | the physical PMU interrupt, taken at EL2, raises a [`PendingOverflow`]; `load`/`put` switch the hardware between vCPUs |
//! | emulator | [`SoftBackend`] (or any [`EmulatedBackend`]): the emulator reports retired instructions, cycles and any event | the shared running total minus its value at the last read | [`Pmu::count`](crate::Pmu::count) handles the batch that reaches it |
//!
//! # Writing a backend: a worked physical PMU
//!
//! A made-up physical PMU with 32-bit counters, an overflow interrupt and two vCPUs that share
//! it. The backend presets each counter to overflow after `period` events (earlier if the period
//! does not fit in 32 bits), reports overflows from the interrupt handler through a
//! [`PendingOverflow`], and saves and restores the hardware on a vCPU switch. (A real one also
//! sets the exception-level filter bits from `req.el0`/`req.el1`: see `vpmu-hw`.)
//!
//! ```
//! use core::convert::Infallible;
//! use vpmu::backend::{CounterBackend, CounterId, CountRequest, PendingOverflow};
//!
//! /// The physical PMU: 32-bit counters, each with an event and an enable.
//! #[derive(Clone, Default)]
//! struct Hw { count: [u32; 32], event: [u16; 32], enabled: u32 }
//!
//! impl Hw {
//!     /// The CPU retires `n` events of `event`; a counter that wraps raises the overflow
//!     /// interrupt, whose handler (at EL2, away from any `Pmu`) records it.
//!     fn tick(&mut self, event: u16, n: u32, irq: &PendingOverflow) {
//!         for i in 0..32 {
//!             if self.enabled & (1 << i) != 0 && self.event[i] == event {
//!                 let (v, wrapped) = self.count[i].overflowing_add(n);
//!                 self.count[i] = v;
//!                 if wrapped { irq.raise(1 << i) }
//!             }
//!         }
//!     }
//! }
//!
//! /// One vCPU's backend: the hardware while loaded, its saved image while put.
//! struct Toy { regs: Hw, loaded: bool, last: [u32; 32], irq: &'static PendingOverflow }
//!
//! impl CounterBackend for Toy {
//!     type Error = Infallible;
//!     fn max_event_counters(&self) -> u8 { 6 }
//!     fn supports(&self, event: u16) -> bool { matches!(event, 0x08 | 0x11) }
//!     fn program(&mut self, c: CounterId, req: &CountRequest) -> Result<(), Infallible> {
//!         let i = c.index();
//!         // 2^32 - period: the counter wraps after `period` events (a longer period wraps
//!         // early, at 2^32; the Pmu sees no architectural overflow and re-arms).
//!         let preset = 0u32.wrapping_sub(req.period.min(1 << 32) as u32);
//!         self.regs.event[i] = req.event;
//!         self.regs.count[i] = preset;
//!         self.regs.enabled |= 1 << i;
//!         self.last[i] = preset;
//!         Ok(())
//!     }
//!     fn read(&mut self, c: CounterId) -> u64 {
//!         let i = c.index();
//!         let now = self.regs.count[i];
//!         let since = now.wrapping_sub(self.last[i]);
//!         self.last[i] = now;
//!         since.into()
//!     }
//!     fn release(&mut self, c: CounterId) { self.regs.enabled &= !(1 << c.index()) }
//!     fn take_overflows(&mut self) -> u32 { self.irq.take() }
//!     // A real backend moves the hardware here; the toy's `regs` simply stops being ticked.
//!     fn load(&mut self) { self.loaded = true }
//!     fn put(&mut self) { self.loaded = false }
//! }
//!
//! use vpmu::{config::PmuConfig, reg::{EventCounter, PmuReg}, El, Pmu};
//! static IRQ: PendingOverflow = PendingOverflow::new();
//! let toy = Toy { regs: Hw::default(), loaded: false, last: [0; 32], irq: &IRQ };
//! let mut pmu = Pmu::new(PmuConfig::builder().counters(2).build()?, toy)?;
//! pmu.vcpu_load();
//!
//! // The guest counts instructions on counter 0, 100 before overflow, interrupt enabled.
//! let c0 = EventCounter::new(0).unwrap();
//! let _ = pmu.write(PmuReg::Pmevtyper(c0), 0x08, El::El1);
//! let _ = pmu.write(PmuReg::Pmevcntr(c0), 0xffff_ff9c, El::El1);
//! let _ = pmu.write(PmuReg::Pmintenset, 1, El::El1);
//! let _ = pmu.write(PmuReg::Pmcntenset, 1, El::El1);
//! let _ = pmu.write(PmuReg::Pmcr, 1, El::El1);
//!
//! pmu.backend_mut().regs.tick(0x08, 99, &IRQ);
//! assert!(!pmu.irq_level());
//! pmu.backend_mut().regs.tick(0x08, 1, &IRQ);   // the 100th: the hardware interrupt fires
//! pmu.handle_overflows();                       // the host, back from its handler
//! assert!(pmu.irq_level());                     // inject the guest's PMU interrupt
//!
//! // A vCPU switch: put, (another vCPU runs), load. The guest's count is unchanged.
//! pmu.vcpu_put();
//! pmu.vcpu_load();
//! assert_eq!(pmu.read(PmuReg::Pmevcntr(c0), El::El1).value(), Some(1 << 32));
//! # Ok::<(), vpmu::config::ConfigError>(())
//! ```
//!
//! An emulator with exact counts implements [`EmulatedBackend`] as well and gets
//! [`Pmu::count`](crate::Pmu::count), [`Pmu::set_el`](crate::Pmu::set_el) and
//! [`Pmu::events_until_overflow`](crate::Pmu::events_until_overflow).

use core::fmt::Debug;

use core::sync::atomic::{AtomicU32, Ordering};

use crate::pmu::El;
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
#[non_exhaustive]
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

impl CountRequest {
    /// A request: count `event` at EL0 and/or EL1, signalling after `period` events (a period
    /// of 0 is taken as 1).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::CountRequest;
    /// let r = CountRequest::new(0x08, true, false, 100);
    /// assert_eq!((r.event, r.el0, r.el1, r.period), (0x08, true, false, 100));
    /// assert_eq!(r.with_period(7).period, 7);
    /// ```
    #[must_use]
    pub const fn new(event: u16, el0: bool, el1: bool, period: u64) -> Self {
        Self { event, el0, el1, period: if period == 0 { 1 } else { period } }
    }

    /// The same request with another period (0 is taken as 1): what a backend that cannot
    /// count as far as asked (narrow hardware) programs instead.
    #[must_use]
    pub const fn with_period(self, period: u64) -> Self {
        Self::new(self.event, self.el0, self.el1, period)
    }
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
    /// The call came from a context the backend cannot count from (another thread than the
    /// vCPU's, for a backend bound to one).
    WrongContext,
    /// Anything else.
    Other,
}

/// A backend's error (embedded-hal style): any type that says what went wrong
/// ([`Display`](core::fmt::Display)) and of which kind.
pub trait BackendError: Debug + core::fmt::Display + core::error::Error {
    /// What kind of failure this is.
    fn kind(&self) -> ErrorKind;
}

impl BackendError for core::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

/// Counters that reached their period, recorded by a context that cannot touch the
/// [`Pmu`](crate::Pmu): an interrupt handler, a signal handler, another thread.
///
/// A lock-free bitmap (bit [`CounterId::index`]): [`raise`](Self::raise) is one atomic OR, so
/// an EL2 interrupt handler or an async-signal handler may call it; nothing allocates, nothing
/// blocks, no lock a guest could hold is taken. The backend hands the bits to the `Pmu`
/// through [`CounterBackend::take_overflows`], and the `Pmu` handles exactly those counters.
///
/// # Examples
///
/// ```
/// use vpmu::backend::{CounterId, PendingOverflow};
///
/// static PENDING: PendingOverflow = PendingOverflow::new();
/// // in the interrupt handler:
/// PENDING.raise(1 << 3 | 1 << CounterId::Cycle.index());
/// // later, in the backend's take_overflows:
/// assert_eq!(PENDING.take(), 1 << 3 | 1 << 31);
/// assert_eq!(PENDING.take(), 0);
/// ```
#[derive(Debug, Default)]
pub struct PendingOverflow(AtomicU32);

impl PendingOverflow {
    /// Nothing pending.
    #[must_use]
    pub const fn new() -> Self {
        Self(AtomicU32::new(0))
    }

    /// Records that the counters in `bits` reached their period. Async-signal-safe and
    /// interrupt-safe: one atomic OR.
    #[inline]
    pub fn raise(&self, bits: u32) {
        self.0.fetch_or(bits, Ordering::Release);
    }

    /// Takes every pending bit, leaving none.
    #[inline]
    pub fn take(&self) -> u32 {
        // A plain load first: the common case, nothing pending, writes nothing.
        if self.0.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.0.swap(0, Ordering::Acquire)
    }

    /// The pending bits, left in place.
    #[inline]
    #[must_use]
    pub fn peek(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }
}

/// The host's side of counting: see the [module docs](self) for the whole contract and a
/// worked backend.
///
/// Three methods are required besides the two capability questions: [`program`](Self::program),
/// [`read`](Self::read) and [`release`](Self::release). The others have defaults that are right
/// for a backend with no asynchronous signal and no hardware to save: override them when the
/// host can do better (a cheaper re-arm, a stop that keeps resources) or must (an overflow
/// interrupt, a vCPU switch).
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

    /// Starts counting `req` for `counter` from zero, replacing whatever it counted before.
    ///
    /// # Contract
    ///
    /// - After `Ok`, [`read`](Self::read) gives the events counted since this call.
    /// - Count only at the exception levels `req` allows; never count host or EL2 time.
    /// - **Period**: when the count since this call reaches `req.period`, report the counter
    ///   through [`take_overflows`](Self::take_overflows) (and wake the host, which calls
    ///   [`Pmu::handle_overflows`](crate::Pmu::handle_overflows)). A backend whose hardware is
    ///   narrower than the period may report early: the `Pmu` then sees no architectural
    ///   overflow and re-arms with the remaining distance. A report that comes late, or
    ///   never, costs only the interrupt's timeliness: every guest read is exact anyway,
    ///   because the `Pmu` folds [`read`](Self::read) counts with wide arithmetic.
    /// - Called while the vCPU is [put](Self::put): program the saved image; it counts from
    ///   the next [`load`](Self::load).
    ///
    /// # Errors
    ///
    /// The backend's error when it cannot count the request. The counter then does not count;
    /// the `Pmu` keeps the error for [`Pmu::take_backend_error`](crate::Pmu::take_backend_error).
    fn program(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), Self::Error>;

    /// Events counted for `counter` since the last `read`, `program` or `set_period` of it,
    /// wrapping at 2^64: every event is reported by exactly one `read`.
    ///
    /// # Contract
    ///
    /// - Infallible: a backend that cannot read now reports 0 and the events in a later
    ///   `read`, so the guest's counter never goes backwards.
    /// - Never re-arms: the period keeps counting from where it was set.
    /// - A counter that is not programmed, or is stopped, reads 0 (or what it counted before
    ///   it stopped, once).
    fn read(&mut self, counter: CounterId) -> u64;

    /// Changes only the period of a counting counter: the event and the exception-level
    /// filter are those of its last [`program`](Self::program), and the `Pmu` has just
    /// [`read`](Self::read) it, so nothing counted is lost. The new period counts from this
    /// call.
    ///
    /// The `Pmu` calls it after an overflow and when the guest writes the counter's value or
    /// changes where it overflows (`PMCR.LP`, `LC`, `D`). The default programs the counter
    /// again, which is always right; a real backend re-arms in place (perf:
    /// `PERF_EVENT_IOC_PERIOD`; a physical counter: a new preset).
    ///
    /// # Errors
    ///
    /// As [`program`](Self::program).
    fn set_period(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), Self::Error> {
        self.program(counter, req)
    }

    /// Stops counting for `counter` but may keep what backs it, for a later
    /// [`program`](Self::program) (the guest disabled the counter, or `PMCR.E`). The default
    /// releases it.
    ///
    /// # Contract
    ///
    /// A [`read`](Self::read) after `stop` gives what was counted before the stop and not yet
    /// read, then 0. The next call for the counter is `program` or `release`.
    fn stop(&mut self, counter: CounterId) {
        self.release(counter);
    }

    /// Stops counting for `counter` and frees what backs it. Releasing a counter that is not
    /// programmed does nothing.
    fn release(&mut self, counter: CounterId);

    /// The counters that reached their period since the last call, as a bitmap (bit
    /// [`CounterId::index`]), each report given once. The default, for a backend with no
    /// asynchronous signal, is none.
    ///
    /// # Contract
    ///
    /// - Cheap when nothing is pending (the `Pmu` asks on every `PMOVS*` read and in
    ///   [`Pmu::irq_level`](crate::Pmu::irq_level)): one load, as
    ///   [`PendingOverflow::take`] is.
    /// - A spurious or early bit is harmless: the `Pmu` reads the counter, finds no
    ///   architectural overflow, and re-arms it.
    fn take_overflows(&mut self) -> u32 {
        0
    }

    /// The vCPU this backend counts for is being loaded on the current physical CPU:
    /// restore the saved image (values, event types, enables, pending overflows) into the
    /// hardware and count from now on. Called by [`Pmu::vcpu_load`](crate::Pmu::vcpu_load).
    /// The default does nothing (a backend with no hardware of its own).
    fn load(&mut self) {}

    /// The vCPU leaves the physical CPU: save what the hardware counted into the image and
    /// stop it, so the next vCPU finds it free. Until the next [`load`](Self::load), every
    /// other call works on the saved image. Called by
    /// [`Pmu::vcpu_put`](crate::Pmu::vcpu_put). The default does nothing.
    fn put(&mut self) {}
}

/// A backend an emulator feeds with exact event counts: what [`Pmu::count`](crate::Pmu::count),
/// [`Pmu::set_el`](crate::Pmu::set_el) and
/// [`Pmu::events_until_overflow`](crate::Pmu::events_until_overflow) need. [`SoftBackend`]
/// implements it; an emulator with its own counting implements it for its backend and gets
/// the same `Pmu` helpers.
///
/// # Examples
///
/// ```
/// use vpmu::{backend::EmulatedBackend, El, SoftBackend};
/// let mut b = SoftBackend::new();
/// b.set_el(El::El0);
/// assert!(!EmulatedBackend::record(&mut b, 0x08, 10)); // nothing programmed: no overflow
/// assert_eq!(EmulatedBackend::events_until_overflow(&b, 0x08), None);
/// ```
pub trait EmulatedBackend: CounterBackend {
    /// Records `k` occurrences of `event` at the current exception level. Returns whether a
    /// counter reached its period: the `Pmu` then handles it at once.
    fn record(&mut self, event: u16, k: u64) -> bool;

    /// The guest now runs at `el`: events are reported there from now on.
    fn set_el(&mut self, el: El);

    /// Occurrences of `event` at the current exception level after which a counter reaches
    /// its period (`>= 1`), or `None` if no counter counts `event` here.
    fn events_until_overflow(&self, event: u16) -> Option<u64>;
}
