//! What the numbering plan costs: the first look-up (which loads the
//! plan) and each one after it.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn country(c: &mut Criterion) {
    // The first call pays for loading the plan; criterion's warm-up
    // absorbs it, so it is timed on its own here.
    let started = std::time::Instant::now();
    let _ = phone_country::country_of("+16502530000");
    eprintln!(
        "first look-up (loads the numbering plan): {:?}",
        started.elapsed()
    );
    c.bench_function("country_of +1 (NANP, US)", |b| {
        b.iter(|| phone_country::country_of(black_box("+16502530000")))
    });
    c.bench_function("country_of +81 (JP)", |b| {
        b.iter(|| phone_country::country_of(black_box("+819012345678")))
    });
    let policy = phone_country::CountryPolicy::from_source(
        &[(phone_country::ALLOWED_VAR, "US,CA,JP,GB")][..],
    )
    .unwrap_or_default();
    c.bench_function("policy check, allow list, refused (JM)", |b| {
        b.iter(|| policy.check(black_box("+18762530000")))
    });
}

criterion_group!(benches, country);
criterion_main!(benches);
