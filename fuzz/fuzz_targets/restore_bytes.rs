//! `restore_bytes`: any bytes as a vpmu snapshot. `PmuState::from_bytes` must answer with a
//! justified error or the state the bytes encode; every state that decodes is restored into PMUs
//! that hold live state, and a rejected restore must leave them exactly as they were. The check
//! is [`vpmu_fuzz::restore_bytes::check`], shared with `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vpmu_fuzz::Target::RestoreBytes.run(data));
