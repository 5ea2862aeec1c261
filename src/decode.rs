//! Trap decoding: from an ESR_EL2 syndrome or an A64 instruction word to a [`SysregAccess`].
//!
//! Every decoder is total: any `u64`/`u32` gives `Ok` or a typed [`DecodeError`], never a panic.
//! A system register access that is not to a PMU register is a normal answer,
//! [`Decoded::NotPmu`], carrying the decoded access so a hypervisor can hand it to its other
//! handlers. Every decoding has an inverse (`to_esr`, `to_insn`), and `decode(encode(x)) == x`
//! for every register, direction and transfer register.
//!
//! | source | function | what traps there |
//! |---|---|---|
//! | ESR_EL2, EC 0x18 | [`decode_esr`] | AArch64 `MRS`/`MSR` |
//! | ESR_EL2, EC 0x03 | [`decode_esr`] | AArch32 `MRC`/`MCR`, coproc 15 |
//! | ESR_EL2, EC 0x04 | [`decode_esr`] | AArch32 `MRRC`/`MCRR`, coproc 15 |
//! | A64 instruction word | [`decode_insn`] | an emulator's `MRS`/`MSR` |
//!
//! # Examples
//!
//! ```
//! use vpmu::decode::{decode_esr, Decoded, Direction, Xfer};
//! use vpmu::reg::PmuReg;
//!
//! // MRS X3, PMEVCNTR5_EL0 trapped to EL2
//! let esr = 0x623a_f871;
//! let Ok(Decoded::Pmu(access)) = decode_esr(esr) else { panic!("not a PMU access") };
//! assert_eq!(access.reg, "PMEVCNTR5_EL0".parse::<PmuReg>()?);
//! assert_eq!(access.dir, Direction::Read);
//! assert_eq!(access.xfer.rt().get(), 3);
//! assert!(matches!(access.xfer, Xfer::A64 { .. }));
//! assert_eq!(access.to_esr(), Ok(esr));
//! # Ok::<(), vpmu::reg::UnknownRegName>(())
//! ```

use core::fmt;

use crate::reg::{A64Id, Cp15Id, Cp15WideId, PmuReg};

/// ESR_ELx.EC for a trapped AArch64 `MSR`/`MRS`/system instruction.
pub const EC_SYS64: u8 = 0x18;
/// ESR_ELx.EC for a trapped AArch32 `MCR`/`MRC` to coproc 15.
pub const EC_CP15_32: u8 = 0x03;
/// ESR_ELx.EC for a trapped AArch32 `MCRR`/`MRRC` to coproc 15.
pub const EC_CP15_64: u8 = 0x04;

const EC_SHIFT: u32 = 26;
const IL_BIT: u64 = 1 << 25;
pub(crate) const ISS_MASK: u64 = (1 << 25) - 1;

/// Which way the value moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// `MRS`, `MRC`, `MRRC`: the register is read into the guest's general-purpose register(s).
    Read,
    /// `MSR`, `MCR`, `MCRR`: the guest's general-purpose register(s) are written to the register.
    Write,
}

/// A general-purpose register number in a trap, `0..=31`.
///
/// From AArch64, 31 is the zero register: an `MRS` into it discards the value, an `MSR` from
/// it writes 0 ([`Gpr::is_zero_reg`]). From AArch32 the syndrome reports the AArch64 view of
/// the register (`R0`..`R14` map to `X0`..`X30` according to the guest's mode), and 15 is
/// the `PC`/`APSR_nzcv` encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Gpr(u8);

impl Gpr {
    /// `XZR`/`WZR` in an AArch64 trap.
    pub const ZR: Gpr = Gpr(31);

    /// Register `n`, or `None` for `n > 31`.
    #[must_use]
    pub const fn new(n: u8) -> Option<Gpr> {
        if n < 32 {
            Some(Gpr(n))
        } else {
            None
        }
    }

