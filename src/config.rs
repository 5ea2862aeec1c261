//! How a VMM describes a vPMU: counters, version, identity, interrupt and event filter,
//! validated once by [`PmuConfigBuilder::build`].
//!
//! # Examples
//!
//! ```
//! use vpmu::config::{FilterAction, PmuConfig, PmuVersion};
//!
//! let cfg = PmuConfig::builder()
//!     .counters(6)
//!     .version(PmuVersion::V3p5)
//!     .filter(FilterAction::Deny, 0x00..=0x3f)? // deny first: everything else is allowed,
//!     .filter(FilterAction::Allow, 0x08..=0x08)? // then allow INST_RETIRED back
//!     .build()?;
//! assert_eq!(cfg.counters(), 6);
//! assert!(cfg.event_allowed(0x08));
//! assert!(!cfg.event_allowed(0x11));
//! assert!(cfg.event_allowed(0x00)); // SW_INCR is never filtered
//! # Ok::<(), vpmu::config::ConfigError>(())
//! ```

use core::fmt;
use core::ops::RangeInclusive;

use crate::reg::MAX_EVENT_COUNTERS;

/// The common event `SW_INCR`, counted by writes to `PMSWINC`.
pub const EVENT_SW_INCR: u16 = 0x00;
/// The common event `INST_RETIRED`.
pub const EVENT_INST_RETIRED: u16 = 0x08;
/// The common event `CPU_CYCLES`, which the cycle counter counts.
pub const EVENT_CPU_CYCLES: u16 = 0x11;
/// The common event `CHAIN`: an odd counter counts overflows of the even counter below it.
pub const EVENT_CHAIN: u16 = 0x1e;
/// `STALL_SLOT_BACKEND`, `STALL_SLOT_FRONTEND`, `STALL_SLOT`: hidden while `PMMIR.SLOTS` is 0.
pub const EVENTS_STALL_SLOT: RangeInclusive<u16> = 0x3d..=0x3f;

/// The most filter actions a configuration holds.
pub const MAX_FILTER_ACTIONS: usize = 16;

/// The PMU architecture version the guest sees (`ID_AA64DFR0_EL1.PMUVer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PmuVersion {
    /// PMUv3 (Armv8.0): 10-bit event numbers, 32-bit event counters.
    V3,
    /// PMUv3p1 (Armv8.1): 16-bit event numbers, `PMCEID` upper halves.
    V3p1,
    /// PMUv3p4 (Armv8.4): adds `PMMIR_EL1`.
    V3p4,
    /// PMUv3p5 (Armv8.5): 64-bit event counters, `PMCR.LP`.
    V3p5,
}

impl PmuVersion {
    /// The `ID_AA64DFR0_EL1.PMUVer` value: 1, 4, 5 or 6.
    #[must_use]
    pub const fn pmuver(self) -> u8 {
        match self {
            PmuVersion::V3 => 1,
            PmuVersion::V3p1 => 4,
            PmuVersion::V3p4 => 5,
            PmuVersion::V3p5 => 6,
        }
    }

    /// The mask of the event number field of `PMEVTYPER<n>`.
    #[must_use]
    pub const fn event_mask(self) -> u16 {
        match self {
            PmuVersion::V3 => 0x3ff,
            _ => 0xffff,
        }
    }
}

/// What an EL0 access that `PMUSERENR` forbids turns into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum El0Denial {
    /// A System access trap to the guest's EL1 (EC 0x18, the access's own ISS), as the Arm ARM's
    /// access pseudocode says: [`Outcome::TrapToEl1`](crate::Outcome::TrapToEl1).
    #[default]
    TrapToEl1,
    /// An UNDEFINED exception, as Linux KVM injects: [`Outcome::Undefined`](crate::Outcome::Undefined).
    Undefined,
}

/// The PMU overflow interrupt of one vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PmuIrq {
    /// A private peripheral interrupt, 16..=31: the same number on every vCPU.
    Ppi(u16),
    /// A shared peripheral interrupt, 32..=1019: a different one per vCPU.
    Spi(u16),
}

impl PmuIrq {
    /// The interrupt's INTID.
    #[must_use]
    pub const fn intid(self) -> u16 {
        match self {
            PmuIrq::Ppi(n) | PmuIrq::Spi(n) => n,
        }
    }

    fn validate(self) -> Result<(), ConfigError> {
        match self {
            PmuIrq::Ppi(16..=31) | PmuIrq::Spi(32..=1019) => Ok(()),
            _ => Err(ConfigError::BadIrq(self)),
        }
    }

