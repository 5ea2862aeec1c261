//! Identity of every PMUv3 system register: the one table the rest of the crate reads.
//!
//! [`PmuReg`] names a register the way the Arm ARM does. For each register the table gives its
//! AArch64 encoding ([`A64Id`]: op0, op1, CRn, CRm, op2), its AArch32 cp15 encoding ([`Cp15Id`],
//! and [`Cp15WideId`] for the 64-bit `MRRC`/`MCRR` view of `PMCCNTR`), its architectural names,
//! and how it may be accessed ([`RegAccess`]).
//!
//! Decoding ([`crate::decode`]), dispatch ([`crate::Pmu::handle`]), snapshots and the docs all
//! read this table; nothing else in the crate spells out an encoding.
//!
//! # Examples
//!
//! ```
//! use vpmu::reg::{A64Id, EventCounter, PmuReg};
//!
//! let reg: PmuReg = "PMEVCNTR5_EL0".parse()?;
//! assert_eq!(reg, PmuReg::Pmevcntr(EventCounter::new(5).unwrap()));
//! assert_eq!(reg.a64_id(), Some(A64Id::new(3, 3, 14, 0b1000, 5).unwrap()));
//! assert_eq!(reg.to_string(), "PMEVCNTR5_EL0");
//! assert_eq!(PmuReg::from_a64(A64Id::new(3, 3, 9, 12, 0).unwrap()), Some(PmuReg::Pmcr));
//! # Ok::<(), vpmu::reg::UnknownRegName>(())
//! ```

use core::fmt;
use core::str::FromStr;

/// The number of event counters the architecture allows at most (`PMEVCNTR0..=30`).
pub const MAX_EVENT_COUNTERS: u8 = 31;

/// The bit of the cycle counter in `PMCNTENSET`, `PMINTENSET` and `PMOVSSET` (and the `SEL`
/// value that selects `PMCCFILTR` through `PMXEVTYPER`).
pub const CYCLE_COUNTER_BIT: u8 = 31;

/// The index of an event counter, `0..=30`: the `<n>` of `PMEVCNTR<n>_EL0`.
///
/// Whether counter `n` exists on a given PMU depends on its `PMCR.N`; this type only rules
/// out indices that no PMU can have.
///
/// # Examples
///
/// ```
/// use vpmu::reg::EventCounter;
///
/// assert_eq!(EventCounter::new(30).map(EventCounter::get), Some(30));
/// assert_eq!(EventCounter::new(31), None); // 31 is the cycle counter's slot
/// assert_eq!(EventCounter::new_truncate(35).get(), 3); // keeps the low five bits, then wraps
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(try_from = "u8", into = "u8"))]
pub struct EventCounter(u8);

impl EventCounter {
    /// Counter `n`, or `None` when `n > 30`.
    #[must_use]
    pub const fn new(n: u8) -> Option<Self> {
        if n < MAX_EVENT_COUNTERS {
            Some(Self(n))
        } else {
            None
        }
    }

    /// Counter `n % 31` after keeping the low five bits: never fails. `31` becomes `0`.
    #[must_use]
    pub const fn new_truncate(n: u8) -> Self {
        Self((n & 0x1f) % MAX_EVENT_COUNTERS)
    }

    /// The index, `0..=30`.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Every event counter index, `0..=30`, in order.
    pub fn all() -> impl Iterator<Item = EventCounter> {
        (0..MAX_EVENT_COUNTERS).map(EventCounter)
    }
}

impl TryFrom<u8> for EventCounter {
    type Error = InvalidCounter;
    fn try_from(n: u8) -> Result<Self, InvalidCounter> {
        Self::new(n).ok_or(InvalidCounter(n))
    }
}

impl From<EventCounter> for u8 {
    fn from(c: EventCounter) -> u8 {
        c.0
    }
}

/// An event counter index above 30.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidCounter(pub u8);

impl fmt::Display for InvalidCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event counter {} does not exist: indices are 0..=30", self.0)
    }
}

impl core::error::Error for InvalidCounter {}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for EventCounter {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(u.int_in_range(0..=MAX_EVENT_COUNTERS - 1)?))
    }
}

