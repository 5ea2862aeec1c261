#![allow(clippy::expect_used, clippy::panic)]
//! The fuzz crate's targets (`fuzz/fuzz_targets/*.rs`) are exactly its corpus directories
//! (`fuzz/corpus/*`), which `tests/fuzz_corpus.rs` checks against the targets it replays: a new
//! target cannot be added without a corpus and a replay.
//!
//! A check of the repository, not of the crate: the published crate has no `fuzz/` (cargo never
//! packs a package of its own), so Cargo.toml's `include` leaves this file out of it.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

/// The names of the entries of `fuzz/<sub>` that `keep` keeps, without extension.
fn names(sub: &str, keep: fn(&Path) -> bool) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(sub);
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", dir.display()))
        .map(|e| e.expect("read_dir entry").path())
        .filter(|p| keep(p))
        .map(|p| p.file_stem().expect("file name").to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_fuzz_target_has_a_corpus() {
    let targets = names("fuzz_targets", |p| p.extension().is_some_and(|x| x == "rs"));
    let corpora = names("corpus", Path::is_dir);
    assert!(!targets.is_empty(), "fuzz/fuzz_targets/ has no target");
    assert_eq!(targets, corpora, "fuzz/fuzz_targets/*.rs and fuzz/corpus/* disagree");
}
