//! `restore_bytes`: arbitrary bytes into `PmuState::from_bytes`, and what decodes into
//! `Pmu::restore` on PMUs that already hold state.
//!
//! Each input is tried twice:
//!
//! 1. as it is: `from_bytes` must answer `Ok` or a typed error that the bytes justify; an `Ok`
//!    must be the canonical byte form of the state it gives (`to_bytes` gives the input back);
//! 2. repaired: cut or zero-padded to `PmuState::BYTES`, with the header and the CRC-32 made
//!    right, so that the fuzzer's mutations reach `restore`'s validation instead of dying at
//!    the checksum.
//!
//! Every state that decodes is restored into PMUs of a few configurations (its own `N` and
//! version when they exist, so most can succeed; permissive and strict on `LC` and the EL2/EL3
//! filter bits), each with counters already live and counting. A rejected restore must leave
//! the PMU exactly as it was (same `save()`, same backend); an accepted one must read back as
//! the state (`save()` gives it), and the PMU must keep counting without a panic.
//!
//! Like `mod.rs`, a plain module: `std` and vpmu's public API only.

use vpmu::config::{PmuConfig, PmuVersion};
use vpmu::reg::{EventCounter, PmuReg};
use vpmu::{El, Pmu, PmuState, SnapshotError, SoftBackend};

/// CRC-32 (IEEE 802.3, reflected, as zlib): written here again, not taken from vpmu, so a wrong
/// checksum in vpmu cannot agree with itself.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    crc ^ 0xffff_ffff
}

/// The layout facts this check relies on, from the byte form's documentation.
pub const MAGIC: &[u8; 8] = b"VPMUSNAP";
/// Header: magic, format version (u16), total length (u32).
pub const HEADER: usize = 14;
/// Where the identity starts.
const IDENTITY_AT: usize = 577;

/// `data` made into a well-formed byte form (the current format version): cut or zero-padded to
/// `PmuState::BYTES`; `N` (byte 14) taken modulo 32 and the PMU version (byte 15) made one of
/// the four, so that most repaired inputs fit a fixture; the identity (bytes 577..605) made a
/// fixture's unless bit 7 of byte 577 is set; then the magic, format version, length and CRC-32
/// written over.
pub fn repair(data: &[u8]) -> Vec<u8> {
    let n = PmuState::BYTES;
    let mut b = data.to_vec();
    b.resize(n, 0);
    b[14] &= 31;
    if ![1, 4, 5, 6].contains(&b[15]) {
        b[15] = [1, 4, 5, 6][usize::from(b[15] & 3)];
    }
    if b[IDENTITY_AT] & 0x80 == 0 {
        let version = [PmuVersion::V3, PmuVersion::V3p1, PmuVersion::V3p4, PmuVersion::V3p5].into_iter().find(|v| v.pmuver() == b[15]);
        let cfg = PmuConfig::builder().version(version.unwrap_or(PmuVersion::V3p5)).build();
        if let Ok(Ok(mut pmu)) = cfg.map(|c| Pmu::new(c, SoftBackend::new())) {
            let fixture = pmu.save().to_bytes();
            b[IDENTITY_AT..n - 4].copy_from_slice(&fixture[IDENTITY_AT..n - 4]);
        }
    }
    b[..8].copy_from_slice(MAGIC);
    b[8..10].copy_from_slice(&PmuState::FORMAT_VERSION.to_le_bytes());
    b[10..14].copy_from_slice(&(n as u32).to_le_bytes());
    let crc = crc32(&b[..n - 4]);
    b[n - 4..].copy_from_slice(&crc.to_le_bytes());
    b
}

macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// The whole check for one input.
///
/// # Errors
///
/// A sentence saying which property the input breaks.
pub fn check(data: &[u8]) -> Result<(), String> {
    check_bytes(data)?;
    check_bytes(&repair(data)).map_err(|why| format!("repaired input: {why}"))
}

fn check_bytes(data: &[u8]) -> Result<(), String> {
    let state = match PmuState::from_bytes(data) {
        Ok(s) => s,
        Err(e) => return check_byte_error(data, e),
    };
    ensure!(state.to_bytes().as_slice() == data, "from_bytes accepted {} bytes that are not to_bytes of what they gave", data.len());
    for pmu in fixtures(&state) {
        check_restore(pmu, &state)?;
    }
    Ok(())
}

