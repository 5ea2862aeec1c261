#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, clippy::arithmetic_side_effects)]
//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) on stable Rust, through the
//! very checks the libFuzzer targets run (`tests/common/fuzz_check/`), so that plain `cargo test`
//! exercises every input the fuzzer found interesting.
//!
//! It reads the corpus as `tests/corpus/`, a symbolic link to `../fuzz/corpus` in the
//! repository: `cargo package` never packs `fuzz/` (a package of its own) but follows the link,
//! so the published crate holds the corpus there as plain files and replays it too.
//!
//! A missing or empty corpus directory is a failure, not a pass: this test must never
//! silently test nothing. The corpus directories are checked against the list of targets here,
//! and `tests/fuzz_targets.rs` checks them against `fuzz/fuzz_targets/` (in the repository
//! only), so a new target cannot be added without a corpus and a check here.

#[allow(dead_code)]
#[path = "common/fuzz_check/mod.rs"]
mod fuzz_check;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use fuzz_check::Target;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("corpus")
}

/// The regular files of `dir`, sorted; panics if it is missing or holds none.
fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("corpus directory {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("read_dir entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    assert!(!files.is_empty(), "corpus directory {} is empty: nothing would be replayed", dir.display());
    files
}

fn replay(target: Target) -> usize {
    let dir = corpus_dir().join(target.name());
    let files = corpus_files(&dir);
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            target.check(&data).err().map(|why| format!("{}: {why}", path.display()))
        })
        .collect();
    assert!(failures.is_empty(), "{} of {} corpus inputs fail:\n{}", failures.len(), files.len(), failures.join("\n"));
    files.len()
}

#[test]
fn corpus_decode_esr() {
    assert!(replay(Target::DecodeEsr) > 0);
}

#[test]
fn corpus_decode_aarch32() {
    assert!(replay(Target::DecodeAarch32) > 0);
}

#[test]
fn corpus_decode_insn() {
    assert!(replay(Target::DecodeInsn) > 0);
}

#[test]
fn corpus_restore_bytes() {
    assert!(replay(Target::RestoreBytes) > 0);
}

#[test]
fn corpus_access_sequence() {
    assert!(replay(Target::AccessSequence) > 0);
}

/// The targets this test replays are exactly the corpus directories (and `tests/fuzz_targets.rs`
/// checks that those are exactly the targets cargo-fuzz builds).
#[test]
fn every_corpus_is_replayed() {
    let dir = corpus_dir();
    let dirs: BTreeSet<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", dir.display()))
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().expect("file name").to_string_lossy().into_owned())
        .collect();
    let known: BTreeSet<String> = Target::ALL.iter().map(|t| t.name().to_owned()).collect();
    assert_eq!(dirs, known, "the corpus directories (fuzz/corpus/*) and Target::ALL disagree");
}

/// The checks can fail: a decoder answer that disagrees with the register table is caught.
/// (Guards against a `check` that accepts everything.)
#[test]
fn the_checks_can_fail() {
    use vpmu::decode::{Decoded, Direction, Gpr, OtherSysreg, SysregAccess, SysregId, Xfer};
    use vpmu::reg::PmuReg;

    let rt = Gpr::new(0).unwrap();
    let pmcr = PmuReg::Pmcr.a64_id().unwrap();
    let not_pmu_but_is = Decoded::NotPmu(OtherSysreg { id: SysregId::A64(pmcr), dir: Direction::Read, xfer: Xfer::A64 { rt } });
    assert!(fuzz_check::check_decoded(&not_pmu_but_is).is_err());
    let kind_mismatch = Decoded::NotPmu(OtherSysreg { id: SysregId::A64(pmcr), dir: Direction::Read, xfer: Xfer::A32 { rt, cond: None } });
    assert!(fuzz_check::check_decoded(&kind_mismatch).is_err());
    let no_a64_encoding = Decoded::Pmu(SysregAccess { reg: PmuReg::Pmceid2, dir: Direction::Read, xfer: Xfer::A64 { rt } });
    assert!(fuzz_check::check_decoded(&no_a64_encoding).is_err());

    // Decode errors are answers, not failures.
    assert_eq!(Target::DecodeEsr.check(&0x5600_0000u64.to_le_bytes()), Ok(()));
    assert_eq!(Target::DecodeInsn.check(&0xd503_201fu32.to_le_bytes()), Ok(()));
    // The input builders are what the corpus files were written for.
    assert_eq!(fuzz_check::esr_from_bytes(&[0x71, 0xf8, 0x3a, 0x62]), 0x623a_f871);
    assert_eq!(fuzz_check::insn_from_bytes(&[0x00, 0x9c, 0x3b, 0xd5, 0xff]), 0xd53b_9c00);
    assert_eq!(fuzz_check::aarch32_esr_from_bytes(&[0x01, 0x53, 0x0c, 0xe0, 0x01]), 0x13e0_0c53);
    assert_eq!(fuzz_check::aarch32_esr_from_bytes(&[0xf0, 0x59, 0x24, 0xe0, 0x01]), 0x0de0_2459); // IL cleared
    assert_eq!(fuzz_check::canonical_esr(0x0ee0_2459), 0x0e00_2459); // CV = 0: COND is dropped
    assert_eq!(fuzz_check::canonical_esr(0x0fe0_2459), 0x0fe0_2459);
}
