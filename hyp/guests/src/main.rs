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

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static LOCK: AtomicBool = AtomicBool::new(false);
static FAILED: AtomicU32 = AtomicU32::new(0);
static PASSED: AtomicU32 = AtomicU32::new(0);

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            arch::uart_put(b);
        }
        Ok(())
    }
}

/// Prints a line under the console lock.
pub fn print(args: fmt::Arguments) {
    while LOCK.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
    }
    let _ = Uart.write_fmt(format_args!("[guest] {args}\n"));
    LOCK.store(false, Ordering::Release);
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
    arch::system_off()
}

#[no_mangle]
extern "C" fn secondary_main(cpu: u64) -> ! {
    checks::cpu1(cpu);
    arch::park()
}

#[no_mangle]
extern "C" fn guest_irq() {
    checks::irq();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    gprintln!("check panic: FAIL ({info})");
    arch::system_off()
}
