//! `make-sms-events [FOLDER]`: (re)writes the CustomSMSSender sample events
//! (default folder `events/custom-sms-sender`) with fresh ciphertexts made
//! with the development key. The `.expected.json` files are left alone:
//! they do not depend on the ciphertexts.

use std::path::PathBuf;

use anyhow::Context;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let folder = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("events/custom-sms-sender"));
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    for sample in dev_keyring::samples::SAMPLES {
        let event = dev_keyring::samples::event(sample).await?;
        let path = folder.join(format!("{}.json", sample.name));
        let text = serde_json::to_string_pretty(&event)? + "\n";
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
