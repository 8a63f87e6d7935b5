//! The `corestrom` command: runs Nexmark queries on the built-in generator or on event files,
//! and generates Nexmark event files.

mod progress;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use corestrom::prelude::*;
use corestrom::runtime::checkpoint::state_store::verify_checkpoint_stores;
use corestrom::runtime::checkpoint::{CheckpointConfig, Guarantee};
use corestrom_bench::nexmark::file_source::FileSourceStats;
use corestrom_bench::nexmark::files::{generate_split_files, generate_to_file};
use corestrom_bench::nexmark::queries::{Output, Query, QueryOptions, SideInput};
use corestrom_bench::nexmark::{Event, GeneratorConfig, NexmarkFileSource, NexmarkSource};

use crate::progress::ProgressLine;

/// corestrom: a thread-per-core stream processing engine with Flink's programming model.
#[derive(Parser, Debug)]
#[command(name = "corestrom", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a Nexmark query on the built-in generator or on event files and print throughput
    /// and latency.
    Nexmark(Box<NexmarkCli>),
    /// List, inspect or verify the checkpoints in a state directory.
    Checkpoints(CheckpointsCli),
    /// Ask the job running on a state directory for a savepoint (optionally stopping it), and
    /// wait until the savepoint is complete. Restore it with `nexmark --from-savepoint DIR`,
    /// with any shard count.
    Savepoint(SavepointCli),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct SavepointCli {
    #[command(subcommand)]
    command: Option<SavepointCommand>,
    #[command(flatten)]
    trigger: SavepointTrigger,
}

