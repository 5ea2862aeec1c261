//! Migration: the whole guest-visible state of a vPMU as plain data, its byte form, and
//! per-register access by KVM one-reg id.
//!
//! - [`Pmu::save`] folds what the backend counted and copies every register and counter into a
//!   [`PmuState`]; [`Pmu::restore`] validates a `PmuState` against the destination's
//!   configuration and only then replaces the state and re-arms the backend, so counting
//!   continues exactly where it stopped.
//! - [`PmuState::to_bytes`] / [`PmuState::from_bytes`]: a versioned, little-endian, checksummed
//!   byte form of [`PmuState::BYTES`] bytes, for VMMs that ship raw bytes.
//! - [`Pmu::get_one_reg`] / [`Pmu::set_one_reg`] and [`Pmu::one_reg_ids`]: the registers one by
//!   one, by `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` id, with KVM's userspace semantics, so a VMM
//!   migrating from or to Linux KVM can map the state one to one.
//!
//! # The byte form (format version 2)
//!
//! All integers little-endian; [`PmuState::BYTES`] = 609 bytes.
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 8 | magic `b"VPMUSNAP"` |
//! | 8 | 2 | format version, 2 ([`PmuState::FORMAT_VERSION`]) |
//! | 10 | 4 | total length in bytes, 609 |
//! | 14 | 1 | `PMCR.N`: the number of event counters |
//! | 15 | 1 | PMU version as `ID_AA64DFR0_EL1.PMUVer`: 1, 4, 5 or 6 |
//! | 16 | 1 | cycle counter prescaler (`PMCR.D`), `0..64` |
//! | 17 | 8 | `PMCR` stored bits |
//! | 25 | 8 | `PMSELR` |
//! | 33 | 8 | `PMCNTENSET` |
//! | 41 | 8 | `PMINTENSET` |
//! | 49 | 8 | `PMOVSSET` |
//! | 57 | 8 | `PMUSERENR` |
//! | 65 | 8 | `PMCCNTR` |
//! | 73 | 8 | `PMCCFILTR` |
//! | 81 | 248 | `PMEVCNTR0..=30`, 8 bytes each |
//! | 329 | 248 | `PMEVTYPER0..=30`, 8 bytes each |
//! | 577 | 2 | identity: the interrupt's INTID, 0 for none ([`Identity::irq`]) |
//! | 579 | 1 | identity: `PMCR.IMP` |
//! | 580 | 1 | identity: `PMCR.IDCODE` |
//! | 581 | 4 | identity: `PMMIR_EL1` |
//! | 585 | 4 | identity: the event filter's digest ([`Identity::filter`]) |
//! | 589 | 8 | identity: `PMCEID0_EL0` |
//! | 597 | 8 | identity: `PMCEID1_EL0` |
//! | 605 | 4 | CRC-32 (IEEE 802.3, as zlib's `crc32`) of bytes `0..605` |
//!
//! A reader checks, in this order: the length covers the header, the magic, the format version
//! (a newer one is [`SnapshotError::FutureVersion`], format 1, which had no identity, is
//! [`SnapshotError::OldFormat`]), the declared length, the actual length
//! (short: [`SnapshotError::Truncated`], long: [`SnapshotError::TrailingBytes`]), the checksum,
//! and the PMU version byte. Whether the state fits a PMU is [`Pmu::restore`]'s question.
//!
//! # Examples
//!
//! ```
//! use vpmu::{config::PmuConfig, reg::PmuReg, El, Pmu, PmuState, SoftBackend};
//!
//! let cfg = PmuConfig::builder().counters(2).build()?;
//! let mut src = Pmu::new(cfg, SoftBackend::new())?;
//! let _ = src.write(PmuReg::Pmcntenset, 1 << 31, El::El1);
//! let _ = src.write(PmuReg::Pmcr, 1, El::El1); // PMCR.E: PMCCNTR counts CPU_CYCLES
//! src.count(0x11, 1000);
//!
//! let bytes = src.save().to_bytes(); // the VMM ships these
//! let mut dst = Pmu::new(cfg, SoftBackend::new())?;
//! dst.restore(&PmuState::from_bytes(&bytes)?)?;
//! dst.count(0x11, 234);
//! assert_eq!(dst.read(PmuReg::Pmccntr, El::El1).value(), Some(1234));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use crate::backend::{CounterBackend, CounterId};
use crate::config::{FilterAction, PmuConfig, PmuIrq, PmuVersion};
use crate::field::{Pmcr, Pmuserenr};
use crate::pmc::Pmc;
use crate::pmu::{bit, for_each_bit};
use crate::reg::{A64Id, EventCounter, PmuReg, CYCLE_COUNTER_BIT, MAX_EVENT_COUNTERS};
use crate::Pmu;

/// The number of event counter slots in a [`PmuState`]: `PMEVCNTR0..=30`.
const EVENT_SLOTS: usize = MAX_EVENT_COUNTERS as usize;
const CYCLE: usize = CYCLE_COUNTER_BIT as usize;

/// What a guest can see of its PMU that is not a register it writes: the configuration and the
/// host's capabilities as the guest observes them. A [`PmuState`] records it, and
/// [`Pmu::restore`] refuses a destination where any of it differs
/// ([`SnapshotError::IdentityMismatch`]), so nothing a guest reads changes under it across a
/// migration.
///
/// # Examples
///
/// ```
/// use vpmu::{config::{PmuConfig, PmuIrq}, Pmu, SoftBackend};
/// let cfg = PmuConfig::builder().irq(PmuIrq::Ppi(23)).identity(0x41, 3).build()?;
/// let mut pmu = Pmu::new(cfg, SoftBackend::new())?;
/// let id = pmu.save().identity;
/// assert_eq!((id.irq, id.imp, id.idcode), (23, 0x41, 3));
/// # Ok::<(), vpmu::config::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Identity {
    /// The PMU interrupt's INTID (a PPI or an SPI), 0 for none.
    pub irq: u16,
    /// `PMCR.IMP`.
    pub imp: u8,
    /// `PMCR.IDCODE`.
    pub idcode: u8,
    /// `PMMIR_EL1`.
    pub pmmir: u32,
    /// The event filter, as the CRC-32 of its actions in order (each: 0 allow or 1 deny, then
    /// the first and last event, little-endian `u16`s). Two filters with the same actions have
    /// the same digest.
    pub filter: u32,
    /// `PMCEID0_EL0` and `PMCEID1_EL0` (64 bits each): the events the guest is told about,
    /// which the backend's host and the filter decide.
    pub pmceid: [u64; 2],
}

