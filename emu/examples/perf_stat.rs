//! `perf stat` for a real A64 guest program: the guest (`emu/guests/perf_stat.S`) programs
//! its PMU, runs a 1000-iteration loop and reads the counters; vpmu, inside unicorn,
//! counted. The table shows what the guest read, checked against the loop's exact count.
//!
//! ```text
//! cargo run -p vpmu-emu --example perf_stat
//! ```

use std::process::ExitCode;
use std::time::Instant;

use vpmu_emu::machine::{RAM_BASE, RESULTS};
use vpmu_emu::{guests, Machine};

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() -> ExitCode {
    let run = || -> Result<(Vec<u64>, vpmu_emu::Stats, f64), vpmu_emu::Error> {
        let mut m = Machine::new(6)?;
        m.load(RAM_BASE, guests::PERF_STAT)?;
        let t = Instant::now();
        let stats = m.run(RAM_BASE)?;
        let secs = t.elapsed().as_secs_f64();
        Ok((m.read_u64s(RESULTS, 4)?, stats, secs))
    };
    let (r, stats, secs) = match run() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("perf_stat: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (cycles, insns, branches, iters) = (r[0], r[1], r[2], r[3]);
    println!();
    println!(" Performance counter stats for guest 'emu/guests/perf_stat.S' (unicorn-engine 2.1.5 + vpmu):");
    println!();
    println!("  {:>16}      cycles                    #  one cycle per instruction", thousands(cycles));
    println!("  {:>16}      instructions              #  {:>5.2}  insn per cycle", thousands(insns), insns as f64 / cycles as f64);
    println!("  {:>16}      branches                  #  {:>5.2}  per loop iteration", thousands(branches), branches as f64 / iters as f64);
    println!();
    println!("  {secs:>16.6} seconds host time ({} instructions emulated in all)", thousands(stats.instructions));
    println!();
    let expect = (1 + 4 * iters, iters);
    let exact = insns == expect.0 && cycles == expect.0 && branches == expect.1;
    println!(
        " expected: {} instructions and cycles (the enabling MSR + {iters} iterations x 4), {} branches: {}",
        thousands(expect.0),
        thousands(expect.1),
        if exact { "exact" } else { "MISMATCH" }
    );
    if exact {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
