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
guest!(
    /// The overflow interrupt at the exact instruction, five ways (in a block, on the
    /// enabling instruction, at a taken branch, inside a loop, held while masked).
    OVERFLOW_IRQ,
    "overflow_irq"
);
guest!(
    /// `SW_INCR`, and a `CHAIN`ed pair across an overflow.
    SW_INCR_CHAIN,
    "sw_incr_chain"
);
guest!(
    /// EL0 accesses under every `PMUSERENR_EL0` setting: allowed reads and EC 0x18 traps.
    EL0_ACCESS,
    "el0_access"
);
guest!(
    /// `PMEVCNTR<n>`/`PMEVTYPER<n>` accesses, UNDEFINED for n >= N.
    UNDEF,
    "undef"
);
guest!(
    /// Exception level filters across `ERET` and `SVC`.
    EL_FILTER,
    "el_filter"
);
