//! One function of the plan `bench-plan` writes, as the benchmark binaries
//! that measure AWS-calling functions read it.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) binary: PathBuf,
    #[serde(default)]
    pub(crate) env: Vec<(String, String)>,
    pub(crate) event: Value,
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) vary: Option<String>,
}

impl Entry {
    pub(crate) fn event(&self, n: usize) -> Value {
        let mut event = self.event.clone();
        if let Some(pointer) = &self.vary
            && let Some(v) = event.pointer_mut(pointer)
        {
            let base = v.as_str().unwrap_or_default().to_owned();
            *v = Value::String(format!("{base}-rt-{}-{n}", std::process::id()));
        }
        event
    }
}
