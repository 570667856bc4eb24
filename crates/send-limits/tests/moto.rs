//! The DynamoDB limiter against moto's server over HTTP (`MOTO_ENDPOINT`,
//! started by `scripts/test`): the conditional writes are what make the
//! limits exact when many Lambda instances send at once.

use std::time::{Duration, Instant};

use challenge_code::HashingSecret;
use harness::fault_proxy::FaultProxy;
use send_limits::{
    AccountChange, Admission, Channel, ContactCheck, Dedup, DynamoLimiter, LimitKind, LimitSpec,
    Limiter, Limits, MemoryLimiter, Outgoing, RecordKind, Reservation,
};

fn key() -> HashingSecret {
    HashingSecret::new(b"moto-test-limit-key-moto-test-limit-key".to_vec(), "test").unwrap()
}

/// A limiter on a fresh table. Its client reaches moto through a proxy that
/// hands moto one request at a time: moto's conditional writes are not
/// atomic under concurrency (a read, then a write, no lock), DynamoDB's are.
async fn limiter(limits: Limits) -> (DynamoLimiter, FaultProxy) {
    let proxy = FaultProxy::serializing(&harness::moto::dynamodb_endpoint())
        .await
        .expect("proxy starts");
    let sdk = harness::moto::sdk_config_at(&proxy.url(), sdk_config::Budget::SYNC_TRIGGER).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = harness::moto::new_limits_table(&ddb, "send-limits").await;
    let limiter = DynamoLimiter::new(
        ddb,
        Limits {
            table: Some(table),
            ..limits
        },
        key(),
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
        channel: Channel::Sms,
        destination: phone,
        destination_verified: false,
        dedup: dedup.map(|unique| Dedup {
            kind: RecordKind::Sent,
            unique,
            ttl: send_limits::DEDUP_TTL_SECS,
            memo: None,
        }),
        check_lockout: false,
        contact: ContactCheck::None,
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
    first.dedup.as_mut().unwrap().memo = Some("stamp-1".into());
    assert_eq!(l.admit(&first).await, Ok(Admission::Send));
    let mut again = first.clone();
    again.dedup.as_mut().unwrap().memo = Some("stamp-2".into());
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
    assert!(send_limits::is_locked_out(l.limits(), 3));
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
        key(),
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

/// What the limiter adds to a send: one transaction of a conditional put
/// (de-duplication) and three conditional updates (phone, user, pool),
/// against moto over loopback. The median is printed for docs/benchmarks.md (`--nocapture`).
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
        "limiter admit (1 transaction: put + 3 conditional updates) on moto: median {:?}, p90 {:?}",
        took[took.len() / 2],
        took[took.len() * 9 / 10]
    );
}

/// A phone refused by its limit takes nothing from the user's or the pool's
/// budget, under concurrency: 20 sends at once, 10 to an exhausted number
/// and 10 to fresh ones, with a user limit of 11 (1 + 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refusals_take_no_budget_of_another_limit() {
    let (l, _proxy) = limiter(Limits {
        per_phone: LimitSpec::parse("1/1h"),
        per_user: LimitSpec::parse("11/1h"),
        per_pool: LimitSpec::parse("1000/1h"),
        ..Limits::default()
    })
    .await;
    let l = std::sync::Arc::new(l);
    let t = now();
    assert_eq!(
        l.admit(&send("+14155550200", "hal", t, None)).await,
        Ok(Admission::Send)
    );
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let l = l.clone();
            tokio::spawn(async move {
                let phone = if i % 2 == 0 {
                    "+14155550200".to_owned()
                } else {
                    format!("+1415555030{}", i / 2)
                };
                l.admit(&send(&phone, "hal", t, None)).await
            })
        })
        .collect();
    let mut outcomes = std::collections::BTreeMap::new();
    for task in tasks {
        let key = match task.await.expect("task") {
            Ok(Admission::Send) => "send",
            Ok(Admission::Limited(LimitKind::Phone, _)) => "phone",
            other => panic!("unexpected {other:?}"),
        };
        *outcomes.entry(key).or_insert(0) += 1;
    }
    assert_eq!(outcomes.get("send"), Some(&10), "{outcomes:?}");
    assert_eq!(outcomes.get("phone"), Some(&10), "{outcomes:?}");
    // The user's budget is now exactly used: 1 + 10.
    assert!(matches!(
        l.admit(&send("+14155550399", "hal", t, None)).await,
        Ok(Admission::Limited(LimitKind::User, _))
    ));
}

