//! `decode_aarch32`: an EC 0x03 (`MRC`/`MCR`) or 0x04 (`MRRC`/`MCRR`) syndrome built from the
//! input ([`vpmu_fuzz::aarch32_esr_from_bytes`]), so that the AArch32 paths get the effort a
//! random 64-bit value would spend on wrong exception classes. Same check as `decode_esr`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vpmu_fuzz::Target::DecodeAarch32.run(data));
