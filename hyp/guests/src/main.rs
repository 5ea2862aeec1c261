//! The EL1 test guest of vpmu-hyp: checks the virtual PMU from inside the VM and prints one
//! `check <name>: ok` or `check <name>: FAIL ...` line per check, then powers off (PSCI).
//!
//! Runs on 1 or 2 CPUs: CPU 1, started with PSCI `CPU_ON`, runs its own checks (its PMU is
//! its own, its interrupts arrive through its own list registers, CPU 0's SGI reaches it).

#![no_std]
#![no_main]

mod arch;
mod checks;
#[cfg(feature = "exact")]
mod exact;

use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};

use baremetal::psci;
use baremetal::uart::Console;

static CONSOLE: Console = Console::new(false);
static FAILED: AtomicU32 = AtomicU32::new(0);
static PASSED: AtomicU32 = AtomicU32::new(0);

/// Prints a line under the console lock.
pub fn print(args: fmt::Arguments) {
    CONSOLE.print(format_args!("[guest] {args}\n"));
}

#[macro_export]
macro_rules! gprintln {
    ($($a:tt)*) => { $crate::print(format_args!($($a)*)) };
}

/// Records and prints one check.
pub fn check(name: &str, ok: bool, detail: fmt::Arguments) {
    if ok {
        PASSED.fetch_add(1, Ordering::Relaxed);
        gprintln!("check {name}: ok ({detail})");
    } else {
        FAILED.fetch_add(1, Ordering::Relaxed);
        gprintln!("check {name}: FAIL ({detail})");
    }
}

#[no_mangle]
extern "C" fn guest_main(dtb: u64) -> ! {
    gprintln!("EL1 guest up, DTB at {dtb:#x}");
    checks::cpu0();
    let (p, f) = (PASSED.load(Ordering::Relaxed), FAILED.load(Ordering::Relaxed));
    gprintln!("summary: {p} passed, {f} failed");
    psci::system_off()
}

#[no_mangle]
extern "C" fn secondary_main(cpu: u64) -> ! {
    checks::cpu1(cpu);
    psci::park()
}

#[no_mangle]
extern "C" fn guest_irq() {
    checks::irq();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    gprintln!("check panic: FAIL ({info})");
    psci::system_off()
}
