//! Every command against the in-memory user pool (which, unlike moto, has
//! devices and refuses SMS MFA for a user without a phone).

use auth_policy::MfaConfig;
use cognito_admin::{AdminError, Device, FakeUserPool, MfaFactor, MfaState};
use mfa_admin::scale::Quiet;
use mfa_admin::{CliError, Command, PreferenceArg, WalkArgs, execute, execute_with};

/// A fast pace for the in-memory pool.
fn walk() -> WalkArgs {
    WalkArgs {
        rate: 10_000,
        concurrency: 4,
    }
}

const POOL: &str = "us-east-1_Fake";

fn pool() -> FakeUserPool {
    let p = FakeUserPool::new();
    p.add_user(
        POOL,
        "alice",
        [
            ("phone_number", "+14155550123"),
            ("phone_number_verified", "true"),
            ("custom:mfa_preference", "SMS"),
        ],
    );
    p.add_user(POOL, "bob", [("email", "bob@example.com")]);
    p
}

fn cfg(pairs: &[(&str, &str)]) -> MfaConfig {
    MfaConfig::from_source(pairs).unwrap()
}

async fn run(
    p: &FakeUserPool,
    config: &MfaConfig,
    c: Command,
) -> Result<mfa_admin::Report, CliError> {
    execute(p, config, POOL, &c).await
}

fn set(user: &str, preference: PreferenceArg) -> Command {
    Command::SetPreference {
        user: user.into(),
        preference,
    }
}

