//! The `corestrom` command: runs Nexmark queries on the built-in generator and generates
//! Nexmark event files.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use corestrom::prelude::*;
use corestrom_bench::nexmark::files::{generate_split_files, generate_to_file};
use corestrom_bench::nexmark::queries::{Output, Query};
use corestrom_bench::nexmark::{GeneratorConfig, NexmarkSource};

/// corestrom: a thread-per-core stream processing engine with Flink's programming model.
#[derive(Parser, Debug)]
#[command(name = "corestrom", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a Nexmark query on the built-in generator and print throughput and latency.
    Nexmark(NexmarkCli),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct NexmarkCli {
    #[command(subcommand)]
    command: Option<NexmarkCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum NexmarkCommand {
    /// Write generated events as JSON lines (the layout of shared/nexmark/FORMAT.md).
    Generate(GenerateArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The query: q0 (pass-through), q1 (currency conversion), q2 (selection).
    #[arg(long, default_value = "q1")]
    query: Query,
    /// Events to generate, all types and all shards together.
    #[arg(long, default_value_t = 10_000_000, value_parser = parse_count)]
    events: u64,
    /// Shards (threads); default: one per available core. More shards than cores is allowed.
    #[arg(long)]
    shards: Option<usize>,
    /// Emit at most this many events per second in total (default: as fast as possible).
    /// Use it to measure latency below peak throughput.
    #[arg(long, value_parser = parse_count)]
    rate: Option<u64>,
    /// Event-time density of the generator: events per second of event time (Flink's
    /// first-event.rate; the V1 benchmark uses 10 M).
    #[arg(long, default_value_t = 10_000_000, value_parser = parse_count)]
    event_rate: u64,
    /// Seed of the generator's random fields.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the results as JSON-lines files into this directory (default: discard them).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print the summary's last line as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Events to generate, all types together.
    #[arg(long, value_parser = parse_count)]
    events: u64,
    /// Seed of the random fields (same seed, same file).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Event-time density: events per second of event time (first-event.rate).
    #[arg(long, default_value_t = 10_000_000, value_parser = parse_count)]
    rate: u64,
    /// Generator splits: events of all splits are merged into one file in event-time order.
    #[arg(long, default_value_t = 1)]
    splits: u32,
    /// Write one time-ordered file per split into this directory instead of one file.
    #[arg(long, conflicts_with = "out")]
    split_dir: Option<PathBuf>,
    /// The output file.
    #[arg(long, required_unless_present = "split_dir")]
    out: Option<PathBuf>,
}

/// Parses a count, allowing `_` separators and k/M/G suffixes (10M = 10,000,000).
fn parse_count(text: &str) -> Result<u64, String> {
    let cleaned = text.replace('_', "");
    let (digits, factor) = match cleaned.chars().last() {
        Some('k' | 'K') => (&cleaned[..cleaned.len() - 1], 1_000),
        Some('m' | 'M') => (&cleaned[..cleaned.len() - 1], 1_000_000),
        Some('g' | 'G') => (&cleaned[..cleaned.len() - 1], 1_000_000_000),
        _ => (cleaned.as_str(), 1),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a count (e.g. 1000000, 10M, 500k)"))?;
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("'{text}' is too large"))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Nexmark(NexmarkCli {
            command: Some(NexmarkCommand::Generate(args)),
            ..
        }) => generate(args),
        Command::Nexmark(NexmarkCli { command: None, run }) => run_query(run),
    }
}

fn generate(args: GenerateArgs) -> Result<()> {
    if args.events == 0 {
        bail!("--events must be at least 1");
    }
    if args.splits == 0 {
        bail!("--splits must be at least 1");
    }
    let config = GeneratorConfig {
        seed: args.seed,
        ..GeneratorConfig::with_events(args.events, args.rate)
    };
    let summary = match (&args.split_dir, &args.out) {
        (Some(dir), _) => {
            let files = generate_split_files(&config, args.splits, dir)
                .with_context(|| format!("generating into {}", dir.display()))?;
            let mut total = corestrom_bench::nexmark::files::GenerateSummary::default();
            for (path, summary) in &files {
                eprintln!("{}: {} events", path.display(), summary.events);
                total.events += summary.events;
                total.persons += summary.persons;
                total.auctions += summary.auctions;
                total.bids += summary.bids;
                total.bytes += summary.bytes;
            }
            total
        }
        (None, Some(out)) => generate_to_file(&config, args.splits, out)
            .with_context(|| format!("generating {}", out.display()))?,
        (None, None) => bail!("give --out FILE or --split-dir DIR"),
    };
    eprintln!(
        "wrote {} events ({} persons, {} auctions, {} bids), {} bytes",
        summary.events, summary.persons, summary.auctions, summary.bids, summary.bytes
    );
    Ok(())
}

fn run_query(args: RunArgs) -> Result<()> {
    if args.events == 0 {
        bail!("--events must be at least 1");
    }
    let mut builder = Env::builder();
    if let Some(shards) = args.shards {
        if shards == 0 {
            bail!("--shards must be at least 1");
        }
        builder = builder.shards(shards);
    }
    let env = builder.build().context("configuring the job")?;
    let config = GeneratorConfig {
        seed: args.seed,
        ..GeneratorConfig::with_events(args.events, args.event_rate)
    };
    config
        .validate()
        .context("configuring the Nexmark generator")?;
    let source = NexmarkSource::new(config).with_rate(args.rate.unwrap_or(0));
    let events = env.source("nexmark", source);
    let output = match &args.output {
        Some(dir) => Output::Files(dir.clone()),
        None => Output::Blackhole,
    };
    args.query.build(&events, &output);

    if std::io::stderr().is_terminal() {
        eprintln!(
            "running {} on {} shards ...",
            args.query.name(),
            env.shards()
        );
    }
    let report = env
        .execute_and_wait()
        .with_context(|| format!("running {}", args.query.name()))?;
    print_summary(&args, &report);
    Ok(())
}

fn print_summary(args: &RunArgs, report: &JobReport) {
    let seconds = report.elapsed.as_secs_f64().max(1e-9);
    let events = report.totals.source_records;
    let per_sec = events as f64 / seconds;
    let per_core = per_sec / report.cores as f64;
    let latency = &report.totals.latency_ns;
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let (p50, p99, p999) = if latency.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (us(0.5), us(0.99), us(0.999))
    };
    println!("query            {}", args.query.name());
    println!("events           {events}");
    println!("results          {}", report.totals.sink_records);
    println!(
        "shards           {} on {} cores",
        report.shards, report.cores
    );
    println!("seconds          {seconds:.3}");
    println!("events/s         {}", human(per_sec));
    println!("events/s/core    {}", human(per_core));
    println!("latency p50      {p50:.1} µs");
    println!("latency p99      {p99:.1} µs");
    println!("latency p99.9    {p999:.1} µs");
    println!(
        "cpu seconds      {:.3} (shard threads)",
        Duration::from_nanos(report.totals.cpu_ns).as_secs_f64()
    );
    if args.json {
        // Written by hand to keep the documented key order (serde_json sorts map keys).
        let summary = format!(
            "{{\"query\":\"{}\",\"events\":{events},\"shards\":{},\"seconds\":{seconds:.6},\"events_per_sec\":{per_sec:.1},\
             \"events_per_sec_per_core\":{per_core:.1},\"latency_p50_us\":{p50:.3},\"latency_p99_us\":{p99:.3},\"latency_p999_us\":{p999:.3}}}",
            args.query.name(),
            report.shards,
        );
        println!("{summary}");
    }
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else {
        format!("{rate:.0}")
    }
}
