//! Console output on the PL011 the guest shares; one lock so the CPUs' lines do not mix.

use baremetal::uart::Console;

/// The console: `\n` sent as `\r\n`.
static CONSOLE: Console = Console::new(true);

/// Prints under the console lock.
pub fn print(args: core::fmt::Arguments) {
    CONSOLE.print(args);
}

/// `println!` for the hypervisor: prefixed lines on the shared console.
#[macro_export]
macro_rules! hprintln {
    ($($arg:tt)*) => { $crate::uart::print(format_args!("[vpmu-hyp] {}\n", format_args!($($arg)*))) };
}
