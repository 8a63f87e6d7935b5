//! The SPSC channel between two shards, alone: round-trip latency (p50/p99/p99.9, hdrhistogram)
//! with busy polling and with the shard loop's spin-then-park policy, and one-way throughput by
//! batch size.
//!
//! Usage: `cargo bench -p corestrom-bench --bench ring [-- rounds=N records=N]`.
//! The two threads are pinned to the first two allowed CPUs (if there are two).

use std::sync::Arc;
use std::time::{Duration, Instant};

use corestrom_runtime::channel::{ChannelReceiver, ChannelSender, Message, channel};
use corestrom_runtime::park::Parker;
use corestrom_runtime::{Batch, NO_TIMESTAMP, Record};
use hdrhistogram::Histogram;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wait {
    Spin,
    SpinThenPark,
}

fn pin(cpu: Option<usize>) {
    let Some(cpu) = cpu else { return };
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it; the size
    // passed is the set's size, and pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn receive<T>(rx: &mut ChannelReceiver<T>, parker: &Parker, wait: Wait) -> Batch<T> {
    let mut idle_since: Option<Instant> = None;
    loop {
        if let Some(Message::Data(batch)) = rx.try_recv() {
            return batch;
        }
        match wait {
            Wait::Spin => std::hint::spin_loop(),
            Wait::SpinThenPark => {
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                    continue;
                }
                parker.prepare_park();
                if rx.has_message() {
                    parker.cancel_park();
                } else {
                    parker.park(Duration::from_millis(1));
                }
                idle_since = None;
            }
        }
    }
}

fn send<T>(tx: &mut ChannelSender<T>, mut message: Message<T>) {
    loop {
        match tx.try_send(message) {
            Ok(()) => return,
            Err(back) => {
                message = back;
                std::hint::spin_loop();
            }
        }
    }
}

fn round_trips(rounds: u64, wait: Wait, cpus: &[usize]) -> Histogram<u64> {
    let (pa, pb) = (Arc::new(Parker::new()), Arc::new(Parker::new()));
    let (mut a_tx, mut b_rx) = channel::<u64>(32, Arc::clone(&pa), Arc::clone(&pb));
    let (mut b_tx, mut a_rx) = channel::<u64>(32, Arc::clone(&pb), Arc::clone(&pa));
    let cpu_b = cpus.get(1).copied();
    let echo = std::thread::spawn(move || {
        pin(cpu_b);
        pb.register_current_thread();
        for _ in 0..rounds {
            let batch = receive(&mut b_rx, &pb, wait);
            send(&mut b_tx, Message::Data(batch));
        }
    });
    pin(cpus.first().copied());
    pa.register_current_thread();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("bounds");
    for i in 0..rounds {
        let started = Instant::now();
        let mut buffer = a_tx.take_buffer(1);
        buffer.push(Record::new(NO_TIMESTAMP, i));
        send(
            &mut a_tx,
            Message::Data(Batch {
                records: buffer,
                emitted_ns: 0,
            }),
        );
        let mut batch = receive(&mut a_rx, &pa, wait);
        let ns = started.elapsed().as_nanos() as u64;
        assert_eq!(batch.records.pop().map(|r| r.value), Some(i));
        a_rx.recycle(batch.records);
        // The first 1% warms caches and the scheduler.
        if i >= rounds / 100 {
            histogram.record(ns.max(1)).expect("in range");
        }
    }
    echo.join().expect("echo thread");
    histogram
}

fn throughput(records: u64, batch_records: usize, cpus: &[usize]) -> f64 {
    let (pa, pb) = (Arc::new(Parker::new()), Arc::new(Parker::new()));
    let (mut tx, mut rx) = channel::<[u64; 4]>(32, Arc::clone(&pa), Arc::clone(&pb));
    let batches = records / batch_records as u64;
    let cpu_b = cpus.get(1).copied();
    let consumer = std::thread::spawn(move || {
        pin(cpu_b);
        let mut sum = 0u64;
        for _ in 0..batches {
            let mut batch = receive(&mut rx, &pb, Wait::Spin);
            for r in batch.records.drain(..) {
                sum = sum.wrapping_add(r.value[0]);
            }
            rx.recycle(batch.records);
        }
        sum
    });
    pin(cpus.first().copied());
    let started = Instant::now();
    let mut n = 0u64;
    for _ in 0..batches {
        let mut buffer = tx.take_buffer(batch_records);
        for _ in 0..batch_records {
            buffer.push(Record::new(NO_TIMESTAMP, [n; 4]));
            n += 1;
        }
        send(
            &mut tx,
            Message::Data(Batch {
                records: buffer,
                emitted_ns: 0,
            }),
        );
    }
    let sum = consumer.join().expect("consumer");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(sum, (0..n).fold(0u64, |s, v| s.wrapping_add(v)));
    n as f64 / seconds
}

fn arg(name: &str, default: u64) -> u64 {
    std::env::args()
        .find_map(|a| {
            a.strip_prefix(&format!("{name}="))
                .map(|v| v.replace('_', "").parse().expect("a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let rounds = arg("rounds", 200_000);
    let records = arg("records", 50_000_000);
    let cpus = corestrom_runtime::config::allowed_cpus();
    let cpus: Vec<usize> = if cpus.len() >= 2 { cpus } else { Vec::new() };
    println!(
        "ring round trip, 1-record batches, {rounds} rounds, threads pinned to {:?}",
        &cpus[..cpus.len().min(2)]
    );
    println!("| wait policy | p50 µs | p99 µs | p99.9 µs | max µs |");
    println!("|---|---|---|---|---|");
    for wait in [Wait::Spin, Wait::SpinThenPark] {
        let h = round_trips(rounds, wait, &cpus);
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "| {wait:?} | {:.2} | {:.2} | {:.2} | {:.1} |",
            us(0.5),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1000.0
        );
    }
    println!();
    println!("ring one-way throughput, 40-byte records, {records} records");
    println!("| batch records | records/s | batches/s |");
    println!("|---|---|---|");
    for batch in [1usize, 8, 64, 1024] {
        let n = if batch == 1 { records / 10 } else { records };
        let rate = throughput(n, batch, &cpus);
        println!(
            "| {batch} | {:.1} M | {:.2} M |",
            rate / 1e6,
            rate / batch as f64 / 1e6
        );
    }
}