/// A field of [`Identity`], for [`SnapshotError::IdentityMismatch`].
///
/// # Examples
///
/// ```
/// use vpmu::snapshot::IdentityField;
/// assert_eq!(IdentityField::Pmceid0.to_string(), "PMCEID0_EL0");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum IdentityField {
    /// The interrupt's INTID.
    Irq,
    /// `PMCR.IMP`.
    Imp,
    /// `PMCR.IDCODE`.
    Idcode,
    /// `PMMIR_EL1`.
    Pmmir,
    /// The event filter (its digest).
    Filter,
    /// `PMCEID0_EL0`.
    Pmceid0,
    /// `PMCEID1_EL0`.
    Pmceid1,
}

impl fmt::Display for IdentityField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentityField::Irq => "PMU interrupt INTID",
            IdentityField::Imp => "PMCR.IMP",
            IdentityField::Idcode => "PMCR.IDCODE",
            IdentityField::Pmmir => "PMMIR_EL1",
            IdentityField::Filter => "event filter digest",
            IdentityField::Pmceid0 => "PMCEID0_EL0",
            IdentityField::Pmceid1 => "PMCEID1_EL0",
        })
    }
}

/// Every guest-visible register and counter of one vPMU, as plain data: what
/// [`Pmu::save`] gives and [`Pmu::restore`] takes.
///
/// Registers are held as the 64-bit value an AArch64 `MRS` of them reads, except `PMCR`, which
/// holds only its stored bits (`E`, `D`, `X`, `DP`, `LC`, `LP`): `N`, `IDCODE` and `IMP` are
/// configuration. The `SET`/`CLR` register pairs share one value. Event counters at or above
/// `counters` do not exist and are zero.
///
/// # Examples
///
/// ```
/// use vpmu::{config::PmuConfig, Pmu, SoftBackend};
///
/// let mut pmu = Pmu::new(PmuConfig::builder().counters(3).build()?, SoftBackend::new())?;
/// let s = pmu.save();
/// assert_eq!(s.counters, 3);
/// assert_eq!(s.pmcntenset, 0);
/// assert_eq!(s.pmcr & 1, 0); // PMCR.E is 0 after reset
/// # Ok::<(), vpmu::config::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct PmuState {
    /// `PMCR.N` the state was saved under: the number of event counters.
    pub counters: u8,
    /// The PMU version the state was saved under.
    pub version: PmuVersion,
    /// `PMCR_EL0`, stored bits only: `E`, `D`, `X`, `DP`, `LC`, and `LP` from PMUv3p5.
    pub pmcr: u64,
    /// `PMSELR_EL0`: `SEL`, `0..=31`.
    pub pmselr: u64,
    /// `PMCNTENSET_EL0` (= `PMCNTENCLR_EL0`): bit `n` enables counter `n`, bit 31 `PMCCNTR`.
    pub pmcntenset: u64,
    /// `PMINTENSET_EL1` (= `PMINTENCLR_EL1`): the overflow interrupt enables.
    pub pmintenset: u64,
    /// `PMOVSSET_EL0` (= `PMOVSCLR_EL0`): the overflow flags.
    pub pmovsset: u64,
    /// `PMUSERENR_EL0`: `EN`, `SW`, `CR`, `ER`.
    pub pmuserenr: u64,
    /// `PMEVCNTR<n>_EL0`, `n = 0..=30`: 32-bit values before PMUv3p5.
    pub evcntr: [u64; EVENT_SLOTS],
    /// `PMEVTYPER<n>_EL0`, `n = 0..=30`.
    pub evtyper: [u64; EVENT_SLOTS],
    /// `PMCCNTR_EL0`.
    pub pmccntr: u64,
    /// `PMCCFILTR_EL0`.
    pub pmccfiltr: u64,
    /// Hidden state: with `PMCR.D` = 1 and `LC` = 0 the cycle counter ticks once per 64 cycles,
    /// and this is how many cycles (`0..64`) have been counted towards the next tick. Without
    /// it a migrated cycle counter could tick up to 63 cycles late.
    pub prescale: u8,
    /// What else the guest sees of its PMU: a destination must show the same.
    pub identity: Identity,
}

/// Why a snapshot could not be read or restored. Nothing changed when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SnapshotError {
    /// The byte form is shorter than its header or than the length it declares.
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// The first eight bytes are not `b"VPMUSNAP"`.
    BadMagic {
        /// The first eight bytes.
        found: [u8; 8],
    },
    /// A format version newer than this vpmu reads.
    FutureVersion {
        /// The version in the input.
        found: u16,
        /// The newest version this vpmu reads.
        newest: u16,
    },
    /// A format version older than this vpmu reads: format 1 recorded no [`Identity`], so
    /// a restore could not check that the guest sees the same PMU. Save it again with a vpmu
    /// that writes the current format.
    OldFormat {
        /// The version in the input.
        found: u16,
        /// The oldest version this vpmu reads.
        oldest: u16,
    },
    /// The state was saved on a PMU the guest would see differently: another interrupt,
    /// `PMCR.IMP`/`IDCODE`, `PMMIR`, event filter or `PMCEID`.
    IdentityMismatch {
        /// Which.
        field: IdentityField,
        /// The state's value.
        state: u64,
        /// The destination's value.
        config: u64,
    },
    /// Format version 0, which never existed.
    BadFormatVersion {
        /// The version in the input.
        found: u16,
    },
    /// The declared length is not the length of this format version.
    BadLength {
        /// The length in the header.
        declared: u32,
        /// The length of the format version.
        expected: u32,
    },
    /// Bytes after the end of the snapshot.
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The CRC-32 does not match the contents: the bytes are corrupt.
    Checksum {
        /// The checksum in the input.
        stored: u32,
        /// The checksum of the contents.
        computed: u32,
    },
    /// The PMU version byte is not a `PMUVer` value vpmu knows (1, 4, 5, 6).
    UnknownPmuVersion {
        /// The byte.
        pmuver: u8,
    },
    /// The state was saved with a different number of event counters.
    CounterMismatch {
        /// `N` in the state.
        state: u8,
        /// `N` of the destination.
        config: u8,
    },
    /// The state was saved under a different PMU version.
    VersionMismatch {
        /// The state's version.
        state: PmuVersion,
        /// The destination's version.
        config: PmuVersion,
    },
    /// A register has bits set that the destination does not implement (for `PMCR`: bits that
    /// are not stored; for an event type: bits outside the writable mask).
    ReservedBits {
        /// The register.
        reg: PmuReg,
        /// The offending bits.
        bits: u64,
    },
    /// A counter bitmap (`PMCNTENSET`, `PMINTENSET`, `PMOVSSET`) has bits of event counters at
    /// or above `N`.
    NoSuchCounters {
        /// The register.
        reg: PmuReg,
        /// The offending bits.
        bits: u64,
    },
    /// An event counter or event type at or above `N` is not zero.
    MissingCounterState {
        /// `PMEVCNTR<n>` or `PMEVTYPER<n>`.
        reg: PmuReg,
        /// Its value.
        value: u64,
    },
    /// An event counter holds more than 32 bits before PMUv3p5.
    ValueTooWide {
        /// The counter.
        reg: PmuReg,
        /// Its value.
        value: u64,
    },
    /// `PMCR.LC` is clear, but it is RES1 on a PMU whose guest has no AArch32 EL0.
    LcClear,
    /// The cycle counter prescaler is not below 64.
    PrescaleOutOfRange {
        /// Its value.
        prescale: u8,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SnapshotError::Truncated { len, need } => write!(f, "snapshot truncated: {len} bytes, {need} needed"),
            SnapshotError::BadMagic { found } => write!(f, "not a vpmu snapshot: the magic is {found:02x?}, not \"VPMUSNAP\""),
            SnapshotError::FutureVersion { found, newest } => {
                write!(f, "snapshot format version {found} is newer than this vpmu reads (up to {newest})")
            }
            SnapshotError::OldFormat { found, oldest } => {
                write!(f, "snapshot format version {found} is older than this vpmu reads (from {oldest}): it records no PMU identity")
            }
            SnapshotError::IdentityMismatch { field, state, config } => {
                write!(f, "the state was saved on a PMU with another {field} ({state:#x}; the destination has {config:#x})")
            }
            SnapshotError::BadFormatVersion { found } => write!(f, "snapshot format version {found} does not exist"),
            SnapshotError::BadLength { declared, expected } => {
                write!(f, "snapshot declares {declared} bytes, but its format version has {expected}")
            }
            SnapshotError::TrailingBytes { extra } => write!(f, "{extra} bytes of garbage after the snapshot"),
            SnapshotError::Checksum { stored, computed } => {
                write!(f, "snapshot is corrupt: its CRC-32 is {stored:#010x}, its contents give {computed:#010x}")
            }
            SnapshotError::UnknownPmuVersion { pmuver } => write!(f, "unknown PMU version {pmuver} (PMUVer 1, 4, 5 or 6 expected)"),
            SnapshotError::CounterMismatch { state, config } => {
                write!(f, "the state has {state} event counters, the destination PMU {config}")
            }
            SnapshotError::VersionMismatch { state, config } => {
                write!(f, "the state is from a {state:?} PMU, the destination is {config:?}")
            }
            SnapshotError::ReservedBits { reg, bits } => write!(f, "{reg} has bits {bits:#x} set that this PMU does not implement"),
            SnapshotError::NoSuchCounters { reg, bits } => {
                write!(f, "{reg} has bits {bits:#x} set for event counters that do not exist")
            }
            SnapshotError::MissingCounterState { reg, value } => {
                write!(f, "{reg} = {value:#x}, but that counter does not exist (it must be 0)")
            }
            SnapshotError::ValueTooWide { reg, value } => {
                write!(f, "{reg} = {value:#x} is wider than 32 bits, but event counters are 32-bit before PMUv3p5")
            }
            SnapshotError::LcClear => f.write_str("PMCR.LC is clear, but it is RES1 when the guest has no AArch32 EL0"),
            SnapshotError::PrescaleOutOfRange { prescale } => write!(f, "cycle counter prescaler {prescale} is not below 64"),
        }
    }
}

