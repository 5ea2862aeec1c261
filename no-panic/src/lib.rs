//! Shared pieces of the panic-freedom check binaries.
//!
//! Each binary under `src/bin/` drives one group of vpmu's entry points with opaque inputs
//! (`core::hint::black_box`, so nothing is constant-folded away) and defines a
//! `#[panic_handler]` that calls a function that does not exist, named after the group. If any
//! panic path survives optimisation, the panic handler is referenced and linking fails with
//! `undefined symbol: vpmu_panic_reachable_from_<group>`: that names the entry points to look
//! at. Built by `.ci/run` in release for `aarch64-unknown-none`.
#![no_std]

use core::hint::black_box;

/// An opaque value of any `Copy` type the optimiser cannot see through.
pub fn opaque<T: Copy + Default>() -> T {
    black_box(T::default())
}

/// Defines `_start` (running `$body`) and a panic handler that references the undefined
/// symbol `$symbol`.
#[macro_export]
macro_rules! check {
    ($symbol:ident, $body:block) => {
        #[panic_handler]
        fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
            extern "Rust" {
                fn $symbol() -> !;
            }
            // SAFETY: never executed. If this handler is reachable at all, the link fails,
            // because `$symbol` is defined nowhere; that failure is the point of the check.
            unsafe { $symbol() }
        }

        #[no_mangle]
        pub extern "C" fn _start() -> ! {
            $body
            #[allow(clippy::empty_loop)]
            loop {}
        }
    };
}
