//! Embedding corestrom: a keyed rolling count over a bounded in-memory source, on as many
//! shards as the machine has cores. Run with `cargo run --release --example word_count`.

use corestrom::prelude::*;

fn main() -> Result<(), JobError> {
    let text = "the quick brown fox jumps over the lazy dog the end";
    let words: Vec<String> = text
        .split_whitespace()
        .cycle()
        .take(100_000)
        .map(str::to_string)
        .collect();
    let env = Env::builder().build()?;
    let counts = env
        .from_vec(words)
        .key_by(|w: &String| w.clone())
        .fold(0u64, |n, _| *n += 1)
        .collect();
    let report = env.execute_and_wait()?;
    // The fold is rolling (one output per input); the last value per word is its total.
    let mut totals = std::collections::BTreeMap::new();
    for (word, n) in counts.take() {
        let total = totals.entry(word).or_insert(0);
        *total = n.max(*total);
    }
    for (word, n) in &totals {
        println!("{word:>6} {n}");
    }
    println!(
        "{} records on {} shards in {:?}",
        report.totals.source_records, report.shards, report.elapsed
    );
    Ok(())
}
