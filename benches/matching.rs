//! Full match of 100,000 Digit customers against 10k, 100k and 1M QBO customers, on one thread.
//!
//! Besides criterion's timings, each size is run once under a counting allocator and the peak
//! heap is printed: `inputs` is what the records themselves hold, `matcher` is the extra peak
//! while matching (indexes, normalized names, outcomes).
//!
//! Run: `cargo bench --bench matching` (about five minutes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use qbo_sync::matching::{
    Decision, DigitCustomerRecord, MatchContext, QboCustomerRecord, match_customers,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Counts live and peak heap bytes; the bench is single-threaded, relaxed ordering is enough.
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const DIGIT_COUNT: usize = 100_000;
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ten", "ra", "vis", "do", "bel", "sar", "quin", "fo", "lun", "gra", "pe",
    "tor", "ney", "zu", "mar", "cen", "ol", "bri", "han", "dex", "po", "sil", "var", "ith", "mon",
    "el", "ru", "shan", "tek",
];
const INDUSTRY: &[&str] = &[
    "Plumbing",
    "Electric",
    "Bakery",
    "Consulting",
    "Logistics",
    "Dental",
    "Roofing",
    "Design",
    "Supply",
    "Catering",
];
const LEGAL: &[&str] = &["", "", "Inc", "LLC", "Ltd", "Corp", "Co", "GmbH"];

fn word(rng: &mut StdRng) -> String {
    let n = rng.random_range(2..4);
    let mut w: String = (0..n)
        .map(|_| *SYLLABLES.choose(rng).expect("syllables"))
        .collect();
    w[..1].make_ascii_uppercase();
    w
}

fn qbo_customers(n: usize, rng: &mut StdRng) -> Vec<QboCustomerRecord> {
    (0..n)
        .map(|i| {
            let legal = *LEGAL.choose(rng).expect("legal");
            let industry = *INDUSTRY.choose(rng).expect("industry");
            let name = format!("{} {} {industry} {legal}", word(rng), word(rng))
                .trim_end()
                .to_string();
            let email = rng.random_bool(0.6).then(|| format!("ap{i}@example.test"));
            QboCustomerRecord {
                id: i.to_string(),
                display_name: name,
                active: rng.random_bool(0.97),
                email,
                ..Default::default()
            }
        })
        .collect()
}

/// 70% of the Digit customers (at most 0.7 per QBO customer) are variants of QBO customers:
/// case/spacing changes, typos, e-mail only; the rest are new names.
fn digit_customers(qbo: &[QboCustomerRecord], rng: &mut StdRng) -> Vec<DigitCustomerRecord> {
    let matched = (DIGIT_COUNT * 7 / 10).min(qbo.len() * 7 / 10);
    (0..DIGIT_COUNT)
        .map(|i| {
            let id = format!("d{i}");
            if i >= matched {
                let name = format!(
                    "{} {} {}",
                    word(rng),
                    word(rng),
                    INDUSTRY.choose(rng).expect("industry")
                );
                return DigitCustomerRecord {
                    id,
                    display_name: name,
                    ..Default::default()
                };
            }
            let q = &qbo[i * qbo.len() / matched];
            let name = match rng.random_range(0..10) {
                0..=3 => q.display_name.to_uppercase(),
                4..=5 => q.display_name.clone(),
                6..=7 => typo(&q.display_name, rng),
                _ => format!("{} Holdings", word(rng)),
            };
            DigitCustomerRecord {
                id,
                display_name: name,
                email: q.email.clone(),
                ..Default::default()
            }
        })
        .collect()
}

fn typo(name: &str, rng: &mut StdRng) -> String {
    let mut chars: Vec<char> = name.chars().collect();
    let at = rng.random_range(1..chars.len().min(6));
    chars.swap(at, at + 1);
    chars.into_iter().collect()
}

fn run_once(qbo: &[QboCustomerRecord], digit: &[DigitCustomerRecord]) {
    let inputs = LIVE.load(Ordering::Relaxed);
    PEAK.store(inputs, Ordering::Relaxed);
    let start = Instant::now();
    let outcomes = match_customers(qbo, digit, &MatchContext::default());
    let elapsed = start.elapsed();
    let peak = PEAK.load(Ordering::Relaxed);
    let mut counts = [0usize; 3];
    for o in &outcomes {
        counts[match o.decision {
            Decision::AutoLink { .. } => 0,
            Decision::Review { .. } => 1,
            _ => 2,
        }] += 1;
    }
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    println!(
        "once: {} Digit x {} QBO: {:.2} s; peak heap {:.0} MiB (inputs {:.0} MiB + matcher {:.0} MiB); links {}, review {}, unmatched {}",
        digit.len(),
        qbo.len(),
        elapsed.as_secs_f64(),
        mib(peak),
        mib(inputs),
        mib(peak - inputs),
        counts[0],
        counts[1],
        counts[2]
    );
    // Points of the report's charts (`scripts/bench-report` draws them).
    println!(
        "chart: match-time | {} Digit customers | {} | {}",
        digit.len(),
        qbo.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "chart: match-memory | {} Digit customers | {} | {}",
        digit.len(),
        qbo.len(),
        mib(peak)
    );
}

/// QBO sizes to run; `MATCH_BENCH_SIZES=10000,100000` narrows a run.
fn sizes() -> Vec<usize> {
    match std::env::var("MATCH_BENCH_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
        Err(_) => vec![10_000, 100_000, 1_000_000],
    }
}

fn bench_full_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("full_match_100k_digit");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100));
    for qbo_count in sizes() {
        let mut rng = StdRng::seed_from_u64(7);
        let qbo = qbo_customers(qbo_count, &mut rng);
        let digit = digit_customers(&qbo, &mut rng);
        run_once(&qbo, &digit);
        group.measurement_time(Duration::from_secs(if qbo_count >= 1_000_000 {
            60
        } else {
            20
        }));
        group.throughput(Throughput::Elements(qbo_count as u64));
        group.bench_with_input(
            BenchmarkId::new("qbo", qbo_count),
            &(qbo, digit),
            |b, (qbo, digit)| {
                b.iter(|| black_box(match_customers(qbo, digit, &MatchContext::default())));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_full_match);
criterion_main!(benches);