#[tokio::test]
async fn status_reports_cognitos_names_and_the_phone() {
    let p = pool();
    p.associate_totp(POOL, "alice");
    run(&p, &MfaConfig::default(), set("alice", PreferenceArg::Totp))
        .await
        .unwrap();
    let r = run(
        &p,
        &MfaConfig::default(),
        Command::Status {
            user: "alice".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(r.json["username"], "alice");
    assert_eq!(r.json["enabled"], serde_json::json!(["SOFTWARE_TOKEN_MFA"]));
    assert_eq!(r.json["preferred"], "SOFTWARE_TOKEN_MFA");
    assert_eq!(r.json["phone_number"], "+14155550123");
    assert_eq!(r.json["phone_number_verified"], true);
    assert!(r.text.contains("SOFTWARE_TOKEN_MFA"), "{}", r.text);
    let r = run(
        &p,
        &MfaConfig::default(),
        Command::Status { user: "bob".into() },
    )
    .await
    .unwrap();
    assert_eq!(r.json["preferred"], serde_json::Value::Null);
    assert_eq!(r.json["phone_number"], serde_json::Value::Null);
    assert_eq!(r.json["phone_number_verified"], false);
}

#[tokio::test]
async fn set_preference_sms_then_nomfa() {
    let p = pool();
    let c = MfaConfig::default();
    let r = run(&p, &c, set("alice", PreferenceArg::Sms)).await.unwrap();
    assert_eq!(r.json["preferred"], "SMS_MFA");
    assert_eq!(
        p.user(POOL, "alice").unwrap().mfa,
        MfaState::new(vec![MfaFactor::Sms], Some(MfaFactor::Sms))
    );
    run(&p, &c, set("alice", PreferenceArg::Nomfa))
        .await
        .unwrap();
    assert_eq!(p.user(POOL, "alice").unwrap().mfa, MfaState::default());
}

#[tokio::test]
async fn set_preference_email_where_the_pool_has_it() {
    let p = pool();
    // Not in a pool without email MFA: refused before any call.
    let e = run(&p, &MfaConfig::default(), set("bob", PreferenceArg::Email))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("EMAIL"), "{e}");
    assert!(!p.calls().contains(&"AdminSetUserMFAPreference"));
    let c = cfg(&[("MFA_METHODS", "SMS,TOTP,EMAIL")]);
    let r = run(&p, &c, set("bob", PreferenceArg::Email)).await.unwrap();
    assert_eq!(r.json["preferred"], "EMAIL_OTP");
    assert_eq!(r.json["enabled"], serde_json::json!(["EMAIL_OTP"]));
    // NOMFA in that pool turns email off too.
    run(&p, &c, set("bob", PreferenceArg::Nomfa)).await.unwrap();
    assert_eq!(p.user(POOL, "bob").unwrap().mfa, MfaState::default());
}

#[tokio::test]
async fn the_listed_errors_say_what_to_do_and_change_nothing() {
    let p = pool();
    let c = MfaConfig::default();
    // SMS for a user with no phone: refused before any call.
    let e = run(&p, &c, set("bob", PreferenceArg::Sms))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("recover-lost-totp"), "{e}");
    assert!(!p.calls().contains(&"AdminSetUserMFAPreference"));
    // TOTP never associated: Cognito's InvalidParameterException, explained.
    let e = run(&p, &c, set("alice", PreferenceArg::Totp))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TOTP was never associated"), "{e}");
    // NOMFA in an ON pool.
    let on = cfg(&[("MFA_CONFIGURATION", "ON")]);
    let e = run(&p, &on, set("alice", PreferenceArg::Nomfa))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("MFA_CONFIGURATION=ON"), "{e}");
    // Unknown user.
    let e = run(
        &p,
        &c,
        Command::Status {
            user: "nobody@example.com".into(),
        },
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("does not exist") && !text.contains("nobody@example.com"),
        "{text}"
    );
    // Bad phone.
    let e = run(
        &p,
        &c,
        Command::RecoverLostTotp {
            user: "bob".into(),
            phone: "090-1234-5678".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not E.164"), "{e}");
    assert_eq!(p.user(POOL, "alice").unwrap().mfa, MfaState::default());
    assert_eq!(p.user(POOL, "bob").unwrap().phone_number(), None);
}

#[tokio::test]
async fn recover_lost_totp_switches_to_sms_on_a_verified_phone() {
    let p = pool();
    p.add_user(
        POOL,
        "bob",
        [
            ("email", "bob@example.com"),
            ("custom:mfa_preference", "TOTP"),
        ],
    );
    p.associate_totp(POOL, "bob");
    run(&p, &MfaConfig::default(), set("bob", PreferenceArg::Totp))
        .await
        .unwrap();
    let before = p.calls().len();
    let r = run(
        &p,
        &MfaConfig::default(),
        Command::RecoverLostTotp {
            user: "bob".into(),
            phone: "+819012345678".into(),
        },
    )
    .await
    .unwrap();
    let u = p.user(POOL, "bob").unwrap();
    assert_eq!(u.phone_number(), Some("+819012345678"));
    assert!(u.phone_number_verified());
    assert_eq!(
        u.mfa,
        MfaState::new(vec![MfaFactor::Sms], Some(MfaFactor::Sms))
    );
    assert_eq!(r.json["preferred"], "SMS_MFA");
    // The stated preference follows the factor.
    assert_eq!(u.attribute("custom:mfa_preference"), Some("SMS"));
    assert_eq!(r.json["mfa_preference"], "SMS");
    // Signed out everywhere, and the output says every step was done.
    assert_eq!(p.sign_outs(POOL, "bob"), 1);
    let done = r.json["recovery_steps_done"].as_array().unwrap();
    assert_eq!(done.len(), mfa_admin::RECOVERY_STEPS.len());
    assert!(r.text.contains("signed out everywhere"), "{}", r.text);
    // The sign-out comes before any change; the preference after the factor.
    assert_eq!(
        p.calls()[before..],
        [
            "AdminGetUser",
            "AdminUserGlobalSignOut",
            "AdminUpdateUserAttributes",
            "AdminSetUserMFAPreference",
            "AdminUpdateUserAttributes",
            "AdminListDevices",
            "AdminGetUser",
        ]
    );
}

fn countries(pairs: &[(&str, &str)]) -> phone_country::CountryPolicy {
    phone_country::CountryPolicy::from_source(pairs).unwrap()
}

async fn recover_under(
    p: &FakeUserPool,
    countries: &phone_country::CountryPolicy,
    phone: &str,
) -> Result<mfa_admin::Report, CliError> {
    execute_with(
        p,
        &MfaConfig::default(),
        countries,
        POOL,
        &Command::RecoverLostTotp {
            user: "bob".into(),
            phone: phone.into(),
        },
        &Quiet,
        std::future::pending(),
    )
    .await
}

#[tokio::test]
async fn recover_lost_totp_refuses_a_phone_outside_the_sms_country_policy_and_changes_nothing() {
    let cases = [
        (
            countries(&[("SMS_BLOCKED_COUNTRIES", "JP")]),
            "+819012345678",
            "its country, JP, is in SMS_BLOCKED_COUNTRIES",
        ),
        (
            countries(&[("SMS_ALLOWED_COUNTRIES", "US,CA")]),
            "+819012345678",
            "its country, JP, is not in SMS_ALLOWED_COUNTRIES",
        ),
        (
            countries(&[("SMS_ALLOWED_COUNTRIES", "US")]),
            "+15558675309",
            "no country and SMS_ALLOWED_COUNTRIES is set",
        ),
    ];
    for (policy, phone, reason) in cases {
        let p = pool();
        p.associate_totp(POOL, "bob");
        run(&p, &MfaConfig::default(), set("bob", PreferenceArg::Totp))
            .await
            .unwrap();
        let before = p.user(POOL, "bob").unwrap();
        let calls = p.calls().len();
        let e = recover_under(&p, &policy, phone).await.unwrap_err();
        assert!(matches!(e, CliError::CountryRefused { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("SMS country policy") && text.contains(reason),
            "{text}"
        );
        assert!(!text.contains(phone) && !text.contains('\n'), "{text}");
        // Not one call: no sign-out, no attribute, no factor change.
        assert_eq!(p.calls().len(), calls, "{:?}", p.calls());
        assert_eq!(p.user(POOL, "bob").unwrap(), before);
        assert_eq!(p.sign_outs(POOL, "bob"), 0);
    }
    // A number the policy allows goes through.
    let p = pool();
    let r = recover_under(
        &p,
        &countries(&[("SMS_ALLOWED_COUNTRIES", "US")]),
        "+16502530000",
    )
    .await
    .unwrap();
    assert_eq!(r.json["phone_number"], "+16502530000");
    assert_eq!(p.sign_outs(POOL, "bob"), 1);
}

#[tokio::test]
async fn recover_lost_totp_forgets_every_remembered_device() {
    let p = pool();
    for key in ["us-east-1_aaaa", "us-east-1_bbbb"] {
        p.add_device(
            POOL,
            "bob",
            Device {
                key: key.into(),
                name: None,
                remembered: Some(true),
                last_authenticated: None,
                created: None,
                last_modified: None,
            },
        );
    }
    let r = run(
        &p,
        &MfaConfig::default(),
        Command::RecoverLostTotp {
            user: "bob".into(),
            phone: "+819012345678".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(p.devices(POOL, "bob").len(), 0);
    assert!(
        r.text
            .contains("remembered devices forgotten (2 forgotten)"),
        "{}",
        r.text
    );
}

/// Splits an `Incomplete` error line into (stopped at, done, still to do).
fn steps_of(text: &str) -> (String, String, String) {
    let (stopped, rest) = text.split_once("Done:").expect("the steps done are listed");
    let (done, left) = rest
        .split_once("Still to do:")
        .expect("the steps left are listed");
    (stopped.to_owned(), done.to_owned(), left.to_owned())
}

#[tokio::test]
async fn recover_lost_totp_changes_nothing_when_the_sign_out_fails() {
    let p = pool();
    p.associate_totp(POOL, "bob");
    run(&p, &MfaConfig::default(), set("bob", PreferenceArg::Totp))
        .await
        .unwrap();
    let before = p.user(POOL, "bob").unwrap();
    p.fail_operation(
        "AdminUserGlobalSignOut",
        AdminError::Unreachable {
            operation: "AdminUserGlobalSignOut",
            reason: "timeout".into(),
        },
    );
    let e = run(
        &p,
        &MfaConfig::default(),
        Command::RecoverLostTotp {
            user: "bob".into(),
            phone: "+819012345678".into(),
        },
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    let (stopped, done, left) = steps_of(&text);
    assert!(stopped.contains(mfa_admin::RECOVERY_STEPS[0]), "{text}");
    assert_eq!(done.trim().trim_end_matches('.'), "nothing", "{text}");
    for step in mfa_admin::RECOVERY_STEPS {
        assert!(left.contains(step), "{step} in {text}");
    }
    // The factor is not changed while a session may still be alive.
    assert_eq!(p.user(POOL, "bob").unwrap(), before);
    assert!(!p.calls().contains(&"AdminUpdateUserAttributes"));
}

#[tokio::test]
async fn recover_lost_totp_says_which_steps_were_done_when_one_fails() {
    let p = pool();
    p.fail_operation(
        "AdminSetUserMFAPreference",
        AdminError::Unreachable {
            operation: "AdminSetUserMFAPreference",
            reason: "timeout".into(),
        },
    );
    let e = run(
        &p,
        &MfaConfig::default(),
        Command::RecoverLostTotp {
            user: "bob".into(),
            phone: "+819012345678".into(),
        },
    )
    .await
    .unwrap_err();
    let text = e.to_string();
    let (stopped, done, left) = steps_of(&text);
    let steps = mfa_admin::RECOVERY_STEPS;
    assert!(stopped.contains(steps[2]), "{text}");
    assert!(done.contains(steps[0]) && done.contains(steps[1]), "{text}");
    assert!(
        !done.contains(steps[2]) && !done.contains(steps[3]),
        "{text}"
    );
    assert!(
        left.contains(steps[2]) && left.contains(steps[3]) && left.contains(steps[4]),
        "{text}"
    );
    // Signed out and the phone set; the preference attribute untouched.
    assert_eq!(p.sign_outs(POOL, "bob"), 1);
    let u = p.user(POOL, "bob").unwrap();
    assert_eq!(u.phone_number(), Some("+819012345678"));
    assert_eq!(u.attribute("custom:mfa_preference"), None);
    assert_eq!(u.mfa, MfaState::default());
}

#[tokio::test]
async fn devices_are_listed_and_forgotten() {
    let p = pool();
    p.add_device(
        POOL,
        "alice",
        Device {
            key: "us-east-1_0c1d2e3f".into(),
            name: Some("Firefox on Linux".into()),
            remembered: Some(true),
            last_authenticated: Some("2026-11-20T09:00:00Z".into()),
            created: None,
            last_modified: None,
        },
    );
    let c = MfaConfig::default();
    let r = run(
        &p,
        &c,
        Command::Devices {
            user: "alice".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(r.json["devices"][0]["key"], "us-east-1_0c1d2e3f");
    assert_eq!(r.json["devices"][0]["remembered"], true);
    assert!(
        r.text.contains("Firefox on Linux") && r.text.contains("2026-11-20T09:00:00Z"),
        "{}",
        r.text
    );
    run(
        &p,
        &c,
        Command::ForgetDevice {
            user: "alice".into(),
            device_key: "us-east-1_0c1d2e3f".into(),
        },
    )
    .await
    .unwrap();
    let r = run(
        &p,
        &c,
        Command::Devices {
            user: "alice".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(r.json["devices"], serde_json::json!([]));
    let e = run(
        &p,
        &c,
        Command::ForgetDevice {
            user: "alice".into(),
            device_key: "us-east-1_0c1d2e3f".into(),
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("devices USER"), "{e}");
}

#[tokio::test]
async fn apply_policy_for_one_user_and_for_all() {
    let p = pool();
    p.add_user(
        POOL,
        "carol",
        [
            ("phone_number", "+447700900123"),
            ("custom:mfa_preference", "TOTP"),
        ],
    );
    p.add_user(
        POOL,
        "fed",
        [
            ("phone_number", "+14155550124"),
            ("cognito:user_status", "EXTERNAL_PROVIDER"),
        ],
    );
    p.add_user(POOL, "dave", [("phone_number", "+14155550125")]);
    p.set_page_size(2);
    let c = MfaConfig::default();
    let r = run(
        &p,
        &c,
        Command::ApplyPolicy {
            user: Some("alice".into()),
            all: false,
            walk: walk(),
            resume_from: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(r.json["results"][0]["action"], "applied");
    assert_eq!(
        p.user(POOL, "alice").unwrap().mfa,
        MfaState::new(vec![MfaFactor::Sms], Some(MfaFactor::Sms))
    );
    // dave already chose otherwise with an operator: kept.
    p.associate_totp(POOL, "dave");
    run(&p, &c, set("dave", PreferenceArg::Totp)).await.unwrap();

    let r = run(
        &p,
        &c,
        Command::ApplyPolicy {
            user: None,
            all: true,
            walk: walk(),
            resume_from: None,
        },
    )
    .await
    .unwrap();
    let actions: Vec<(String, String)> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["username"].as_str().unwrap().to_owned(),
                x["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("alice", "kept"),
        ("bob", "skipped"),
        ("carol", "applied"),
        ("dave", "kept"),
        ("fed", "skipped"),
    ];
    assert_eq!(
        actions,
        want.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        p.user(POOL, "carol").unwrap().mfa,
        MfaState::new(vec![MfaFactor::Sms], None)
    );
    assert_eq!(p.user(POOL, "fed").unwrap().mfa, MfaState::default());
    assert_eq!(
        p.user(POOL, "dave").unwrap().mfa.preferred,
        Some(MfaFactor::SoftwareToken)
    );
    assert_eq!(
        p.calls().iter().filter(|c| **c == "ListUsers").count(),
        3,
        "5 users, pages of 2"
    );
}

#[tokio::test]
async fn apply_policy_all_reports_failures_after_every_user() {
    let p = pool();
    p.add_user(POOL, "zed", [("phone_number", "+14155550126")]);
    p.fail_user(
        POOL,
        "alice",
        AdminError::Service {
            operation: "AdminGetUser",
            code: "TooManyRequestsException".into(),
        },
    );
    let c = MfaConfig::default();
    let e = run(
        &p,
        &c,
        Command::ApplyPolicy {
            user: None,
            all: true,
            walk: walk(),
            resume_from: None,
        },
    )
    .await
    .unwrap_err();
    let CliError::Partial {
        failed,
        total,
        report,
    } = &e
    else {
        panic!("expected a partial failure, got {e}");
    };
    assert_eq!((*failed, *total), (1, 3));
    assert!(
        report.text.contains("alice: failed") && report.text.contains("TooManyRequestsException"),
        "{}",
        report.text
    );
    assert!(report.text.contains("zed: applied"), "{}", report.text);
    assert_eq!(
        p.user(POOL, "zed").unwrap().mfa.preferred,
        Some(MfaFactor::Sms)
    );
    assert!(e.to_string().contains("1 of 3 users"), "{e}");

    // A failing ListUsers fails the whole run.
    let p = pool();
    p.fail_next(AdminError::Unreachable {
        operation: "ListUsers",
        reason: "timed out".into(),
    });
    let e = run(
        &p,
        &c,
        Command::ApplyPolicy {
            user: None,
            all: true,
            walk: walk(),
            resume_from: None,
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("--endpoint-url"), "{e}");
}

#[tokio::test]
async fn service_errors_say_what_to_do() {
    let cases = [
        ("AccessDeniedException", "IAM policy"),
        ("TooManyRequestsException", "run it again"),
        ("ExpiredTokenException", "renew"),
    ];
    for (code, hint) in cases {
        let p = pool();
        p.fail_next(AdminError::Service {
            operation: "AdminGetUser",
            code: code.into(),
        });
        let e = run(
            &p,
            &MfaConfig::default(),
            Command::Status {
                user: "alice".into(),
            },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains(code) && e.contains(hint), "{code}: {e}");
    }
}