    /// Register `n & 31`: never fails.
    #[must_use]
    pub const fn new_truncate(n: u8) -> Gpr {
        Gpr(n & 31)
    }

    /// The register number, `0..=31`.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether this is register 31, the zero register of an AArch64 `MRS`/`MSR`.
    #[must_use]
    pub const fn is_zero_reg(self) -> bool {
        self.0 == 31
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Gpr {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Gpr::new_truncate(u.arbitrary()?))
    }
}

/// The condition of a trapped AArch32 instruction (ESR.ISS CV and COND).
///
/// `None` in [`Xfer::A32`] means CV was 0: the syndrome carries no valid condition (the
/// instruction was unconditional, or the implementation does not report it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cond(u8);

impl Cond {
    /// `AL`: always.
    pub const AL: Cond = Cond(0b1110);

    /// The condition code `c` (`0..=15`), or `None` if it is wider than four bits.
    #[must_use]
    pub const fn new(c: u8) -> Option<Cond> {
        if c < 16 {
            Some(Cond(c))
        } else {
            None
        }
    }

    /// The four-bit condition code.
    #[must_use]
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Whether an instruction with this condition executes, given the guest's `PSTATE.{N,Z,C,V}`
    /// as bits \[31:28\] of `nzcv` (the SPSR layout). A hypervisor must skip a trapped
    /// conditional instruction whose condition fails (Arm allows it to trap regardless).
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::decode::Cond;
    /// let eq = Cond::new(0b0000).unwrap();
    /// assert!(eq.passes(1 << 30)); // Z set
    /// assert!(!eq.passes(0));
    /// assert!(Cond::AL.passes(0));
    /// ```
    #[must_use]
    #[inline]
    pub const fn passes(self, nzcv: u32) -> bool {
        let n = nzcv & (1 << 31) != 0;
        let z = nzcv & (1 << 30) != 0;
        let c = nzcv & (1 << 29) != 0;
        let v = nzcv & (1 << 28) != 0;
        let base = match self.0 >> 1 {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => c && !z,
            5 => n == v,
            6 => n == v && !z,
            _ => true,
        };
        // The low bit inverts the condition, except for 0b1111, which is "always" too.
        if self.0 & 1 == 1 && self.0 != 0b1111 {
            !base
        } else {
            base
        }
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Cond {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Cond(u.int_in_range(0..=15)?))
    }
}

/// How the value moves between the register and the guest's general-purpose registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Xfer {
    /// AArch64 `MRS`/`MSR`: all 64 bits through `X<rt>`.
    A64 {
        /// The transfer register; 31 is the zero register.
        rt: Gpr,
    },
    /// AArch32 `MRC`/`MCR`: 32 bits through `R<rt>` (bits \[31:0\] of a 64-bit register).
    A32 {
        /// The transfer register (AArch64 view).
        rt: Gpr,
        /// The instruction's condition, when the syndrome reports one.
        cond: Option<Cond>,
    },
    /// AArch32 `MRRC`/`MCRR`: 64 bits, bits \[31:0\] through `R<rt>` and \[63:32\] through
    /// `R<rt2>`.
    A32Wide {
        /// The register for bits \[31:0\].
        rt: Gpr,
        /// The register for bits \[63:32\].
        rt2: Gpr,
        /// The instruction's condition, when the syndrome reports one.
        cond: Option<Cond>,
    },
}

impl Xfer {
    /// The (first) transfer register.
    #[must_use]
    pub const fn rt(self) -> Gpr {
        match self {
            Xfer::A64 { rt } | Xfer::A32 { rt, .. } | Xfer::A32Wide { rt, .. } => rt,
        }
    }

    /// Whether the access moves 32 bits (an AArch32 `MRC`/`MCR`), not 64.
    #[must_use]
    pub const fn is_32bit(self) -> bool {
        matches!(self, Xfer::A32 { .. })
    }
}

