//! [`PerfBackend`]: counting with Linux `perf_event_open`, for a VMM whose vCPUs are host threads.
//!
//! Every programmed guest counter is backed by one perf event that counts the **calling
//! thread** (`pid` 0, any CPU, not inherited): [`CounterBackend::program`] opens it enabled,
//! [`CounterBackend::read`] reports what it counted since the last read (the backend keeps the
//! last raw count of every event), [`CounterBackend::release`] disables it and closes it.
//! Program counters on the vCPU thread — which is where [`Pmu::handle`](crate::Pmu::handle)
//! runs when the guest traps — since that is the thread the events count.
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
//! notices the overflow when the event has counted that many. What happens then is the host's
//! business; any of these ends in [`Pmu::sync`](crate::Pmu::sync) on the vCPU thread, then the
//! interrupt line from [`Pmu::irq_level`](crate::Pmu::irq_level):
//!
//! 1. **No signal**: call `sync` at every VM exit and on a timer. Counts stay exact (every
//!    guest read folds them in); only the overflow interrupt comes late.
//! 2. **`SIGTRAP`** ([`PerfBackendBuilder::sigtrap`], Linux 5.13+): perf's `sigtrap` sends the
//!    thread a synchronous `SIGTRAP` at each overflow, with `si_code` = `TRAP_PERF` and
//!    `si_perf_data` = the counter's [`CounterId::index`] (31 for `PMCCNTR`). The handler sets
//!    a flag (a signal also ends a blocking `KVM_RUN` with `EINTR`); the vCPU loop sees it and
//!    calls `sync`. Install the handler before enabling this: `SIGTRAP`'s default action ends
//!    the process.
//! 3. **fasync (`SIGIO`)**: in an [`OpenHook`] ([`PerfBackendBuilder::on_open`]), which gets
//!    every new event's descriptor, the host sets `O_ASYNC`, `F_SETSIG` and
//!    `F_SETOWN_EX` (`F_OWNER_TID`, the vCPU thread) with `fcntl`; the kernel then sends that
//!    signal at each overflow, `si_fd` naming the event ([`PerfBackend::raw_fd`] maps it back).
//!    A ring buffer (`mmap` of the descriptor) works too, and is also the host's to set up.
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

use core::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::vec::Vec;

use perf_event::events::Raw;
use perf_event::{Builder, Counter};

use super::{BackendError, CountRequest, CounterBackend, CounterId, ErrorKind};
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
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct PerfBackendBuilder {
    mapping: EventMapping,
    attribution: Attribution,
    max_event_counters: u8,
    probe: bool,
    sigtrap: bool,
    on_open: Option<OpenHook>,
}

impl Default for PerfBackendBuilder {
    fn default() -> Self {
        Self {
            mapping: default_mapping,
            attribution: Attribution::Thread,
            max_event_counters: MAX_EVENT_COUNTERS,
            probe: true,
            sigtrap: false,
            on_open: None,
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
    pub const fn mapping(mut self, mapping: EventMapping) -> Self {
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
    pub const fn attribution(mut self, attribution: Attribution) -> Self {
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
    pub const fn max_event_counters(mut self, n: u8) -> Self {
        self.max_event_counters = if n < MAX_EVENT_COUNTERS { n } else { MAX_EVENT_COUNTERS };
        self
    }

    /// Whether [`build`](Self::build) opens each mapped event once so that `supports` (and
    /// `PMCEID`) only offer events that open. Default: on.
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
    pub const fn probe(mut self, probe: bool) -> Self {
        self.probe = probe;
        self
    }

    /// Whether each event sends the vCPU thread a synchronous `SIGTRAP` when it reaches its
    /// period (perf's `sigtrap` with `remove_on_exec`, `sig_data` = the counter's index; Linux
    /// 5.13+). Default: off. **Install a `SIGTRAP` handler first**: the default action ends
    /// the process. See the [module docs](self#overflow-periods-and-signals).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::backend::perf::PerfBackend;
    /// let b = PerfBackend::builder().sigtrap(true).probe(false).build();
    /// assert!(b.sigtrap());
    /// ```
    pub const fn sigtrap(mut self, sigtrap: bool) -> Self {
        self.sigtrap = sigtrap;
        self
    }

    /// A function called with every event the backend opens, right after it opens (see
    /// [`OpenHook`]).
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
    pub const fn on_open(mut self, hook: OpenHook) -> Self {
        self.on_open = Some(hook);
        self
    }

    /// The backend. With probing on, opens and closes each mapped event that `PMCEID` can
    /// advertise, on the calling thread (at most 128 `perf_event_open` calls, fewer when
    /// events share a perf event).
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
        let mut b = PerfBackend {
            mapping: self.mapping,
            attribution: self.attribution,
            max_event_counters: self.max_event_counters,
            probed: self.probe,
            sigtrap: self.sigtrap,
            on_open: self.on_open,
            supported: [0; 2],
            slots: Default::default(),
        };
        b.supported = b.compute_supported();
        b
    }
}

/// One programmed counter: its perf event and the event's count at the last read.
#[derive(Debug)]
struct Slot {
    counter: Counter,
    last: u64,
}

/// The Linux `perf_event_open` backend: one perf event per programmed counter, counting the
/// calling thread. See the [module docs](self).
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
///         b.release(CounterId::Cycle);
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
    probed: bool,
    sigtrap: bool,
    on_open: Option<OpenHook>,
    /// Supported events 0x00..=0x3F (word 0) and 0x4000..=0x403F (word 1).
    supported: [u64; 2],
    /// Per counter (by [`CounterId::index`]): its event, while programmed.
    slots: [Option<Slot>; 32],
}

impl Default for PerfBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfBackend {
    /// A backend with the [`default_mapping`], [`Attribution::Thread`], 31 event counters and
    /// probing.
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

    /// A builder, to choose the mapping, attribution, counter limit, probing and signals.
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

    /// Whether `counter` has a perf event now.
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
        self.slots.get(counter.index()).is_some_and(Option::is_some)
    }

    /// The file descriptor of `counter`'s perf event, while it has one: to match an overflow
    /// signal's `si_fd` to its counter. It stays the backend's: do not close it.
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
        self.slots.get(counter.index()).and_then(Option::as_ref).map(|s| s.counter.as_raw_fd())
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
        self.probe_spec(spec).map_err(|e| PerfError::new(event, Some(spec), e))
    }