/// A PMUv3 system register, named as the Arm ARM names it.
///
/// The AArch64 and AArch32 views of a register are the same `PmuReg` (`PMOVSR` is
/// [`PmuReg::Pmovsclr`], `PMCCFILTR` is [`PmuReg::Pmccfiltr`]); the width of an access is a
/// property of the access, not of the register. The exceptions are `PMCEID2` and `PMCEID3`,
/// which exist only in AArch32, as the upper halves of `PMCEID0_EL0` and `PMCEID1_EL0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum PmuReg {
    /// `PMCR_EL0` / `PMCR`: control, and the number of counters.
    Pmcr,
    /// `PMCNTENSET_EL0` / `PMCNTENSET`: counter enables, write 1 to set.
    Pmcntenset,
    /// `PMCNTENCLR_EL0` / `PMCNTENCLR`: counter enables, write 1 to clear.
    Pmcntenclr,
    /// `PMOVSCLR_EL0` / `PMOVSR`: overflow flags, write 1 to clear.
    Pmovsclr,
    /// `PMSWINC_EL0` / `PMSWINC`: software increment, write-only.
    Pmswinc,
    /// `PMSELR_EL0` / `PMSELR`: selects the counter `PMXEVTYPER`/`PMXEVCNTR` reach.
    Pmselr,
    /// `PMCEID0_EL0` / `PMCEID0`: common events 0x00..=0x1F (and 0x4000..=0x401F in bits
    /// \[63:32\]), read-only.
    Pmceid0,
    /// `PMCEID1_EL0` / `PMCEID1`: common events 0x20..=0x3F (and 0x4020..=0x403F), read-only.
    Pmceid1,
    /// `PMCEID2` (AArch32 only): `PMCEID0_EL0[63:32]`, read-only.
    Pmceid2,
    /// `PMCEID3` (AArch32 only): `PMCEID1_EL0[63:32]`, read-only.
    Pmceid3,
    /// `PMCCNTR_EL0` / `PMCCNTR`: the cycle counter.
    Pmccntr,
    /// `PMXEVTYPER_EL0` / `PMXEVTYPER`: the event type of the counter `PMSELR.SEL` selects.
    Pmxevtyper,
    /// `PMXEVCNTR_EL0` / `PMXEVCNTR`: the value of the counter `PMSELR.SEL` selects.
    Pmxevcntr,
    /// `PMUSERENR_EL0` / `PMUSERENR`: what EL0 may access.
    Pmuserenr,
    /// `PMINTENSET_EL1` / `PMINTENSET`: overflow interrupt enables, write 1 to set.
    Pmintenset,
    /// `PMINTENCLR_EL1` / `PMINTENCLR`: overflow interrupt enables, write 1 to clear.
    Pmintenclr,
    /// `PMOVSSET_EL0` / `PMOVSSET`: overflow flags, write 1 to set.
    Pmovsset,
    /// `PMMIR_EL1` / `PMMIR`: machine identification (PMUv3p4 and later), read-only.
    Pmmir,
    /// `PMEVCNTR<n>_EL0` / `PMEVCNTR<n>`: event counter `n`.
    Pmevcntr(EventCounter),
    /// `PMEVTYPER<n>_EL0` / `PMEVTYPER<n>`: event type and filter of counter `n`.
    Pmevtyper(EventCounter),
    /// `PMCCFILTR_EL0` / `PMCCFILTR`: the cycle counter's filter.
    Pmccfiltr,
}

/// The counter registers, [`Pmu::access_pmu_evcntr`](crate::Pmu::access_pmu_evcntr)'s
/// argument: a handler takes exactly the registers it handles.
///
/// # Examples
///
/// ```
/// use vpmu::reg::{CounterReg, EventCounter, PmuReg};
/// let r = CounterReg::Pmevcntr(EventCounter::new(3).unwrap());
/// assert_eq!(PmuReg::from(r), PmuReg::Pmevcntr(EventCounter::new(3).unwrap()));
/// assert_eq!(CounterReg::try_from(PmuReg::Pmccntr), Ok(CounterReg::Pmccntr));
/// assert!(CounterReg::try_from(PmuReg::Pmcr).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CounterReg {
    /// `PMCCNTR_EL0`.
    Pmccntr,
    /// `PMEVCNTR<n>_EL0`.
    Pmevcntr(EventCounter),
    /// `PMXEVCNTR_EL0`: the event counter `PMSELR.SEL` selects.
    Pmxevcntr,
}

/// The event type and filter registers, [`Pmu::access_pmu_evtyper`](crate::Pmu::access_pmu_evtyper)'s
/// argument.
///
/// # Examples
///
/// ```
/// use vpmu::reg::{PmuReg, TypeReg};
/// assert_eq!(PmuReg::from(TypeReg::Pmccfiltr), PmuReg::Pmccfiltr);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TypeReg {
    /// `PMCCFILTR_EL0`.
    Pmccfiltr,
    /// `PMEVTYPER<n>_EL0`.
    Pmevtyper(EventCounter),
    /// `PMXEVTYPER_EL0`: the type of the counter `PMSELR.SEL` selects (`PMCCFILTR` for 31).
    Pmxevtyper,
}

/// Which half of a SET/CLR register pair (`PMCNTENSET`/`PMCNTENCLR`, `PMINTENSET`/
/// `PMINTENCLR`, `PMOVSSET`/`PMOVSCLR`): the argument of
/// [`Pmu::access_pmcnten`](crate::Pmu::access_pmcnten), [`Pmu::access_pminten`](crate::Pmu::access_pminten)
/// and [`Pmu::access_pmovs`](crate::Pmu::access_pmovs).
///
/// # Examples
///
/// ```
/// use vpmu::{config::PmuConfig, reg::SetClr, Outcome, Params, Pmu, SoftBackend, El};
/// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
/// assert_eq!(pmu.access_pmcnten(SetClr::Set, Params::write(0b101, El::El1)), Outcome::Written);
/// assert_eq!(pmu.access_pmcnten(SetClr::Clr, Params::write(0b001, El::El1)), Outcome::Written);
/// assert_eq!(pmu.access_pmcnten(SetClr::Set, Params::read(El::El1)), Outcome::Read(0b100));
/// # Ok::<(), vpmu::config::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SetClr {
    /// The `...SET` register: a write sets the bits written as 1.
    Set,
    /// The `...CLR` register: a write clears the bits written as 1.
    Clr,
}