/// A byte-form error must be what the bytes say.
///
/// # Errors
///
/// A sentence saying how the error disagrees with the bytes.
pub fn check_byte_error(data: &[u8], e: SnapshotError) -> Result<(), String> {
    let len = data.len();
    ensure!(!e.to_string().is_empty(), "{e:?} displays as nothing");
    let header_ok = len >= HEADER && &data[..8] == MAGIC && data[8..10] == PmuState::FORMAT_VERSION.to_le_bytes();
    match e {
        SnapshotError::Truncated { len: l, need } => ensure!(l == len && len < need && need <= PmuState::BYTES, "{e:?} for {len} bytes"),
        SnapshotError::BadMagic { found } => ensure!(len >= HEADER && found[..] == data[..8] && &found != MAGIC, "{e:?}"),
        SnapshotError::FutureVersion { found, newest } => {
            ensure!(len >= HEADER && found.to_le_bytes() == data[8..10] && found > newest && newest == PmuState::FORMAT_VERSION, "{e:?}")
        }
        SnapshotError::OldFormat { found, oldest } => {
            ensure!(
                len >= HEADER && found.to_le_bytes() == data[8..10] && found != 0 && found < oldest && oldest == PmuState::FORMAT_VERSION,
                "{e:?}"
            )
        }
        SnapshotError::BadFormatVersion { found } => ensure!(len >= HEADER && found == 0 && data[8..10] == [0, 0], "{e:?}"),
        SnapshotError::BadLength { declared, expected } => ensure!(
            header_ok && declared.to_le_bytes() == data[10..14] && declared != expected && expected as usize == PmuState::BYTES,
            "{e:?}"
        ),
        SnapshotError::TrailingBytes { extra } => {
            ensure!(header_ok && len == PmuState::BYTES + extra && extra > 0, "{e:?} for {len} bytes")
        }
        SnapshotError::Checksum { stored, computed } => {
            let n = PmuState::BYTES;
            ensure!(len == n && stored != computed, "{e:?} for {len} bytes");
            ensure!(computed == crc32(&data[..n - 4]) && stored.to_le_bytes() == data[n - 4..], "{e:?}: not the input's checksums");
        }
        SnapshotError::UnknownPmuVersion { pmuver } => {
            ensure!(len == PmuState::BYTES && data[15] == pmuver && ![1, 4, 5, 6].contains(&pmuver), "{e:?}")
        }
        other => return Err(format!("from_bytes gave {other:?}, which only restore should")),
    }
    Ok(())
}

/// PMUs to restore `state` into: its own `N` and version when they exist, permissive and strict,
/// and a fixed one it usually does not fit. Each has counters live and counting.
fn fixtures(state: &PmuState) -> Vec<Pmu<SoftBackend>> {
    let own = (state.counters <= 31).then_some((state.counters, state.version));
    let mut out = Vec::new();
    for (counters, version) in own.into_iter().chain([(6, PmuVersion::V3p5)]) {
        for permissive in [true, false] {
            let cfg = PmuConfig::builder().counters(counters).version(version).aarch32_el0(permissive).el3(permissive).build();
            let Ok(cfg) = cfg else { continue };
            let Ok(mut pmu) = Pmu::new(cfg, SoftBackend::new()) else { continue };
            busy(&mut pmu);
            out.push(pmu);
        }
    }
    out
}

/// Some state: counter 0 counts INST_RETIRED from near its overflow, counter 1 chains, the cycle
/// counter counts with the /64 divider, an overflow flag is set, at EL0.
fn busy(pmu: &mut Pmu<SoftBackend>) {
    let n = pmu.config().counters();
    let ev = |i| EventCounter::new(i).unwrap();
    if n >= 2 {
        let _ = pmu.write(PmuReg::Pmevtyper(ev(0)), 0x08, El::El1);
        let _ = pmu.write(PmuReg::Pmevcntr(ev(0)), 0xffff_fff0, El::El1);
        let _ = pmu.write(PmuReg::Pmevtyper(ev(1)), 0x1e, El::El1);
    }
    let _ = pmu.write(PmuReg::Pmcntenset, 0x8000_0003, El::El1);
    let _ = pmu.write(PmuReg::Pmintenset, 0x8000_0001, El::El1);
    let _ = pmu.write(PmuReg::Pmuserenr, 0b1101, El::El1);
    let _ = pmu.write(PmuReg::Pmselr, 1, El::El1);
    let _ = pmu.write(PmuReg::Pmcr, 0b1001, El::El1); // E, D
    pmu.count(0x08, 40);
    pmu.count(0x11, 1000);
    pmu.set_el(El::El0);
    pmu.count(0x08, 3);
}

fn check_restore(mut pmu: Pmu<SoftBackend>, state: &PmuState) -> Result<(), String> {
    let before = pmu.save();
    let backend = pmu.backend().clone();
    let verdict = pmu.validate_state(state);
    match pmu.restore(state) {
        Err(e) => {
            ensure!(verdict == Err(e), "validate_state said {verdict:?}, restore {e:?}");
            ensure!(!e.to_string().is_empty(), "{e:?} displays as nothing");
            ensure!(pmu.backend() == &backend, "a rejected restore ({e}) changed the backend");
            let after = pmu.save();
            ensure!(after == before, "a rejected restore ({e}) changed the PMU:\nbefore {before:?}\nafter  {after:?}");
        }
        Ok(()) => {
            ensure!(verdict.is_ok(), "validate_state said {verdict:?}, restore accepted");
            ensure!(state.counters == pmu.config().counters() && state.version == pmu.config().version(), "restored a foreign state");
            ensure!(
                state.identity == pmu.identity(),
                "restored a state of another identity: {:?} into {:?}",
                state.identity,
                pmu.identity()
            );
            let back = pmu.save();
            ensure!(back == *state, "restored state reads back differently:\nstate {state:?}\nread  {back:?}");
            // It keeps counting, and a second save/restore round is the identity.
            pmu.count(0x08, 1 << 33);
            pmu.count(0x11, 12345);
            let _ = pmu.irq_level();
            let later = pmu.save();
            let mut copy = Pmu::new(*pmu.config(), SoftBackend::new()).map_err(|e| e.to_string())?;
            ensure!(copy.restore(&later).is_ok(), "a state saved after a restore does not restore");
            ensure!(copy.save() == later, "a second round trip changed the state");
        }
    }
    Ok(())
}