#[derive(Args, Debug)]
struct SavepointTrigger {
    /// The running job's state directory (as given to --state-dir).
    #[arg(required = true)]
    state_dir: Option<PathBuf>,
    /// Stop the job once the savepoint is complete and its output committed.
    #[arg(long)]
    stop: bool,
    /// Where to write the savepoint (default: STATE_DIR/savepoints/savepoint-<ms since epoch>).
    #[arg(long)]
    into: Option<PathBuf>,
    /// Give up waiting after this many seconds (the request stays for the job to take).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

#[derive(Subcommand, Debug)]
enum SavepointCommand {
    /// Verify a savepoint (its manifest and every state file) and print what it holds.
    Verify {
        /// The savepoint directory.
        dir: PathBuf,
    },
}

#[derive(Args, Debug)]
struct CheckpointsCli {
    #[command(subcommand)]
    command: CheckpointsCommand,
}

#[derive(Subcommand, Debug)]
enum CheckpointsCommand {
    /// One line per checkpoint: id, whether it verifies, finished or not, when it was taken.
    List {
        /// The state directory (as given to --state-dir).
        dir: PathBuf,
    },
    /// Print a checkpoint's manifest (the newest that verifies, or --checkpoint ID).
    Inspect {
        /// The state directory.
        dir: PathBuf,
        /// The checkpoint id.
        #[arg(long)]
        checkpoint: Option<u64>,
    },
    /// Verify every manifest and the keyed-state stores at the positions it names (every
    /// frame's crc, read-only); exit with status 1 if any does not verify.
    Verify {
        /// The state directory.
        dir: PathBuf,
    },
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
    /// The query: q0–q22 (SPEC.md §3; q6 included, which Flink does not run), or `all` (every
    /// query, one after another, summarised in a table).
    #[arg(long, default_value = "q1")]
    query: QuerySelection,
    /// Events to generate, all types and all shards together (ignored with --input).
    #[arg(long, default_value_t = 10_000_000, value_parser = parse_count)]
    events: u64,
    /// Read events from this FORMAT.md JSON-lines file, or from the visible *.jsonl files of
    /// this directory (file i on shard i mod shards), instead of generating them. One file is
    /// split between the shards by byte ranges aligned to line starts.
    #[arg(long, conflicts_with = "rate")]
    input: Option<PathBuf>,
    /// With --input: write malformed lines to this file and count them, instead of failing the
    /// job on the first one.
    #[arg(long, requires = "input")]
    dead_letter: Option<PathBuf>,
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
    /// Write the results as JSON-lines files into this directory (default: discard them); with
    /// `--query all`, into one subdirectory per query.
    #[arg(long)]
    output: Option<PathBuf>,
    /// q13's side table: a CSV file of `key,value` lines, one per key (default: SPEC.md's
    /// 10 000 rows `k,k`, the same rows as the file bench/peers/flink/run.sh gives Flink).
    #[arg(long)]
    side_input: Option<PathBuf>,
    /// Print the summary's last line as one JSON object (with `--query all`: one per query).
    #[arg(long)]
    json: bool,
    /// Take checkpoints into this directory, and resume from the newest complete one found
    /// there: with --output, results are written exactly once even if the process is killed and
    /// the same command is run again. With --query all, one subdirectory per query.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Milliseconds between checkpoints (with --state-dir; default 1000).
    #[arg(long, requires = "state_dir")]
    checkpoint_interval: Option<u64>,
    /// Start from this savepoint (`corestrom savepoint`), with --shards of your choice, when
    /// --state-dir holds no checkpoint yet (with checkpoints there, the job resumes from them).
    #[arg(long, requires = "state_dir")]
    from_savepoint: Option<PathBuf>,
    /// Splits of the source, read round robin by the shards (default: the shard count). A
    /// job restored from a checkpoint or savepoint keeps the split count it was taken with.
    #[arg(long)]
    source_splits: Option<usize>,
    /// Checkpoints without barrier alignment: after a crash some results may appear twice.
    #[arg(long, requires = "state_dir")]
    at_least_once: bool,
    /// Kafka bootstrap brokers (host:port[,host:port]) for --kafka-input / --kafka-output.
    #[arg(long)]
    kafka_brokers: Option<String>,
    /// Read FORMAT.md event lines (one per message, all partitions) from this topic instead of
    /// generating events. Partitions are split between the shards; offsets are checkpointed.
    #[arg(long, requires = "kafka_brokers", conflicts_with_all = ["input", "rate"])]
    kafka_input: Option<String>,
    /// With --kafka-input: stop at the offsets that were the latest when the job first started
    /// (otherwise the job reads until it is stopped).
    #[arg(long, requires = "kafka_input")]
    kafka_bounded: bool,
    /// Write the results to this topic, one JSON row per message. With --state-dir (and without
    /// --at-least-once) exactly once, through Kafka transactions committed with each
    /// checkpoint; otherwise at least once.
    #[arg(long, requires = "kafka_brokers", conflicts_with = "output")]
    kafka_output: Option<String>,
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
    #[arg(long, required_unless_present_any = ["split_dir", "topic"])]
    out: Option<PathBuf>,
    /// Kafka bootstrap brokers: load the events into --topic instead of a file.
    #[arg(long, requires = "topic", conflicts_with_all = ["out", "split_dir"])]
    kafka_brokers: Option<String>,
    /// The topic to load (created with --splits partitions if missing; split i goes to
    /// partition i, one event line per message).
    #[arg(long, requires = "kafka_brokers")]
    topic: Option<String>,
}

/// One query or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuerySelection {
    One(Query),
    All,
}

impl QuerySelection {
    fn queries(self) -> Vec<Query> {
        match self {
            QuerySelection::One(query) => vec![query],
            QuerySelection::All => Query::ALL.to_vec(),
        }
    }
}

impl std::str::FromStr for QuerySelection {
    type Err = String;

    fn from_str(s: &str) -> Result<QuerySelection, String> {
        if s.eq_ignore_ascii_case("all") {
            Ok(QuerySelection::All)
        } else {
            s.parse().map(QuerySelection::One)
        }
    }
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
        Command::Nexmark(cli) => match *cli {
            NexmarkCli {
                command: Some(NexmarkCommand::Generate(args)),
                ..
            } => generate(args),
            NexmarkCli { command: None, run } => run_query(run),
        },
        Command::Checkpoints(CheckpointsCli { command }) => checkpoints(command),
        Command::Savepoint(SavepointCli {
            command: Some(SavepointCommand::Verify { dir }),
            ..
        }) => verify_savepoint(&dir),
        Command::Savepoint(SavepointCli {
            command: None,
            trigger,
        }) => trigger_savepoint(trigger),
    }
}