/// The common-event identification registers, [`Pmu::access_pmceid`](crate::Pmu::access_pmceid)'s
/// argument: `PMCEID2`/`PMCEID3` are the AArch32 views of the upper halves.
///
/// # Examples
///
/// ```
/// use vpmu::{config::PmuConfig, reg::PmceidReg, Params, Pmu, SoftBackend, El};
/// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
/// let v = pmu.access_pmceid(PmceidReg::Pmceid0, Params::read(El::El1)).value();
/// assert_eq!(v.map(|v| v & 1), Some(1)); // SW_INCR is always there
/// # Ok::<(), vpmu::config::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PmceidReg {
    /// `PMCEID0_EL0`.
    Pmceid0,
    /// `PMCEID1_EL0`.
    Pmceid1,
    /// AArch32 `PMCEID2`: `PMCEID0_EL0[63:32]`.
    Pmceid2,
    /// AArch32 `PMCEID3`: `PMCEID1_EL0[63:32]`.
    Pmceid3,
}

/// A register that is not of the narrower kind asked for.
///
/// # Examples
///
/// ```
/// use vpmu::reg::{PmuReg, TypeReg, WrongRegister};
/// assert_eq!(TypeReg::try_from(PmuReg::Pmcr), Err(WrongRegister(PmuReg::Pmcr)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WrongRegister(pub PmuReg);

impl fmt::Display for WrongRegister {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a register of this kind", self.0)
    }
}

impl core::error::Error for WrongRegister {}

macro_rules! narrow_reg {
    ($ty:ident { $($variant:ident $(($n:ident))? ),* $(,)? }) => {
        impl From<$ty> for PmuReg {
            #[inline]
            fn from(r: $ty) -> PmuReg {
                match r {
                    $($ty::$variant $(($n))? => PmuReg::$variant $(($n))?,)*
                }
            }
        }

        impl TryFrom<PmuReg> for $ty {
            type Error = WrongRegister;
            #[inline]
            fn try_from(r: PmuReg) -> Result<$ty, WrongRegister> {
                match r {
                    $(PmuReg::$variant $(($n))? => Ok($ty::$variant $(($n))?),)*
                    other => Err(WrongRegister(other)),
                }
            }
        }
    };
}

narrow_reg!(CounterReg { Pmccntr, Pmevcntr(n), Pmxevcntr });
narrow_reg!(TypeReg { Pmccfiltr, Pmevtyper(n), Pmxevtyper });
narrow_reg!(PmceidReg { Pmceid0, Pmceid1, Pmceid2, Pmceid3 });

/// Which instructions may access a register, and from which exception level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RegAccess {
    /// `MRS`/`MRC` (and `MRRC`) exist for this register.
    pub readable: bool,
    /// `MSR`/`MCR` (and `MCRR`) exist for this register.
    pub writable: bool,
    /// The register is an `_EL0` register: EL0 may reach it, as far as `PMUSERENR` allows.
    /// When `false` (the `_EL1` registers), every EL0 access is UNDEFINED.
    pub el0: bool,
}

impl RegAccess {
    const RW0: Self = Self { readable: true, writable: true, el0: true };
    const RO0: Self = Self { readable: true, writable: false, el0: true };
    const WO0: Self = Self { readable: false, writable: true, el0: true };
    const RW1: Self = Self { readable: true, writable: true, el0: false };
    const RO1: Self = Self { readable: true, writable: false, el0: false };
}

/// One row of the table of registers at `CRn == 9` (the fixed-name registers).
struct Row {
    reg: PmuReg,
    a64: &'static str,
    a32: &'static str,
    /// AArch64 op1 (3 for `_EL0`, 0 for `_EL1`); `None` for AArch32-only registers.
    op1: Option<u8>,
    crm: u8,
    op2: u8,
    access: RegAccess,
}

const fn row(reg: PmuReg, a64: &'static str, a32: &'static str, op1: Option<u8>, crm: u8, op2: u8, access: RegAccess) -> Row {
    Row { reg, a64, a32, op1, crm, op2, access }
}

