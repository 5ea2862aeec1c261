//! QEMU virt's PL011 at 0x0900_0000: transmit only, no initialisation (QEMU needs none).

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// The PL011's base address on QEMU's `virt` machine.
pub const BASE: usize = 0x0900_0000;
/// `UARTDR`, the data register.
const DR: usize = BASE;
/// `UARTFR`, the flag register.
const FR: usize = BASE + 0x18;
/// `UARTFR.TXFF`: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;

/// Sends one byte: waits while the transmit FIFO is full, then writes it.
pub fn put(b: u8) {
    // SAFETY: QEMU virt's PL011 registers (device memory with the MMU off, 4-byte aligned);
    // reading FR and writing DR only moves bytes to the console.
    unsafe {
        while core::ptr::read_volatile(FR as *const u32) & FR_TXFF != 0 {}
        core::ptr::write_volatile(DR as *mut u32, u32::from(b));
    }
}

/// The PL011 as a [`fmt::Write`]: the bytes as they are.
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(put);
        Ok(())
    }
}

/// The PL011 as a [`fmt::Write`], each `\n` sent as `\r\n` (what a terminal wants).
pub struct UartCrlf;

impl fmt::Write for UartCrlf {
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

/// A console the CPUs share: one spin lock so their lines do not mix.
pub struct Console {
    lock: AtomicBool,
    crlf: bool,
}

impl Console {
    /// A console that sends `\n` as `\r\n` if `crlf`.
    pub const fn new(crlf: bool) -> Self {
        Self { lock: AtomicBool::new(false), crlf }
    }

    /// Writes `args` under the lock (a line's end is the caller's).
    pub fn print(&self, args: fmt::Arguments) {
        while self.lock.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            core::hint::spin_loop();
        }
        let _ = if self.crlf { fmt::Write::write_fmt(&mut UartCrlf, args) } else { fmt::Write::write_fmt(&mut Uart, args) };
        self.lock.store(false, Ordering::Release);
    }
}