impl core::error::Error for SnapshotError {}

// ---------------------------------------------------------------------------------------------
// Byte form
// ---------------------------------------------------------------------------------------------

const MAGIC: [u8; 8] = *b"VPMUSNAP";
const HEADER: usize = 14;
const IDENTITY: usize = 2 + 1 + 1 + 4 + 4 + 8 + 8;
const BODY: usize = 3 + 8 * 8 + 8 * 2 * EVENT_SLOTS + IDENTITY;
const CRC_AT: usize = HEADER + BODY;
// The layout table in the module docs says 609.
static_assertions::const_assert_eq!(CRC_AT + 4, 609);

/// CRC-32, IEEE 802.3 (reflected polynomial 0xEDB88320, initial and final XOR all ones): the
/// `crc32` of zlib, gzip and PNG.
fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(data);
    c.finish()
}

/// [`crc32`] over data that comes in pieces.
struct Crc32(u32);

impl Crc32 {
    const fn new() -> Self {
        Self(!0)
    }

    fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u32::from(b);
            for _ in 0..8 {
                let mask = (self.0 & 1).wrapping_neg();
                self.0 = (self.0 >> 1) ^ (0xedb8_8320 & mask);
            }
        }
    }

    const fn finish(&self) -> u32 {
        !self.0
    }
}

/// Writes fixed-size chunks one after the other.
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn put<const N: usize>(&mut self, bytes: [u8; N]) {
        let buf = core::mem::take(&mut self.0);
        if let Some((head, rest)) = buf.split_first_chunk_mut::<N>() {
            *head = bytes;
            self.0 = rest;
        }
    }
}

/// Reads fixed-size chunks one after the other; running out is [`SnapshotError::Truncated`].
struct Reader<'a> {
    rest: &'a [u8],
    len: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(SnapshotError::Truncated { len: self.len, need: PmuState::BYTES })?;
        self.rest = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(u8::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
}

fn version_from_pmuver(pmuver: u8) -> Option<PmuVersion> {
    [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5].into_iter().find(|v| v.pmuver() == pmuver)
}

impl PmuState {
    /// The state of a PMU just reset: `N` event counters, `version`, every register 0 (with
    /// `PMCR.LC` set, as a PMU whose guest has no AArch32 EL0 needs), no identity. For tools
    /// that build a state field by field; a VMM gets its states from [`Pmu::save`] or
    /// [`PmuState::from_bytes`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuVersion, PmuState};
    /// let mut s = PmuState::new(4, PmuVersion::V3p5);
    /// s.pmccntr = 1000;
    /// assert_eq!(PmuState::from_bytes(&s.to_bytes()), Ok(s));
    /// ```
    #[must_use]
    pub const fn new(counters: u8, version: PmuVersion) -> Self {
        Self {
            counters,
            version,
            pmcr: Pmcr::LC.bits(),
            pmselr: 0,
            pmcntenset: 0,
            pmintenset: 0,
            pmovsset: 0,
            pmuserenr: 0,
            evcntr: [0; EVENT_SLOTS],
            evtyper: [0; EVENT_SLOTS],
            pmccntr: 0,
            pmccfiltr: 0,
            prescale: 0,
            identity: Identity { irq: 0, imp: 0, idcode: 0, pmmir: 0, filter: 0, pmceid: [0; 2] },
        }
    }
}

impl PmuState {
    /// The format version [`PmuState::to_bytes`] writes and the newest
    /// [`PmuState::from_bytes`] reads.
    pub const FORMAT_VERSION: u16 = 2;

    /// The length of the byte form.
    pub const BYTES: usize = CRC_AT + 4;

