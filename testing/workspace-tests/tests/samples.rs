//! Every file under `events/` is a test: it must have its expected outcome
//! beside it, replay to that outcome through the real handler, and — unless
//! it is a deliberately malformed sample — survive a round trip through the
//! typed event (parse → serialize → parse gives the same event).
//! `every_sample_replays_to_its_expected_outcome` is what `replay events`
//! checks, run as a test.

use std::path::PathBuf;

use lambda_host::events::cognito::{
    CognitoEventUserPoolsCreateAuthChallenge, CognitoEventUserPoolsDefineAuthChallenge,
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPreSignup,
    CognitoEventUserPoolsVerifyAuthChallenge,
};
use replay::Sample;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn all_samples() -> Vec<Sample> {
    let events = workspace_tests::workspace_root().join("events");
    let files = replay::collect(&[events]).expect("events/ is readable");
    assert!(!files.is_empty(), "no sample events found");
    files
        .iter()
        .map(|f| Sample::load(f).unwrap_or_else(|e| panic!("{}: {e:#}", f.display())))
        .collect()
}

#[test]
fn every_sample_has_its_expected_outcome_beside_it() {
    let missing: Vec<PathBuf> = all_samples()
        .into_iter()
        .filter(|s| s.expected.is_none())
        .map(|s| s.path)
        .collect();
    assert!(
        missing.is_empty(),
        "samples without NAME.expected.json: {missing:?}"
    );
}

fn folder_names(dir: &str) -> Vec<String> {
    let path = workspace_tests::workspace_root().join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Adding a function is a folder under `functions/`, its samples under
/// `events/`, its resource in `template.yaml`: each side must know the others.
#[tokio::test(flavor = "current_thread")]
async fn every_function_has_samples_a_replay_handler_and_a_template_resource() {
    let functions = folder_names("functions");
    assert!(!functions.is_empty(), "functions/ is empty");
    assert_eq!(
        functions,
        folder_names("events"),
        "functions/ and events/ must name the same functions"
    );
    let template = std::fs::read_to_string(workspace_tests::workspace_root().join("template.yaml"))
        .expect("template.yaml is readable");
    for name in &functions {
        let known = replay::dispatch::run_function(name, Value::Null, &Default::default()).await;
        assert!(
            known.is_some(),
            "replay has no handler for functions/{name}: add it to tools/replay/src/dispatch.rs"
        );
        assert!(
            template.contains(&format!("CodeUri: functions/{name}\n")),
            "template.yaml has no function with CodeUri: functions/{name}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_sample_replays_to_its_expected_outcome() {
    let mut failures = Vec::new();
    for sample in all_samples() {
        let report = replay::replay(&sample, &Default::default()).await;
        if !report.passed() {
            failures.push(format!("{}: {:?}", report.file, report.differences));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn round_trip<T>(kind: &'static str, event: &Value) -> Result<(), String>
where
    T: DeserializeOwned + Serialize + Default + PartialEq + std::fmt::Debug,
{
    let first: T =
        lambda_host::events::parse_event(kind, event.clone()).map_err(|e| e.to_string())?;
    let json = lambda_host::events::to_value(&first).map_err(|e| e.to_string())?;
    let second: T = lambda_host::events::parse_event(kind, json).map_err(|e| e.to_string())?;
    if first == second {
        Ok(())
    } else {
        Err(format!("changed in the round trip:\n{first:?}\n{second:?}"))
    }
}

#[test]
fn every_well_formed_sample_round_trips_through_its_typed_event() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for sample in all_samples() {
        let expected = sample.expected.clone().unwrap_or_default();
        let malformed = expected.error_type.as_deref() == Some("InvalidEvent");
        let source = lambda_host::events::trigger_source(&sample.event).unwrap_or_default();
        let result = match source.split('_').next().unwrap_or_default() {
            "PreSignUp" => round_trip::<CognitoEventUserPoolsPreSignup>("PreSignUp", &sample.event),
            "PostConfirmation" => round_trip::<CognitoEventUserPoolsPostConfirmation>(
                "PostConfirmation",
                &sample.event,
            ),
            "DefineAuthChallenge" => round_trip::<CognitoEventUserPoolsDefineAuthChallenge>(
                "DefineAuthChallenge",
                &sample.event,
            ),
            "CreateAuthChallenge" => round_trip::<CognitoEventUserPoolsCreateAuthChallenge>(
                "CreateAuthChallenge",
                &sample.event,
            ),
            "VerifyAuthChallengeResponse" => {
                round_trip::<CognitoEventUserPoolsVerifyAuthChallenge>(
                    "VerifyAuthChallengeResponse",
                    &sample.event,
                )
            }
            // The custom SMS sender's own type has its round-trip tests in
            // cognito-events; unknown triggers are replay's business.
            _ => continue,
        };
        checked += 1;
        // Deliberately malformed samples are for replay (which checks their
        // error); everything else must round-trip.
        if let (false, Err(e)) = (malformed, result) {
            failures.push(format!("{}: {e}", sample.path.display()));
        }
    }
    assert!(checked > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