/// The victim's verified number has a budget of its own: an attacker's
/// account carrying the same number exhausts only the common one.
#[tokio::test]
async fn an_impostor_exhausts_the_common_budget_and_not_the_verified_holder_s() {
    let (l, _proxy) = limiter(Limits {
        per_phone: LimitSpec::parse("5/15m"),
        ..Limits::default()
    })
    .await;
    let t = now();
    for _ in 0..5 {
        assert_eq!(
            l.admit(&send("+14155550400", "mallory", t, None)).await,
            Ok(Admission::Send)
        );
    }
    assert!(matches!(
        l.admit(&send("+14155550400", "mallory", t, None)).await,
        Ok(Admission::Limited(LimitKind::Phone, _))
    ));
    let mut victim = send("+14155550400", "victim", t, None);
    victim.destination_verified = true;
    assert_eq!(l.admit(&victim).await, Ok(Admission::Send));
}

/// Ten wrong answers at once with a lockout of 3: three reservations, seven
/// lock-outs; then even a right answer is locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_are_exact_under_concurrency() {
    let (l, _proxy) = limiter(Limits {
        code_failures_per_user: LimitSpec::parse("3/1h"),
        ..Limits::default()
    })
    .await;
    let l = std::sync::Arc::new(l);
    let t = now();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let l = l.clone();
            tokio::spawn(async move { l.reserve_code_attempt("p", "eve", t).await })
        })
        .collect();
    let mut reserved = 0;
    let mut locked = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(Reservation::Reserved) => reserved += 1,
            Ok(Reservation::LockedOut) => locked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((reserved, locked), (3, 7));
    assert_eq!(l.code_failures("p", "eve", t).await, Ok(3));
    // A right answer gives its reservation back.
    let (l2, _p2) = limiter(Limits {
        code_failures_per_user: LimitSpec::parse("3/1h"),
        ..Limits::default()
    })
    .await;
    assert_eq!(
        l2.reserve_code_attempt("p", "ann", t).await,
        Ok(Reservation::Reserved)
    );
    l2.return_code_attempt("p", "ann", t, None).await.unwrap();
    assert_eq!(l2.code_failures("p", "ann", t).await, Ok(0));
}

/// A sign-in code's record lives 6 s and is deleted once the code is
/// accepted; a lockout refuses the send in the same transaction.
#[tokio::test]
async fn challenge_records_and_the_lockout_in_one_transaction() {
    let (l, _proxy) = limiter(Limits {
        per_phone: LimitSpec::parse("100/1h"),
        code_failures_per_user: LimitSpec::parse("2/1h"),
        ..Limits::default()
    })
    .await;
    let t = now();
    let challenge = |phone: &'static str, at: u64| Outgoing {
        pool: "us-east-1_Limits",
        user: "ivy",
        channel: Channel::Sms,
        destination: phone,
        destination_verified: true,
        dedup: Some(Dedup {
            kind: RecordKind::Challenge,
            unique: "session".into(),
            ttl: 6,
            memo: Some(format!("stamp-{at}")),
        }),
        check_lockout: true,
        contact: ContactCheck::None,
        now: at,
    };
    assert_eq!(
        l.admit(&challenge("+14155550500", t)).await,
        Ok(Admission::Send)
    );
    assert_eq!(
        l.admit(&challenge("+14155550500", t + 3)).await,
        Ok(Admission::Duplicate {
            memo: Some(format!("stamp-{t}"))
        })
    );
    // Another number: a new code.
    assert_eq!(
        l.admit(&challenge("+14155550501", t + 3)).await,
        Ok(Admission::Send)
    );
    // More than 6 s later: a new code.
    assert_eq!(
        l.admit(&challenge("+14155550500", t + 7)).await,
        Ok(Admission::Send)
    );
    // Accepted: the record is gone at once.
    let record = l.record_key(&challenge("+14155550500", t + 8)).unwrap();
    l.return_code_attempt("us-east-1_Limits", "ivy", t + 8, Some(&record))
        .await
        .unwrap();
    assert_eq!(
        l.admit(&challenge("+14155550500", t + 8)).await,
        Ok(Admission::Send)
    );
    // Two wrong codes: the next sign-in code is refused, and nothing counted.
    for _ in 0..2 {
        l.record_code_failure("us-east-1_Limits", "ivy", t)
            .await
            .unwrap();
    }
    assert_eq!(
        l.admit(&challenge("+14155550502", t + 9)).await,
        Ok(Admission::LockedOut)
    );
    // Even Cognito's retry of a code already sent is refused while locked out.
    assert_eq!(
        l.admit(&challenge("+14155550501", t + 4)).await,
        Ok(Admission::LockedOut)
    );
    let mut sign_up = challenge("+14155550502", t + 9);
    sign_up.check_lockout = false;
    assert_eq!(l.admit(&sign_up).await, Ok(Admission::Send));
}

