//! `access_sequence`: an arbitrary configuration and sequence of trapped accesses, event
//! batches, EL changes and resets, run on `Pmu<SoftBackend>` and on the eager reference model
//! (`tests/common/model.rs`); they must agree on every read, UNDEF, trap and the interrupt
//! level. The check is [`vpmu_fuzz::access_sequence::check`], shared with
//! `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vpmu_fuzz::Target::AccessSequence.run(data));