    /// Validates the PMU interrupts of all the vCPUs of one VM: each is a valid PPI or SPI,
    /// PPIs are the same on every vCPU, SPIs differ between vCPUs, and PPIs and SPIs are not
    /// mixed.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadIrq`] for an interrupt out of its range,
    /// [`ConfigError::IrqMismatch`] for vCPUs that break the sharing rule (the indices of the
    /// two vCPUs are given).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::config::{ConfigError, PmuIrq};
    /// assert!(PmuIrq::validate_vm(&[PmuIrq::Ppi(23); 4]).is_ok());
    /// assert!(PmuIrq::validate_vm(&[PmuIrq::Spi(40), PmuIrq::Spi(41)]).is_ok());
    /// assert_eq!(
    ///     PmuIrq::validate_vm(&[PmuIrq::Spi(40), PmuIrq::Spi(40)]),
    ///     Err(ConfigError::IrqMismatch { first: 0, second: 1 })
    /// );
    /// ```
    pub fn validate_vm(irqs: &[PmuIrq]) -> Result<(), ConfigError> {
        // Index loops, not `enumerate`: its counter is an addition the compiler cannot prove
        // never overflows, and the no-panic check builds with overflow checks on.
        // Every interrupt is checked on its own first: one out of range is `BadIrq`, never a
        // mismatch with an earlier vCPU's.
        for irq in irqs {
            irq.validate()?;
        }
        for i in 0..irqs.len() {
            let Some(a) = irqs.get(i) else { continue };
            for j in i.saturating_add(1)..irqs.len() {
                let Some(b) = irqs.get(j) else { continue };
                let clash = match (a, b) {
                    (PmuIrq::Ppi(x), PmuIrq::Ppi(y)) => x != y,
                    (PmuIrq::Spi(x), PmuIrq::Spi(y)) => x == y,
                    _ => true,
                };
                if clash {
                    return Err(ConfigError::IrqMismatch { first: i, second: j });
                }
            }
        }
        Ok(())
    }
}

/// Allow or deny a range of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum FilterAction {
    /// The events may be counted.
    Allow,
    /// The events never count, whatever the guest programs.
    Deny,
}

/// One filter action over the events `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct FilterRange {
    action: FilterAction,
    first: u16,
    last: u16,
}

/// The event filter, with Linux KVM's semantics: the first action decides the default (a
/// first `Allow` denies everything else, a first `Deny` allows everything else); a later
/// action overrides an earlier one where they overlap; `SW_INCR` and `CHAIN` are never
/// filtered; the cycle counter is filtered as `CPU_CYCLES` (0x11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct EventFilter {
    ranges: [FilterRange; MAX_FILTER_ACTIONS],
    len: u8,
}

impl EventFilter {
    const EMPTY: FilterRange = FilterRange { action: FilterAction::Allow, first: 1, last: 0 };

    /// No action: every event is allowed.
    #[must_use]
    pub const fn allow_all() -> Self {
        Self { ranges: [Self::EMPTY; MAX_FILTER_ACTIONS], len: 0 }
    }

    /// Whether `event` may count.
    #[must_use]
    pub fn allows(&self, event: u16) -> bool {
        if event == EVENT_SW_INCR || event == EVENT_CHAIN {
            return true;
        }
        let actions = self.ranges.get(..usize::from(self.len)).unwrap_or(&[]);
        let Some(first) = actions.first() else { return true };
        match actions.iter().rev().find(|r| (r.first..=r.last).contains(&event)) {
            Some(r) => r.action == FilterAction::Allow,
            None => first.action == FilterAction::Deny,
        }
    }

    /// The actions, in order.
    pub fn actions(&self) -> impl Iterator<Item = (FilterAction, RangeInclusive<u16>)> + '_ {
        self.ranges.iter().take(usize::from(self.len)).map(|r| (r.action, r.first..=r.last))
    }

    /// The invariants `push` keeps, checked again for a filter that did not come through it
    /// (deserialized), and the event space of `version`.
    fn validate(&self, version: PmuVersion) -> Result<(), ConfigError> {
        let max = version.event_mask();
        let actions = self.ranges.get(..usize::from(self.len)).ok_or(ConfigError::TooManyFilterActions)?;
        for r in actions {
            if r.first > r.last {
                return Err(ConfigError::EmptyFilterRange { first: r.first, last: r.last });
            }
            if r.last > max {
                return Err(ConfigError::FilterOutOfRange { first: r.first, last: r.last, max });
            }
        }
        Ok(())
    }

    fn push(&mut self, action: FilterAction, events: RangeInclusive<u16>) -> Result<(), ConfigError> {
        let (first, last) = (*events.start(), *events.end());
        if first > last {
            return Err(ConfigError::EmptyFilterRange { first, last });
        }
        let slot = self.ranges.get_mut(usize::from(self.len)).ok_or(ConfigError::TooManyFilterActions)?;
        *slot = FilterRange { action, first, last };
        self.len = self.len.saturating_add(1);
        Ok(())
    }
}