/// The table holds no number, name or pool in the clear, and two keys write
/// different items for the same send.
#[tokio::test]
async fn table_keys_are_keyed_hashes() {
    let proxy = FaultProxy::serializing(&harness::moto::dynamodb_endpoint())
        .await
        .expect("proxy");
    let sdk = harness::moto::sdk_config_at(&proxy.url(), sdk_config::Budget::SYNC_TRIGGER).await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = harness::moto::new_limits_table(&ddb, "sms-keys").await;
    let limits = Limits {
        per_phone: LimitSpec::parse("5/1h"),
        per_user: LimitSpec::parse("5/1h"),
        per_pool: LimitSpec::parse("5/1h"),
        table: Some(table.clone()),
        ..Limits::default()
    };
    let t = now();
    let mut all = Vec::new();
    for secret in [
        b"first-limit-key-first-limit-key-first".to_vec(),
        b"second-limit-key-second-limit-key-sec".to_vec(),
    ] {
        let l = DynamoLimiter::new(
            ddb.clone(),
            limits.clone(),
            HashingSecret::new(secret, "t").unwrap(),
        )
        .unwrap();
        let before: std::collections::BTreeSet<String> = scan_keys(&ddb, &table).await;
        assert_eq!(
            l.admit(&send("+14155550600", "jo", t, Some("ev".into())))
                .await,
            Ok(Admission::Send)
        );
        let after = scan_keys(&ddb, &table).await;
        let written: Vec<String> = after.difference(&before).cloned().collect();
        assert_eq!(written.len(), 4, "{written:?}");
        for k in &written {
            assert!(
                !k.contains("4155550600") && !k.contains("jo#") && !k.contains("us-east-1_Limits"),
                "{k}"
            );
        }
        all.push(written);
    }
    // Under another key, none of the same send's items is the same.
    assert!(all[0].iter().all(|k| !all[1].contains(k)), "{all:?}");
}

