//! The per-input checks of vpmu's fuzz targets, in one place.
//!
//! Three users read this file, so that an input is judged the same way everywhere:
//!
//! - the libFuzzer targets in `fuzz/fuzz_targets/`, through the fuzz crate's library
//!   (`vpmu_fuzz`), whose root this file is (`[lib] path` in `fuzz/Cargo.toml`);
//! - `tests/fuzz_corpus.rs`, which replays the committed corpus on stable Rust under plain
//!   `cargo test` (it includes this file with `#[path]`, so it must stay a plain module: no
//!   crate-level attributes, nothing but `std` and vpmu's public API);
//! - the proptest properties of `tests/decode.rs`, the same way.
//!
//! It lives under `tests/` rather than `fuzz/` because `cargo package` never packs `fuzz/` (a
//! package of its own): here, the published crate's tests that use it still compile.
//!
//! Each check returns `Err` with a sentence naming the input and what went wrong; the fuzz
//! targets turn that into a panic (a crash for libFuzzer), the replay test into a failure that
//! names the corpus file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use vpmu::decode::{decode_esr, decode_insn, DecodeError, Decoded, Direction, EncodeError, SysregId, Xfer};
use vpmu::reg::PmuReg;

/// `restore_bytes`: snapshot bytes into `PmuState::from_bytes` and `Pmu::restore`.
pub mod restore_bytes;

/// `access_sequence`: a configuration and a sequence of steps on `Pmu<SoftBackend>` and on the
/// eager reference model (`tests/common/model.rs`), which must agree after every step.
pub mod access_sequence;

/// A fuzz target: the name of its file in `fuzz_targets/` and of its corpus directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Any 64-bit value as an ESR_EL2 syndrome.
    DecodeEsr,
    /// An EC 0x03 / 0x04 syndrome with a fuzzed ISS: the AArch32 paths.
    DecodeAarch32,
    /// Any 32-bit value as an A64 instruction word.
    DecodeInsn,
    /// Any bytes as a snapshot: `PmuState::from_bytes`, then `Pmu::restore` into busy PMUs.
    RestoreBytes,
    /// A configuration and a sequence of trapped accesses, event batches, EL changes and resets,
    /// against the reference model.
    AccessSequence,
}

impl Target {
    /// Every target, as `cargo fuzz list` shows them.
    pub const ALL: [Target; 5] =
        [Target::DecodeEsr, Target::DecodeAarch32, Target::DecodeInsn, Target::RestoreBytes, Target::AccessSequence];

    /// The target's name: its file `fuzz_targets/<name>.rs` and its corpus `corpus/<name>/`.
    pub const fn name(self) -> &'static str {
        match self {
            Target::DecodeEsr => "decode_esr",
            Target::DecodeAarch32 => "decode_aarch32",
            Target::DecodeInsn => "decode_insn",
            Target::RestoreBytes => "restore_bytes",
            Target::AccessSequence => "access_sequence",
        }
    }

    /// Checks one input of this target.
    ///
    /// # Errors
    ///
    /// A sentence saying which property the input breaks.
    pub fn check(self, data: &[u8]) -> Result<(), String> {
        match self {
            Target::DecodeEsr => check_esr(esr_from_bytes(data)),
            Target::DecodeAarch32 => check_esr(aarch32_esr_from_bytes(data)),
            Target::DecodeInsn => check_insn(insn_from_bytes(data)),
            Target::RestoreBytes => restore_bytes::check(data),
            Target::AccessSequence => access_sequence::check(data),
        }
    }

    /// [`Target::check`], panicking on a failure: what a libFuzzer target calls.
    pub fn run(self, data: &[u8]) {
        if let Err(why) = self.check(data) {
            panic!("{}: {why}", self.name());
        }
    }
}

/// Up to the first `N` bytes of `data`, zero-padded.
fn le_bytes<const N: usize>(data: &[u8]) -> [u8; N] {
    let mut b = [0u8; N];
    for (dst, src) in b.iter_mut().zip(data) {
        *dst = *src;
    }
    b
}

/// `decode_esr` input: the first eight bytes, little-endian, zero-padded.
pub fn esr_from_bytes(data: &[u8]) -> u64 {
    u64::from_le_bytes(le_bytes(data))
}

/// `decode_insn` input: the first four bytes, little-endian, zero-padded.
pub fn insn_from_bytes(data: &[u8]) -> u32 {
    u32::from_le_bytes(le_bytes(data))
}

/// ESR.EC of a trapped AArch32 `MCR`/`MRC` (coproc 15).
pub const EC_CP15_32: u64 = 0x03;
/// ESR.EC of a trapped AArch32 `MCRR`/`MRRC` (coproc 15).
pub const EC_CP15_64: u64 = 0x04;
/// ESR.EC of a trapped AArch64 `MSR`/`MRS`.
pub const EC_SYS64: u64 = 0x18;
const IL: u64 = 1 << 25;
const ISS: u64 = IL - 1;

