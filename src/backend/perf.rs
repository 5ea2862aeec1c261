//! [`PerfBackend`]: counting with Linux `perf_event_open`, for a VMM whose vCPUs are host threads.
//!
//! Every programmed guest counter is backed by one perf event that counts **the vCPU's
//! thread** — the thread the backend was built on, or the one named with
//! [`PerfBackendBuilder::thread`] — on any CPU, not inherited. So a VMM may call into the
//! [`Pmu`](crate::Pmu) from any thread: [`Pmu::restore`](crate::Pmu::restore) or
//! [`Pmu::set_one_reg`](crate::Pmu::set_one_reg) on its main thread programs events that count
//! the vCPU thread, not the main thread. Build the backend on the vCPU thread, or pass that
//! thread's id ([`current_thread_id`], called on the vCPU thread).
//!
//! # Life of an event: open once, re-arm in place
//!
//! [`CounterBackend::program`] opens an event the first time a counter counts an event under
//! a privilege filter, enabled, with `sample_period` = the distance to the counter's overflow.
//! From then on the descriptor is kept and re-armed with `ioctl`s:
//!
//! | `Pmu` call | perf |
//! |---|---|
//! | `program`, same event and filter as the counter's event | `PERF_EVENT_IOC_PERIOD`, `RESET`, `ENABLE` (and `DISABLE` first if it was counting) |
//! | `program`, another event or filter | close, `perf_event_open` |
//! | `set_period` (after an overflow, a counter write, `PMCR.LP`/`LC`/`D`) | `PERF_EVENT_IOC_PERIOD` (a counting software event: `DISABLE`, `PERIOD`, `ENABLE`) |
//! | `stop` (the guest disabled the counter, or `PMCR.E`) | `PERF_EVENT_IOC_DISABLE` |
//! | `read` | `read` (the event's count minus its count at the last read) |
//! | `release` (reset, a smaller N) | `DISABLE`, close |
//!
//! A guest PMU interrupt with seven live counters (the guest's driver stops every counter,
//! rewrites them and starts them again) therefore costs 28 `ioctl`s and 7 `read`s, not seven
//! closes and seven opens on top of them (the `perf_irq` bench measures it).
//!
//! `load` and `put` do nothing: the kernel switches a thread's events with the thread.
//!
//! # Which perf event counts an Arm event
//!
//! An [`EventMapping`] turns a PMUv3 event number into a [`PerfEventSpec`] (a perf `type` and
//! `config`), or `None` for an event the host cannot count. [`default_mapping`] is:
//!
//! - on an **aarch64** host, [`arm_raw_mapping`]: every event as a raw event (`PERF_TYPE_RAW`,
//!   `config` = the Arm event number), which the host's PMUv3 counts with exactly the
//!   architecture's meaning; only `SW_INCR` (0x00) and `CHAIN` (0x1E) are left out, since the
//!   [`Pmu`](crate::Pmu) counts them itself;
//! - on **any other** host, [`generic_mapping`]: perf's generic hardware events, only where
//!   their meaning is the Arm event's:
//!
//! | Arm event | meaning (Arm ARM) | perf generic event |
//! |---|---|---|
//! | 0x08 `INST_RETIRED` | instruction architecturally executed | `instructions` |
//! | 0x11 `CPU_CYCLES` | cycle | `cycles` |
//! | 0x21 `BR_RETIRED` | branch instruction architecturally executed | `branch-instructions` |
//! | 0x22 `BR_MIS_PRED_RETIRED` | branch instruction architecturally executed, mispredicted | `branch-misses` |
//!
//! Left out on purpose: the speculative branch events 0x10 `BR_MIS_PRED` and 0x12 `BR_PRED`
//! (perf's generic branch events count retired branches), and the cache events such as 0x03
//! `L1D_CACHE_REFILL` (perf's `cache-misses` is a last-level-cache event on most hosts, and
//! its `L1-dcache-load-misses` counts loads only, where the Arm event counts every refill).
//! Note also what a non-Arm host means: the guest is emulated there, so `instructions` counts
//! the host instructions the vCPU thread executes for it, not guest instructions; an emulator
//! that knows its guest's instruction count should use [`SoftBackend`](crate::SoftBackend).
//!
//! A host replaces the mapping with [`PerfBackend::with_mapping`] or
//! [`PerfBackendBuilder::mapping`]: to count `CPU_CYCLES` as the software event `task-clock`
//! (nanoseconds of thread run time: every Linux has it, even without a hardware PMU), to use
//! a dynamic PMU's `type` from `/sys/bus/event_source/devices/<pmu>/type` (on a big.LITTLE
//! host a raw event counts only on the CPUs of the PMU that accepted it: pin the vCPU thread
//! to one cluster and use that cluster's PMU type), or to add implementation-defined events.
//!
//! # What `PMCEID` advertises: `supports` probes
//!
//! [`CounterBackend::supports`] is true for an event the mapping maps **and**, for the events
//! `PMCEID` can advertise (0x0000..=0x003F and 0x4000..=0x403F), whose perf event really
//! opened when the backend was built: [`PerfBackendBuilder::build`] opens each mapped event
//! once, disabled, counting user time only (the least privileged form), and closes it. So a
//! guest is never told about an event that cannot count — on a host without a hardware PMU
//! (many cloud VMs) `cycles` and `instructions` do not open, and `PMCEID` says so instead of
//! offering counters that stay at zero. Two limits: on an aarch64 host the kernel accepts any
//! raw event number, so the probe proves perf access rather than that the host PMU
//! implements the event (its `events/` directory in sysfs lists those); and a request that
//! counts at EL1 may still be refused later where the probe passed (see *Permissions*).
//! Events outside those two ranges are supported when the mapping maps them, unprobed.
//! [`PerfBackendBuilder::probe`] turns probing off: then `supports` is the mapping alone and
//! an event that does not open fails in `program`, with the reason in
//! [`Pmu::take_backend_error`](crate::Pmu::take_backend_error). [`PerfBackend::check`] opens
//! one event on demand and says why it fails.
//!
//! **Probe once per VM.** The answer is the host's, the same for every vCPU: probe with the
//! first vCPU's backend (or [`PerfBackendBuilder::run_probe`]) and hand the [`PerfProbe`] to
//! the others with [`PerfBackendBuilder::probed`], which then open nothing at build time.
//!
//! ```
//! use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
//! use vpmu::backend::CounterBackend;
//!
//! let map = |e: u16| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK);
//! let first = PerfBackend::builder().mapping(map).build(); // probes
//! let probe = first.probe_result();
//! let others: Vec<PerfBackend> = (1..4).map(|_| PerfBackend::builder().mapping(map).probed(probe).build()).collect();
//! assert!(others.iter().all(|b| b.supports(0x11) == first.supports(0x11)));
//! ```
//!
//! # Exception levels and attribution
//!
//! The host perf ABI offers privilege filters, not exception levels; [`Attribution`] says how
//! a request's EL filter becomes them. Every event sets `exclude_hv`.
//!
//! | [`Attribution`] | EL0 | EL1 | other bits | for |
//! |---|---|---|---|---|
//! | [`Thread`](Attribution::Thread) (default) | user (`exclude_user` when not counted) | kernel (`exclude_kernel` when not counted) | — | counting the thread as a host task |
//! | [`Guest`](Attribution::Guest) | user | kernel | `exclude_host` | a hardware-virtualized guest (KVM-style: the thread enters the guest with `KVM_RUN`) |
//! | [`UserSpace`](Attribution::UserSpace) | user | user | `exclude_kernel` always | an emulator or binary translator that runs the whole guest in host user space |
//!
//! With [`Guest`](Attribution::Guest) the event counts only while the thread runs the guest;
//! an arm64 host's PMU then applies the user/kernel filter to the guest's own EL0/EL1, which is
//! how KVM backs its own guests' counters. With [`Thread`](Attribution::Thread) the
//! mapping is an approximation: the thread's user time includes the VMM's own code on that
//! thread, and its kernel time the host kernel's work for it.
//!
//! # Permissions
//!
//! Counting kernel time (a request that counts at EL1, under [`Thread`](Attribution::Thread) or
//! [`Guest`](Attribution::Guest)) needs `kernel.perf_event_paranoid` <= 1 or `CAP_PERFMON`;
//! at 2 (the usual default) an unprivileged VMM gets [`ErrorKind::Denied`] for it, and at 3
//! (some distributions) perf is closed to unprivileged processes altogether. A guest that
//! programs `PMCCFILTR` = 0 (count at EL0 and EL1, its reset value) asks for kernel time.
//! [`UserSpace`](Attribution::UserSpace) never does.
//!
//! # Overflow: periods and signals
//!
//! Every request carries the distance to the counter's next architectural overflow; the event
//! gets it as `sample_period` (clamped to 2^63 - 1, the most perf accepts), so the kernel
//! notices the overflow when the event has counted that many. The host learns of it in a
//! signal handler, which cannot touch the [`Pmu`](crate::Pmu): it records the counter in the
//! backend's [`PendingOverflow`] ([`PerfBackend::pending`], or one the host gives
//! [`PerfBackendBuilder::pending`]) — one atomic OR, async-signal-safe — and the vCPU loop
//! then calls [`Pmu::handle_overflows`](crate::Pmu::handle_overflows) (or simply
//! [`Pmu::irq_level`](crate::Pmu::irq_level) before the next guest entry, which does it), which
//! handles exactly those counters. Which signal:
//!
//! 1. **No signal**: call [`Pmu::sync`](crate::Pmu::sync) at VM exits and on a timer. Counts
//!    stay exact (every guest read folds them in); only the overflow interrupt comes late.
//! 2. **`SIGTRAP`** ([`PerfBackendBuilder::sigtrap`], Linux 5.13+): perf's `sigtrap` sends the
//!    counted thread a synchronous `SIGTRAP` at each overflow, with `si_code` = `TRAP_PERF`
//!    and `si_perf_data` = the counter's [`CounterId::index`] (31 for `PMCCNTR`). The handler
//!    raises [`sig_data_bits`]`(si_perf_data)` on the vCPU's `PendingOverflow` (a signal also
//!    ends a blocking `KVM_RUN` with `EINTR`). Install the handler (with `SA_SIGINFO`) before
//!    enabling this: `SIGTRAP`'s default action ends the process. Since the signal goes to
//!    the vCPU thread itself, a handler finds that vCPU's `PendingOverflow` in a
//!    thread-local set up before the vCPU runs, or in a table indexed by thread.
//! 3. **fasync (`SIGIO` or any signal)**: in an [`OpenHook`] ([`PerfBackendBuilder::on_open`]),
//!    which gets every new event's descriptor, the host sets `O_ASYNC`, `F_SETSIG` and
//!    `F_SETOWN_EX` (`F_OWNER_TID`, the vCPU thread) with `fcntl`; the kernel then sends that
//!    signal at each overflow, `si_fd` naming the event ([`PerfBackend::raw_fd`] maps it back
//!    to a counter). Descriptors are kept across `stop` and re-arming, so the hook runs only
//!    when an event is really opened.
//!
//! The kernel throttles events that overflow too often (`kernel.perf_event_max_sample_rate`),
//! and a throttled hardware event stops counting for a while: a guest that programs a counter
//! a handful of events before its overflow, again and again, can lose counts. KVM shares this.
//!
//! # Multiplexing
//!
//! [`CounterBackend::max_event_counters`] is 31 by default
//! ([`PerfBackendBuilder::max_event_counters`] lowers it): perf multiplexes more events than
//! the host has counters. A multiplexed event counts only while it is scheduled, and the
//! backend reports its raw count, not a scaled estimate — scaling would make the guest's
//! counters jump and could move them backwards. KVM does the same.
//!
//! # Examples
//!
//! A cycle counter that counts the thread's run time in nanoseconds (`task-clock`), driven
//! through the guest's registers:
//!
//! ```
//! use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
//! use vpmu::backend::CounterBackend;
//! use vpmu::{config::PmuConfig, reg::PmuReg, El, Pmu};
//!
//! let backend = PerfBackend::with_mapping(|event| match event {
//!     0x11 => Some(PerfEventSpec::TASK_CLOCK), // CPU_CYCLES
//!     _ => None,
//! });
//! if !backend.supports(0x11) {
//!     eprintln!("perf is closed here: {:?}", backend.check(0x11).err());
//!     return Ok(());
//! }
//! let mut pmu = Pmu::new(PmuConfig::builder().counters(0).build()?, backend)?;
//! let _ = pmu.write(PmuReg::Pmccfiltr, 1 << 31, El::El1); // P: count at EL0 only (user time)
//! let _ = pmu.write(PmuReg::Pmcntenset, 1 << 31, El::El1); // the cycle counter
//! let _ = pmu.write(PmuReg::Pmcr, 1, El::El1); // PMCR.E
//! assert!(pmu.take_backend_error().is_none());
//!
//! let mut x = 0u64;
//! for i in 0..1_000_000u64 {
//!     x = std::hint::black_box(x.wrapping_add(i));
//! }
//! let ns = pmu.read(PmuReg::Pmccntr, El::El1).value().unwrap_or(0);
//! assert!(ns > 0);
//! # Ok::<(), vpmu::config::ConfigError>(())
//! ```
//!
//! A VMM's main thread builds the backend for a vCPU thread it has started, and hands it over:
//!
//! ```
//! use std::sync::mpsc;
//! use vpmu::backend::perf::{current_thread_id, PerfBackend};
//!
//! let (tid_tx, tid_rx) = mpsc::channel();
//! let (backend_tx, backend_rx) = mpsc::channel::<PerfBackend>();
//! let vcpu = std::thread::spawn(move || {
//!     tid_tx.send(current_thread_id()).unwrap();
//!     let backend = backend_rx.recv().unwrap(); // ... Pmu::new, restore, run the guest
//!     backend.thread()
//! });
//! let tid = tid_rx.recv()?;
//! let backend = PerfBackend::builder().thread(tid).build();
//! assert_eq!(backend.thread(), tid);
//! backend_tx.send(backend)?;
//! assert_eq!(vcpu.join().unwrap(), tid);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::vec::Vec;

