use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_host::init_logging();
    let config = match define_auth_challenge::Config::from_source(&lambda_host::env_var) {
        Ok(config) => config,
        Err(e) => {
            return Err(lambda_host::report_init_error("InvalidConfiguration", e)
                .await
                .into());
        }
    };
    let config = &config;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        define_auth_challenge::handle(config, event.payload)
    }))
    .await
}