    /// The byte form: see the [module docs](self) for the layout.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, Pmu, PmuState, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// let bytes = pmu.save().to_bytes();
    /// assert_eq!(bytes.len(), PmuState::BYTES);
    /// assert_eq!(&bytes[..8], b"VPMUSNAP");
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    #[must_use]
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        let mut w = Writer(&mut out);
        w.put(MAGIC);
        w.put(Self::FORMAT_VERSION.to_le_bytes());
        w.put((Self::BYTES as u32).to_le_bytes());
        w.put([self.counters, self.version.pmuver(), self.prescale]);
        for v in [self.pmcr, self.pmselr, self.pmcntenset, self.pmintenset, self.pmovsset, self.pmuserenr, self.pmccntr, self.pmccfiltr] {
            w.put(v.to_le_bytes());
        }
        for v in self.evcntr.iter().chain(self.evtyper.iter()) {
            w.put(v.to_le_bytes());
        }
        let id = &self.identity;
        w.put(id.irq.to_le_bytes());
        w.put([id.imp, id.idcode]);
        w.put(id.pmmir.to_le_bytes());
        w.put(id.filter.to_le_bytes());
        w.put(id.pmceid[0].to_le_bytes());
        w.put(id.pmceid[1].to_le_bytes());
        let crc = crc32(out.get(..CRC_AT).unwrap_or(&[]));
        Writer(out.get_mut(CRC_AT..).unwrap_or(&mut [])).put(crc.to_le_bytes());
        out
    }

    /// Reads the byte form. It checks the bytes, not whether the state fits a given PMU:
    /// [`Pmu::restore`] does that.
    ///
    /// # Errors
    ///
    /// In the order checked: [`SnapshotError::Truncated`] (shorter than the header),
    /// [`SnapshotError::BadMagic`], [`SnapshotError::FutureVersion`] or
    /// [`SnapshotError::BadFormatVersion`], [`SnapshotError::BadLength`],
    /// [`SnapshotError::Truncated`] or [`SnapshotError::TrailingBytes`] (the input's length is
    /// not the declared one), [`SnapshotError::Checksum`], [`SnapshotError::UnknownPmuVersion`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, Pmu, PmuState, SnapshotError, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// let state = pmu.save();
    /// let mut bytes = state.to_bytes();
    /// assert_eq!(PmuState::from_bytes(&bytes), Ok(state));
    /// assert!(matches!(PmuState::from_bytes(&bytes[..100]), Err(SnapshotError::Truncated { len: 100, .. })));
    /// bytes[20] ^= 1;
    /// assert!(matches!(PmuState::from_bytes(&bytes), Err(SnapshotError::Checksum { .. })));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn from_bytes(data: &[u8]) -> Result<PmuState, SnapshotError> {
        let len = data.len();
        let mut r = Reader { rest: data, len };
        if len < HEADER {
            return Err(SnapshotError::Truncated { len, need: HEADER });
        }
        let magic: [u8; 8] = r.take()?;
        if magic != MAGIC {
            return Err(SnapshotError::BadMagic { found: magic });
        }
        let format = u16::from_le_bytes(r.take()?);
        if format > Self::FORMAT_VERSION {
            return Err(SnapshotError::FutureVersion { found: format, newest: Self::FORMAT_VERSION });
        }
        if format == 0 {
            return Err(SnapshotError::BadFormatVersion { found: format });
        }
        if format < Self::FORMAT_VERSION {
            return Err(SnapshotError::OldFormat { found: format, oldest: Self::FORMAT_VERSION });
        }
        let declared = u32::from_le_bytes(r.take()?);
        let expected = Self::BYTES as u32;
        if declared != expected {
            return Err(SnapshotError::BadLength { declared, expected });
        }
        match len.checked_sub(Self::BYTES) {
            None => return Err(SnapshotError::Truncated { len, need: Self::BYTES }),
            Some(0) => {}
            Some(extra) => return Err(SnapshotError::TrailingBytes { extra }),
        }
        let (contents, stored) = data.split_last_chunk::<4>().ok_or(SnapshotError::Truncated { len, need: Self::BYTES })?;
        let stored = u32::from_le_bytes(*stored);
        let computed = crc32(contents);
        if stored != computed {
            return Err(SnapshotError::Checksum { stored, computed });
        }

        let counters = r.u8()?;
        let pmuver = r.u8()?;
        let version = version_from_pmuver(pmuver).ok_or(SnapshotError::UnknownPmuVersion { pmuver })?;
        let prescale = r.u8()?;
        let mut regs = [0u64; 8];
        for v in &mut regs {
            *v = r.u64()?;
        }
        let [pmcr, pmselr, pmcntenset, pmintenset, pmovsset, pmuserenr, pmccntr, pmccfiltr] = regs;
        let mut evcntr = [0u64; EVENT_SLOTS];
        for v in &mut evcntr {
            *v = r.u64()?;
        }
        let mut evtyper = [0u64; EVENT_SLOTS];
        for v in &mut evtyper {
            *v = r.u64()?;
        }
        let irq = u16::from_le_bytes(r.take()?);
        let [imp, idcode] = r.take()?;
        let pmmir = u32::from_le_bytes(r.take()?);
        let filter = u32::from_le_bytes(r.take()?);
        let pmceid = [r.u64()?, r.u64()?];
        Ok(PmuState {
            counters,
            version,
            pmcr,
            pmselr,
            pmcntenset,
            pmintenset,
            pmovsset,
            pmuserenr,
            evcntr,
            evtyper,
            pmccntr,
            pmccfiltr,
            prescale,
            identity: Identity { irq, imp, idcode, pmmir, filter, pmceid },
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Save and restore
// ---------------------------------------------------------------------------------------------

impl<B: CounterBackend> Pmu<B> {
    /// The whole guest-visible state, at any moment, counters live.
    ///
    /// What the backend has counted is folded in first (as [`Pmu::sync`] does), so nothing
    /// counted is lost; the guest sees nothing change: any read of a counter folds the same
    /// way. An overflow found while folding sets its flag, so update the interrupt line from
    /// [`Pmu::irq_level`] afterwards, as after `sync`.
    ///
    /// The backend's own state (for [`SoftBackend`](crate::SoftBackend), the exception level
    /// events are reported at) is the host's to carry.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, reg::PmuReg, El, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// let _ = pmu.write(PmuReg::Pmcntenset, 1 << 31, El::El1);
    /// let _ = pmu.write(PmuReg::Pmcr, 1, El::El1);
    /// pmu.count(0x11, 500);
    /// assert_eq!(pmu.save().pmccntr, 500);
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn save(&mut self) -> PmuState {
        self.sync();
        let c = self.pmc(CYCLE);
        PmuState {
            counters: self.cfg.counters,
            version: self.cfg.version,
            pmcr: self.pmcr.bits(),
            pmselr: self.pmselr.into(),
            pmcntenset: self.cnten.into(),
            pmintenset: self.inten.into(),
            pmovsset: self.ovs.into(),
            pmuserenr: self.userenr.bits(),
            evcntr: core::array::from_fn(|i| self.pmc(i).value),
            evtyper: core::array::from_fn(|i| self.pmc(i).evtyper.into()),
            pmccntr: c.value,
            pmccfiltr: c.evtyper.into(),
            prescale: c.prescale,
            identity: self.identity(),
        }
    }

    /// What the guest sees of this PMU beyond its registers: see [`Identity`].
    #[must_use]
    pub fn identity(&self) -> Identity {
        let c = &self.cfg;
        let mut digest = Crc32::new();
        for (action, events) in c.filter.actions() {
            digest.update(&[u8::from(action == FilterAction::Deny)]);
            digest.update(&events.start().to_le_bytes());
            digest.update(&events.end().to_le_bytes());
        }
        Identity {
            irq: c.irq.map_or(0, PmuIrq::intid),
            imp: c.imp,
            idcode: c.idcode,
            pmmir: c.pmmir,
            filter: digest.finish(),
            pmceid: self.ceid,
        }
    }

    /// Checks that `state` fits this PMU's configuration, without changing anything.
    ///
    /// # Errors
    ///
    /// As [`Pmu::restore`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, Pmu, SnapshotError, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::builder().counters(2).build()?, SoftBackend::new())?;
    /// let mut s = pmu.save();
    /// assert_eq!(pmu.validate_state(&s), Ok(()));
    /// s.pmselr = 32;
    /// assert_eq!(pmu.validate_state(&s), Err(SnapshotError::ReservedBits { reg: vpmu::reg::PmuReg::Pmselr, bits: 32 }));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn validate_state(&self, state: &PmuState) -> Result<(), SnapshotError> {
        let cfg = &self.cfg;
        if state.counters != cfg.counters {
            return Err(SnapshotError::CounterMismatch { state: state.counters, config: cfg.counters });
        }
        if state.version != cfg.version {
            return Err(SnapshotError::VersionMismatch { state: state.version, config: cfg.version });
        }
        let (a, b) = (&state.identity, self.identity());
        for (field, state, config) in [
            (IdentityField::Irq, a.irq.into(), b.irq.into()),
            (IdentityField::Imp, a.imp.into(), b.imp.into()),
            (IdentityField::Idcode, a.idcode.into(), b.idcode.into()),
            (IdentityField::Pmmir, a.pmmir.into(), b.pmmir.into()),
            (IdentityField::Filter, a.filter.into(), b.filter.into()),
            (IdentityField::Pmceid0, a.pmceid[0], b.pmceid[0]),
            (IdentityField::Pmceid1, a.pmceid[1], b.pmceid[1]),
        ] {
            if state != config {
                return Err(SnapshotError::IdentityMismatch { field, state, config });
            }
        }
        let reserved = |reg: PmuReg, value: u64, allowed: u64| match value & !allowed {
            0 => Ok(()),
            bits => Err(SnapshotError::ReservedBits { reg, bits }),
        };
        reserved(PmuReg::Pmcr, state.pmcr, self.stored_pmcr(Pmcr::all()).bits())?;
        if !cfg.aarch32_el0 && !Pmcr::from_bits_retain(state.pmcr).contains(Pmcr::LC) {
            return Err(SnapshotError::LcClear);
        }
        reserved(PmuReg::Pmselr, state.pmselr, 0x1f)?;
        reserved(PmuReg::Pmuserenr, state.pmuserenr, Pmuserenr::all().bits())?;
        let valid = u64::from(self.valid_mask());
        for (reg, bits) in
            [(PmuReg::Pmcntenset, state.pmcntenset), (PmuReg::Pmintenset, state.pmintenset), (PmuReg::Pmovsset, state.pmovsset)]
        {
            // Bits 32..=63 are RES0 in every PMU; bits of missing event counters are another story.
            reserved(reg, bits, u64::from(u32::MAX))?;
            if bits & !valid != 0 {
                return Err(SnapshotError::NoSuchCounters { reg, bits: bits & !valid });
            }
        }
        for (n, (&value, &typer)) in EventCounter::all().zip(state.evcntr.iter().zip(state.evtyper.iter())) {
            let (cntr, ty) = (PmuReg::Pmevcntr(n), PmuReg::Pmevtyper(n));
            if n.get() >= cfg.counters {
                if value != 0 {
                    return Err(SnapshotError::MissingCounterState { reg: cntr, value });
                }
                if typer != 0 {
                    return Err(SnapshotError::MissingCounterState { reg: ty, value: typer });
                }
                continue;
            }
            if value & !self.value_mask(n.get().into()) != 0 {
                return Err(SnapshotError::ValueTooWide { reg: cntr, value });
            }
            reserved(ty, typer, self.evtyper_mask(CounterId::Event(n)))?;
        }
        reserved(PmuReg::Pmccfiltr, state.pmccfiltr, self.evtyper_mask(CounterId::Cycle))?;
        if state.prescale >= 64 {
            return Err(SnapshotError::PrescaleOutOfRange { prescale: state.prescale });
        }
        Ok(())
    }

    /// Replaces the whole guest-visible state with `state`, after checking that it fits this
    /// PMU's configuration, and re-arms the backend for every counter, so that counting
    /// continues exactly where it stopped when `state` was saved. The configuration, and
    /// whether the vCPU has [started](Pmu::lock_config), do not change.
    ///
    /// A counter the backend fails to program does not count; the error is kept for
    /// [`Pmu::take_backend_error`], as for a guest write.
    ///
    /// # Errors
    ///
    /// Nothing changes on error. In the order checked:
    ///
    /// - [`SnapshotError::CounterMismatch`], [`SnapshotError::VersionMismatch`]: the state was
    ///   saved under another `N` or PMU version;
    /// - [`SnapshotError::IdentityMismatch`]: the state was saved on a PMU the guest would see
    ///   differently (its [`Identity`]: interrupt, `PMCR.IMP`/`IDCODE`, `PMMIR`, event filter,
    ///   `PMCEID`);
    /// - [`SnapshotError::ReservedBits`] with `PMCR` (bits other than `E`, `D`, `X`, `DP`,
    ///   `LC`, and `LP` from PMUv3p5), then [`SnapshotError::LcClear`] (`LC` clear without
    ///   AArch32 EL0), then `ReservedBits` with `PMSELR` (above 31) and `PMUSERENR` (bits
    ///   other than `EN`, `SW`, `CR`, `ER`);
    /// - for `PMCNTENSET`, `PMINTENSET`, `PMOVSSET`: `ReservedBits` for bits 32..=63,
    ///   [`SnapshotError::NoSuchCounters`] for bits of event counters `>= N`;
    /// - for each event counter `n`: [`SnapshotError::MissingCounterState`] if `n >= N` and its
    ///   value or type is not 0; [`SnapshotError::ValueTooWide`] for a value above 32 bits
    ///   before PMUv3p5; `ReservedBits` for type bits outside what a guest write can store;
    /// - `ReservedBits` with `PMCCFILTR`; [`SnapshotError::PrescaleOutOfRange`] (`>= 64`).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::{PmuConfig, PmuVersion}, Pmu, SnapshotError, SoftBackend};
    /// let cfg = PmuConfig::builder().counters(4).build()?;
    /// let mut src = Pmu::new(cfg, SoftBackend::new())?;
    /// let state = src.save();
    ///
    /// let mut dst = Pmu::new(cfg, SoftBackend::new())?;
    /// assert_eq!(dst.restore(&state), Ok(()));
    ///
    /// let mut other = Pmu::new(cfg.to_builder().counters(2).build()?, SoftBackend::new())?;
    /// assert_eq!(other.restore(&state), Err(SnapshotError::CounterMismatch { state: 4, config: 2 }));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn restore(&mut self, state: &PmuState) -> Result<(), SnapshotError> {
        self.validate_state(state)?;
        self.pmcr = Pmcr::from_bits_retain(state.pmcr);
        // Validated: PMSELR <= 31, the bitmaps fit in 32 bits.
        self.pmselr = (state.pmselr & 0x1f) as u8;
        self.cnten = state.pmcntenset as u32;
        self.inten = state.pmintenset as u32;
        self.ovs = state.pmovsset as u32;
        self.userenr = Pmuserenr::from_bits_retain(state.pmuserenr);
        // An index loop, not `enumerate`: its counter is an addition that the no-panic check
        // (overflow checks on) cannot see bounded.
        for i in 0..EVENT_SLOTS {
            let (value, typer) = (state.evcntr.get(i).copied().unwrap_or(0), state.evtyper.get(i).copied().unwrap_or(0));
            self.update(i, |c| *c = Pmc { value, evtyper: typer as u32, prescale: 0 });
        }
        self.update(CYCLE, |c| {
            *c = Pmc { value: state.pmccntr, evtyper: state.pmccfiltr as u32, prescale: state.prescale };
        });
        for i in 0..=CYCLE {
            self.program(i);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// KVM one-reg ids
// ---------------------------------------------------------------------------------------------

/// `KVM_REG_ARM64`: the architecture bits of a KVM one-reg id.
pub const KVM_REG_ARM64: u64 = 0x6000_0000_0000_0000;
/// `KVM_REG_SIZE_U64`: the size bits of a 64-bit KVM one-reg id.
pub const KVM_REG_SIZE_U64: u64 = 0x0030_0000_0000_0000;
/// `KVM_REG_ARM64_SYSREG`: the class bits of an AArch64 system register id.
pub const KVM_REG_ARM64_SYSREG: u64 = 0x0013 << 16;
const ONE_REG_PREFIX: u64 = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG;

/// The KVM one-reg id of `reg`: `KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG` with
/// the AArch64 encoding in bits \[15:0\]; `None` for the AArch32-only `PMCEID2`/`PMCEID3`.
///
/// # Examples
///
/// ```
/// use vpmu::{reg::PmuReg, snapshot::one_reg_id};
/// assert_eq!(one_reg_id(PmuReg::Pmcr), Some(0x6030_0000_0013_dce0));
/// assert_eq!(one_reg_id(PmuReg::Pmceid2), None);
/// ```
#[must_use]
pub fn one_reg_id(reg: PmuReg) -> Option<u64> {
    reg.a64_id().map(|id| ONE_REG_PREFIX | u64::from(id.packed()))
}

/// The PMU register a KVM one-reg id names.
///
/// # Errors
///
/// [`OneRegError::UnknownId`] if `id` is not a 64-bit AArch64 system register id, or names a
/// system register that is not the PMU's.
///
/// # Examples
///
/// ```
/// use vpmu::{reg::PmuReg, snapshot::{one_reg_reg, OneRegError}};
/// assert_eq!(one_reg_reg(0x6030_0000_0013_dce0), Ok(PmuReg::Pmcr));
/// assert_eq!(one_reg_reg(0x6030_0000_0013_c000), Err(OneRegError::UnknownId { id: 0x6030_0000_0013_c000 })); // MIDR_EL1
/// ```
pub fn one_reg_reg(id: u64) -> Result<PmuReg, OneRegError> {
    if id & !0xffff != ONE_REG_PREFIX {
        return Err(OneRegError::UnknownId { id });
    }
    PmuReg::from_a64(A64Id::from_packed(id as u16)).ok_or(OneRegError::UnknownId { id })
}

/// Why a one-reg access failed. Nothing changed when one is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OneRegError {
    /// Not the id of a PMU register (not a 64-bit AArch64 system register id, or another
    /// system register).
    UnknownId {
        /// The id.
        id: u64,
    },
    /// A PMU register that holds no state of its own: `PMSWINC` (an action), `PMCEID0/1` and
    /// `PMMIR` (configuration), `PMXEVTYPER`/`PMXEVCNTR` (views through `PMSELR`).
    NoState {
        /// The register.
        reg: PmuReg,
    },
    /// `PMEVCNTR<n>` or `PMEVTYPER<n>` with `n >= PMCR.N`.
    NoSuchCounter {
        /// The register.
        reg: PmuReg,
        /// `PMCR.N`.
        counters: u8,
    },
}

impl fmt::Display for OneRegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OneRegError::UnknownId { id } => write!(f, "one-reg id {id:#x} is not a PMU system register"),
            OneRegError::NoState { reg } => {
                write!(f, "{reg} has no state to get or set (an action, configuration, or a view through PMSELR)")
            }
            OneRegError::NoSuchCounter { reg, counters } => write!(f, "{reg} does not exist: this PMU has {counters} event counters"),
        }
    }
}