use perf_event::events::Raw;
use perf_event::{Builder, Counter};

use super::{BackendError, CountRequest, CounterBackend, CounterId, ErrorKind, PendingOverflow};
use crate::config::{EVENT_CHAIN, EVENT_SW_INCR};
use crate::reg::MAX_EVENT_COUNTERS;

/// The largest `sample_period` perf accepts: it refuses periods with bit 63 set.
const MAX_PERIOD: u64 = u64::MAX >> 1;

/// A perf event: the `type`, `config`, `config1` and `config2` fields of `perf_event_attr`.
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::PerfEventSpec;
/// assert_eq!(PerfEventSpec::raw(0x11), PerfEventSpec::new(PerfEventSpec::TYPE_RAW, 0x11));
/// assert_eq!(PerfEventSpec::INSTRUCTIONS, PerfEventSpec::hardware(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PerfEventSpec {
    /// `perf_event_attr.type`: [`TYPE_HARDWARE`](Self::TYPE_HARDWARE),
    /// [`TYPE_SOFTWARE`](Self::TYPE_SOFTWARE), [`TYPE_RAW`](Self::TYPE_RAW), or a dynamic PMU's
    /// type from `/sys/bus/event_source/devices/<pmu>/type`.
    pub perf_type: u32,
    /// `perf_event_attr.config`: which event of that type.
    pub config: u64,
    /// `perf_event_attr.config1`, for PMUs that need it (0 otherwise).
    pub config1: u64,
    /// `perf_event_attr.config2`, for PMUs that need it (0 otherwise).
    pub config2: u64,
}

