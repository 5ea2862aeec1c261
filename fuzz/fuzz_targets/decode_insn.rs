//! `decode_insn`: the first four bytes (little-endian) as an A64 instruction word. Every `Ok`
//! must re-encode to the same word and to a syndrome that decodes to the same value; the check
//! is [`vpmu_fuzz::check_insn`], shared with `tests/fuzz_corpus.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vpmu_fuzz::Target::DecodeInsn.run(data));