/// The registers at op0 = 3, CRn = 9 in AArch64 and coproc = 15, opc1 = 0, CRn = 9 in
/// AArch32, which share CRm and op2 in both states (DDI 0487, D24.5 and G8).
#[rustfmt::skip]
const ROWS: [Row; 18] = [
    row(PmuReg::Pmcr,       "PMCR_EL0",       "PMCR",       Some(3), 12, 0, RegAccess::RW0),
    row(PmuReg::Pmcntenset, "PMCNTENSET_EL0", "PMCNTENSET", Some(3), 12, 1, RegAccess::RW0),
    row(PmuReg::Pmcntenclr, "PMCNTENCLR_EL0", "PMCNTENCLR", Some(3), 12, 2, RegAccess::RW0),
    row(PmuReg::Pmovsclr,   "PMOVSCLR_EL0",   "PMOVSR",     Some(3), 12, 3, RegAccess::RW0),
    row(PmuReg::Pmswinc,    "PMSWINC_EL0",    "PMSWINC",    Some(3), 12, 4, RegAccess::WO0),
    row(PmuReg::Pmselr,     "PMSELR_EL0",     "PMSELR",     Some(3), 12, 5, RegAccess::RW0),
    row(PmuReg::Pmceid0,    "PMCEID0_EL0",    "PMCEID0",    Some(3), 12, 6, RegAccess::RO0),
    row(PmuReg::Pmceid1,    "PMCEID1_EL0",    "PMCEID1",    Some(3), 12, 7, RegAccess::RO0),
    row(PmuReg::Pmccntr,    "PMCCNTR_EL0",    "PMCCNTR",    Some(3), 13, 0, RegAccess::RW0),
    row(PmuReg::Pmxevtyper, "PMXEVTYPER_EL0", "PMXEVTYPER", Some(3), 13, 1, RegAccess::RW0),
    row(PmuReg::Pmxevcntr,  "PMXEVCNTR_EL0",  "PMXEVCNTR",  Some(3), 13, 2, RegAccess::RW0),
    row(PmuReg::Pmuserenr,  "PMUSERENR_EL0",  "PMUSERENR",  Some(3), 14, 0, RegAccess::RW0),
    row(PmuReg::Pmintenset, "PMINTENSET_EL1", "PMINTENSET", Some(0), 14, 1, RegAccess::RW1),
    row(PmuReg::Pmintenclr, "PMINTENCLR_EL1", "PMINTENCLR", Some(0), 14, 2, RegAccess::RW1),
    row(PmuReg::Pmovsset,   "PMOVSSET_EL0",   "PMOVSSET",   Some(3), 14, 3, RegAccess::RW0),
    row(PmuReg::Pmceid2,    "",               "PMCEID2",    None,    14, 4, RegAccess::RO0),
    row(PmuReg::Pmceid3,    "",               "PMCEID3",    None,    14, 5, RegAccess::RO0),
    row(PmuReg::Pmmir,      "PMMIR_EL1",      "PMMIR",      Some(0), 14, 6, RegAccess::RO1),
];

/// CRm of `PMEVCNTR<n>` is `0b10:n[4:3]`, of `PMEVTYPER<n>` `0b11:n[4:3]`; op2 is `n[2:0]`.
const EVCNTR_CRM_BASE: u8 = 0b1000;
const EVTYPER_CRM_BASE: u8 = 0b1100;
/// `PMCCFILTR` sits where `PMEVTYPER31` would be.
const PMCCFILTR_SLOT: u8 = 31;

/// Inverse of [`ROWS`] for AArch64: the register at op0 = 3, CRn = 9, by
/// `(op1 == 3) << 5 | (CRm - 12) << 3 | op2` (the PMU's op1 is 0 or 3), built at compile time
/// from the same table. One load on the trap path.
// Evaluated by the compiler: an index out of bounds here is a build error, not a panic.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const A64_CRN9: [Option<PmuReg>; 64] = {
    let mut t = [None; 64];
    let mut i = 0;
    while i < ROWS.len() {
        let r = &ROWS[i];
        if let Some(op1) = r.op1 {
            t[(((op1 == 3) as usize) << 5) | (((r.crm - 12) as usize) << 3) | r.op2 as usize] = Some(r.reg);
        }
        i += 1;
    }
    t
};

/// Inverse of [`ROWS`] for AArch32: the register at opc1 = 0, CRn = 9, by
/// `(CRm - 12) << 3 | opc2`.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const CP15_CRN9: [Option<PmuReg>; 32] = {
    let mut t = [None; 32];
    let mut i = 0;
    while i < ROWS.len() {
        let r = &ROWS[i];
        t[(((r.crm - 12) as usize) << 3) | r.op2 as usize] = Some(r.reg);
        i += 1;
    }
    t
};

/// The trap path's lookup: the PMU register at the ISS's register fields, for an `MRS`/`MSR`
/// (EC 0x18, op0 = 3) and for an `MRC`/`MCR` (EC 0x03, coproc 15). Both syndromes keep op2,
/// op1, CRn and CRm at the same bits (\[19:17\], \[16:14\], \[13:10\], \[4:1\]); the PMU
/// lives at CRn 9 and 14 only, so the index is `(CRn == 14) << 10 | op2:op1 << 4 | CRm`.
/// Built at compile time from [`PmuReg::from_a64`]'s and [`PmuReg::from_cp15`]'s rules (the
/// tests check every index against them).
const fn fast_index(iss: u32) -> Option<usize> {
    let hi = match (iss >> 10) & 0xf {
        9 => 0,
        14 => 1 << 10,
        _ => return None,
    };
    Some(hi | (((iss >> 14) & 0x3f) << 4) as usize | ((iss >> 1) & 0xf) as usize)
}

const FAST_LEN: usize = 1 << 11;

/// The fields of index `k` of the fast tables: `(CRn, op1, CRm, op2)`.
#[allow(clippy::arithmetic_side_effects)]
const fn fast_fields(k: usize) -> (u8, u8, u8, u8) {
    let crn = if k >> 10 == 1 { 14 } else { 9 };
    ((crn), ((k >> 4) & 7) as u8, (k & 0xf) as u8, ((k >> 7) & 7) as u8)
}

/// The register at CRn 14 (`PMEVCNTR<n>`, `PMEVTYPER<n>`, `PMCCFILTR`) for CRm, op2; the rule
/// [`PmuReg::from_a64`] and [`PmuReg::from_cp15`] follow there.
#[allow(clippy::arithmetic_side_effects)]
const fn crn14(crm: u8, op2: u8) -> Option<PmuReg> {
    let n = ((crm & 3) << 3) | (op2 & 7);
    match crm & !3 {
        EVCNTR_CRM_BASE => match EventCounter::new(n) {
            Some(c) => Some(PmuReg::Pmevcntr(c)),
            None => None,
        },
        EVTYPER_CRM_BASE => match EventCounter::new(n) {
            Some(c) => Some(PmuReg::Pmevtyper(c)),
            None => Some(PmuReg::Pmccfiltr),
        },
        _ => None,
    }
}