impl PerfEventSpec {
    /// `PERF_TYPE_HARDWARE`: perf's generic hardware events.
    pub const TYPE_HARDWARE: u32 = 0;
    /// `PERF_TYPE_SOFTWARE`: events the kernel counts itself.
    pub const TYPE_SOFTWARE: u32 = 1;
    /// `PERF_TYPE_HW_CACHE`: perf's generic cache events.
    pub const TYPE_HW_CACHE: u32 = 3;
    /// `PERF_TYPE_RAW`: the CPU PMU's own event numbers (on arm64, the PMUv3 event number).
    pub const TYPE_RAW: u32 = 4;

    /// `cycles` (`PERF_COUNT_HW_CPU_CYCLES`).
    pub const CPU_CYCLES: Self = Self::hardware(0);
    /// `instructions` (`PERF_COUNT_HW_INSTRUCTIONS`): instructions retired.
    pub const INSTRUCTIONS: Self = Self::hardware(1);
    /// `branch-instructions` (`PERF_COUNT_HW_BRANCH_INSTRUCTIONS`): branches retired.
    pub const BRANCH_INSTRUCTIONS: Self = Self::hardware(4);
    /// `branch-misses` (`PERF_COUNT_HW_BRANCH_MISSES`): mispredicted branches retired.
    pub const BRANCH_MISSES: Self = Self::hardware(5);
    /// `cpu-clock` (`PERF_COUNT_SW_CPU_CLOCK`): nanoseconds of a per-CPU clock.
    pub const CPU_CLOCK: Self = Self::software(0);
    /// `task-clock` (`PERF_COUNT_SW_TASK_CLOCK`): nanoseconds the thread ran.
    pub const TASK_CLOCK: Self = Self::software(1);
    /// `page-faults` (`PERF_COUNT_SW_PAGE_FAULTS`).
    pub const PAGE_FAULTS: Self = Self::software(2);

    /// An event of any perf type.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfEventSpec;
    /// let e = PerfEventSpec::new(PerfEventSpec::TYPE_SOFTWARE, 1);
    /// assert_eq!(e, PerfEventSpec::TASK_CLOCK);
    /// ```
    #[must_use]
    pub const fn new(perf_type: u32, config: u64) -> Self {
        Self { perf_type, config, config1: 0, config2: 0 }
    }

    /// A raw event of the CPU's PMU (`PERF_TYPE_RAW`).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfEventSpec;
    /// assert_eq!(PerfEventSpec::raw(0x08).perf_type, PerfEventSpec::TYPE_RAW);
    /// ```
    #[must_use]
    pub const fn raw(config: u64) -> Self {
        Self::new(Self::TYPE_RAW, config)
    }

    /// A generic hardware event (`PERF_TYPE_HARDWARE`, `config` a `PERF_COUNT_HW_*` number).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfEventSpec;
    /// assert_eq!(PerfEventSpec::hardware(0), PerfEventSpec::CPU_CYCLES);
    /// ```
    #[must_use]
    pub const fn hardware(id: u64) -> Self {
        Self::new(Self::TYPE_HARDWARE, id)
    }

    /// A software event (`PERF_TYPE_SOFTWARE`, `config` a `PERF_COUNT_SW_*` number).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfEventSpec;
    /// assert_eq!(PerfEventSpec::software(2), PerfEventSpec::PAGE_FAULTS);
    /// ```
    #[must_use]
    pub const fn software(id: u64) -> Self {
        Self::new(Self::TYPE_SOFTWARE, id)
    }

    /// The same event with `config1` set.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfEventSpec;
    /// assert_eq!(PerfEventSpec::raw(0x11).with_config1(1).config1, 1);
    /// ```
    #[must_use]
    pub const fn with_config1(mut self, config1: u64) -> Self {
        self.config1 = config1;
        self
    }

    /// The same event with `config2` set.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfEventSpec;
    /// assert_eq!(PerfEventSpec::raw(0x11).with_config2(7).config2, 7);
    /// ```
    #[must_use]
    pub const fn with_config2(mut self, config2: u64) -> Self {
        self.config2 = config2;
        self
    }
}

impl fmt::Display for PerfEventSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "perf type {} config {:#x}", self.perf_type, self.config)?;
        if self.config1 != 0 || self.config2 != 0 {
            write!(f, " config1 {:#x} config2 {:#x}", self.config1, self.config2)?;
        }
        Ok(())
    }
}

/// Maps a PMUv3 event number to the perf event that counts it, `None` if the host cannot.
pub type EventMapping = fn(u16) -> Option<PerfEventSpec>;

/// Called with every event the backend opens (its counter and its file descriptor), right
/// after it opens: the place to set up fasync overflow signals with `fcntl`. The descriptor
/// stays the backend's: do not close it.
pub type OpenHook = fn(CounterId, RawFd);

/// The mapping a [`PerfBackend`] uses unless told otherwise: [`arm_raw_mapping`] on an aarch64
/// host, [`generic_mapping`] elsewhere (see the [module docs](self)).
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::{default_mapping, PerfEventSpec};
/// let cycles = default_mapping(0x11);
/// if cfg!(target_arch = "aarch64") {
///     assert_eq!(cycles, Some(PerfEventSpec::raw(0x11)));
/// } else {
///     assert_eq!(cycles, Some(PerfEventSpec::CPU_CYCLES));
/// }
/// ```
#[must_use]
pub fn default_mapping(event: u16) -> Option<PerfEventSpec> {
    #[cfg(target_arch = "aarch64")]
    {
        arm_raw_mapping(event)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        generic_mapping(event)
    }
}

/// Every event as a raw event of the host's PMUv3 (`PERF_TYPE_RAW`, `config` = the event
/// number), except `SW_INCR` and `CHAIN`, which the [`Pmu`](crate::Pmu) counts itself. Exact
/// on an aarch64 host; meaningless on any other.
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::{arm_raw_mapping, PerfEventSpec};
/// assert_eq!(arm_raw_mapping(0x4004), Some(PerfEventSpec::raw(0x4004)));
/// assert_eq!(arm_raw_mapping(0x1e), None); // CHAIN
/// ```
#[must_use]
pub fn arm_raw_mapping(event: u16) -> Option<PerfEventSpec> {
    match event {
        EVENT_SW_INCR | EVENT_CHAIN => None,
        e => Some(PerfEventSpec::raw(u64::from(e))),
    }
}

