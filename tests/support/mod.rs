//! Helpers shared by the integration tests that run the real `corestrom` binary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// The `corestrom` binary built for these tests.
pub fn corestrom() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_corestrom"));
    command
        .env_remove("CORESTROM_CRASH_AT")
        .env("RUST_BACKTRACE", "0");
    command
}

/// The committed result of a FORMAT.md result directory: the multiset of lines of its visible
/// `*.jsonl` files (hidden files are not part of the result).
pub fn committed_lines(dir: &Path) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return lines;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if name.starts_with('.') || !name.ends_with(".jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path)
            .expect("read result file")
            .lines()
        {
            *lines.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    lines
}

/// Compares two multisets of lines: (lost, duplicated, unexpected) line counts.
pub fn diff(expected: &HashMap<String, u32>, got: &HashMap<String, u32>) -> (u64, u64, u64) {
    let (mut lost, mut duplicated, mut unexpected) = (0, 0, 0);
    for (line, &n) in expected {
        let m = got.get(line).copied().unwrap_or(0);
        if m < n {
            lost += u64::from(n - m);
        } else {
            duplicated += u64::from(m - n);
        }
    }
    for (line, &m) in got {
        if !expected.contains_key(line) {
            unexpected += u64::from(m);
        }
    }
    (lost, duplicated, unexpected)
}

/// Runs `corestrom` to completion with `args`; panics with its stderr if it fails.
pub fn run_ok(args: &[&str]) {
    let out = corestrom()
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("run corestrom");
    assert!(
        out.status.success(),
        "corestrom {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small deterministic PRNG (SplitMix64) so failures replay from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