impl core::error::Error for OneRegError {}

/// The registers with state, outside the event counters, in ascending one-reg id order.
const ONE_REG_FIXED: [PmuReg; 10] = [
    PmuReg::Pmintenset,
    PmuReg::Pmintenclr,
    PmuReg::Pmcr,
    PmuReg::Pmcntenset,
    PmuReg::Pmcntenclr,
    PmuReg::Pmovsclr,
    PmuReg::Pmselr,
    PmuReg::Pmccntr,
    PmuReg::Pmuserenr,
    PmuReg::Pmovsset,
];

impl<B: CounterBackend> Pmu<B> {
    /// The registers [`Pmu::get_one_reg`] and [`Pmu::set_one_reg`] accept, in ascending
    /// one-reg id order (as `KVM_GET_REG_LIST` lists them): the control and bitmap registers,
    /// `PMEVCNTR<n>` and `PMEVTYPER<n>` for `n < N`, and `PMCCFILTR`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, Pmu, SoftBackend};
    /// let pmu = Pmu::new(PmuConfig::builder().counters(2).build()?, SoftBackend::new())?;
    /// assert_eq!(pmu.one_reg_regs().count(), 10 + 2 + 2 + 1);
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn one_reg_regs(&self) -> impl Iterator<Item = PmuReg> {
        let n = self.cfg.counters;
        let counters = move || EventCounter::all().take(usize::from(n));
        ONE_REG_FIXED
            .into_iter()
            .chain(counters().map(PmuReg::Pmevcntr))
            .chain(counters().map(PmuReg::Pmevtyper))
            .chain(core::iter::once(PmuReg::Pmccfiltr))
    }