/// The Arm events whose meaning perf's generic hardware events share: `INST_RETIRED`,
/// `CPU_CYCLES`, `BR_RETIRED`, `BR_MIS_PRED_RETIRED` (the table in the [module docs](self)).
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::{generic_mapping, PerfEventSpec};
/// assert_eq!(generic_mapping(0x08), Some(PerfEventSpec::INSTRUCTIONS));
/// assert_eq!(generic_mapping(0x12), None); // BR_PRED is speculative: no generic event
/// ```
#[must_use]
pub fn generic_mapping(event: u16) -> Option<PerfEventSpec> {
    match event {
        0x08 => Some(PerfEventSpec::INSTRUCTIONS),        // INST_RETIRED
        0x11 => Some(PerfEventSpec::CPU_CYCLES),          // CPU_CYCLES
        0x21 => Some(PerfEventSpec::BRANCH_INSTRUCTIONS), // BR_RETIRED
        0x22 => Some(PerfEventSpec::BRANCH_MISSES),       // BR_MIS_PRED_RETIRED
        _ => None,
    }
}

/// Which of the thread's execution counts for the guest, and how a request's EL0/EL1 filter
/// becomes perf's privilege filters (the table in the [module docs](self)).
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::{Attribution, PerfBackend};
/// let b = PerfBackend::builder().attribution(Attribution::UserSpace).probe(false).build();
/// assert_eq!(b.attribution(), Attribution::UserSpace);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Attribution {
    /// The thread as a host task: EL0 is user time, EL1 kernel time.
    #[default]
    Thread,
    /// Only the thread's time inside a hardware-virtualized guest (`exclude_host`); EL0 and EL1
    /// as user and kernel, which an arm64 host applies to the guest's own exception levels.
    Guest,
    /// The thread's user time, for EL0 and EL1 alike (`exclude_kernel` always): an emulator
    /// running the whole guest in host user space. Needs no privilege at
    /// `perf_event_paranoid` = 2.
    UserSpace,
}

impl Attribution {
    /// `(exclude_user, exclude_kernel, exclude_host)` for a request counting at `el0`/`el1`.
    const fn exclusions(self, el0: bool, el1: bool) -> (bool, bool, bool) {
        match self {
            Attribution::Thread => (!el0, !el1, false),
            Attribution::Guest => (!el0, !el1, true),
            Attribution::UserSpace => (false, true, false),
        }
    }
}

/// Why a [`PerfBackend`] could not count an event: its [`ErrorKind`], the Arm event, the perf
/// event it was mapped to, and the `perf_event_open` error.
///
/// | `errno` | [`ErrorKind`] |
/// |---|---|
/// | `EACCES`, `EPERM` (`perf_event_paranoid`, missing `CAP_PERFMON`, a security module) | [`Denied`](ErrorKind::Denied) |
/// | `EMFILE`, `ENFILE` (descriptors), `ENOSPC`, `EBUSY` (counters held), `ENOMEM` | [`Exhausted`](ErrorKind::Exhausted) |
/// | `ENOENT`, `ENODEV`, `EOPNOTSUPP`, `EINVAL`, `E2BIG`, `ENOSYS`; no mapping | [`Unsupported`](ErrorKind::Unsupported) |
/// | `ESRCH` (the thread the backend counts for has exited) | [`WrongContext`](ErrorKind::WrongContext) |
/// | anything else | [`Other`](ErrorKind::Other) |
///
/// # Examples
///
/// ```
/// use std::io;
/// use vpmu::backend::perf::PerfError;
/// use vpmu::backend::{BackendError, ErrorKind};
///
/// let e = PerfError::new(0x11, None, io::Error::from(io::ErrorKind::PermissionDenied));
/// assert_eq!(e.kind(), ErrorKind::Denied);
/// assert_eq!(e.event(), 0x11);
/// ```
#[derive(Debug)]
pub struct PerfError {
    kind: ErrorKind,
    event: u16,
    spec: Option<PerfEventSpec>,
    error: Option<io::Error>,
}

/// Linux `errno` values. Those up to 34 are the same on every Linux architecture.
mod errno {
    pub(super) const EPERM: i32 = 1;
    pub(super) const ENOENT: i32 = 2;
    pub(super) const ESRCH: i32 = 3;
    pub(super) const E2BIG: i32 = 7;
    pub(super) const ENOMEM: i32 = 12;
    pub(super) const EACCES: i32 = 13;
    pub(super) const EBUSY: i32 = 16;
    pub(super) const ENODEV: i32 = 19;
    pub(super) const EINVAL: i32 = 22;
    pub(super) const ENFILE: i32 = 23;
    pub(super) const EMFILE: i32 = 24;
    pub(super) const ENOSPC: i32 = 28;
    #[cfg(any(target_arch = "mips", target_arch = "mips64", target_arch = "mips32r6", target_arch = "mips64r6"))]
    pub(super) const EOPNOTSUPP: i32 = 122;
    #[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
    pub(super) const EOPNOTSUPP: i32 = 45;
    #[cfg(not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "mips32r6",
        target_arch = "mips64r6",
        target_arch = "sparc",
        target_arch = "sparc64"
    )))]
    pub(super) const EOPNOTSUPP: i32 = 95;
}

impl PerfError {
    /// The error of opening `spec` (the perf event `event` was mapped to, if known) for the Arm
    /// event `event`; its kind from [`PerfError::kind_of`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use vpmu::backend::perf::{PerfError, PerfEventSpec};
    /// use vpmu::backend::{BackendError, ErrorKind};
    ///
    /// let e = PerfError::new(0x08, Some(PerfEventSpec::INSTRUCTIONS), io::Error::from_raw_os_error(2));
    /// assert_eq!(e.kind(), ErrorKind::Unsupported); // ENOENT: no PMU counts it
    /// assert_eq!(e.raw_os_error(), Some(2));
    /// ```
    #[must_use]
    pub fn new(event: u16, spec: Option<PerfEventSpec>, error: io::Error) -> Self {
        Self { kind: Self::kind_of(&error), event, spec, error: Some(error) }
    }

    /// The error for an event the mapping does not map: [`ErrorKind::Unsupported`], no I/O
    /// error.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfError;
    /// use vpmu::backend::{BackendError, ErrorKind};
    /// let e = PerfError::unmapped(0x4004);
    /// assert_eq!(e.kind(), ErrorKind::Unsupported);
    /// assert!(e.io_error().is_none() && e.spec().is_none());
    /// ```
    #[must_use]
    pub const fn unmapped(event: u16) -> Self {
        Self { kind: ErrorKind::Unsupported, event, spec: None, error: None }
    }

    /// The [`ErrorKind`] of a `perf_event_open` failure (the table on [`PerfError`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use vpmu::backend::perf::PerfError;
    /// use vpmu::backend::ErrorKind;
    /// assert_eq!(PerfError::kind_of(&io::Error::from_raw_os_error(24)), ErrorKind::Exhausted); // EMFILE
    /// assert_eq!(PerfError::kind_of(&io::Error::from_raw_os_error(13)), ErrorKind::Denied); // EACCES
    /// ```
    #[must_use]
    pub fn kind_of(error: &io::Error) -> ErrorKind {
        use errno::*;
        match error.raw_os_error() {
            Some(EACCES | EPERM) => ErrorKind::Denied,
            Some(EMFILE | ENFILE | ENOSPC | EBUSY | ENOMEM) => ErrorKind::Exhausted,
            Some(ENOENT | ENODEV | EINVAL | E2BIG) => ErrorKind::Unsupported,
            Some(ESRCH) => ErrorKind::WrongContext,
            Some(e) if e == EOPNOTSUPP => ErrorKind::Unsupported,
            // ENOSYS (no perf in this kernel) and perf-event2's E2BIG (which it turns into a
            // custom error) both have the kind `Unsupported`; the rest as their kind says.
            _ => match error.kind() {
                io::ErrorKind::PermissionDenied => ErrorKind::Denied,
                io::ErrorKind::Unsupported | io::ErrorKind::NotFound => ErrorKind::Unsupported,
                io::ErrorKind::OutOfMemory => ErrorKind::Exhausted,
                _ => ErrorKind::Other,
            },
        }
    }

