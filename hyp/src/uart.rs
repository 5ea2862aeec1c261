//! Console output on the PL011 the guest shares; one lock so the CPUs' lines do not mix.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::mmio::{read32, write8, UART_BASE};

static LOCK: AtomicBool = AtomicBool::new(false);

/// The console.
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}

fn put(b: u8) {
    // FR.TXFF: wait while the transmit FIFO is full.
    while read32(UART_BASE + 0x18) & (1 << 5) != 0 {}
    write8(UART_BASE, b);
}

/// Prints under the console lock.
pub fn print(args: fmt::Arguments) {
    while LOCK.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
    }
    let _ = fmt::Write::write_fmt(&mut Uart, args);
    LOCK.store(false, Ordering::Release);
}

/// `println!` for the hypervisor: prefixed lines on the shared console.
#[macro_export]
macro_rules! hprintln {
    ($($arg:tt)*) => { $crate::uart::print(format_args!("[vpmu-hyp] {}\n", format_args!($($arg)*))) };
}
