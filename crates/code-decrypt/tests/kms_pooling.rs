//! The KMS connection of the Encryption SDK, counted: a keep-alive proxy of
//! ours (`harness::fault_proxy`) sits between the decryptor and moto
//! (`MOTO_ENDPOINT`; `scripts/test` starts it) and counts the TCP connections
//! the client opens.
//!
//! The Encryption SDK runs each KMS call on a runtime that lives for that call
//! only. With a plain KMS client that costs a new connection per message (on
//! AWS, a new TLS handshake); `kms_client_for_esdk` keeps one. On a
//! `multi_thread` runtime the SDK's own bridge can deadlock the runtime
//! (aws/aws-encryption-sdk issue 899); with `kms_client_for_esdk` the call
//! needs nothing from the caller's runtime, which the load test checks with a
//! watchdog thread outside the runtime.

use std::sync::Arc;
use std::time::Duration;

use code_decrypt::{
    CodeDecryptor, EsdkDecryptor, encode_code, encrypt_like_cognito, kms_client_for_esdk,
};
use harness::fault_proxy::FaultProxy;
use sdk_config::Budget;

const POOL: &str = "us-east-1_KmsPool";

struct Setup {
    key_arn: String,
    codes: Vec<String>,
}

/// A key in moto and `n` codes encrypted for it as Cognito does (straight
/// to moto: these calls are not counted).
async fn setup(n: usize) -> Setup {
    let sdk = harness::moto::sdk_config().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let key_arn = harness::moto::new_kms_key(&kms).await;
    let keyring = code_decrypt::kms_keyring(kms, &key_arn).await.unwrap();
    let mut codes = Vec::new();
    for i in 0..n {
        let plain = format!("{:06}", 200_000 + i);
        codes.push(encode_code(
            &encrypt_like_cognito(&keyring, &plain, POOL, false)
                .await
                .unwrap(),
        ));
    }
    Setup { key_arn, codes }
}

async fn decryptor(proxy: &FaultProxy, key_arn: &str, pooled: bool) -> EsdkDecryptor {
    let sdk = harness::moto::sdk_config_at(&proxy.url(), Budget::SYNC_TRIGGER).await;
    let kms = if pooled {
        kms_client_for_esdk(&sdk)
    } else {
        aws_sdk_kms::Client::new(&sdk)
    };
    EsdkDecryptor::with_kms(kms, key_arn).await.unwrap()
}

fn kms_connections(proxy: &FaultProxy) -> u64 {
    proxy
        .connections_by_service()
        .get("kms")
        .copied()
        .unwrap_or(0)
}

/// Decrypts every code one after the other; returns the new KMS connections
/// after the first.
async fn sequential(proxy: &FaultProxy, d: &EsdkDecryptor, codes: &[String]) -> u64 {
    let first = d.decrypt(&codes[0], POOL).await.expect("decrypt");
    assert_eq!(first.expose().len(), 6);
    let before = kms_connections(proxy);
    for code in &codes[1..] {
        d.decrypt(code, POOL).await.expect("decrypt");
    }
    kms_connections(proxy) - before
}

#[tokio::test(flavor = "current_thread")]
async fn the_esdk_kms_client_keeps_its_connection_across_messages() {
    let s = setup(101).await;

    // A plain client: the problem, measured (one connection per message).
    let proxy = FaultProxy::passthrough_on_own_thread(&harness::moto::endpoint()).unwrap();
    let plain = decryptor(&proxy, &s.key_arn, false).await;
    let opened = sequential(&proxy, &plain, &s.codes[..31]).await;
    eprintln!("plain KMS client: {opened} new connections over 30 messages");
    assert!(
        opened >= 25,
        "the plain client reused its connection ({opened} new over 30)"
    );

    // The client for the Encryption SDK: pooled.
    let proxy = FaultProxy::passthrough_on_own_thread(&harness::moto::endpoint()).unwrap();
    let pooled = decryptor(&proxy, &s.key_arn, true).await;
    let opened = sequential(&proxy, &pooled, &s.codes).await;
    eprintln!("kms_client_for_esdk: {opened} new connections over 100 messages");
    assert!(
        opened <= 2,
        "{opened} new KMS connections over 100 messages"
    );
    assert!(proxy.requests() >= 101);
}

/// `tasks` concurrent tasks each decrypting `per_task` codes on a
/// `multi_thread` runtime of `workers` workers, watched from outside it.
fn load(workers: usize, tasks: usize, per_task: usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .unwrap();
        let outcome = rt.block_on(async move {
            let s = setup(per_task).await;
            let proxy = FaultProxy::passthrough_on_own_thread(&harness::moto::endpoint()).unwrap();
            let d = Arc::new(decryptor(&proxy, &s.key_arn, true).await);
            let codes = Arc::new(s.codes);
            let mut handles = Vec::new();
            for _ in 0..tasks {
                let (d, codes) = (d.clone(), codes.clone());
                handles.push(tokio::spawn(async move {
                    for code in codes.iter() {
                        let plain = d.decrypt(code, POOL).await.expect("decrypt");
                        assert_eq!(plain.expose().len(), 6);
                    }
                }));
            }
            for h in handles {
                h.await.expect("a decrypting task");
            }
            (kms_connections(&proxy), proxy.requests())
        });
        let _ = tx.send(outcome);
    });
    let (connections, requests) = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(outcome) => outcome,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the decryptions neither finished nor failed in 120 s: a deadlock or a hang")
        }
        Err(e) => panic!("the load thread failed (its panic is printed above): {e}"),
    };
    eprintln!(
        "{workers} worker(s), {tasks} tasks × {per_task}: {requests} requests over {connections} KMS connections"
    );
    assert_eq!(requests as usize, tasks * per_task);
    // Never more connections than calls in flight at once.
    assert!(
        connections as usize <= tasks,
        "{connections} connections for {tasks} tasks"
    );
}

#[test]
fn concurrent_decryptions_on_a_multi_thread_runtime_finish() {
    // The report's case: every worker busy in a blocking bridge at once.
    load(1, 16, 4);
    load(2, 32, 4);
}