    /// The one-reg ids of [`Pmu::one_reg_regs`], ascending: a `KVM_GET_REG_LIST` for the PMU.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, Pmu, SoftBackend};
    /// let mut src = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// let mut dst = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// for id in src.one_reg_ids().collect::<Vec<_>>() {
    ///     dst.set_one_reg(id, src.get_one_reg(id)?)?;
    /// }
    /// assert_eq!(dst.save(), src.save());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn one_reg_ids(&self) -> impl Iterator<Item = u64> {
        self.one_reg_regs().filter_map(one_reg_id)
    }

    /// The register `id` names, if it has state on this PMU.
    fn one_reg_target(&self, id: u64) -> Result<PmuReg, OneRegError> {
        self.state_reg(one_reg_reg(id)?)
    }

    /// `reg` if it holds state of its own in this PMU.
    fn state_reg(&self, reg: PmuReg) -> Result<PmuReg, OneRegError> {
        match reg {
            PmuReg::Pmswinc
            | PmuReg::Pmceid0
            | PmuReg::Pmceid1
            | PmuReg::Pmceid2
            | PmuReg::Pmceid3
            | PmuReg::Pmmir
            | PmuReg::Pmxevtyper
            | PmuReg::Pmxevcntr => Err(OneRegError::NoState { reg }),
            PmuReg::Pmevcntr(n) | PmuReg::Pmevtyper(n) if n.get() >= self.cfg.counters => {
                Err(OneRegError::NoSuchCounter { reg, counters: self.cfg.counters })
            }
            _ => Ok(reg),
        }
    }

    /// `KVM_GET_ONE_REG`: the register's value as the guest would read it with a 64-bit `MRS`
    /// at EL1, without access checks (`PMCR` with `N`, `IDCODE` and `IMP`; a `SET`/`CLR` pair
    /// both give the bitmap). A counter is brought up to date first.
    ///
    /// # Errors
    ///
    /// [`OneRegError::UnknownId`], [`OneRegError::NoState`], [`OneRegError::NoSuchCounter`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, snapshot::{one_reg_id, OneRegError}, reg::PmuReg, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::builder().counters(4).build()?, SoftBackend::new())?;
    /// assert_eq!(pmu.get_one_reg(one_reg_id(PmuReg::Pmcr).unwrap()), Ok(4 << 11));
    /// let swinc = one_reg_id(PmuReg::Pmswinc).unwrap();
    /// assert_eq!(pmu.get_one_reg(swinc), Err(OneRegError::NoState { reg: PmuReg::Pmswinc }));
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn get_one_reg(&mut self, id: u64) -> Result<u64, OneRegError> {
        let reg = self.one_reg_target(id)?;
        self.get_reg(reg)
    }

    /// The VMM's read of a register: its architectural value, as a 64-bit `MRS` at EL1 would
    /// read it, but without the guest's rules (no `PMUSERENR`, no exception level) and without
    /// actions: `PMCR` with `N`, `IDCODE` and `IMP`; a `SET`/`CLR` pair gives the bitmap;
    /// `PMCEID0..3` and `PMMIR` (from PMUv3p4) their configured values. A counter is brought up
    /// to date first (what the backend counted is folded in; an overflow it reached sets its
    /// flag, as any guest read would). For a debugger, a migration tool, a test.
    ///
    /// # Errors
    ///
    /// [`OneRegError::NoState`] for `PMSWINC` (an action), `PMXEVTYPER`/`PMXEVCNTR` (views
    /// through `PMSELR`: read the register they select), and `PMMIR`, `PMCEID2/3` where the
    /// version has none; [`OneRegError::NoSuchCounter`] for a counter `n >= N`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, reg::PmuReg, El, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::builder().counters(4).build()?, SoftBackend::new())?;
    /// let _ = pmu.write(PmuReg::Pmuserenr, 0, El::El1);
    /// // EL0 may not read PMCR now; the VMM may, and nothing changes.
    /// assert_eq!(pmu.get_reg(PmuReg::Pmcr), Ok(4 << 11));
    /// assert_eq!(pmu.get_reg(PmuReg::Pmceid0).map(|v| v & 1), Ok(1)); // SW_INCR
    /// # Ok::<(), vpmu::config::ConfigError>(())
    /// ```
    pub fn get_reg(&mut self, reg: PmuReg) -> Result<u64, OneRegError> {
        let [c0, c1] = self.ceid;
        let v1 = self.cfg.version >= PmuVersion::V3p1;
        match reg {
            PmuReg::Pmceid0 => return Ok(c0),
            PmuReg::Pmceid1 => return Ok(c1),
            PmuReg::Pmceid2 if v1 => return Ok(c0 >> 32),
            PmuReg::Pmceid3 if v1 => return Ok(c1 >> 32),
            PmuReg::Pmmir if self.cfg.version >= PmuVersion::V3p4 => return Ok(self.cfg.pmmir.into()),
            _ => {}
        }
        let reg = self.state_reg(reg)?;
        Ok(match reg {
            PmuReg::Pmcr => self.pmcr_value(),
            PmuReg::Pmselr => self.pmselr.into(),
            PmuReg::Pmcntenset | PmuReg::Pmcntenclr => self.cnten.into(),
            PmuReg::Pmintenset | PmuReg::Pmintenclr => self.inten.into(),
            PmuReg::Pmovsset | PmuReg::Pmovsclr => self.ovs.into(),
            PmuReg::Pmuserenr => self.userenr.bits(),
            PmuReg::Pmccntr | PmuReg::Pmevcntr(_) => {
                let i = counter_index(reg);
                self.fold(i);
                self.pmc(i).value
            }
            PmuReg::Pmccfiltr | PmuReg::Pmevtyper(_) => self.pmc(counter_index(reg)).evtyper.into(),
            // Refused by `one_reg_target`.
            PmuReg::Pmswinc
            | PmuReg::Pmceid0
            | PmuReg::Pmceid1
            | PmuReg::Pmceid2
            | PmuReg::Pmceid3
            | PmuReg::Pmmir
            | PmuReg::Pmxevtyper
            | PmuReg::Pmxevcntr => return Err(OneRegError::NoState { reg }),
        })
    }

    /// `KVM_SET_ONE_REG`, with Linux KVM's userspace semantics: the register is assigned, as
    /// restoring it, not written as a guest would write it.
    ///
    /// - A `SET`/`CLR` pair (`PMCNTEN*`, `PMINTEN*`, `PMOVS*`): either id assigns the whole
    ///   bitmap, masked to the counters that exist. Setting `PMOVSSET` has no side effect beyond
    ///   [`Pmu::irq_level`].
    /// - `PMEVCNTR<n>`, `PMCCNTR`: the value, masked to the counter's width; no overflow, no
    ///   flag. Setting `PMCCNTR` restarts the `PMCR.D` prescaler (one-reg has no id for it; the
    ///   exact path is [`Pmu::save`]/[`Pmu::restore`]).
    /// - `PMEVTYPER<n>`, `PMCCFILTR`, `PMSELR`, `PMUSERENR`: masked as a guest write is.
    /// - `PMCR`: the stored bits (`E`, `D`, `X`, `DP`, `LC`, `LP` as the version allows; `LC`
    ///   forced to 1 without AArch32 EL0); `P` and `C` are not actions here and are dropped;
    ///   `IDCODE` and `IMP` are ignored. `N` as current KVM treats it (`set_pmcr` in
    ///   `arch/arm64/kvm/sys_regs.c`): until the vCPU has [started](Pmu::lock_config), a different
    ///   `N` that the backend can back becomes the PMU's number of event counters (counters and
    ///   bitmap bits at and above the new `N` are cleared; the rest of the configuration is
    ///   kept); after `start`, or beyond the backend's limit, it is ignored and the write still
    ///   succeeds, as KVM ignores it to keep old VMMs working. A VMM sets the same `N` on every
    ///   vCPU of a VM.
    ///
    /// The backend is re-armed for every counter the write affects, so counting goes on.
    ///
    /// # Errors
    ///
    /// [`OneRegError::UnknownId`], [`OneRegError::NoState`], [`OneRegError::NoSuchCounter`];
    /// nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, snapshot::one_reg_id, reg::PmuReg, El, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::builder().counters(4).build()?, SoftBackend::new())?;
    /// let id = |r| one_reg_id(r).unwrap();
    /// pmu.set_one_reg(id(PmuReg::Pmcntenset), 0b1011)?;
    /// pmu.set_one_reg(id(PmuReg::Pmcntenclr), 0b0110)?; // assigned, not cleared
    /// assert_eq!(pmu.read(PmuReg::Pmcntenset, El::El1).value(), Some(0b0110));
    ///
    /// pmu.set_one_reg(id(PmuReg::Pmcr), 6 << 11)?; // N = 6, before the vCPU first runs
    /// assert_eq!(pmu.config().counters(), 6);
    /// pmu.lock_config();
    /// pmu.set_one_reg(id(PmuReg::Pmcr), 2 << 11)?; // ignored now, as KVM does
    /// assert_eq!(pmu.config().counters(), 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_one_reg(&mut self, id: u64, value: u64) -> Result<(), OneRegError> {
        let reg = self.one_reg_target(id)?;
        self.set_reg(reg, value)
    }

    /// The VMM's write of a register: [`Pmu::set_one_reg`]'s semantics by register rather
    /// than by id — the value is set raw (a `SET`/`CLR` pair is assigned, a counter set
    /// without overflow side effects, `PMCR.N` adopted only before the first run), with none
    /// of the guest's rules.
    ///
    /// # Errors
    ///
    /// [`OneRegError::NoState`] for a register without state of its own (`PMSWINC`,
    /// `PMCEID0..3`, `PMMIR`, `PMXEVTYPER`, `PMXEVCNTR`); [`OneRegError::NoSuchCounter`] for a
    /// counter `n >= N`. Nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::{config::PmuConfig, reg::PmuReg, Pmu, SoftBackend};
    /// let mut pmu = Pmu::new(PmuConfig::default(), SoftBackend::new())?;
    /// pmu.set_reg(PmuReg::Pmovsset, 1 << 31)?;
    /// assert_eq!(pmu.get_reg(PmuReg::Pmovsclr), Ok(1 << 31));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_reg(&mut self, reg: PmuReg, value: u64) -> Result<(), OneRegError> {
        let reg = self.state_reg(reg)?;
        let valid = self.valid_mask();
        let bits = (value as u32) & valid;
        match reg {
            PmuReg::Pmcr => self.set_pmcr_user(value),
            PmuReg::Pmselr => self.pmselr = (value & 0x1f) as u8,
            PmuReg::Pmcntenset | PmuReg::Pmcntenclr => {
                let changed = bits ^ self.cnten;
                for_each_bit(changed, |i| self.fold(i));
                self.cnten = bits;
                for_each_bit(changed, |i| self.rearm(i));
            }
            PmuReg::Pmintenset | PmuReg::Pmintenclr => self.inten = bits,
            PmuReg::Pmovsset | PmuReg::Pmovsclr => self.ovs = bits,
            PmuReg::Pmuserenr => self.userenr = Pmuserenr::from_bits_truncate(value),
            PmuReg::Pmccntr | PmuReg::Pmevcntr(_) => {
                if let Some(id) = counter_id_of(reg) {
                    self.set_counter(id, value);
                }
            }
            PmuReg::Pmccfiltr | PmuReg::Pmevtyper(_) => {
                if let Some(id) = counter_id_of(reg) {
                    self.set_evtyper(id, value);
                }
            }
            PmuReg::Pmswinc
            | PmuReg::Pmceid0
            | PmuReg::Pmceid1
            | PmuReg::Pmceid2
            | PmuReg::Pmceid3
            | PmuReg::Pmmir
            | PmuReg::Pmxevtyper
            | PmuReg::Pmxevcntr => return Err(OneRegError::NoState { reg }),
        }
        Ok(())
    }

    /// `PMCR` from userspace: see [`Pmu::set_one_reg`].
    fn set_pmcr_user(&mut self, value: u64) {
        let v = Pmcr::from_bits_retain(value);
        let n = v.n();
        self.sync();
        if n != self.cfg.counters && !self.config_locked && n <= self.backend.max_event_counters() {
            // Counters at and above the new N stop existing; below the old N nothing changes,
            // and counters between the two were zero (nothing can write a missing counter).
            for i in usize::from(n)..EVENT_SLOTS {
                let b = bit(i);
                if self.held & b != 0 {
                    if let Some(id) = CounterId::from_bit(i as u8) {
                        self.backend.release(id);
                    }
                    self.held &= !b;
                    self.live &= !b;
                }
                self.update(i, |c| *c = Pmc::RESET);
            }
            self.set_cfg(PmuConfig { counters: n, ..self.cfg });
            let valid = self.valid_mask();
            self.cnten &= valid;
            self.inten &= valid;
            self.ovs &= valid;
        }
        self.pmcr = self.stored_pmcr(v);
        for i in 0..=CYCLE {
            self.rearm(i);
        }
    }
}

/// The counter index of a counter or event type register: `n`, or 31 for the cycle counter.
fn counter_index(reg: PmuReg) -> usize {
    counter_id_of(reg).map_or(CYCLE, CounterId::index)
}

/// The counter a counter or type register belongs to.
fn counter_id_of(reg: PmuReg) -> Option<CounterId> {
    match reg {
        PmuReg::Pmevcntr(n) | PmuReg::Pmevtyper(n) => Some(CounterId::Event(n)),
        PmuReg::Pmccntr | PmuReg::Pmccfiltr => Some(CounterId::Cycle),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