async fn scan_keys(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> std::collections::BTreeSet<String> {
    ddb.scan()
        .table_name(table)
        .send()
        .await
        .expect("scan")
        .items()
        .iter()
        .filter_map(|i| i.get("pk").and_then(|v| v.as_s().ok()).cloned())
        .collect()
}

/// The account-change records, the same for the table and the in-memory
/// limiter: an allowance lets exactly its user's code for exactly that
/// address through; a held change stops the code asked again; the change
/// limit counts and refuses without writing the allowance.
async fn account_changes_behave<L: Limiter>(l: &L, t: u64) {
    let code = |user: &'static str, address: &'static str, contact: ContactCheck| Outgoing {
        pool: "us-east-1_Limits",
        user,
        channel: Channel::Email,
        destination: address,
        destination_verified: false,
        dedup: None,
        check_lockout: false,
        contact,
        now: t,
    };
    // Nobody allowed it: the update code is refused, nothing counted.
    assert_eq!(
        l.admit(&code("alice", "new@example.com", ContactCheck::Allowance))
            .await,
        Ok(Admission::ContactChangeRefused)
    );
    // An address she signed up with has no record: its code is asked again freely.
    assert_eq!(
        l.admit(&code("alice", "first@example.com", ContactCheck::NotHeld))
            .await,
        Ok(Admission::Send)
    );
    // The first refusal holds the change and says so once.
    assert_eq!(
        l.hold_contact(
            Channel::Email,
            "us-east-1_Limits",
            "alice",
            "evil@example.com",
            t
        )
        .await,
        Ok(true)
    );
    assert_eq!(
        l.hold_contact(
            Channel::Email,
            "us-east-1_Limits",
            "alice",
            "evil@example.com",
            t + 5
        )
        .await,
        Ok(false)
    );
    assert_eq!(
        l.admit(&code("alice", "evil@example.com", ContactCheck::NotHeld))
            .await,
        Ok(Admission::ContactChangeRefused)
    );
    // A day later it still holds; after the hold's 30 days it is gone.
    let mut day = code("alice", "evil@example.com", ContactCheck::NotHeld);
    day.now = t + send_limits::ALLOWANCE_TTL_SECS + 1;
    assert_eq!(l.admit(&day).await, Ok(Admission::ContactChangeRefused));
    let mut later = code("alice", "evil@example.com", ContactCheck::NotHeld);
    later.now = t + send_limits::HOLD_TTL_SECS + 1;
    assert_eq!(l.admit(&later).await, Ok(Admission::Send));
    // The API's change leaves an allowance for that user and address only.
    for _ in 0..2 {
        assert_eq!(
            l.change_account(&AccountChange {
                pool: "us-east-1_Limits",
                user: "alice",
                allowance: Some((Channel::Email, "new@example.com")),
                now: t,
            })
            .await,
            Ok(Admission::Send)
        );
    }
    assert_eq!(
        l.admit(&code("alice", "new@example.com", ContactCheck::Allowance))
            .await,
        Ok(Admission::Send)
    );
    assert_eq!(
        l.admit(&code("alice", "new@example.com", ContactCheck::NotHeld))
            .await,
        Ok(Admission::Send)
    );
    assert_eq!(
        l.admit(&code("mallory", "new@example.com", ContactCheck::Allowance))
            .await,
        Ok(Admission::ContactChangeRefused)
    );
    let mut sms = code("alice", "new@example.com", ContactCheck::Allowance);
    sms.channel = Channel::Sms;
    assert_eq!(l.admit(&sms).await, Ok(Admission::ContactChangeRefused));
    // An allowance outlives neither its day...
    let mut expired = code("alice", "new@example.com", ContactCheck::Allowance);
    expired.now = t + send_limits::ALLOWANCE_TTL_SECS + 1;
    assert_eq!(l.admit(&expired).await, Ok(Admission::ContactChangeRefused));
    // ...nor does a third change get through a limit of 2/1d, and a
    // refused change leaves no allowance.
    assert_eq!(
        l.change_account(&AccountChange {
            pool: "us-east-1_Limits",
            user: "alice",
            allowance: Some((Channel::Sms, "+14155550123")),
            now: t,
        })
        .await,
        Ok(Admission::Limited(
            LimitKind::AccountChanges,
            LimitSpec::parse("2/1d").unwrap()
        ))
    );
    let mut phone = code("alice", "+14155550123", ContactCheck::Allowance);
    phone.channel = Channel::Sms;
    assert_eq!(l.admit(&phone).await, Ok(Admission::ContactChangeRefused));
    // Another user has a budget of their own.
    assert_eq!(
        l.change_account(&AccountChange {
            pool: "us-east-1_Limits",
            user: "bob",
            allowance: None,
            now: t,
        })
        .await,
        Ok(Admission::Send)
    );
}

fn change_limits() -> Limits {
    Limits {
        account_changes_per_user: LimitSpec::parse("2/1d"),
        table: Some("t".into()),
        ..Limits::default()
    }
}

#[tokio::test]
async fn account_changes_in_the_table() {
    let (l, _proxy) = limiter(change_limits()).await;
    account_changes_behave(&l, now()).await;
}

#[tokio::test]
async fn account_changes_in_memory() {
    account_changes_behave(&MemoryLimiter::new(change_limits()), now()).await;
}