#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const fn fast_table(a64: bool) -> [Option<PmuReg>; FAST_LEN] {
    let mut t = [None; FAST_LEN];
    let mut k = 0;
    while k < FAST_LEN {
        let (crn, op1, crm, op2) = fast_fields(k);
        t[k] = if crn == 14 {
            if (a64 && op1 == 3) || (!a64 && op1 == 0) {
                crn14(crm, op2)
            } else {
                None
            }
        } else if crm >= 12 {
            let i = (((crm - 12) as usize) << 3) | op2 as usize;
            if a64 && (op1 == 0 || op1 == 3) {
                A64_CRN9[(((op1 == 3) as usize) << 5) | i]
            } else if !a64 && op1 == 0 {
                CP15_CRN9[i]
            } else {
                None
            }
        } else {
            None
        };
        k += 1;
    }
    t
}

static A64_FAST: [Option<PmuReg>; FAST_LEN] = fast_table(true);
static CP15_FAST: [Option<PmuReg>; FAST_LEN] = fast_table(false);

/// The PMU register an `MRS`/`MSR` syndrome's ISS names (op0 = 3 assumed: the caller checks
/// bits \[24:20\]): one load.
#[inline]
pub(crate) fn a64_fast(iss: u32) -> Option<PmuReg> {
    A64_FAST.get(fast_index(iss)?).copied().flatten()
}

/// The PMU register an `MRC`/`MCR` syndrome's ISS names (coproc 15): one load.
#[inline]
pub(crate) fn cp15_fast(iss: u32) -> Option<PmuReg> {
    CP15_FAST.get(fast_index(iss)?).copied().flatten()
}

// `row_index` agrees with the table: every row sits at the index its register maps to.
// Evaluated by the compiler: a mismatch is a build error.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const _: () = {
    let mut i = 0;
    while i < ROWS.len() {
        match ROWS[i].reg.row_index() {
            Some(j) if j == i => {}
            _ => panic!("PmuReg::row_index disagrees with ROWS"),
        }
        i += 1;
    }
};

/// `(CRm - 12) << 3 | op2`, the index of a CRn = 9 register in the tables above.
#[inline]
fn crn9_index(crm: u8, op2: u8) -> Option<usize> {
    Some((usize::from(crm.checked_sub(12)?) << 3) | usize::from(op2 & 7))
}