/// A decoded access to a PMU register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SysregAccess {
    /// The register.
    pub reg: PmuReg,
    /// Read or write.
    pub dir: Direction,
    /// How the value moves, and through which general-purpose register(s).
    pub xfer: Xfer,
}

/// The encoding of a system register that is not a PMU register, as the trap named it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SysregId {
    /// An AArch64 `MRS`/`MSR`.
    A64(A64Id),
    /// An AArch32 `MRC`/`MCR` to coproc 15.
    Cp15(Cp15Id),
    /// An AArch32 `MRRC`/`MCRR` to coproc 15.
    Cp15Wide(Cp15WideId),
}

/// A decoded access to a system register that is not a PMU register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OtherSysreg {
    /// The register's encoding.
    pub id: SysregId,
    /// Read or write.
    pub dir: Direction,
    /// The transfer registers; its kind matches the kind of `id`.
    pub xfer: Xfer,
}

/// What a trap decodes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Decoded {
    /// An access to a PMU register: hand it to [`crate::Pmu::handle`].
    Pmu(SysregAccess),
    /// A system register access that is not vpmu's: fall through to the other handlers.
    NotPmu(OtherSysreg),
}

/// Why a syndrome or instruction word is not a system register access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// ESR.EC is not 0x18, 0x03 or 0x04.
    WrongEc {
        /// The exception class found.
        ec: u8,
    },
    /// ESR.IL is 0 (a 16-bit instruction), but every system register move is 32 bits long.
    Il16,
    /// Bits that must be zero for this exception class are set (ESR\[63:32\], or RES0 bits of
    /// the ISS).
    ReservedBits {
        /// The offending bits, in place.
        bits: u64,
    },
    /// The instruction word is not an A64 `MRS` or `MSR` (register).
    NotSysregMove {
        /// The instruction word.
        insn: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::WrongEc { ec } => write!(
                f,
                "exception class {ec:#04x} is not a trapped system register access (expected 0x18 MSR/MRS, 0x03 MCR/MRC or 0x04 MCRR/MRRC)"
            ),
            DecodeError::Il16 => f.write_str("ESR.IL is 0 (16-bit instruction), but system register moves are 32-bit instructions"),
            DecodeError::ReservedBits { bits } => write!(f, "reserved syndrome bits are set: {bits:#x}"),
            DecodeError::NotSysregMove { insn } => write!(f, "instruction {insn:#010x} is not an A64 MRS or MSR (register)"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why an access cannot be encoded in the form asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The register has no encoding for this kind of transfer (for example `PMCR` through
    /// `MRRC`, or `PMCEID2` from AArch64).
    NoEncoding,
    /// An instruction word was asked for an AArch32 transfer.
    NotA64,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::NoEncoding => f.write_str("the register has no encoding for this kind of transfer"),
            EncodeError::NotA64 => f.write_str("only AArch64 accesses have an A64 instruction word"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// The condition of a trapped AArch32 instruction from its ISS (EC 0x03/0x04): `COND` when
/// `CV` is 1, `None` when the syndrome carries none. The decoder and the trap path's fast
/// lookup both read it here.
#[inline]
pub(crate) const fn iss_cond(iss: u64) -> Option<Cond> {
    if bits(iss, 24, 1) == 1 {
        Some(Cond(bits(iss, 20, 4)))
    } else {
        None
    }
}

/// Extracts `width` bits at `shift` as a `u8`; `width <= 8`.
const fn bits(v: u64, shift: u32, width: u32) -> u8 {
    ((v >> shift) & (1u64 << width).wrapping_sub(1)) as u8
}

fn dir_of(bit: u8) -> Direction {
    if bit == 1 {
        Direction::Read
    } else {
        Direction::Write
    }
}

fn dir_bit(dir: Direction) -> u64 {
    match dir {
        Direction::Read => 1,
        Direction::Write => 0,
    }
}

/// Decodes an ESR_EL2 (or ESR_EL1) value of a trapped system register access.
///
/// Accepts EC 0x18 (AArch64 `MRS`/`MSR`), 0x03 (AArch32 `MRC`/`MCR`) and 0x04 (AArch32
/// `MRRC`/`MCRR`). For EC 0x18 an `Ok` is returned for `MRS`/`MSR` of any register; the
/// PMU's are [`Decoded::Pmu`], every other one is [`Decoded::NotPmu`].
///
/// Rt: for EC 0x18, `Rt == 31` is the zero register (`MRS XZR` discards, `MSR XZR` writes 0).
/// For EC 0x03/0x04 Rt is the AArch64 view of the AArch32 register. With CV = 0 the COND field
/// is not reported and is ignored.
///
/// # Errors
///
/// - [`DecodeError::WrongEc`] for any other exception class;
/// - [`DecodeError::Il16`] if IL is 0;
/// - [`DecodeError::ReservedBits`] if ESR\[63:32\] or a RES0 field of the ISS is non-zero
///   (ISS\[24:22\] for EC 0x18, ISS\[15\] for EC 0x04).
///
/// # Examples
///
/// ```
/// use vpmu::decode::{decode_esr, Decoded, Direction, Gpr, Xfer};
/// use vpmu::reg::PmuReg;
///
/// // MRRC p15, 0, R2, R3, c9 (read PMCCNTR as 64 bits), from AArch32
/// let esr = (0x04 << 26) | (1 << 25) | (1 << 24) | (0xe << 20) | (3 << 10) | (2 << 5) | (9 << 1) | 1;
/// let d = decode_esr(esr)?;
/// let Decoded::Pmu(a) = d else { unreachable!() };
/// assert_eq!(a.reg, PmuReg::Pmccntr);
/// assert_eq!(a.dir, Direction::Read);
/// assert!(matches!(a.xfer, Xfer::A32Wide { rt, rt2, cond: Some(_) } if rt.get() == 2 && rt2.get() == 3));
///
/// assert!(decode_esr(0x5a00_0000).is_err()); // an HVC, not a register access
/// # Ok::<(), vpmu::decode::DecodeError>(())
/// ```
#[inline]
pub fn decode_esr(esr: u64) -> Result<Decoded, DecodeError> {
    decode_esr_then(esr, Decoded::Pmu, Decoded::NotPmu)
}

/// The body of [`decode_esr`], which passes the two [`Decoded`] constructors. Kept in this
/// shape because it is what the compiler turns into the fastest trap path: measured with the
/// `trap_path` bench, `MRS PMCR_EL0` through `Pmu::handle_esr` took 12.8 ns this way against
/// 13.6 ns with the lookup inside one function and 21.6 ns with a shared helper per arm.
#[inline]
fn decode_esr_then<R>(esr: u64, pmu: impl FnOnce(SysregAccess) -> R, other: impl FnOnce(OtherSysreg) -> R) -> Result<R, DecodeError> {
    let ec = bits(esr, EC_SHIFT, 6);
    if !matches!(ec, EC_SYS64 | EC_CP15_32 | EC_CP15_64) {
        return Err(DecodeError::WrongEc { ec });
    }
    if esr >> 32 != 0 {
        return Err(DecodeError::ReservedBits { bits: esr & !0xffff_ffff });
    }
    if esr & IL_BIT == 0 {
        return Err(DecodeError::Il16);
    }
    let iss = esr & ISS_MASK;
    let dir = dir_of(bits(iss, 0, 1));
    let rt = Gpr(bits(iss, 5, 5));
    let crm = bits(iss, 1, 4);
    let cond = || iss_cond(iss);
    // Each arm looks its register up from the fields it has, and builds the generic
    // `OtherSysreg` only when it is not a PMU register.
    Ok(match ec {
        EC_SYS64 => {
            let res0 = iss & (0b111 << 22);
            if res0 != 0 {
                return Err(DecodeError::ReservedBits { bits: res0 });
            }
            let id = A64Id { op0: bits(iss, 20, 2), op1: bits(iss, 14, 3), crn: bits(iss, 10, 4), crm, op2: bits(iss, 17, 3) };
            let xfer = Xfer::A64 { rt };
            match PmuReg::from_a64(id) {
                Some(reg) => pmu(SysregAccess { reg, dir, xfer }),
                None => other(OtherSysreg { id: SysregId::A64(id), dir, xfer }),
            }
        }
        EC_CP15_32 => {
            let id = Cp15Id { opc1: bits(iss, 14, 3), crn: bits(iss, 10, 4), crm, opc2: bits(iss, 17, 3) };
            let xfer = Xfer::A32 { rt, cond: cond() };
            match PmuReg::from_cp15(id) {
                Some(reg) => pmu(SysregAccess { reg, dir, xfer }),
                None => other(OtherSysreg { id: SysregId::Cp15(id), dir, xfer }),
            }
        }
        _ => {
            let res0 = iss & (1 << 15);
            if res0 != 0 {
                return Err(DecodeError::ReservedBits { bits: res0 });
            }
            let id = Cp15WideId { opc1: bits(iss, 16, 4), crm };
            let xfer = Xfer::A32Wide { rt, rt2: Gpr(bits(iss, 10, 5)), cond: cond() };
            match PmuReg::from_cp15_wide(id) {
                Some(reg) => pmu(SysregAccess { reg, dir, xfer }),
                None => other(OtherSysreg { id: SysregId::Cp15Wide(id), dir, xfer }),
            }
        }
    })
}

/// Decodes an A64 instruction word: `MRS <Xt>, <sysreg>` or `MSR <sysreg>, <Xt>`.
///
/// The word is the instruction itself, as an emulator fetched it (little-endian already
/// turned into a `u32`). `Rt == 31` is `XZR`.
///
/// # Errors
///
/// [`DecodeError::NotSysregMove`] unless bits \[31:20\] are `0b1101_0101_00x1`
/// (`MRS`/`MSR` register form, op0 ≥ 2).
///
/// # Examples
///
/// ```
/// use vpmu::decode::{decode_insn, Decoded, Direction};
/// use vpmu::reg::PmuReg;
///
/// let Decoded::Pmu(a) = decode_insn(0xd53b_9c00)? else { unreachable!() }; // MRS X0, PMCR_EL0
/// assert_eq!((a.reg, a.dir, a.xfer.rt().get()), (PmuReg::Pmcr, Direction::Read, 0));
/// assert_eq!(a.to_insn(), Ok(0xd53b_9c00));
/// # Ok::<(), vpmu::decode::DecodeError>(())
/// ```
pub fn decode_insn(insn: u32) -> Result<Decoded, DecodeError> {
    if insn & INSN_MASK != INSN_MATCH {
        return Err(DecodeError::NotSysregMove { insn });
    }
    let v = u64::from(insn);
    let id = A64Id::from_packed(((insn >> 5) & 0xffff) as u16);
    let dir = dir_of(bits(v, 21, 1));
    Ok(decoded(PmuReg::from_a64(id), || SysregId::A64(id), dir, Xfer::A64 { rt: Gpr(bits(v, 0, 5)) }))
}

const INSN_MASK: u32 = 0xffd0_0000;
const INSN_MATCH: u32 = 0xd510_0000;

/// A PMU access if `reg` was found, else the generic access built from `id`.
#[inline]
fn decoded(reg: Option<PmuReg>, id: impl FnOnce() -> SysregId, dir: Direction, xfer: Xfer) -> Decoded {
    match reg {
        Some(reg) => Decoded::Pmu(SysregAccess { reg, dir, xfer }),
        None => Decoded::NotPmu(OtherSysreg { id: id(), dir, xfer }),
    }
}

impl OtherSysreg {
    /// The ESR_EL2 value (EC 0x18, 0x03 or 0x04, IL = 1) that decodes to this access.
    ///
    /// # Errors
    ///
    /// [`EncodeError::NoEncoding`] if the kind of `xfer` does not match the kind of `id`.
    pub fn to_esr(&self) -> Result<u64, EncodeError> {
        let cond_bits = |c: Option<Cond>| c.map_or(0, |c| (1 << 24) | (u64::from(c.0) << 20));
        let (ec, iss) = match (self.id, self.xfer) {
            (SysregId::A64(id), Xfer::A64 { rt }) => (
                EC_SYS64,
                (u64::from(id.op0()) << 20)
                    | (u64::from(id.op2()) << 17)
                    | (u64::from(id.op1()) << 14)
                    | (u64::from(id.crn()) << 10)
                    | (u64::from(rt.0) << 5)
                    | (u64::from(id.crm()) << 1),
            ),
            (SysregId::Cp15(id), Xfer::A32 { rt, cond }) => (
                EC_CP15_32,
                cond_bits(cond)
                    | (u64::from(id.opc2()) << 17)
                    | (u64::from(id.opc1()) << 14)
                    | (u64::from(id.crn()) << 10)
                    | (u64::from(rt.0) << 5)
                    | (u64::from(id.crm()) << 1),
            ),
            (SysregId::Cp15Wide(id), Xfer::A32Wide { rt, rt2, cond }) => (
                EC_CP15_64,
                cond_bits(cond)
                    | (u64::from(id.opc1()) << 16)
                    | (u64::from(rt2.0) << 10)
                    | (u64::from(rt.0) << 5)
                    | (u64::from(id.crm()) << 1),
            ),
            _ => return Err(EncodeError::NoEncoding),
        };
        Ok((u64::from(ec) << EC_SHIFT) | IL_BIT | iss | dir_bit(self.dir))
    }

    /// The A64 `MRS`/`MSR` instruction word that decodes to this access.
    ///
    /// # Errors
    ///
    /// [`EncodeError::NotA64`] for an AArch32 access, [`EncodeError::NoEncoding`] if the kind
    /// of `xfer` does not match, or op0 < 2 (no `MRS`/`MSR` form).
    pub fn to_insn(&self) -> Result<u32, EncodeError> {
        match (self.id, self.xfer) {
            (SysregId::A64(id), Xfer::A64 { rt }) if id.op0() >= 2 => {
                Ok(INSN_MATCH | ((dir_bit(self.dir) as u32) << 21) | (u32::from(id.packed()) << 5) | u32::from(rt.0))
            }
            (SysregId::A64(_), Xfer::A64 { .. }) => Err(EncodeError::NoEncoding),
            _ => Err(EncodeError::NotA64),
        }
    }
}

impl SysregAccess {
    /// The register's encoding for this kind of transfer.
    ///
    /// # Errors
    ///
    /// [`EncodeError::NoEncoding`] if the register has none for it (`PMCEID2`/`PMCEID3` from
    /// AArch64, anything but `PMCCNTR` through `MRRC`/`MCRR`).
    pub fn sysreg_id(&self) -> Result<SysregId, EncodeError> {
        match self.xfer {
            Xfer::A64 { .. } => self.reg.a64_id().map(SysregId::A64),
            Xfer::A32 { .. } => Some(SysregId::Cp15(self.reg.cp15_id())),
            Xfer::A32Wide { .. } => self.reg.cp15_wide_id().map(SysregId::Cp15Wide),
        }
        .ok_or(EncodeError::NoEncoding)
    }

    fn as_other(&self) -> Result<OtherSysreg, EncodeError> {
        Ok(OtherSysreg { id: self.sysreg_id()?, dir: self.dir, xfer: self.xfer })
    }

    /// The ESR_EL2 value (EC 0x18, 0x03 or 0x04 by the kind of transfer, IL = 1) that
    /// [`decode_esr`] turns into this access.
    ///
    /// # Errors
    ///
    /// [`EncodeError::NoEncoding`] if the register has no encoding for this kind of transfer.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::decode::{decode_esr, Decoded, Direction, Gpr, SysregAccess, Xfer};
    /// use vpmu::reg::PmuReg;
    ///
    /// let a = SysregAccess { reg: PmuReg::Pmselr, dir: Direction::Write, xfer: Xfer::A64 { rt: Gpr::ZR } };
    /// assert_eq!(decode_esr(a.to_esr()?), Ok(Decoded::Pmu(a)));
    /// # Ok::<(), vpmu::decode::EncodeError>(())
    /// ```
    pub fn to_esr(&self) -> Result<u64, EncodeError> {
        self.as_other()?.to_esr()
    }

    /// The A64 instruction word that [`decode_insn`] turns into this access.
    ///
    /// # Errors
    ///
    /// [`EncodeError::NotA64`] for an AArch32 transfer, [`EncodeError::NoEncoding`] for
    /// `PMCEID2`/`PMCEID3`.
    ///
    /// # Examples
    ///
    /// ```
    /// use vpmu::decode::{Direction, Gpr, SysregAccess, Xfer};
    /// use vpmu::reg::PmuReg;
    ///
    /// let a = SysregAccess { reg: PmuReg::Pmcr, dir: Direction::Read, xfer: Xfer::A64 { rt: Gpr::new(0).unwrap() } };
    /// assert_eq!(a.to_insn(), Ok(0xd53b_9c00)); // MRS X0, PMCR_EL0
    /// ```
    pub fn to_insn(&self) -> Result<u32, EncodeError> {
        if !matches!(self.xfer, Xfer::A64 { .. }) {
            return Err(EncodeError::NotA64);
        }
        self.as_other()?.to_insn()
    }
}

impl Decoded {
    /// The ESR_EL2 value that decodes to this.
    ///
    /// # Errors
    ///
    /// As [`SysregAccess::to_esr`] and [`OtherSysreg::to_esr`].
    pub fn to_esr(&self) -> Result<u64, EncodeError> {
        match self {
            Decoded::Pmu(a) => a.to_esr(),
            Decoded::NotPmu(o) => o.to_esr(),
        }
    }

    /// The A64 instruction word that decodes to this.
    ///
    /// # Errors
    ///
    /// As [`SysregAccess::to_insn`] and [`OtherSysreg::to_insn`].
    pub fn to_insn(&self) -> Result<u32, EncodeError> {
        match self {
            Decoded::Pmu(a) => a.to_insn(),
            Decoded::NotPmu(o) => o.to_insn(),
        }
    }
}

impl fmt::Display for SysregAccess {
    /// `MRS X3, PMEVCNTR5_EL0`, `MCR p15, 0, R1, c9, c12, 0 (PMCR)`, `MRRC p15, 0, R2, R3, c9
    /// (PMCCNTR)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let read = self.dir == Direction::Read;
        match self.xfer {
            Xfer::A64 { rt } if read => write!(f, "MRS {}, {}", XName(rt), self.reg),
            Xfer::A64 { rt } => write!(f, "MSR {}, {}", self.reg, XName(rt)),
            Xfer::A32 { rt, .. } => {
                let id = self.reg.cp15_id();
                let m = if read { "MRC" } else { "MCR" };
                write!(f, "{m} p15, 0, R{}, c{}, c{}, {} ({})", rt.0, id.crn(), id.crm(), id.opc2(), self.reg.aarch32_name())
            }
            Xfer::A32Wide { rt, rt2, .. } => {
                let m = if read { "MRRC" } else { "MCRR" };
                write!(f, "{m} p15, 0, R{}, R{}, c9 ({})", rt.0, rt2.0, self.reg.aarch32_name())
            }
        }
    }
}

/// `X<n>`, or `XZR` for 31.
struct XName(Gpr);

impl fmt::Display for XName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero_reg() {
            f.write_str("XZR")
        } else {
            write!(f, "X{}", self.0 .0)
        }
    }
}