impl Default for EventFilter {
    fn default() -> Self {
        Self::allow_all()
    }
}

/// A validated vPMU configuration. Build one with [`PmuConfig::builder`].
///
/// With the `serde` feature, deserializing goes through [`PmuConfigBuilder::build`]: a
/// configuration that does not validate is a deserialization error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "Unvalidated"))]
pub struct PmuConfig {
    pub(crate) counters: u8,
    pub(crate) version: PmuVersion,
    pub(crate) aarch32_el0: bool,
    pub(crate) el2: bool,
    pub(crate) el3: bool,
    pub(crate) imp: u8,
    pub(crate) idcode: u8,
    pub(crate) pmmir: u32,
    pub(crate) irq: Option<PmuIrq>,
    pub(crate) el0_denial: El0Denial,
    pub(crate) filter: EventFilter,
}

impl PmuConfig {
    /// A builder with the defaults: 6 counters, PMUv3p5, AArch32 EL0, no EL2, no EL3,
    /// `PMCR.IMP` 0 and `IDCODE` 0, `PMMIR` 0, no interrupt, every event allowed, forbidden
    /// EL0 accesses trap to EL1.
    pub const fn builder() -> PmuConfigBuilder {
        PmuConfigBuilder {
            cfg: PmuConfig {
                counters: 6,
                version: PmuVersion::V3p5,
                aarch32_el0: true,
                el2: false,
                el3: false,
                imp: 0,
                idcode: 0,
                pmmir: 0,
                irq: None,
                el0_denial: El0Denial::TrapToEl1,
                filter: EventFilter::allow_all(),
            },
        }
    }

    /// `PMCR.N`: the number of event counters, `0..=31`.
    #[must_use]
    pub const fn counters(&self) -> u8 {
        self.counters
    }
    /// The PMU version.
    #[must_use]
    pub const fn version(&self) -> PmuVersion {
        self.version
    }
    /// Whether the guest can run AArch32 at EL0 (when not, `PMCR.LC` is RES1).
    #[must_use]
    pub const fn aarch32_el0(&self) -> bool {
        self.aarch32_el0
    }
    /// Whether EL2 is advertised to the guest (`PMEVTYPER.NSH` is writable).
    #[must_use]
    pub const fn el2(&self) -> bool {
        self.el2
    }
    /// Whether EL3 is advertised to the guest (`NSK`, `NSU`, `M` are writable).
    #[must_use]
    pub const fn el3(&self) -> bool {
        self.el3
    }
    /// `PMCR.IMP`.
    #[must_use]
    pub const fn imp(&self) -> u8 {
        self.imp
    }
    /// `PMCR.IDCODE`.
    #[must_use]
    pub const fn idcode(&self) -> u8 {
        self.idcode
    }
    /// `PMMIR_EL1`.
    #[must_use]
    pub const fn pmmir(&self) -> u32 {
        self.pmmir
    }
    /// The overflow interrupt, if one is wired.
    #[must_use]
    pub const fn irq(&self) -> Option<PmuIrq> {
        self.irq
    }
    /// What a forbidden EL0 access becomes.
    #[must_use]
    pub const fn el0_denial(&self) -> El0Denial {
        self.el0_denial
    }
    /// The event filter.
    #[must_use]
    pub const fn filter(&self) -> &EventFilter {
        &self.filter
    }
    /// Whether `event` may count under the filter (`SW_INCR` and `CHAIN` always may).
    #[must_use]
    pub fn event_allowed(&self, event: u16) -> bool {
        self.filter.allows(event)
    }

    /// A builder holding this configuration, to change it.
    pub const fn to_builder(&self) -> PmuConfigBuilder {
        PmuConfigBuilder { cfg: *self }
    }
}