/// Writes the request file the job's coordinator picks up (once per checkpoint interval) and
/// waits until the savepoint's manifest exists and verifies.
fn trigger_savepoint(trigger: SavepointTrigger) -> Result<()> {
    use corestrom::runtime::checkpoint::savepoint::{self, SavepointMode, SavepointRequest};
    let state_dir = trigger
        .state_dir
        .context("give the job's state directory")?;
    if !state_dir.is_dir() {
        bail!(
            "{} does not exist: is a job with --state-dir {} running?",
            state_dir.display(),
            state_dir.display()
        );
    }
    let dir = trigger.into.unwrap_or_else(|| {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        state_dir
            .join("savepoints")
            .join(format!("savepoint-{now_ms}"))
    });
    // The job resolves the directory from its own working directory.
    let dir = std::path::absolute(&dir).context("resolving the savepoint directory")?;
    if dir.join(savepoint::SAVEPOINT_MANIFEST).exists() {
        bail!("{} already holds a savepoint", dir.display());
    }
    let mode = if trigger.stop {
        SavepointMode::Stop
    } else {
        SavepointMode::Continue
    };
    savepoint::write_request(
        &state_dir,
        &SavepointRequest {
            dir: dir.clone(),
            mode,
        },
    )
    .context("writing the savepoint request")?;
    let deadline = std::time::Instant::now() + Duration::from_secs(trigger.timeout);
    loop {
        match savepoint::read(&dir) {
            Ok(manifest) => {
                println!(
                    "savepoint {} (checkpoint {}, {} shards){}",
                    dir.display(),
                    manifest.checkpoint.checkpoint,
                    manifest.checkpoint.shards,
                    if trigger.stop { ", job stopping" } else { "" }
                );
                return Ok(());
            }
            Err(savepoint::SavepointError::Missing { .. }) => {}
            Err(e) => return Err(e).context("reading the new savepoint"),
        }
        if std::time::Instant::now() > deadline {
            bail!(
                "no savepoint in {} after {} s: is the job running on {}?",
                dir.display(),
                trigger.timeout,
                state_dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Verifies a savepoint's manifest and state files.
fn verify_savepoint(dir: &Path) -> Result<()> {
    use corestrom::runtime::checkpoint::savepoint::load::Savepoint;
    let savepoint = Savepoint::open(dir)?;
    savepoint.verify()?;
    let manifest = &savepoint.manifest;
    println!(
        "ok  savepoint {}: checkpoint {}, {} shards, {} key groups, {} state files ({} bytes)",
        dir.display(),
        manifest.checkpoint.checkpoint,
        manifest.checkpoint.shards,
        manifest.checkpoint.max_key_groups,
        manifest.state_files.len(),
        manifest.state_files.iter().map(|f| f.bytes).sum::<u64>()
    );
    Ok(())
}

fn checkpoints(command: CheckpointsCommand) -> Result<()> {
    use corestrom::runtime::checkpoint::manifest;
    let manifest_dir = |dir: &std::path::Path| dir.join(manifest::MANIFEST_DIR);
    match command {
        CheckpointsCommand::List { dir } => {
            let listed = manifest::list(&manifest_dir(&dir)).context("listing checkpoints")?;
            if listed.is_empty() {
                println!("no checkpoints in {}", dir.display());
            }
            for m in listed {
                match m.manifest {
                    Ok(m) => println!(
                        "{:>8}  ok        {:<9} shards={} taken={}",
                        m.checkpoint,
                        if m.finished { "finished" } else { "running" },
                        m.shards,
                        corestrom_bench::nexmark::timestamp::timestamp_string(m.created_ms)
                    ),
                    Err(e) => println!("{:>8}  CORRUPT   {e}", m.checkpoint),
                }
            }
            Ok(())
        }
        CheckpointsCommand::Inspect { dir, checkpoint } => {
            let listed = manifest::list(&manifest_dir(&dir)).context("listing checkpoints")?;
            let chosen = match checkpoint {
                Some(id) => listed
                    .into_iter()
                    .find(|m| m.checkpoint == id)
                    .with_context(|| format!("no checkpoint {id}"))?,
                None => listed
                    .into_iter()
                    .rev()
                    .find(|m| m.manifest.is_ok())
                    .context("no checkpoint that verifies")?,
            };
            let manifest = chosen.manifest?;
            println!(
                "{}",
                String::from_utf8_lossy(&manifest::encode(&manifest))
                    .split_once('\n')
                    .map_or("", |(_, body)| body)
            );
            Ok(())
        }
        CheckpointsCommand::Verify { dir } => {
            let listed = manifest::list(&manifest_dir(&dir)).context("listing checkpoints")?;
            let mut bad = 0;
            for m in &listed {
                let manifest = match &m.manifest {
                    Ok(manifest) => manifest,
                    Err(e) => {
                        bad += 1;
                        println!("CORRUPT  {e}");
                        continue;
                    }
                };
                // The manifest verifies; so must every store at the position it names.
                let checks = verify_checkpoint_stores(&dir, manifest)?;
                let corrupt: Vec<String> = checks
                    .iter()
                    .filter_map(|c| {
                        c.outcome
                            .as_ref()
                            .err()
                            .map(|e| format!("shard {}: {e}", c.shard))
                    })
                    .collect();
                if corrupt.is_empty() {
                    let (frames, bytes) = checks
                        .iter()
                        .filter_map(|c| c.outcome.as_ref().ok())
                        .fold((0, 0), |(f, b), (cf, cb)| (f + cf, b + cb));
                    println!(
                        "ok       {} (stores of {} shards: {frames} frames, {bytes} bytes verified)",
                        m.path.display(),
                        checks.len()
                    );
                } else {
                    bad += 1;
                    println!(
                        "CORRUPT  {}: keyed-state store does not verify: {}",
                        m.path.display(),
                        corrupt.join("; ")
                    );
                }
            }
            if bad > 0 {
                bail!("{bad} of {} checkpoints do not verify", listed.len());
            }
            println!("{} checkpoints verify", listed.len());
            Ok(())
        }
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
    if let (Some(brokers), Some(topic)) = (&args.kafka_brokers, &args.topic) {
        return generate_into_kafka(&config, args.splits, brokers, topic);
    }
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

#[cfg(feature = "kafka")]
fn generate_into_kafka(
    config: &GeneratorConfig,
    splits: u32,
    brokers: &str,
    topic: &str,
) -> Result<()> {
    let connection = corestrom::kafka::KafkaConnection::new(brokers);
    let events = corestrom_bench::nexmark::kafka::load_events(&connection, topic, splits, config)
        .with_context(|| format!("loading topic '{topic}' on {brokers}"))?;
    eprintln!("wrote {events} events into topic '{topic}' ({splits} partitions)");
    Ok(())
}

#[cfg(not(feature = "kafka"))]
fn generate_into_kafka(_: &GeneratorConfig, _: u32, _: &str, _: &str) -> Result<()> {
    bail!("this corestrom was built without the `kafka` feature")
}

/// What one query run measured.
struct RunSummary {
    query: Query,
    events: u64,
    results: u64,
    shards: usize,
    cores: usize,
    seconds: f64,
    /// CPU seconds of the shard threads (from the runtime).
    shard_cpu_s: f64,
    /// CPU seconds of the whole process during the run (user + sys, getrusage).
    process_cpu_s: f64,
    latency_us: [f64; 3],
    /// Malformed lines sent to the dead-letter file (with --dead-letter).
    dead_letters: Option<u64>,
    /// Trigger-to-complete duration of each checkpoint, µs (with --state-dir).
    checkpoint_durations_us: Option<Vec<u64>>,
}

impl RunSummary {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.seconds
    }

    fn events_per_sec_per_core(&self) -> f64 {
        self.events_per_sec() / self.cores as f64
    }
}

fn run_query(args: RunArgs) -> Result<()> {
    if args.events == 0 {
        bail!("--events must be at least 1");
    }
    if args.shards == Some(0) {
        bail!("--shards must be at least 1");
    }
    let queries = args.query.queries();
    let mut summaries = Vec::with_capacity(queries.len());
    for &query in &queries {
        let output = match (&args.output, args.query) {
            (None, _) if args.kafka_output.is_some() => kafka_output(&args, query)?,
            (None, _) => Output::Blackhole,
            (Some(dir), QuerySelection::One(_)) => Output::Files(dir.clone()),
            (Some(dir), QuerySelection::All) => Output::Files(dir.join(query.name())),
        };
        // q10's cost is writing files (SPEC.md §3.0): without --output it writes them into a
        // scratch directory, removed after the run.
        let scratch = (query == Query::Q10 && matches!(output, Output::Blackhole)).then(|| {
            std::env::temp_dir().join(format!("corestrom-q10-scratch-{}", std::process::id()))
        });
        let output = scratch.clone().map_or(output, Output::Files);
        let summary = run_one(&args, query, &output);
        if let Some(dir) = scratch {
            // Best effort: a leftover scratch directory is not worth failing the run for.
            let _ = std::fs::remove_dir_all(dir);
        }
        let summary = summary?;
        if let QuerySelection::One(_) = args.query {
            print_summary(&summary, args.dead_letter.as_deref());
        }
        summaries.push(summary);
    }
    if let QuerySelection::All = args.query {
        print_table(&summaries);
    }
    if args.json {
        for summary in &summaries {
            println!("{}", json_summary(summary));
        }
    }
    Ok(())
}

fn run_one(args: &RunArgs, query: Query, output: &Output) -> Result<RunSummary> {
    let mut builder = Env::builder();
    if let Some(shards) = args.shards {
        builder = builder.shards(shards);
    }
    if let Some(dir) = &args.state_dir {
        let dir = match args.query {
            QuerySelection::One(_) => dir.clone(),
            QuerySelection::All => dir.join(query.name()),
        };
        let mut checkpoint = CheckpointConfig::new(
            Duration::from_millis(args.checkpoint_interval.unwrap_or(1000).max(1)),
            dir,
        );
        if args.at_least_once {
            checkpoint.guarantee = Guarantee::AtLeastOnce;
        }
        builder = builder.checkpointing(checkpoint);
        if let Some(savepoint) = &args.from_savepoint {
            if let QuerySelection::All = args.query {
                bail!("--from-savepoint restores one query: give --query");
            }
            builder = builder.from_savepoint(savepoint);
        }
    }
    if let Some(splits) = args.source_splits {
        builder = builder.source_splits(splits);
    }
    let env = builder.build().context("configuring the job")?;
    let progress = Arc::new(AtomicU64::new(0));
    let (events, stats) = add_source(&env, args, &progress)?;
    let options = QueryOptions {
        side_input: match (&args.side_input, query) {
            (Some(path), Query::Q13) => Some(Arc::new(
                SideInput::from_csv_file(path).context("loading q13's side input")?,
            )),
            _ => None,
        },
    };
    query.build_with(&events, output, &options);

    if std::io::stderr().is_terminal() {
        eprintln!("running {} on {} shards ...", query.name(), env.shards());
    }
    let cpu_before = process_cpu_seconds();
    let display = ProgressLine::start(query.name().to_owned(), progress);
    let report = env.execute_and_wait();
    display.finish();
    let report = report.with_context(|| format!("running {}", query.name()))?;
    for savepoint in &report.savepoints {
        match &savepoint.error {
            None => eprintln!(
                "savepoint {} complete (checkpoint {})",
                savepoint.dir.display(),
                savepoint.checkpoint
            ),
            Some(e) => eprintln!("savepoint {} failed: {e}", savepoint.dir.display()),
        }
    }
    if report.stopped_with_savepoint {
        eprintln!("stopped with a savepoint");
    }
    let process_cpu_s = process_cpu_seconds() - cpu_before;
    Ok(summarize(query, &report, process_cpu_s, stats.as_deref()))
}

/// The Kafka results of `query`: exactly once with checkpoints (transactional ids from the
/// query and topic, staged epochs under the state directory), at least once otherwise. The
/// topic is created (one partition) if missing.
#[cfg(feature = "kafka")]
fn kafka_output(args: &RunArgs, query: Query) -> Result<Output> {
    use corestrom_bench::nexmark::kafka::KafkaResults;
    let (Some(brokers), Some(topic)) = (&args.kafka_brokers, &args.kafka_output) else {
        bail!("--kafka-output needs --kafka-brokers");
    };
    let topic = match args.query {
        QuerySelection::One(_) => topic.clone(),
        QuerySelection::All => format!("{topic}-{}", query.name()),
    };
    let exactly_once = match (&args.state_dir, args.at_least_once) {
        (Some(dir), false) => Some((
            format!("nexmark-{}-{topic}", query.name()),
            dir.join("kafka-staging"),
        )),
        _ => None,
    };
    let connection = corestrom::kafka::KafkaConnection::new(brokers.clone());
    // Brokers that do not create topics on first use (tansu, Kafka with
    // auto.create.topics.enable=false) would otherwise leave every record undelivered until the
    // final flush times out. An existing topic is left as it is.
    corestrom::kafka::admin::create_topic(&connection, &topic, 1)
        .with_context(|| format!("creating the output topic '{topic}'"))?;
    Ok(Output::Kafka(KafkaResults {
        connection,
        topic,
        exactly_once,
    }))
}

#[cfg(not(feature = "kafka"))]
fn kafka_output(_: &RunArgs, _: Query) -> Result<Output> {
    bail!("this corestrom was built without the `kafka` feature")
}

/// Adds the event source: the files of --input, a Kafka topic, or the generator. Returns the
/// file source's counters, if it is one.
fn add_source(
    env: &Env,
    args: &RunArgs,
    progress: &Arc<AtomicU64>,
) -> Result<(Stream<Event>, Option<Arc<FileSourceStats>>)> {
    if let Some(topic) = &args.kafka_input {
        return Ok((kafka_events(env, args, topic)?, None));
    }
    let Some(input) = &args.input else {
        let config = GeneratorConfig {
            seed: args.seed,
            ..GeneratorConfig::with_events(args.events, args.event_rate)
        };
        config
            .validate()
            .context("configuring the Nexmark generator")?;
        let source = NexmarkSource::new(config)
            .with_rate(args.rate.unwrap_or(0))
            .with_progress(Arc::clone(progress));
        return Ok((env.source("nexmark", source), None));
    };
    let mut source = NexmarkFileSource::open(input)?.with_progress(Arc::clone(progress));
    if let Some(dead_letter) = &args.dead_letter {
        source = source.with_dead_letter(dead_letter)?;
    }
    let stats = source.stats();
    Ok((env.source("nexmark", source), Some(stats)))
}

#[cfg(feature = "kafka")]
fn kafka_events(env: &Env, args: &RunArgs, topic: &str) -> Result<Stream<Event>> {
    let brokers = args
        .kafka_brokers
        .as_deref()
        .context("--kafka-input needs --kafka-brokers")?;
    let connection = corestrom::kafka::KafkaConnection::new(brokers);
    let source =
        corestrom_bench::nexmark::kafka::event_source(connection, topic, args.kafka_bounded);
    Ok(env.source("nexmark", source))
}

#[cfg(not(feature = "kafka"))]
fn kafka_events(_: &Env, _: &RunArgs, _: &str) -> Result<Stream<Event>> {
    bail!("this corestrom was built without the `kafka` feature")
}

/// User + system CPU seconds of this process so far.
fn process_cpu_seconds() -> f64 {
    Duration::from_nanos(corestrom_runtime::metrics::process_cpu_ns()).as_secs_f64()
}

fn summarize(
    query: Query,
    report: &JobReport,
    process_cpu_s: f64,
    stats: Option<&FileSourceStats>,
) -> RunSummary {
    let latency = &report.totals.latency_ns;
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    let latency_us = if latency.is_empty() {
        [0.0; 3]
    } else {
        [us(0.5), us(0.99), us(0.999)]
    };
    RunSummary {
        query,
        events: report.totals.source_records,
        results: report.totals.sink_records,
        shards: report.shards,
        cores: report.cores,
        seconds: report.elapsed.as_secs_f64().max(1e-9),
        shard_cpu_s: Duration::from_nanos(report.totals.cpu_ns).as_secs_f64(),
        process_cpu_s,
        latency_us,
        dead_letters: stats.map(FileSourceStats::dead_letters),
        checkpoint_durations_us: report.checkpoint_durations_us.clone(),
    }
}

fn print_summary(summary: &RunSummary, dead_letter: Option<&Path>) {
    let [p50, p99, p999] = summary.latency_us;
    println!("query            {}", summary.query.name());
    println!("events           {}", summary.events);
    println!("results          {}", summary.results);
    println!(
        "shards           {} on {} cores",
        summary.shards, summary.cores
    );
    println!("seconds          {:.3}", summary.seconds);
    println!("events/s         {}", human(summary.events_per_sec()));
    println!(
        "events/s/core    {}",
        human(summary.events_per_sec_per_core())
    );
    println!("latency p50      {p50:.1} µs");
    println!("latency p99      {p99:.1} µs");
    println!("latency p99.9    {p999:.1} µs");
    println!(
        "cpu seconds      {:.3} process (user+sys), {:.3} shard threads",
        summary.process_cpu_s, summary.shard_cpu_s
    );
    if let Some(durations) = &summary.checkpoint_durations_us {
        let mut sorted = durations.clone();
        sorted.sort_unstable();
        let at = |q: f64| {
            sorted
                .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |&us| us as f64 / 1000.0)
        };
        println!(
            "checkpoints      {} completed; trigger to complete p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            sorted.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    if let (Some(count), Some(path)) = (summary.dead_letters, dead_letter) {
        println!("dead letters     {count} (in {})", path.display());
    }
}

fn print_table(summaries: &[RunSummary]) {
    println!(
        "{:<6} {:>12} {:>9} {:>10} {:>14} {:>9} {:>10} {:>10} {:>10}",
        "query",
        "events",
        "seconds",
        "events/s",
        "events/s/core",
        "cpu s",
        "p50 µs",
        "p99 µs",
        "p99.9 µs"
    );
    for s in summaries {
        let [p50, p99, p999] = s.latency_us;
        println!(
            "{:<6} {:>12} {:>9.3} {:>10} {:>14} {:>9.3} {:>10.1} {:>10.1} {:>10.1}",
            s.query.name(),
            s.events,
            s.seconds,
            human(s.events_per_sec()),
            human(s.events_per_sec_per_core()),
            s.process_cpu_s,
            p50,
            p99,
            p999
        );
    }
    if let Some(count) = summaries.iter().filter_map(|s| s.dead_letters).max() {
        println!("dead letters per run: {count}");
    }
}

/// The documented JSON summary: exactly these nine keys, in this order. Written by hand to keep
/// the order (serde_json sorts map keys).
fn json_summary(s: &RunSummary) -> String {
    let [p50, p99, p999] = s.latency_us;
    format!(
        "{{\"query\":\"{}\",\"events\":{},\"shards\":{},\"seconds\":{:.6},\"events_per_sec\":{:.1},\
         \"events_per_sec_per_core\":{:.1},\"latency_p50_us\":{p50:.3},\"latency_p99_us\":{p99:.3},\"latency_p999_us\":{p999:.3}}}",
        s.query.name(),
        s.events,
        s.shards,
        s.seconds,
        s.events_per_sec(),
        s.events_per_sec_per_core(),
    )
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