impl PmuReg {
    /// The register's row in [`ROWS`]: O(1), by [`PmuReg::row_index`].
    #[inline]
    fn row(self) -> Option<&'static Row> {
        ROWS.get(self.row_index()?)
    }

    /// The index of a fixed-name register's row in [`ROWS`] (checked against the table at
    /// compile time below), `None` for the counter-indexed registers.
    #[inline]
    const fn row_index(self) -> Option<usize> {
        Some(match self {
            PmuReg::Pmcr => 0,
            PmuReg::Pmcntenset => 1,
            PmuReg::Pmcntenclr => 2,
            PmuReg::Pmovsclr => 3,
            PmuReg::Pmswinc => 4,
            PmuReg::Pmselr => 5,
            PmuReg::Pmceid0 => 6,
            PmuReg::Pmceid1 => 7,
            PmuReg::Pmccntr => 8,
            PmuReg::Pmxevtyper => 9,
            PmuReg::Pmxevcntr => 10,
            PmuReg::Pmuserenr => 11,
            PmuReg::Pmintenset => 12,
            PmuReg::Pmintenclr => 13,
            PmuReg::Pmovsset => 14,
            PmuReg::Pmceid2 => 15,
            PmuReg::Pmceid3 => 16,
            PmuReg::Pmmir => 17,
            PmuReg::Pmevcntr(_) | PmuReg::Pmevtyper(_) | PmuReg::Pmccfiltr => return None,
        })
    }

    /// `(CRn, CRm, op2)` of this register: shared by its AArch64 and AArch32 encodings.
    fn crn_crm_op2(self) -> (u8, u8, u8) {
        let (crm_base, n) = match self {
            PmuReg::Pmevcntr(n) => (EVCNTR_CRM_BASE, n.get()),
            PmuReg::Pmevtyper(n) => (EVTYPER_CRM_BASE, n.get()),
            PmuReg::Pmccfiltr => (EVTYPER_CRM_BASE, PMCCFILTR_SLOT),
            _ => {
                return match self.row() {
                    Some(r) => (9, r.crm, r.op2),
                    None => (0, 0, 0), // unreachable: every fixed register has a row
                };
            }
        };
        (14, crm_base | (n >> 3), n & 7)
    }

    /// The AArch64 encoding of the register, or `None` for the AArch32-only `PMCEID2`/`PMCEID3`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::reg::{A64Id, PmuReg};
    /// assert_eq!(PmuReg::Pmintenset.a64_id(), Some(A64Id::new(3, 0, 9, 14, 1).unwrap()));
    /// assert_eq!(PmuReg::Pmceid2.a64_id(), None);
    /// ```
    #[must_use]
    pub fn a64_id(self) -> Option<A64Id> {
        let op1 = match self {
            PmuReg::Pmevcntr(_) | PmuReg::Pmevtyper(_) | PmuReg::Pmccfiltr => 3,
            _ => self.row()?.op1?,
        };
        let (crn, crm, op2) = self.crn_crm_op2();
        Some(A64Id { op0: 3, op1, crn, crm, op2 })
    }

    /// The AArch32 `MRC`/`MCR` encoding (coproc 15, opc1 0) of the register's 32-bit view.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::reg::{Cp15Id, PmuReg};
    /// // PMOVSR is MRC p15, 0, <Rt>, c9, c12, 3
    /// assert_eq!(PmuReg::Pmovsclr.cp15_id(), Cp15Id::new(0, 9, 12, 3).unwrap());
    /// ```
    #[must_use]
    pub fn cp15_id(self) -> Cp15Id {
        let (crn, crm, op2) = self.crn_crm_op2();
        Cp15Id { opc1: 0, crn, crm, opc2: op2 }
    }

    /// The AArch32 `MRRC`/`MCRR` encoding of the register's 64-bit view: only `PMCCNTR`
    /// has one (`MRRC p15, 0, <Rt>, <Rt2>, c9`).
    #[must_use]
    pub fn cp15_wide_id(self) -> Option<Cp15WideId> {
        match self {
            PmuReg::Pmccntr => Some(Cp15WideId { opc1: 0, crm: 9 }),
            _ => None,
        }
    }

    /// The register an AArch64 encoding names, or `None` if it is not a PMU register.
    #[must_use]
    #[inline]
    pub fn from_a64(id: A64Id) -> Option<PmuReg> {
        if id.op0 != 3 {
            return None;
        }
        match id.crn {
            9 if id.op1 == 0 || id.op1 == 3 => {
                let k = (usize::from(id.op1 == 3) << 5) | crn9_index(id.crm, id.op2)?;
                A64_CRN9.get(k).copied().flatten()
            }
            14 if id.op1 == 3 => crn14(id.crm, id.op2),
            _ => None,
        }
    }

    /// The register an AArch32 `MRC`/`MCR` encoding names, or `None` if it is not a PMU
    /// register.
    #[must_use]
    #[inline]
    pub fn from_cp15(id: Cp15Id) -> Option<PmuReg> {
        if id.opc1 != 0 {
            return None;
        }
        match id.crn {
            9 => CP15_CRN9.get(crn9_index(id.crm, id.opc2)?).copied().flatten(),
            14 => crn14(id.crm, id.opc2),
            _ => None,
        }
    }

    /// The register an AArch32 `MRRC`/`MCRR` encoding names, or `None`.
    #[must_use]
    #[inline]
    pub fn from_cp15_wide(id: Cp15WideId) -> Option<PmuReg> {
        (id == Cp15WideId { opc1: 0, crm: 9 }).then_some(PmuReg::Pmccntr)
    }

    /// How the register may be accessed.
    #[must_use]
    #[inline]
    pub fn access(self) -> RegAccess {
        match self {
            PmuReg::Pmevcntr(_) | PmuReg::Pmevtyper(_) | PmuReg::Pmccfiltr => RegAccess::RW0,
            _ => self.row().map_or(RegAccess::RW0, |r| r.access),
        }
    }

    /// Whether the register exists in AArch64 (all but `PMCEID2`/`PMCEID3`).
    #[must_use]
    pub fn in_aarch64(self) -> bool {
        !matches!(self, PmuReg::Pmceid2 | PmuReg::Pmceid3)
    }

    /// Every register, each event-counter register once per index, AArch32-only ones included.
    pub fn all() -> impl Iterator<Item = PmuReg> {
        ROWS.iter()
            .map(|r| r.reg)
            .chain(EventCounter::all().map(PmuReg::Pmevcntr))
            .chain(EventCounter::all().map(PmuReg::Pmevtyper))
            .chain(core::iter::once(PmuReg::Pmccfiltr))
    }

    /// The AArch32 name: `PMOVSR`, `PMEVCNTR5`, `PMCEID2`, ...
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::reg::PmuReg;
    /// assert_eq!(PmuReg::Pmovsclr.aarch32_name().to_string(), "PMOVSR");
    /// ```
    #[must_use]
    pub fn aarch32_name(self) -> impl fmt::Display {
        Name { reg: self, aarch32: true }
    }
}

struct Name {
    reg: PmuReg,
    aarch32: bool,
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = if self.aarch32 { "" } else { "_EL0" };
        match self.reg {
            PmuReg::Pmevcntr(n) => write!(f, "PMEVCNTR{}{suffix}", n.get()),
            PmuReg::Pmevtyper(n) => write!(f, "PMEVTYPER{}{suffix}", n.get()),
            PmuReg::Pmccfiltr => write!(f, "PMCCFILTR{suffix}"),
            r => match r.row() {
                Some(row) if self.aarch32 || row.a64.is_empty() => f.write_str(row.a32),
                Some(row) => f.write_str(row.a64),
                None => Ok(()),
            },
        }
    }
}

/// The AArch64 name (`PMEVCNTR5_EL0`); `PMCEID2`/`PMCEID3`, which only AArch32 has, print
/// their AArch32 names.
impl fmt::Display for PmuReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Name { reg: *self, aarch32: false }, f)
    }
}

/// A name that is not a PMU register's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownRegName;

impl fmt::Display for UnknownRegName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not the name of a PMUv3 system register (e.g. PMCR_EL0, PMEVCNTR5_EL0, PMOVSR)")
    }
}