    fn probe_spec(&self, spec: PerfEventSpec) -> io::Result<()> {
        self.open(spec, true, false, 0, None).map(drop)
    }

    /// Opens `spec` for the calling thread, on any CPU, counting at `el0`/`el1` under this
    /// backend's attribution: enabled with `sample_period` = `period` when `sig` names the
    /// counter; disabled and without a period (a probe) when it is `None`.
    fn open(&self, spec: PerfEventSpec, el0: bool, el1: bool, period: u64, sig: Option<u64>) -> io::Result<Counter> {
        let (exclude_user, exclude_kernel, exclude_host) = self.attribution.exclusions(el0, el1);
        let mut b = Builder::new(Raw::new(spec.config).config1(spec.config1).config2(spec.config2));
        b.attrs_mut().type_ = spec.perf_type;
        b.observe_self()
            .any_cpu()
            .inherit(false)
            .exclude_user(exclude_user)
            .exclude_kernel(exclude_kernel)
            .exclude_hv(true)
            .exclude_host(exclude_host);
        if let Some(index) = sig {
            b.sample_period(period.min(MAX_PERIOD)).enabled(true);
            if self.sigtrap {
                b.sigtrap(true).remove_on_exec(true).sig_data(index);
            }
        }
        b.build()
    }

    fn compute_supported(&self) -> [u64; 2] {
        // Probe results by perf event: events that share one are opened once.
        let mut tried: Vec<(PerfEventSpec, bool)> = Vec::new();
        let mut supported = [0u64; 2];
        for (word, base) in supported.iter_mut().zip([0u16, 0x4000]) {
            for bit in 0..64u16 {
                let Some(spec) = (self.mapping)(base | bit) else { continue };
                let ok = if !self.probed {
                    true
                } else if let Some(&(_, ok)) = tried.iter().find(|(s, _)| *s == spec) {
                    ok
                } else {
                    let ok = self.probe_spec(spec).is_ok();
                    tried.push((spec, ok));
                    ok
                };
                if ok {
                    *word |= 1 << bit;
                }
            }
        }
        supported
    }
}

impl CounterBackend for PerfBackend {
    type Error = PerfError;

    fn max_event_counters(&self) -> u8 {
        self.max_event_counters
    }

    fn supports(&self, event: u16) -> bool {
        let bit = u32::from(event & 0x3f);
        match event {
            0..=0x3f => self.supported[0] & (1 << bit) != 0,
            0x4000..=0x403f => self.supported[1] & (1 << bit) != 0,
            _ => (self.mapping)(event).is_some(),
        }
    }

    /// Closes the counter's old event, then opens an enabled one for `req.event`, counting the
    /// calling thread from zero, with `sample_period` = `req.period` (at most 2^63 - 1).
    fn program(&mut self, counter: CounterId, req: &CountRequest) -> Result<(), PerfError> {
        // The old event goes first: its hardware counter may be the one the new event needs.
        self.release(counter);
        if !req.el0 && !req.el1 {
            return Ok(());
        }
        let spec = (self.mapping)(req.event).ok_or(PerfError::unmapped(req.event))?;
        let index = counter.index();
        let sig = u64::try_from(index).unwrap_or(u64::MAX);
        let event = self.open(spec, req.el0, req.el1, req.period, Some(sig)).map_err(|e| PerfError::new(req.event, Some(spec), e))?;
        let fd = event.as_raw_fd();
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(Slot { counter: event, last: 0 });
        }
        if let Some(hook) = self.on_open {
            hook(counter, fd);
        }
        Ok(())
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

    /// Disables the event (so that it stops even if the host holds a duplicate of its
    /// descriptor) and closes it.
    fn release(&mut self, counter: CounterId) {
        if let Some(mut slot) = self.slots.get_mut(counter.index()).and_then(Option::take) {
            // Closing stops it anyway; a failed disable changes nothing.
            let _ = slot.counter.disable();
        }
    }
}
