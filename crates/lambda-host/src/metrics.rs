//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per
//! data point, which CloudWatch Logs turns into metrics with no API call (so
//! no latency and no IAM permission). Dimension values are names and ISO
//! country codes, never personal data.

use serde_json::{Map, Value, json};

/// The namespace of every metric of this project.
pub const NAMESPACE: &str = "CognitoMfaTriggers";

/// The EMF document for `metric` = `value` (a count) with `dimensions`:
/// one dimension set per extra dimension, each beside `Function` (the
/// function's name), so a graph can sum by reason or by country.
pub fn document(
    function: &str,
    metric: &str,
    value: u64,
    dimensions: &[(&str, &str)],
    now_ms: u64,
) -> Value {
    let mut sets: Vec<Vec<&str>> = vec![vec!["Function"]];
    for (name, _) in dimensions {
        sets.push(vec!["Function", name]);
    }
    let mut doc = Map::new();
    doc.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        }),
    );
    doc.insert("Function".to_owned(), json!(function));
    for (name, v) in dimensions {
        doc.insert((*name).to_owned(), json!(v));
    }
    doc.insert(metric.to_owned(), json!(value));
    Value::Object(doc)
}

/// Writes one count to stdout (Lambda sends stdout to CloudWatch Logs).
/// Outside Lambda (no `AWS_LAMBDA_FUNCTION_NAME`: replay, unit tests) there
/// is no CloudWatch to read it, and nothing is written.
pub fn count(metric: &str, dimensions: &[(&str, &str)]) {
    use std::io::Write;
    let Ok(function) = std::env::var("AWS_LAMBDA_FUNCTION_NAME") else {
        return;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let line = document(&function, metric, 1, dimensions, now_ms).to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_declares_its_metric_and_every_dimension_set() {
        let d = document(
            "sender",
            "SmsRefused",
            1,
            &[("Reason", "per_phone"), ("Country", "JM")],
            7,
        );
        assert_eq!(d["SmsRefused"], 1);
        assert_eq!(d["Reason"], "per_phone");
        assert_eq!(d["_aws"]["Timestamp"], 7);
        let m = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], NAMESPACE);
        assert_eq!(m["Metrics"][0]["Name"], "SmsRefused");
        assert_eq!(
            m["Dimensions"],
            json!([
                ["Function"],
                ["Function", "Reason"],
                ["Function", "Country"]
            ])
        );
    }
}