impl core::error::Error for UnknownRegName {}

/// Parses an AArch64 name (`PMEVTYPER3_EL0`, `PMINTENSET_EL1`) or an AArch32 name
/// (`PMEVTYPER3`, `PMOVSR`, `PMCEID2`), ASCII case-insensitively.
///
/// # Errors
///
/// [`UnknownRegName`] if the string names no PMU register.
impl FromStr for PmuReg {
    type Err = UnknownRegName;

    fn from_str(s: &str) -> Result<Self, UnknownRegName> {
        if let Some(r) = ROWS.iter().find(|r| s.eq_ignore_ascii_case(r.a32) || (!r.a64.is_empty() && s.eq_ignore_ascii_case(r.a64))) {
            return Ok(r.reg);
        }
        let base = match s.len().checked_sub(4).and_then(|i| s.get(i..)) {
            Some(tail) if tail.eq_ignore_ascii_case("_EL0") => s.get(..s.len().saturating_sub(4)).unwrap_or(s),
            _ => s,
        };
        let indexed = |prefix: &str| -> Option<EventCounter> {
            let head = base.get(..prefix.len())?;
            let digits = base.get(prefix.len()..)?;
            if !head.eq_ignore_ascii_case(prefix)
                || digits.is_empty()
                || digits.len() > 2
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || (digits.len() == 2 && digits.starts_with('0'))
            {
                return None;
            }
            EventCounter::new(digits.parse().ok()?)
        };
        if base.eq_ignore_ascii_case("PMCCFILTR") {
            Ok(PmuReg::Pmccfiltr)
        } else if let Some(n) = indexed("PMEVCNTR") {
            Ok(PmuReg::Pmevcntr(n))
        } else if let Some(n) = indexed("PMEVTYPER") {
            Ok(PmuReg::Pmevtyper(n))
        } else {
            Err(UnknownRegName)
        }
    }
}

/// An AArch64 system register encoding: `op0, op1, CRn, CRm, op2`.
///
/// [`A64Id::packed`] is the order the `MRS`/`MSR` instruction (bits \[20:5\]) and Linux's
/// `sys_reg()` / KVM one-reg ids use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct A64Id {
    pub(crate) op0: u8,
    pub(crate) op1: u8,
    pub(crate) crn: u8,
    pub(crate) crm: u8,
    pub(crate) op2: u8,
}

impl A64Id {
    /// An encoding from its fields, or `None` if a field is wider than the architecture allows
    /// (op0 2 bits, op1 3, CRn 4, CRm 4, op2 3).
    #[must_use]
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Option<Self> {
        if op0 > 3 || op1 > 7 || crn > 15 || crm > 15 || op2 > 7 {
            return None;
        }
        Some(Self { op0, op1, crn, crm, op2 })
    }

    /// The encoding from `op0:op1:CRn:CRm:op2` packed in 16 bits (`op0` at bit 14): never fails.
    #[must_use]
    #[inline]
    pub const fn from_packed(v: u16) -> Self {
        Self {
            op0: ((v >> 14) & 3) as u8,
            op1: ((v >> 11) & 7) as u8,
            crn: ((v >> 7) & 15) as u8,
            crm: ((v >> 3) & 15) as u8,
            op2: (v & 7) as u8,
        }
    }

    /// `op0:op1:CRn:CRm:op2` in 16 bits, `op0` at bit 14.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::reg::PmuReg;
    /// assert_eq!(PmuReg::Pmcr.a64_id().unwrap().packed(), 0xdce0);
    /// ```
    #[must_use]
    pub const fn packed(self) -> u16 {
        ((self.op0 as u16) << 14) | ((self.op1 as u16) << 11) | ((self.crn as u16) << 7) | ((self.crm as u16) << 3) | self.op2 as u16
    }

    /// op0.
    #[must_use]
    pub const fn op0(self) -> u8 {
        self.op0
    }
    /// op1.
    #[must_use]
    pub const fn op1(self) -> u8 {
        self.op1
    }
    /// CRn.
    #[must_use]
    pub const fn crn(self) -> u8 {
        self.crn
    }
    /// CRm.
    #[must_use]
    pub const fn crm(self) -> u8 {
        self.crm
    }
    /// op2.
    #[must_use]
    pub const fn op2(self) -> u8 {
        self.op2
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for A64Id {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self::from_packed(u.arbitrary()?))
    }
}

impl fmt::Display for A64Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S{}_{}_C{}_C{}_{}", self.op0, self.op1, self.crn, self.crm, self.op2)
    }
}

/// An AArch32 cp15 `MRC`/`MCR` encoding: `opc1, CRn, CRm, opc2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cp15Id {
    pub(crate) opc1: u8,
    pub(crate) crn: u8,
    pub(crate) crm: u8,
    pub(crate) opc2: u8,
}