    /// The Arm event that could not be counted.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfError;
    /// assert_eq!(PerfError::unmapped(0x23).event(), 0x23);
    /// ```
    #[must_use]
    pub const fn event(&self) -> u16 {
        self.event
    }

    /// The perf event it was mapped to; `None` when the mapping has none.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use vpmu::backend::perf::{PerfError, PerfEventSpec};
    /// let e = PerfError::new(0x11, Some(PerfEventSpec::CPU_CYCLES), io::Error::from_raw_os_error(2));
    /// assert_eq!(e.spec(), Some(PerfEventSpec::CPU_CYCLES));
    /// ```
    #[must_use]
    pub const fn spec(&self) -> Option<PerfEventSpec> {
        self.spec
    }

    /// The `perf_event_open` error; `None` when the mapping has no event.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use vpmu::backend::perf::PerfError;
    /// let e = PerfError::new(0x11, None, io::Error::from_raw_os_error(1));
    /// assert_eq!(e.io_error().map(io::Error::kind), Some(io::ErrorKind::PermissionDenied));
    /// ```
    #[must_use]
    pub const fn io_error(&self) -> Option<&io::Error> {
        self.error.as_ref()
    }

    /// The `errno`, when the error carries one.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io;
    /// use vpmu::backend::perf::PerfError;
    /// assert_eq!(PerfError::new(0x11, None, io::Error::from_raw_os_error(24)).raw_os_error(), Some(24));
    /// ```
    #[must_use]
    pub fn raw_os_error(&self) -> Option<i32> {
        self.error.as_ref().and_then(io::Error::raw_os_error)
    }
}

impl BackendError for PerfError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for PerfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.spec, &self.error) {
            (_, None) => write!(f, "Arm event {:#06x}: no perf event maps it", self.event),
            (Some(spec), Some(e)) => write!(f, "Arm event {:#06x} as {spec}: perf_event_open: {e}", self.event),
            (None, Some(e)) => write!(f, "Arm event {:#06x}: perf_event_open: {e}", self.event),
        }
    }
}

impl std::error::Error for PerfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.as_ref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Which events open on this host, found once ([`PerfBackendBuilder::run_probe`],
/// [`PerfBackend::probe_result`]) and shared by every vCPU's backend
/// ([`PerfBackendBuilder::probed`]): the `PMCEID` events (0x0000..=0x003F and
/// 0x4000..=0x403F) whose perf event opened. A plain value: copy it to every vCPU.
///
/// It answers for the mapping and attribution it was made with; give it to builders with the
/// same ones.
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::{PerfBackend, PerfEventSpec, PerfProbe};
/// use vpmu::backend::CounterBackend;
///
/// // No PMU has perf type 0xffff_0000: the probe finds that 0x11 does not open.
/// let builder = PerfBackend::builder().mapping(|e| (e == 0x11).then_some(PerfEventSpec::new(0xffff_0000, 0)));
/// let probe: PerfProbe = builder.run_probe();
/// assert_eq!(probe.opened(0x11), Some(false));
/// assert_eq!(probe.opened(0x1000), None); // not a PMCEID event: never probed
/// assert!(!builder.probed(probe).build().supports(0x11));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PerfProbe {
    /// Events 0x00..=0x3F (word 0) and 0x4000..=0x403F (word 1) that opened.
    opened: [u64; 2],
}

impl PerfProbe {
    /// Whether `event`'s perf event opened: `None` for an event outside the two `PMCEID`
    /// ranges, which are never probed.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// let probe = PerfBackend::builder().probe(false).build().probe_result();
    /// assert_eq!(probe.opened(0x4100), None);
    /// ```
    #[must_use]
    pub const fn opened(&self, event: u16) -> Option<bool> {
        let bit = (event & 0x3f) as u32;
        match event {
            0..=0x3f => Some(self.opened[0] & (1 << bit) != 0),
            0x4000..=0x403f => Some(self.opened[1] & (1 << bit) != 0),
            _ => None,
        }
    }
}

/// What `build` does about probing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probing {
    /// Open each mapped `PMCEID` event once.
    Run,
    /// Trust the mapping.
    Off,
    /// Use a probe already made.
    Given(PerfProbe),
}

/// How to build a [`PerfBackend`]: start from [`PerfBackend::builder`].
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::{Attribution, PerfBackend, PerfEventSpec};
/// use vpmu::backend::CounterBackend;
///
/// let b = PerfBackend::builder()
///     .mapping(|e| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK))
///     .attribution(Attribution::UserSpace)
///     .max_event_counters(6)
///     .probe(false)
///     .build();
/// assert_eq!(b.max_event_counters(), 6);
/// assert!(b.supports(0x11) && !b.supports(0x08));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct PerfBackendBuilder {
    mapping: EventMapping,
    attribution: Attribution,
    max_event_counters: u8,
    probing: Probing,
    sigtrap: bool,
    on_open: Option<OpenHook>,
    thread: Option<i32>,
    pending: Option<Arc<PendingOverflow>>,
}

impl Default for PerfBackendBuilder {
    fn default() -> Self {
        Self {
            mapping: default_mapping,
            attribution: Attribution::Thread,
            max_event_counters: MAX_EVENT_COUNTERS,
            probing: Probing::Run,
            sigtrap: false,
            on_open: None,
            thread: None,
            pending: None,
        }
    }
}