/// What a serialized [`PmuConfig`] holds, before [`PmuConfigBuilder::build`] checks it.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct Unvalidated {
    counters: u8,
    version: PmuVersion,
    aarch32_el0: bool,
    el2: bool,
    el3: bool,
    imp: u8,
    idcode: u8,
    pmmir: u32,
    irq: Option<PmuIrq>,
    el0_denial: El0Denial,
    filter: EventFilter,
}

#[cfg(feature = "serde")]
impl TryFrom<Unvalidated> for PmuConfig {
    type Error = ConfigError;
    fn try_from(u: Unvalidated) -> Result<Self, ConfigError> {
        let cfg = PmuConfig {
            counters: u.counters,
            version: u.version,
            aarch32_el0: u.aarch32_el0,
            el2: u.el2,
            el3: u.el3,
            imp: u.imp,
            idcode: u.idcode,
            pmmir: u.pmmir,
            irq: u.irq,
            el0_denial: u.el0_denial,
            filter: u.filter,
        };
        PmuConfigBuilder { cfg }.build()
    }
}

impl Default for PmuConfig {
    fn default() -> Self {
        Self::builder().cfg
    }
}

/// Builds a [`PmuConfig`]; [`PmuConfigBuilder::build`] validates everything at once.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct PmuConfigBuilder {
    cfg: PmuConfig,
}

impl PmuConfigBuilder {
    /// The number of event counters, `PMCR.N` (`0..=31`).
    pub const fn counters(mut self, n: u8) -> Self {
        self.cfg.counters = n;
        self
    }
    /// The PMU version.
    pub const fn version(mut self, v: PmuVersion) -> Self {
        self.cfg.version = v;
        self
    }
    /// Whether the guest can run AArch32 at EL0.
    pub const fn aarch32_el0(mut self, yes: bool) -> Self {
        self.cfg.aarch32_el0 = yes;
        self
    }
    /// Whether EL2 is advertised to the guest.
    pub const fn el2(mut self, yes: bool) -> Self {
        self.cfg.el2 = yes;
        self
    }
    /// Whether EL3 is advertised to the guest.
    pub const fn el3(mut self, yes: bool) -> Self {
        self.cfg.el3 = yes;
        self
    }
    /// `PMCR.IMP` and `PMCR.IDCODE`.
    pub const fn identity(mut self, imp: u8, idcode: u8) -> Self {
        self.cfg.imp = imp;
        self.cfg.idcode = idcode;
        self
    }
    /// `PMMIR_EL1` (PMUv3p4 and later): `SLOTS` in bits \[7:0\], `BUS_SLOTS` \[15:8\],
    /// `BUS_WIDTH` \[19:16\], `THWIDTH` \[23:20\].
    pub const fn pmmir(mut self, pmmir: u32) -> Self {
        self.cfg.pmmir = pmmir;
        self
    }
    /// The overflow interrupt.
    pub const fn irq(mut self, irq: PmuIrq) -> Self {
        self.cfg.irq = Some(irq);
        self
    }
    /// What a forbidden EL0 access becomes.
    pub const fn el0_denial(mut self, d: El0Denial) -> Self {
        self.cfg.el0_denial = d;
        self
    }

    /// Adds a filter action over `events`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TooManyFilterActions`] past [`MAX_FILTER_ACTIONS`],
    /// [`ConfigError::EmptyFilterRange`] for a range whose start is after its end.
    pub fn filter(mut self, action: FilterAction, events: RangeInclusive<u16>) -> Result<Self, ConfigError> {
        self.cfg.filter.push(action, events)?;
        Ok(self)
    }