impl Cp15Id {
    /// An encoding from its fields, or `None` if a field is too wide (opc1 3 bits, CRn 4,
    /// CRm 4, opc2 3).
    #[must_use]
    pub const fn new(opc1: u8, crn: u8, crm: u8, opc2: u8) -> Option<Self> {
        if opc1 > 7 || crn > 15 || crm > 15 || opc2 > 7 {
            return None;
        }
        Some(Self { opc1, crn, crm, opc2 })
    }
    /// opc1.
    #[must_use]
    pub const fn opc1(self) -> u8 {
        self.opc1
    }
    /// CRn.
    #[must_use]
    pub const fn crn(self) -> u8 {
        self.crn
    }
    /// CRm.
    #[must_use]
    pub const fn crm(self) -> u8 {
        self.crm
    }
    /// opc2.
    #[must_use]
    pub const fn opc2(self) -> u8 {
        self.opc2
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Cp15Id {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let v: u16 = u.arbitrary()?;
        Ok(Self { opc1: (v & 7) as u8, crn: ((v >> 3) & 15) as u8, crm: ((v >> 7) & 15) as u8, opc2: ((v >> 11) & 7) as u8 })
    }
}

impl fmt::Display for Cp15Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p15, {}, c{}, c{}, {}", self.opc1, self.crn, self.crm, self.opc2)
    }
}

/// An AArch32 cp15 `MRRC`/`MCRR` encoding: `opc1, CRm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cp15WideId {
    pub(crate) opc1: u8,
    pub(crate) crm: u8,
}

impl Cp15WideId {
    /// An encoding from its fields, or `None` if a field is too wide (opc1 4 bits, CRm 4).
    #[must_use]
    pub const fn new(opc1: u8, crm: u8) -> Option<Self> {
        if opc1 > 15 || crm > 15 {
            return None;
        }
        Some(Self { opc1, crm })
    }
    /// opc1.
    #[must_use]
    pub const fn opc1(self) -> u8 {
        self.opc1
    }
    /// CRm.
    #[must_use]
    pub const fn crm(self) -> u8 {
        self.crm
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Cp15WideId {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let v: u8 = u.arbitrary()?;
        Ok(Self { opc1: v & 15, crm: v >> 4 })
    }
}

impl fmt::Display for Cp15WideId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p15, {}, c{}", self.opc1, self.crm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trap path's tables give, for every op1, CRn, CRm and op2 (and every Rt and
    /// direction bit around them), exactly what the decoder's lookups give.
    #[test]
    #[allow(clippy::arithmetic_side_effects)]
    fn the_fast_tables_agree_with_the_lookups_everywhere() {
        for op1 in 0..8u8 {
            for crn in 0..16u8 {
                for crm in 0..16u8 {
                    for op2 in 0..8u8 {
                        let fields = u32::from(op2) << 17 | u32::from(op1) << 14 | u32::from(crn) << 10 | u32::from(crm) << 1;
                        for extra in [0, 1, 0x1f << 5 | 1, 0x0a << 5] {
                            let iss = fields | extra;
                            let a64 = A64Id { op0: 3, op1, crn, crm, op2 };
                            assert_eq!(a64_fast(iss | 3 << 20), PmuReg::from_a64(a64), "{a64:?}");
                            let cp15 = Cp15Id { opc1: op1, crn, crm, opc2: op2 };
                            assert_eq!(cp15_fast(iss), PmuReg::from_cp15(cp15), "{cp15:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_register_round_trips_through_every_encoding_and_name() {
        let mut count = 0;
        for reg in PmuReg::all() {
            count += 1;
            if let Some(id) = reg.a64_id() {
                assert_eq!(PmuReg::from_a64(id), Some(reg), "{reg}");
                assert_eq!(PmuReg::from_a64(A64Id::from_packed(id.packed())), Some(reg));
            } else {
                assert!(!reg.in_aarch64());
            }
            assert_eq!(PmuReg::from_cp15(reg.cp15_id()), Some(reg), "{reg}");
            let name = std::format!("{reg}");
            assert_eq!(name.parse::<PmuReg>(), Ok(reg));
            let a32 = std::format!("{}", reg.aarch32_name());
            assert_eq!(a32.parse::<PmuReg>(), Ok(reg));
            assert_eq!(a32.to_ascii_lowercase().parse::<PmuReg>(), Ok(reg));
        }
        assert_eq!(count, 18 + 31 + 31 + 1);
    }

    #[test]
    fn names_that_are_not_registers() {
        for s in [
            "",
            "PMEVCNTR31_EL0",
            "PMEVCNTR05",
            "PMEVCNTR",
            "PMCR_EL1",
            "PMEVTYPER",
            "PMCEID2_EL0",
            "PMEVCNTR-1",
            "PMEVCNTR+1",
            "PMCCFILTR_EL1",
        ] {
            assert_eq!(s.parse::<PmuReg>(), Err(UnknownRegName), "{s}");
        }
    }

    #[test]
    fn pmccntr_has_the_only_wide_encoding() {
        for reg in PmuReg::all() {
            let wide = reg.cp15_wide_id();
            assert_eq!(wide.is_some(), reg == PmuReg::Pmccntr);
            if let Some(w) = wide {
                assert_eq!(PmuReg::from_cp15_wide(w), Some(reg));
            }
        }
    }

    #[test]
    fn el1_registers_have_op1_zero() {
        for reg in [PmuReg::Pmintenset, PmuReg::Pmintenclr, PmuReg::Pmmir] {
            assert!(!reg.access().el0);
            assert_eq!(reg.a64_id().map(A64Id::op1), Some(0));
            // the same CRm/op2 with op1 = 3 is not a PMU register
            let id = reg.a64_id().and_then(|i| A64Id::new(3, 3, i.crn(), i.crm(), i.op2()));
            assert_eq!(id.and_then(PmuReg::from_a64), None);
        }
    }
}