impl PerfBackendBuilder {
    /// Which perf event counts each Arm event. Default: [`default_mapping`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{generic_mapping, PerfBackend};
    /// use vpmu::backend::CounterBackend;
    /// let b = PerfBackend::builder().mapping(generic_mapping).probe(false).build();
    /// assert!(b.supports(0x21) && !b.supports(0x12));
    /// ```
    pub fn mapping(mut self, mapping: EventMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// How EL0/EL1 become perf's filters. Default: [`Attribution::Thread`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{Attribution, PerfBackend};
    /// let b = PerfBackend::builder().attribution(Attribution::Guest).probe(false).build();
    /// assert_eq!(b.attribution(), Attribution::Guest);
    /// ```
    pub fn attribution(mut self, attribution: Attribution) -> Self {
        self.attribution = attribution;
        self
    }

    /// The most event counters a [`Pmu`](crate::Pmu) may have with this backend (at most 31,
    /// the default; larger values count as 31).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::CounterBackend;
    /// assert_eq!(PerfBackend::builder().max_event_counters(200).probe(false).build().max_event_counters(), 31);
    /// ```
    pub fn max_event_counters(mut self, n: u8) -> Self {
        self.max_event_counters = n.min(MAX_EVENT_COUNTERS);
        self
    }

    /// Whether [`build`](Self::build) opens each mapped event once so that `supports` (and
    /// `PMCEID`) only offer events that open. Default: on. [`probed`](Self::probed) replaces
    /// the probe with one already made.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
    /// use vpmu::backend::CounterBackend;
    /// // No PMU has perf type 0xffff_0000: unprobed it is offered, probed it is not.
    /// let map = |e: u16| (e == 0x11).then_some(PerfEventSpec::new(0xffff_0000, 0));
    /// assert!(PerfBackend::builder().mapping(map).probe(false).build().supports(0x11));
    /// assert!(!PerfBackend::builder().mapping(map).probe(true).build().supports(0x11));
    /// ```
    pub fn probe(mut self, probe: bool) -> Self {
        self.probing = if probe { Probing::Run } else { Probing::Off };
        self
    }

    /// Use `probe`, made once for the VM, instead of probing again: `build` then opens
    /// nothing. An event is supported when the mapping maps it and, for the `PMCEID` events,
    /// when the probe saw it open.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
    /// use vpmu::backend::CounterBackend;
    /// let builder = PerfBackend::builder().mapping(|e| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK));
    /// let probe = builder.run_probe();
    /// let vcpus: Vec<_> = (0..4).map(|_| builder.clone().probed(probe).build()).collect();
    /// assert!(vcpus.iter().all(|b| b.probe_result() == probe));
    /// ```
    pub fn probed(mut self, probe: PerfProbe) -> Self {
        self.probing = Probing::Given(probe);
        self
    }

    /// Whether each event sends the counted thread a synchronous `SIGTRAP` when it reaches
    /// its period (perf's `sigtrap` with `remove_on_exec`, `sig_data` = the counter's index;
    /// Linux 5.13+). Default: off. **Install a `SIGTRAP` handler first**: the default action
    /// ends the process. See the [module docs](self#overflow-periods-and-signals).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// let b = PerfBackend::builder().sigtrap(true).probe(false).build();
    /// assert!(b.sigtrap());
    /// ```
    pub fn sigtrap(mut self, sigtrap: bool) -> Self {
        self.sigtrap = sigtrap;
        self
    }

    /// A function called with every event the backend opens, right after it opens (see
    /// [`OpenHook`]). Re-arming an event does not open it again.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::CounterId;
    /// fn arm_fasync(_counter: CounterId, _fd: std::os::fd::RawFd) {
    ///     // fcntl(fd, F_SETFL, O_ASYNC); fcntl(fd, F_SETSIG, sig); fcntl(fd, F_SETOWN_EX, ...)
    /// }
    /// let b = PerfBackend::builder().on_open(arm_fasync).probe(false).build();
    /// # let _ = b;
    /// ```
    pub fn on_open(mut self, hook: OpenHook) -> Self {
        self.on_open = Some(hook);
        self
    }

    /// The thread whose execution the events count: a thread id (`gettid()`, see
    /// [`current_thread_id`]) of this process. Default: the thread that calls
    /// [`build`](Self::build). Every `Pmu` call may then come from any thread: the events
    /// count this one.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{current_thread_id, PerfBackend};
    /// let vcpu_tid = std::thread::spawn(current_thread_id).join().unwrap();
    /// let b = PerfBackend::builder().thread(vcpu_tid).probe(false).build();
    /// assert_eq!(b.thread(), vcpu_tid);
    /// assert_eq!(PerfBackend::builder().probe(false).build().thread(), current_thread_id());
    /// ```
    pub fn thread(mut self, tid: i32) -> Self {
        self.thread = Some(tid);
        self
    }

    /// The [`PendingOverflow`] the host's signal handler raises overflows on, shared with it.
    /// Default: a new one, which [`PerfBackend::pending`] gives out.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::{CounterBackend, PendingOverflow};
    ///
    /// let pending = Arc::new(PendingOverflow::new());
    /// let mut b = PerfBackend::builder().pending(Arc::clone(&pending)).probe(false).build();
    /// pending.raise(1 << 31); // in the signal handler
    /// assert_eq!(b.take_overflows(), 1 << 31);
    /// ```
    pub fn pending(mut self, pending: Arc<PendingOverflow>) -> Self {
        self.pending = Some(pending);
        self
    }

    /// Probes now, on the calling thread, with this builder's mapping and attribution: what
    /// [`build`](Self::build) does with probing on, as a value to share
    /// ([`probed`](Self::probed)). At most 128 `perf_event_open` calls, fewer when events
    /// share a perf event.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
    /// let probe = PerfBackend::builder().mapping(|e| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK)).run_probe();
    /// assert_eq!(probe.opened(0x08), Some(false)); // unmapped
    /// ```
    #[must_use]
    pub fn run_probe(&self) -> PerfProbe {
        // Probe results by perf event: events that share one are opened once.
        let mut tried: Vec<(PerfEventSpec, bool)> = Vec::new();
        let mut opened = [0u64; 2];
        for (word, base) in opened.iter_mut().zip([0u16, 0x4000]) {
            for bit in 0..64u16 {
                let Some(spec) = (self.mapping)(base | bit) else { continue };
                let ok = if let Some(&(_, ok)) = tried.iter().find(|(s, _)| *s == spec) {
                    ok
                } else {
                    let ok = probe_open(spec, self.attribution).is_ok();
                    tried.push((spec, ok));
                    ok
                };
                if ok {
                    *word |= 1 << bit;
                }
            }
        }
        PerfProbe { opened }
    }

    /// The backend. With probing on (and no [`probed`](Self::probed) result), runs
    /// [`run_probe`](Self::run_probe) first.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::CounterBackend;
    /// let b = PerfBackend::builder().build();
    /// assert!(!b.supports(0x00)); // SW_INCR never reaches a backend
    /// ```
    #[must_use]
    pub fn build(self) -> PerfBackend {
        let probe = match self.probing {
            Probing::Run => self.run_probe(),
            Probing::Given(p) => p,
            Probing::Off => {
                let mut opened = [0u64; 2];
                for (word, base) in opened.iter_mut().zip([0u16, 0x4000]) {
                    for bit in 0..64u16 {
                        if (self.mapping)(base | bit).is_some() {
                            *word |= 1 << bit;
                        }
                    }
                }
                PerfProbe { opened }
            }
        };
        PerfBackend {
            mapping: self.mapping,
            attribution: self.attribution,
            max_event_counters: self.max_event_counters,
            sigtrap: self.sigtrap,
            on_open: self.on_open,
            tid: self.thread.unwrap_or_else(sys::gettid),
            pending: self.pending.unwrap_or_default(),
            probe,
            slots: Default::default(),
        }
    }
}

/// The calling thread's id (`gettid()`): call it on the vCPU thread and give it to
/// [`PerfBackendBuilder::thread`] when another thread builds the backend.
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::current_thread_id;
/// let main = current_thread_id();
/// assert!(main > 0);
/// assert_ne!(std::thread::spawn(current_thread_id).join().unwrap(), main);
/// ```
#[must_use]
pub fn current_thread_id() -> i32 {
    sys::gettid()
}

/// The [`PendingOverflow`] bits for a perf `SIGTRAP`'s `si_perf_data` (the counter's
/// [`CounterId::index`], which the backend sets as `sig_data`): `1 << index`, or 0 for a value
/// that names no counter. What a `SIGTRAP` handler raises.
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::sig_data_bits;
/// use vpmu::backend::CounterId;
/// assert_eq!(sig_data_bits(CounterId::Cycle.index() as u64), 1 << 31);
/// assert_eq!(sig_data_bits(3), 1 << 3);
/// assert_eq!(sig_data_bits(32), 0);
/// ```
#[must_use]
pub const fn sig_data_bits(si_perf_data: u64) -> u32 {
    if si_perf_data < 32 {
        1 << si_perf_data
    } else {
        0
    }
}

/// What an event was opened to count: re-arming keeps it, anything else reopens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    spec: PerfEventSpec,
    /// `(exclude_user, exclude_kernel, exclude_host)`.
    exclude: (bool, bool, bool),
}