    /// Validates the configuration.
    ///
    /// # Errors
    ///
    /// - [`ConfigError::TooManyCounters`] if `counters > 31`;
    /// - [`ConfigError::PmmirWithoutV3p4`] if `PMMIR` is non-zero below PMUv3p4;
    /// - [`ConfigError::PmmirReserved`] if `PMMIR` has bits set above \[23:0\];
    /// - [`ConfigError::BadIrq`] for an interrupt out of the PPI/SPI ranges;
    /// - [`ConfigError::FilterOutOfRange`] for a filter range beyond the version's event
    ///   numbers (10 bits for PMUv3, 16 from PMUv3p1), as KVM refuses one; and, for a
    ///   deserialized filter, [`ConfigError::TooManyFilterActions`] and
    ///   [`ConfigError::EmptyFilterRange`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::config::{ConfigError, FilterAction, PmuConfig, PmuVersion};
    /// let b = PmuConfig::builder().filter(FilterAction::Deny, 0x3f0..=0x400)?;
    /// assert!(b.build().is_ok()); // PMUv3p5: 16-bit event numbers
    /// assert_eq!(
    ///     b.version(PmuVersion::V3).build(),
    ///     Err(ConfigError::FilterOutOfRange { first: 0x3f0, last: 0x400, max: 0x3ff })
    /// );
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn build(self) -> Result<PmuConfig, ConfigError> {
        let c = self.cfg;
        if c.counters > MAX_EVENT_COUNTERS {
            return Err(ConfigError::TooManyCounters { requested: c.counters, max: MAX_EVENT_COUNTERS });
        }
        if c.pmmir != 0 && c.version < PmuVersion::V3p4 {
            return Err(ConfigError::PmmirWithoutV3p4);
        }
        if c.pmmir & !PMMIR_MASK != 0 {
            return Err(ConfigError::PmmirReserved { bits: c.pmmir & !PMMIR_MASK });
        }
        if let Some(irq) = c.irq {
            irq.validate()?;
        }
        c.filter.validate(c.version)?;
        Ok(c)
    }
}

/// `PMMIR_EL1` fields vpmu knows: `THWIDTH`, `BUS_WIDTH`, `BUS_SLOTS`, `SLOTS`.
const PMMIR_MASK: u32 = 0x00ff_ffff;

/// A configuration that cannot be built, or a change the PMU refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// More event counters than the architecture (31) or the backend allows.
    TooManyCounters {
        /// The number asked for.
        requested: u8,
        /// The most allowed.
        max: u8,
    },
    /// `PMMIR` is non-zero, but it exists only from PMUv3p4.
    PmmirWithoutV3p4,
    /// `PMMIR` has bits set that vpmu does not know.
    PmmirReserved {
        /// The offending bits.
        bits: u32,
    },
    /// An interrupt outside the PPI (16..=31) or SPI (32..=1019) range.
    BadIrq(PmuIrq),
    /// Two vCPUs whose interrupts break the sharing rule.
    IrqMismatch {
        /// Index of the first vCPU.
        first: usize,
        /// Index of the second vCPU.
        second: usize,
    },
    /// More than [`MAX_FILTER_ACTIONS`] filter actions.
    TooManyFilterActions,
    /// A filter range whose start is after its end.
    EmptyFilterRange {
        /// The range's start.
        first: u16,
        /// The range's end.
        last: u16,
    },
    /// The vCPU has run: the configuration can no longer change.
    Busy,
    /// A filter range reaches beyond the event numbers of the PMU version.
    FilterOutOfRange {
        /// The range's start.
        first: u16,
        /// The range's end.
        last: u16,
        /// The largest event number of the version.
        max: u16,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ConfigError::TooManyCounters { requested, max } => {
                write!(f, "{requested} event counters requested, but at most {max} are possible")
            }
            ConfigError::PmmirWithoutV3p4 => f.write_str("PMMIR is set, but PMMIR_EL1 exists only from PMUv3p4"),
            ConfigError::PmmirReserved { bits } => write!(f, "PMMIR has unknown bits set ({bits:#x}); only bits [23:0] are allowed"),
            ConfigError::BadIrq(PmuIrq::Ppi(n)) => write!(f, "PPI {n} is out of range: PPIs are 16..=31"),
            ConfigError::BadIrq(PmuIrq::Spi(n)) => write!(f, "SPI {n} is out of range: SPIs are 32..=1019"),
            ConfigError::IrqMismatch { first, second } => write!(
                f,
                "vCPUs {first} and {second} have incompatible PMU interrupts: a PPI must be the same on every vCPU, an SPI distinct per vCPU"
            ),
            ConfigError::TooManyFilterActions => write!(f, "more than {MAX_FILTER_ACTIONS} event filter actions"),
            ConfigError::EmptyFilterRange { first, last } => {
                write!(f, "event filter range {first:#x}..={last:#x} is empty: its start is after its end")
            }
            ConfigError::Busy => f.write_str("the vCPU has already run: the PMU configuration can no longer change"),
            ConfigError::FilterOutOfRange { first, last, max } => {
                write!(f, "event filter range {first:#x}..={last:#x} goes beyond this PMU version's largest event number, {max:#x}")
            }
        }
    }
}

impl core::error::Error for ConfigError {}
