//! The DynamoDB limiter against moto's server over HTTP (`MOTO_ENDPOINT`,
//! started by `scripts/test`): the conditional writes are what make the
//! limits exact when many Lambda instances send at once.

use std::time::{Duration, Instant};

use harness::fault_proxy::FaultProxy;
use sms_limits::{Admission, DynamoLimiter, LimitKind, LimitSpec, Limiter, Limits, Outgoing};

/// A limiter on a fresh table. Its client reaches moto through a proxy that
/// hands moto one request at a time: moto's conditional writes are not
/// atomic under concurrency (a read, then a write, no lock), DynamoDB's are.
async fn limiter(limits: Limits) -> (DynamoLimiter, FaultProxy) {
    let proxy = FaultProxy::serializing(&harness::moto::endpoint())
        .await
        .expect("proxy starts");
    let sdk = harness::moto::sdk_config_at(&proxy.url(), sdk_config::Budget::SYNC_TRIGGER).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = harness::moto::new_limits_table(&ddb, "sms-limits").await;
    let limiter = DynamoLimiter::new(
        ddb,
        Limits {
            table: Some(table),
            ..limits
        },
    )
    .expect("a table is named");
    (limiter, proxy)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn send<'a>(phone: &'a str, user: &'a str, now: u64, dedup: Option<String>) -> Outgoing<'a> {
    Outgoing {
        pool: "us-east-1_Limits",
        user,
        phone,
        dedup,
        memo: None,
        dedup_ttl: sms_limits::DEDUP_TTL_SECS,
        now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_sends_to_one_phone_with_a_limit_of_five_admit_exactly_five() {
    let (l, _proxy) = limiter(Limits {
        per_phone: LimitSpec::parse("5/1h"),
        ..Limits::default()
    })
    .await;
    let l = std::sync::Arc::new(l);
    let t = now();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(async move {
                let user = format!("user-{i}");
                l.admit(&send("+14155550100", &user, t, Some(format!("event-{i}"))))
                    .await
            })
        })
        .collect();
    let mut sent = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(Admission::Send) => sent += 1,
            Ok(Admission::Limited(LimitKind::Phone, _)) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((sent, limited), (5, 45));
}

#[tokio::test]
async fn user_and_pool_limits_count_across_phones_and_users() {
    let (l, _proxy) = limiter(Limits {
        per_user: LimitSpec::parse("3/1h"),
        per_pool: LimitSpec::parse("4/1h"),
        ..Limits::default()
    })
    .await;
    let t = now();
    let phones = [
        "+14155550101",
        "+14155550102",
        "+14155550103",
        "+14155550104",
    ];
    for phone in &phones[..3] {
        assert_eq!(
            l.admit(&send(phone, "ann", t, None)).await,
            Ok(Admission::Send)
        );
    }
    assert!(matches!(
        l.admit(&send(phones[3], "ann", t, None)).await,
        Ok(Admission::Limited(LimitKind::User, _))
    ));
    assert_eq!(
        l.admit(&send(phones[3], "bob", t, None)).await,
        Ok(Admission::Send)
    );
    assert!(matches!(
        l.admit(&send(phones[3], "cy", t, None)).await,
        Ok(Admission::Limited(LimitKind::Pool, _))
    ));
}

#[tokio::test]
async fn the_same_event_twice_is_one_send_and_its_memo_comes_back() {
    let (l, _proxy) = limiter(Limits::default()).await;
    let t = now();
    let mut first = send("+14155550105", "dee", t, Some("the-event".into()));
    first.memo = Some("stamp-1".into());
    assert_eq!(l.admit(&first).await, Ok(Admission::Send));
    let mut again = first.clone();
    again.memo = Some("stamp-2".into());
    assert_eq!(
        l.admit(&again).await,
        Ok(Admission::Duplicate {
            memo: Some("stamp-1".into())
        })
    );
    // After a failed send the record is dropped: the retry sends.
    l.forget(&first).await.unwrap();
    assert_eq!(l.admit(&again).await, Ok(Admission::Send));
}

#[tokio::test]
async fn wrong_codes_are_counted_across_calls() {
    let (l, _proxy) = limiter(Limits {
        code_failures_per_user: LimitSpec::parse("3/1h"),
        ..Limits::default()
    })
    .await;
    let t = now();
    assert_eq!(l.code_failures("p", "eve", t).await, Ok(0));
    for expected in 1..=3 {
        assert_eq!(l.record_code_failure("p", "eve", t).await, Ok(expected));
    }
    assert_eq!(l.code_failures("p", "eve", t).await, Ok(3));
    assert!(sms_limits::is_locked_out(l.limits(), 3));
    assert_eq!(l.code_failures("p", "someone-else", t).await, Ok(0));
}

#[tokio::test]
async fn an_unreachable_table_is_an_error_within_the_sync_budget() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sdk = harness::moto::sdk_config_at(
        &format!("http://127.0.0.1:{port}"),
        sdk_config::Budget::SYNC_TRIGGER,
    )
    .await;
    let l = DynamoLimiter::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        Limits {
            per_phone: LimitSpec::parse("5/1h"),
            table: Some("t".into()),
            ..Limits::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let e = l
        .admit(&send("+14155550106", "fay", now(), None))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("could not connect"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(2500));
}

/// What the limiter adds to a send: one conditional put (de-duplication)
/// and three conditional updates (phone, user, pool), against moto over
/// loopback. The median is printed for docs/benchmarks.md (`--nocapture`).
#[tokio::test]
async fn every_send_under_all_limits_is_admitted_and_its_cost_is_printed() {
    let (l, _proxy) = limiter(Limits {
        per_phone: LimitSpec::parse("1000/1h"),
        per_user: LimitSpec::parse("1000/1h"),
        per_pool: LimitSpec::parse("1000/1h"),
        ..Limits::default()
    })
    .await;
    let t = now();
    let mut took = Vec::new();
    for i in 0..60 {
        let started = Instant::now();
        let admitted = l
            .admit(&send("+14155550107", "gus", t, Some(format!("cost-{i}"))))
            .await;
        took.push(started.elapsed());
        assert_eq!(admitted, Ok(Admission::Send));
    }
    took.sort();
    eprintln!(
        "limiter admit (1 put + 3 conditional updates) on moto: median {:?}, p90 {:?}",
        took[took.len() / 2],
        took[took.len() * 9 / 10]
    );
}