/// One counter's perf event: what it counts, its count at the last read, and whether it is
/// enabled (a stopped counter keeps its event, disabled).
#[derive(Debug)]
struct Slot {
    counter: Counter,
    key: Key,
    last: u64,
    counting: bool,
}

impl Slot {
    /// Counts from zero with a fresh `period`: `DISABLE` (if counting), `PERIOD`, `RESET`,
    /// `ENABLE`.
    fn restart(&mut self, period: u64) -> io::Result<()> {
        if self.counting {
            self.counter.disable()?;
            self.counting = false;
        }
        sys::set_period(&self.counter, period)?;
        self.counter.reset()?;
        self.last = 0;
        self.counter.enable()?;
        self.counting = true;
        Ok(())
    }

    /// A new period from now, the count going on.
    fn set_period(&mut self, period: u64) -> io::Result<()> {
        // The kernel re-arms a counting software event (other than the hrtimer clocks) with
        // nothing left of its period: its next event would overflow at once. Disabled, it
        // is re-armed in full when enabled again.
        let soft = self.key.spec.perf_type == PerfEventSpec::TYPE_SOFTWARE && !matches!(self.key.spec.config, 0 | 1);
        if soft {
            self.counter.disable()?;
            self.counting = false;
            sys::set_period(&self.counter, period)?;
            self.counter.enable()?;
            self.counting = true;
            Ok(())
        } else {
            sys::set_period(&self.counter, period)
        }
    }
}

/// The Linux `perf_event_open` backend: one perf event per counter, counting the vCPU's thread,
/// opened once and re-armed in place. See the [module docs](self).
///
/// # Examples
///
/// ```
/// use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
/// use vpmu::backend::{CounterBackend, CounterId, CountRequest};
///
/// let mut b = PerfBackend::with_mapping(|e| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK));
/// let req = CountRequest::new(0x11, true, false, 1 << 40);
/// match b.program(CounterId::Cycle, &req) {
///     Ok(()) => {
///         let first = b.read(CounterId::Cycle); // nanoseconds since program
///         let _ = first;
///         b.stop(CounterId::Cycle); // disabled, the event kept
///         assert!(b.has_event(CounterId::Cycle) && !b.is_programmed(CounterId::Cycle));
///         b.release(CounterId::Cycle); // closed
///         assert_eq!(b.read(CounterId::Cycle), 0);
///     }
///     Err(e) => eprintln!("no perf here: {e}"),
/// }
/// ```
#[derive(Debug)]
pub struct PerfBackend {
    mapping: EventMapping,
    attribution: Attribution,
    max_event_counters: u8,
    sigtrap: bool,
    on_open: Option<OpenHook>,
    /// The thread the events count.
    tid: i32,
    pending: Arc<PendingOverflow>,
    probe: PerfProbe,
    /// Per counter (by [`CounterId::index`]): its event, once opened.
    slots: [Option<Slot>; 32],
}

impl Default for PerfBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfBackend {
    /// A backend with the [`default_mapping`], [`Attribution::Thread`], 31 event counters and
    /// probing, counting the calling thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::CounterBackend;
    /// assert_eq!(PerfBackend::new().max_event_counters(), 31);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder, to choose the mapping, attribution, counter limit, probing, thread and
    /// signals.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// let b = PerfBackend::builder().max_event_counters(4).build();
    /// # let _ = b;
    /// ```
    pub fn builder() -> PerfBackendBuilder {
        PerfBackendBuilder::default()
    }

    /// A backend with the defaults of [`PerfBackend::new`] but the host's own `mapping`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
    /// use vpmu::backend::CounterBackend;
    /// let b = PerfBackend::with_mapping(|e| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK));
    /// assert!(!b.supports(0x08));
    /// ```
    #[must_use]
    pub fn with_mapping(mapping: EventMapping) -> Self {
        Self::builder().mapping(mapping).build()
    }

    /// The attribution in use.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{Attribution, PerfBackend};
    /// assert_eq!(PerfBackend::builder().probe(false).build().attribution(), Attribution::Thread);
    /// ```
    #[must_use]
    pub const fn attribution(&self) -> Attribution {
        self.attribution
    }

    /// Whether events send `SIGTRAP` at their period ([`PerfBackendBuilder::sigtrap`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// assert!(!PerfBackend::builder().probe(false).build().sigtrap());
    /// ```
    #[must_use]
    pub const fn sigtrap(&self) -> bool {
        self.sigtrap
    }

    /// The thread the events count ([`PerfBackendBuilder::thread`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{current_thread_id, PerfBackend};
    /// assert_eq!(PerfBackend::builder().probe(false).build().thread(), current_thread_id());
    /// ```
    #[must_use]
    pub const fn thread(&self) -> i32 {
        self.tid
    }

    /// The [`PendingOverflow`] that [`CounterBackend::take_overflows`] takes from: give a clone
    /// to the signal handler, which raises the counters that reached their period.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{sig_data_bits, PerfBackend};
    /// use vpmu::backend::CounterBackend;
    /// let mut b = PerfBackend::builder().probe(false).build();
    /// let pending = b.pending().clone();
    /// pending.raise(sig_data_bits(2)); // the SIGTRAP handler, si_perf_data = 2
    /// assert_eq!(b.take_overflows(), 1 << 2);
    /// ```
    #[must_use]
    pub const fn pending(&self) -> &Arc<PendingOverflow> {
        &self.pending
    }

    /// What this backend's probe found (or, unprobed, the mapping's events): to share with the
    /// other vCPUs' builders ([`PerfBackendBuilder::probed`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
    /// let b = PerfBackend::builder().mapping(|e| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK)).probe(false).build();
    /// assert_eq!(b.probe_result().opened(0x11), Some(true));
    /// ```
    #[must_use]
    pub const fn probe_result(&self) -> PerfProbe {
        self.probe
    }

    /// Whether `counter`'s perf event is counting now (programmed, not stopped).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::CounterId;
    /// assert!(!PerfBackend::builder().probe(false).build().is_programmed(CounterId::Cycle));
    /// ```
    #[must_use]
    pub fn is_programmed(&self, counter: CounterId) -> bool {
        self.slot(counter).is_some_and(|s| s.counting)
    }

    /// Whether `counter` holds a perf event, counting or stopped: a stopped counter keeps its
    /// event until it is released or programmed with another event or filter.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::CounterId;
    /// assert!(!PerfBackend::builder().probe(false).build().has_event(CounterId::Cycle));
    /// ```
    #[must_use]
    pub fn has_event(&self, counter: CounterId) -> bool {
        self.slot(counter).is_some()
    }

    /// The file descriptor of `counter`'s perf event, while it has one ([`has_event`](Self::has_event)):
    /// to match an overflow signal's `si_fd` to its counter. It stays the backend's: do not
    /// close it.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// use vpmu::backend::CounterId;
    /// assert_eq!(PerfBackend::builder().probe(false).build().raw_fd(CounterId::Cycle), None);
    /// ```
    #[must_use]
    pub fn raw_fd(&self, counter: CounterId) -> Option<RawFd> {
        self.slot(counter).map(|s| s.counter.as_raw_fd())
    }

