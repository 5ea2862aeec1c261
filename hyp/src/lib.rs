//! The parts of vpmu-hyp that are plain Rust over byte slices, built as a library so they are
//! tested on the host (`cargo test --lib --target x86_64-unknown-linux-gnu`).

#![no_std]

pub mod fdt;
