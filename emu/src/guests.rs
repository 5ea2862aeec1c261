//! The guest programs, assembled from `emu/guests/*.S` by `build.rs`.

macro_rules! guest {
    ($(#[$m:meta])* $name:ident, $file:literal) => {
        $(#[$m])*
        pub const $name: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".bin"));
    };
}

guest!(
    /// `perf stat` in a guest: cycles, instructions and branches of a 1000-iteration loop.
    PERF_STAT,
    "perf_stat"
);
guest!(
    /// Two reads of `PMCCNTR_EL0` around one instruction.
    PMCCNTR_DELTA,
    "pmccntr_delta"
);
