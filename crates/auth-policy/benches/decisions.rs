//! The policy's decisions, timed: they run on every sign-up and sign-in, so
//! they must stay in the sub-microsecond range whatever the configuration.

use std::hint::black_box;

use auth_policy::{
    DomainRules, MfaConfig, SignUpConfig, SignUpKind, SignUpRequest, decide_mfa, decide_sign_up,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn config_with_domains(n: usize) -> SignUpConfig {
    let allowed: Vec<String> = (0..n).map(|i| format!("partner{i}.example.com")).collect();
    let blocked: Vec<String> = (0..n).map(|i| format!(".blocked{i}.example")).collect();
    let allowed = allowed.join(",");
    let blocked = blocked.join(",");
    let source = [
        ("ALLOWED_EMAIL_DOMAINS", allowed.as_str()),
        ("BLOCKED_EMAIL_DOMAINS", blocked.as_str()),
    ];
    SignUpConfig {
        mfa: MfaConfig::default(),
        domains: DomainRules::from_source(&source[..]).expect("valid lists"),
    }
}

fn sign_up(c: &mut Criterion) {
    let plain = SignUpConfig::default();
    let request = SignUpRequest {
        kind: SignUpKind::SignUp,
        email: Some("alice@example.com"),
        phone_number: Some("+14155550123"),
        preference: Some("SMS"),
    };
    c.bench_function("decide_sign_up/no domain rules", |b| {
        b.iter(|| decide_sign_up(black_box(&plain), black_box(&request)))
    });
    let lists = config_with_domains(50);
    let listed = SignUpRequest {
        email: Some("bob@partner49.example.com"),
        ..request
    };
    c.bench_function(
        "decide_sign_up/50+50 domain entries, last one matches",
        |b| b.iter(|| decide_sign_up(black_box(&lists), black_box(&listed))),
    );
    let refused = SignUpRequest {
        phone_number: Some("+1 (415) 555-0123"),
        ..request
    };
    c.bench_function("decide_sign_up/refused (bad phone)", |b| {
        b.iter(|| decide_sign_up(black_box(&plain), black_box(&refused)))
    });
}

fn mfa(c: &mut Criterion) {
    let config = MfaConfig::default();
    c.bench_function("decide_mfa/TOTP with phone", |b| {
        b.iter(|| decide_mfa(black_box(&config), black_box(Some("TOTP")), black_box(true)))
    });
    c.bench_function("decide_mfa/default", |b| {
        b.iter(|| decide_mfa(black_box(&config), black_box(None), black_box(true)))
    });
}

fn config(c: &mut Criterion) {
    let source = [
        ("MFA_CONFIGURATION", "ON"),
        ("MFA_METHODS", "SMS,TOTP"),
        ("MFA_DEFAULT_PREFERENCE", "TOTP"),
        ("ALLOWED_EMAIL_DOMAINS", "example.com,.corp.example.com"),
    ];
    c.bench_function("SignUpConfig::from_source (init phase)", |b| {
        b.iter(|| SignUpConfig::from_source(black_box(&source[..])))
    });
}

criterion_group!(benches, sign_up, mfa, config);
criterion_main!(benches);
