//! `decode_esr`: the first eight bytes (little-endian) as an ESR_EL2 value. Every `Ok` must
//! re-encode to the same syndrome and decode back to the same value, every error must be
//! justified; the check is [`vpmu_fuzz::check_esr`], shared with `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vpmu_fuzz::Target::DecodeEsr.run(data));