    /// Opens and closes the perf event the mapping gives `event`, on the calling thread, the
    /// way the probe does (disabled, user time only, with this backend's attribution).
    ///
    /// # Errors
    ///
    /// [`PerfError::unmapped`] when the mapping has no event for `event`, else the
    /// `perf_event_open` error.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::{PerfBackend, PerfEventSpec};
    /// use vpmu::backend::{BackendError, ErrorKind};
    /// let b = PerfBackend::builder().mapping(|e| (e == 0x11).then_some(PerfEventSpec::TASK_CLOCK)).probe(false).build();
    /// assert_eq!(b.check(0x08).map_err(|e| e.kind()), Err(ErrorKind::Unsupported));
    /// ```
    pub fn check(&self, event: u16) -> Result<(), PerfError> {
        let spec = (self.mapping)(event).ok_or(PerfError::unmapped(event))?;
        probe_open(spec, self.attribution).map_err(|e| PerfError::new(event, Some(spec), e))
    }

    fn slot(&self, counter: CounterId) -> Option<&Slot> {
        self.slots.get(counter.index()).and_then(Option::as_ref)
    }

    /// Opens `key` for the backend's thread, on any CPU, enabled, with `sample_period` =
    /// `period` (and `SIGTRAP` with `sig_data` = `index` when asked).
    fn open(&self, key: Key, period: u64, index: usize) -> io::Result<Counter> {
        let mut b = event_builder(key);
        b.observe_pid(self.tid).sample_period(period).enabled(true);
        if self.sigtrap {
            b.sigtrap(true).remove_on_exec(true).sig_data(u64::try_from(index).unwrap_or(u64::MAX));
        }
        b.build()
    }
}

/// A perf event builder for `key`: any CPU, not inherited, never counting the hypervisor.
fn event_builder(key: Key) -> Builder<'static> {
    let Key { spec, exclude: (exclude_user, exclude_kernel, exclude_host) } = key;
    let mut b = Builder::new(Raw::new(spec.config).config1(spec.config1).config2(spec.config2));
    b.attrs_mut().type_ = spec.perf_type;
    b.any_cpu().inherit(false).exclude_user(exclude_user).exclude_kernel(exclude_kernel).exclude_hv(true).exclude_host(exclude_host);
    b
}

/// Opens `spec` for the calling thread, disabled, user time only under `attribution`, and
/// closes it: the probe.
fn probe_open(spec: PerfEventSpec, attribution: Attribution) -> io::Result<()> {
    let mut b = event_builder(Key { spec, exclude: attribution.exclusions(true, false) });
    b.observe_self();
    b.build().map(drop)
}

/// The period perf is given for a request: at least 1, at most 2^63 - 1.
fn perf_period(req: &CountRequest) -> u64 {
    req.period.clamp(1, MAX_PERIOD)
}

impl CounterBackend for PerfBackend {
    type Error = PerfError;

    fn max_event_counters(&self) -> u8 {
        self.max_event_counters
    }

    fn supports(&self, event: u16) -> bool {
        (self.mapping)(event).is_some() && self.probe.opened(event) != Some(false)
    }

    /// Counts `req` from zero on the counter's event: re-armed in place (`PERIOD`, `RESET`,
    /// `ENABLE`) when it already counts the same perf event under the same filters, opened
    /// afresh otherwise (the old one closed first: its hardware counter may be the one the new
    /// event needs). A request that counts at no level releases the counter.
    fn program(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), PerfError> {
        let index = counter.index();
        if !req.el0 && !req.el1 {
            self.release(counter);
            return Ok(());
        }
        let Some(spec) = (self.mapping)(req.event) else {
            self.release(counter);
            return Err(PerfError::unmapped(req.event));
        };
        let key = Key { spec, exclude: self.attribution.exclusions(req.el0, req.el1) };
        let period = perf_period(req);
        if let Some(Some(slot)) = self.slots.get_mut(index) {
            if slot.key == key && slot.restart(period).is_ok() {
                return Ok(());
            }
        }
        self.release(counter);
        let event = self.open(key, period, index).map_err(|e| PerfError::new(req.event, Some(spec), e))?;
        let fd = event.as_raw_fd();
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(Slot { counter: event, key, last: 0, counting: true });
        }
        if let Some(hook) = self.on_open {
            hook(counter, fd);
        }
        Ok(())
    }

    /// `PERF_EVENT_IOC_PERIOD` on the counting event; the count goes on. A counter that is
    /// not counting is programmed.
    fn set_period(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), PerfError> {
        let period = perf_period(req);
        if let Some(Some(slot)) = self.slots.get_mut(counter.index()) {
            if slot.counting {
                match slot.set_period(period) {
                    Ok(()) => return Ok(()),
                    // A failed re-arm leaves the event in doubt: start it again.
                    Err(_) => return self.program(counter, req),
                }
            }
        }
        self.program(counter, req)
    }

    /// The event's count minus its count at the last read (or 0 at `program`). A failed read
    /// reports 0; the next one reports those events.
    fn read(&mut self, counter: CounterId) -> u64 {
        let Some(Some(slot)) = self.slots.get_mut(counter.index()) else { return 0 };
        match slot.counter.read() {
            Ok(now) => {
                let since = now.wrapping_sub(slot.last);
                slot.last = now;
                since
            }
            Err(_) => 0,
        }
    }

    /// `PERF_EVENT_IOC_DISABLE`: the event stops and is kept for the next `program`. Its
    /// count freezes, so a `read` gives what was counted before, then 0.
    fn stop(&mut self, counter: CounterId) {
        if let Some(Some(slot)) = self.slots.get_mut(counter.index()) {
            if slot.counting {
                // A failed disable leaves it counting: close it instead.
                if slot.counter.disable().is_ok() {
                    slot.counting = false;
                } else {
                    self.release(counter);
                }
            }
        }
    }

    /// Disables the event (so that it stops even if the host holds a duplicate of its
    /// descriptor) and closes it.
    fn release(&mut self, counter: CounterId) {
        if let Some(mut slot) = self.slots.get_mut(counter.index()).and_then(Option::take) {
            // Closing stops it anyway; a failed disable changes nothing.
            let _ = slot.counter.disable();
        }
    }

    /// What the signal handler raised on [`PerfBackend::pending`].
    fn take_overflows(&mut self) -> u32 {
        self.pending.take()
    }
}

/// The system calls perf-event2 does not wrap: the only `unsafe` code in vpmu.
#[allow(unsafe_code)]
mod sys {
    use std::io;
    use std::os::fd::AsRawFd;

    use perf_event::Counter;

    /// The calling thread's id.
    pub(super) fn gettid() -> i32 {
        // SAFETY: gettid takes no argument, reads and writes no memory and cannot fail.
        unsafe { libc::gettid() }
    }

    /// `ioctl(fd, PERF_EVENT_IOC_PERIOD, &period)`: the event's sample period, from now.
    pub(super) fn set_period(counter: &Counter, period: u64) -> io::Result<()> {
        let fd = counter.as_raw_fd();
        // SAFETY: `fd` is the open perf event descriptor `counter` owns, borrowed for the
        // call. PERF_EVENT_IOC_PERIOD reads one u64 through its argument (the kernel copies it
        // from user memory), which points to `period`, alive for the whole call; it writes no
        // user memory.
        let r = unsafe { libc::ioctl(fd, perf_event_open_sys::bindings::PERIOD as _, core::ptr::from_ref(&period)) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