/// `decode_aarch32` input: byte 0 chooses the class, bytes 1..=4 are the ISS (little-endian).
///
/// Bit 0 of byte 0 picks EC 0x03 (`MRC`/`MCR`) or 0x04 (`MRRC`/`MCRR`); when its top four
/// bits are all set (1 input in 16) IL is cleared, so the `Il16` error stays in reach without
/// taking much of the effort.
pub fn aarch32_esr_from_bytes(data: &[u8]) -> u64 {
    let [sel, iss @ ..] = le_bytes::<5>(data);
    let ec = if sel & 1 == 0 { EC_CP15_32 } else { EC_CP15_64 };
    let il = if sel & 0xf0 == 0xf0 { 0 } else { IL };
    (ec << 26) | il | (u64::from(u32::from_le_bytes(iss)) & ISS)
}

/// What `to_esr` must give back for a syndrome that decoded: the same bits, except that with
/// CV = 0 an AArch32 syndrome's COND field is not reported, so it re-encodes as zero.
pub fn canonical_esr(esr: u64) -> u64 {
    let ec = (esr >> 26) & 0x3f;
    let cv = esr & (1 << 24) != 0;
    if matches!(ec, EC_CP15_32 | EC_CP15_64) && !cv {
        esr & !(0xf << 20)
    } else {
        esr
    }
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// `decode_esr` is total and its `Ok` answers round-trip: re-encoding gives the canonical form
/// of the syndrome, which decodes to the same value; an AArch64 access gives the instruction
/// word that decodes to it too; every error is justified by the bits it names.
///
/// # Errors
///
/// A sentence naming the syndrome and the broken property.
pub fn check_esr(esr: u64) -> Result<(), String> {
    let d = match decode_esr(esr) {
        Ok(d) => d,
        Err(e) => return check_esr_error(esr, e),
    };
    let again = d.to_esr().map_err(|e| format!("ESR {esr:#x} decoded to {d:?}, which does not re-encode: {e}"))?;
    ensure!(again == canonical_esr(esr), "ESR {esr:#x} decoded to {d:?}, which re-encodes to {again:#x}, not {:#x}", canonical_esr(esr));
    ensure!(decode_esr(again) == Ok(d), "ESR {esr:#x} decoded to {d:?}, re-encoded {again:#x} decodes to {:?}", decode_esr(again));

    // The syndrome of an AArch64 MRS/MSR and the instruction itself agree.
    let ec = (esr >> 26) & 0x3f;
    let op0 = (esr >> 20) & 3;
    match d.to_insn() {
        Ok(word) => {
            ensure!(ec == EC_SYS64 && op0 >= 2, "ESR {esr:#x} (EC {ec:#x}, op0 {op0}) gave an instruction word {word:#010x}");
            ensure!(decode_insn(word) == Ok(d), "ESR {esr:#x} gave {d:?}, its word {word:#010x} decodes to {:?}", decode_insn(word));
        }
        Err(EncodeError::NotA64) => ensure!(ec != EC_SYS64, "ESR {esr:#x}: an AArch64 access has no A64 word"),
        Err(EncodeError::NoEncoding) => ensure!(ec == EC_SYS64 && op0 < 2, "ESR {esr:#x} (op0 {op0}): no A64 word for {d:?}"),
        Err(e) => return Err(format!("ESR {esr:#x}: unexpected encode error {e:?} for {d:?}")),
    }
    check_decoded(&d).map_err(|why| format!("ESR {esr:#x}: {why}"))
}

fn check_esr_error(esr: u64, e: DecodeError) -> Result<(), String> {
    let ec = (esr >> 26) & 0x3f;
    let ec_ok = matches!(ec, EC_SYS64 | EC_CP15_32 | EC_CP15_64);
    match e {
        DecodeError::WrongEc { ec: got } => {
            ensure!(!ec_ok && u64::from(got) == ec, "ESR {esr:#x}: WrongEc {{ ec: {got:#x} }}, but EC is {ec:#x}");
        }
        DecodeError::Il16 => ensure!(ec_ok && esr & IL == 0, "ESR {esr:#x}: Il16, but IL is set or EC is wrong"),
        DecodeError::ReservedBits { bits } => {
            let upper = esr & !0xffff_ffff;
            let res0 = match ec {
                EC_SYS64 => esr & (0b111 << 22),
                EC_CP15_64 => esr & (1 << 15),
                _ => 0,
            };
            ensure!(
                ec_ok && bits != 0 && (bits == upper || (upper == 0 && bits == res0)),
                "ESR {esr:#x}: ReservedBits {{ bits: {bits:#x} }}, but ESR[63:32] is {upper:#x} and the ISS RES0 bits are {res0:#x}"
            );
        }
        other => return Err(format!("ESR {esr:#x}: decode_esr gave {other:?}, which only instruction words give")),
    }
    let text = e.to_string();
    ensure!(!text.is_empty(), "ESR {esr:#x}: {e:?} displays as nothing");
    Ok(())
}

/// `decode_insn` is total: an `Ok` re-encodes to the same word and to a syndrome that decodes
/// to the same value; an error is only for words outside `MRS`/`MSR` (register).
///
/// # Errors
///
/// A sentence naming the word and the broken property.
pub fn check_insn(insn: u32) -> Result<(), String> {
    const MRS_MSR_MASK: u32 = 0xffd0_0000;
    const MRS_MSR: u32 = 0xd510_0000;
    let d = match decode_insn(insn) {
        Ok(d) => d,
        Err(DecodeError::NotSysregMove { insn: got }) => {
            ensure!(got == insn, "word {insn:#010x}: the error names {got:#010x}");
            ensure!(insn & MRS_MSR_MASK != MRS_MSR, "word {insn:#010x} is an MRS/MSR, but was refused");
            ensure!(!DecodeError::NotSysregMove { insn }.to_string().is_empty(), "word {insn:#010x}: empty error text");
            return Ok(());
        }
        Err(e) => return Err(format!("word {insn:#010x}: decode_insn gave {e:?}")),
    };
    ensure!(d.to_insn() == Ok(insn), "word {insn:#010x} decoded to {d:?}, which re-encodes to {:?}", d.to_insn());
    let esr = d.to_esr().map_err(|e| format!("word {insn:#010x} decoded to {d:?}, which has no syndrome: {e}"))?;
    ensure!((esr >> 26) & 0x3f == EC_SYS64, "word {insn:#010x}: syndrome {esr:#x} is not EC 0x18");
    ensure!(decode_esr(esr) == Ok(d), "word {insn:#010x} gave {d:?}, its syndrome {esr:#x} decodes to {:?}", decode_esr(esr));
    check_decoded(&d).map_err(|why| format!("word {insn:#010x}: {why}"))
}

/// The classification agrees with the register table, and the access displays as the
/// instruction it is.
///
/// # Errors
///
/// A sentence saying what disagrees.
pub fn check_decoded(d: &Decoded) -> Result<(), String> {
    match d {
        Decoded::Pmu(a) => {
            let id = a.sysreg_id().map_err(|e| format!("{a:?} has no encoding: {e}"))?;
            ensure!(table_lookup(id) == Some(a.reg), "{a:?}: its encoding {id:?} names {:?}", table_lookup(id));
            let text = a.to_string();
            let read = a.dir == Direction::Read;
            let (mnemonic, name) = match a.xfer {
                Xfer::A64 { .. } => (if read { "MRS " } else { "MSR " }, a.reg.to_string()),
                Xfer::A32 { .. } => (if read { "MRC " } else { "MCR " }, a.reg.aarch32_name().to_string()),
                Xfer::A32Wide { .. } => (if read { "MRRC " } else { "MCRR " }, a.reg.aarch32_name().to_string()),
            };
            ensure!(text.starts_with(mnemonic) && text.contains(&name), "{a:?} displays as {text:?}: expected {mnemonic}... {name}");
        }
        Decoded::NotPmu(o) => {
            ensure!(table_lookup(o.id).is_none(), "{o:?} is NotPmu, but the table names it {:?}", table_lookup(o.id));
            let kind_ok = matches!(
                (o.id, o.xfer),
                (SysregId::A64(_), Xfer::A64 { .. })
                    | (SysregId::Cp15(_), Xfer::A32 { .. })
                    | (SysregId::Cp15Wide(_), Xfer::A32Wide { .. })
            );
            ensure!(kind_ok, "{o:?}: the transfer kind does not match the encoding kind");
            let text = match o.id {
                SysregId::A64(id) => id.to_string(),
                SysregId::Cp15(id) => id.to_string(),
                SysregId::Cp15Wide(id) => id.to_string(),
            };
            ensure!(!text.is_empty(), "{o:?}: the encoding displays as nothing");
        }
    }
    Ok(())
}

fn table_lookup(id: SysregId) -> Option<PmuReg> {
    match id {
        SysregId::A64(id) => PmuReg::from_a64(id),
        SysregId::Cp15(id) => PmuReg::from_cp15(id),
        SysregId::Cp15Wide(id) => PmuReg::from_cp15_wide(id),
    }
}
