//! `mfa-admin app-config`: the configuration an app needs to sign users in
//! to a deployed pool, printed from the stack (or from a pool and client
//! named on the command line, e.g. the local pool's).
//!
//! Two shapes, both made from the same facts:
//! * `amplify-v6`: the object `Amplify.configure()` takes in Amplify JS v6
//!   (`Auth.Cognito`, and the account-change API under `API.REST`);
//! * `amplify-outputs`: Amplify Gen 2's `amplify_outputs.json` (its `auth`
//!   section, version 1.3; the account-change API under `custom`).
//!
//! The facts come from the stack's outputs (`UserPoolId`,
//! `UserPoolClientId`, `Region`, `AccountChangeApiUrl`) and from the pool
//! itself (`DescribeUserPool`: MFA mode and methods, password policy,
//! sign-in and verified attributes), so the app is configured as the pool
//! really is.

use serde_json::{Value, json};

/// What the app configuration says about the pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolFacts {
    pub region: String,
    pub user_pool_id: String,
    pub client_id: String,
    /// `OFF`, `ON` or `OPTIONAL`.
    pub mfa_mode: String,
    pub sms_mfa: bool,
    pub totp_mfa: bool,
    pub email_mfa: bool,
    pub min_length: i32,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
    /// `UsernameAttributes` (`email`, `phone_number`); empty: a username.
    pub username_attributes: Vec<String>,
    /// `AutoVerifiedAttributes`.
    pub verified_attributes: Vec<String>,
    /// Required standard attributes of the schema.
    pub required_attributes: Vec<String>,
    pub account_change_url: Option<String>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Both, in one JSON object: {"amplify_v6": …, "amplify_outputs": …}.
    Both,
    /// The object for Amplify.configure() (Amplify JS v6).
    AmplifyV6,
    /// amplify_outputs.json (Amplify Gen 2).
    AmplifyOutputs,
}

/// The configuration in `format`.
pub fn render(facts: &PoolFacts, format: Format) -> Value {
    match format {
        Format::AmplifyV6 => amplify_v6(facts),
        Format::AmplifyOutputs => amplify_outputs(facts),
        Format::Both => json!({
            "amplify_v6": amplify_v6(facts),
            "amplify_outputs": amplify_outputs(facts),
        }),
    }
}

fn methods(facts: &PoolFacts) -> Vec<&'static str> {
    let mut m = Vec::new();
    if facts.sms_mfa {
        m.push("SMS");
    }
    if facts.totp_mfa {
        m.push("TOTP");
    }
    if facts.email_mfa {
        m.push("EMAIL");
    }
    m
}

fn amplify_v6(facts: &PoolFacts) -> Value {
    let login_with = if facts.username_attributes.is_empty() {
        json!({"username": true})
    } else {
        let mut l = serde_json::Map::new();
        for a in &facts.username_attributes {
            match a.as_str() {
                "email" => l.insert("email".into(), json!(true)),
                "phone_number" => l.insert("phone".into(), json!(true)),
                _ => None,
            };
        }
        Value::Object(l)
    };
    let attributes: serde_json::Map<String, Value> = facts
        .required_attributes
        .iter()
        .map(|a| (a.clone(), json!({"required": true})))
        .collect();
    let mut config = json!({
        "Auth": {"Cognito": {
            "userPoolId": facts.user_pool_id,
            "userPoolClientId": facts.client_id,
            "loginWith": login_with,
            // The pool sends codes, never links.
            "signUpVerificationMethod": "code",
            "userAttributes": attributes,
            "mfa": {
                "status": facts.mfa_mode.to_ascii_lowercase(),
                "smsEnabled": facts.sms_mfa,
                "totpEnabled": facts.totp_mfa,
                "emailEnabled": facts.email_mfa,
            },
            "passwordFormat": {
                "minLength": facts.min_length,
                "requireLowercase": facts.require_lowercase,
                "requireUppercase": facts.require_uppercase,
                "requireNumbers": facts.require_numbers,
                "requireSpecialCharacters": facts.require_symbols,
            },
        }}
    });
    if let Some(url) = &facts.account_change_url {
        config["API"] = json!({"REST": {"accountChange": {
            "endpoint": url,
            "region": facts.region,
        }}});
    }
    config
}

fn amplify_outputs(facts: &PoolFacts) -> Value {
    let mut outputs = json!({
        "version": "1.3",
        "auth": {
            "aws_region": facts.region,
            "user_pool_id": facts.user_pool_id,
            "user_pool_client_id": facts.client_id,
            "password_policy": {
                "min_length": facts.min_length,
                "require_lowercase": facts.require_lowercase,
                "require_numbers": facts.require_numbers,
                "require_symbols": facts.require_symbols,
                "require_uppercase": facts.require_uppercase,
            },
            "standard_required_attributes": facts.required_attributes,
            "username_attributes": facts.username_attributes,
            "user_verification_types": facts.verified_attributes,
            "mfa_configuration": facts.mfa_mode,
            "mfa_methods": methods(facts),
            "unauthenticated_identities_enabled": false,
        }
    });
    if let Some(url) = &facts.account_change_url {
        outputs["custom"] =
            json!({"account_change_api": {"endpoint": url, "region": facts.region}});
    }
    outputs
}

/// Where the facts come from: a stack, or a pool and client named directly
/// (flags win over the stack's outputs).
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub stack_name: Option<String>,
    pub user_pool_id: Option<String>,
    pub client_id: Option<String>,
    pub account_change_url: Option<String>,
}

/// Reads the stack's outputs (with `--stack-name`) and the pool.
pub async fn gather(
    sdk: &sdk_config::aws_config::SdkConfig,
    source: &Source,
) -> Result<PoolFacts, String> {
    let mut outputs = std::collections::BTreeMap::new();
    if let Some(stack) = &source.stack_name {
        let cfn = aws_sdk_cloudformation::Client::new(sdk);
        let out = cfn
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| format!("DescribeStacks {stack}: {}", aws_error(&e)))?;
        let found = out
            .stacks()
            .first()
            .ok_or_else(|| format!("no stack named {stack}"))?;
        for o in found.outputs() {
            if let (Some(k), Some(v)) = (o.output_key(), o.output_value()) {
                outputs.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let pick = |flag: &Option<String>, output: &str| {
        flag.clone()
            .filter(|v| !v.trim().is_empty())
            .or_else(|| outputs.get(output).cloned())
    };
    let user_pool_id = pick(&source.user_pool_id, "UserPoolId")
        .ok_or("no user pool: pass --stack-name (its UserPoolId output) or --user-pool-id")?;
    let client_id = pick(&source.client_id, "UserPoolClientId")
        .ok_or("no app client: pass --stack-name (its UserPoolClientId output) or --client-id")?;
    let region = outputs
        .get("Region")
        .cloned()
        .or_else(|| sdk.region().map(|r| r.as_ref().to_owned()))
        .unwrap_or_default();
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(sdk);
    let (pool, mfa) = tokio::join!(
        cognito
            .describe_user_pool()
            .user_pool_id(&user_pool_id)
            .send(),
        cognito
            .get_user_pool_mfa_config()
            .user_pool_id(&user_pool_id)
            .send()
    );
    let pool = pool.map_err(|e| format!("DescribeUserPool {user_pool_id}: {}", aws_error(&e)))?;
    let mfa = mfa.map_err(|e| format!("GetUserPoolMfaConfig {user_pool_id}: {}", aws_error(&e)))?;
    let pool = pool
        .user_pool()
        .ok_or_else(|| format!("DescribeUserPool {user_pool_id}: no pool in the answer"))?;
    let policy = pool.policies().and_then(|p| p.password_policy());
    Ok(PoolFacts {
        region,
        user_pool_id: user_pool_id.clone(),
        client_id,
        mfa_mode: mfa
            .mfa_configuration()
            .map_or("OFF", |m| m.as_str())
            .to_owned(),
        sms_mfa: mfa.sms_mfa_configuration().is_some(),
        totp_mfa: mfa
            .software_token_mfa_configuration()
            .is_some_and(|t| t.enabled()),
        email_mfa: mfa.email_mfa_configuration().is_some(),
        min_length: policy.and_then(|p| p.minimum_length()).unwrap_or(8),
        require_lowercase: policy.is_some_and(|p| p.require_lowercase()),
        require_uppercase: policy.is_some_and(|p| p.require_uppercase()),
        require_numbers: policy.is_some_and(|p| p.require_numbers()),
        require_symbols: policy.is_some_and(|p| p.require_symbols()),
        username_attributes: pool
            .username_attributes()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        verified_attributes: pool
            .auto_verified_attributes()
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
        required_attributes: pool
            .schema_attributes()
            .iter()
            .filter(|a| a.required().unwrap_or(false))
            .filter_map(|a| a.name())
            .filter(|n| !n.starts_with("custom:"))
            .map(ToOwned::to_owned)
            .collect(),
        account_change_url: pick(&source.account_change_url, "AccountChangeApiUrl"),
    })
}

/// The error's code, or what kind of failure it was (never its message).
fn aws_error<E: aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_cognitoidentityprovider::error::SdkError<E, R>,
) -> String {
    use aws_sdk_cognitoidentityprovider::error::SdkError;
    match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("an unknown error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "could not connect".to_owned(),
        _ => "an unreadable answer".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> PoolFacts {
        PoolFacts {
            region: "eu-west-1".into(),
            user_pool_id: "eu-west-1_Ab12Cd34E".into(),
            client_id: "client123".into(),
            mfa_mode: "OPTIONAL".into(),
            sms_mfa: true,
            totp_mfa: true,
            email_mfa: false,
            min_length: 8,
            require_lowercase: true,
            require_uppercase: true,
            require_numbers: true,
            require_symbols: false,
            username_attributes: vec![],
            verified_attributes: vec!["email".into()],
            required_attributes: vec!["email".into()],
            account_change_url: Some("https://abc.execute-api.eu-west-1.amazonaws.com".into()),
        }
    }

    #[test]
    fn both_shapes_say_what_the_pool_is() {
        let f = facts();
        let v6 = render(&f, Format::AmplifyV6);
        let c = &v6["Auth"]["Cognito"];
        assert_eq!(c["userPoolId"], "eu-west-1_Ab12Cd34E");
        assert_eq!(c["userPoolClientId"], "client123");
        assert_eq!(c["mfa"]["status"], "optional");
        assert_eq!(c["mfa"]["smsEnabled"], true);
        assert_eq!(c["loginWith"], json!({"username": true}));
        assert_eq!(c["passwordFormat"]["requireSpecialCharacters"], false);
        assert_eq!(v6["API"]["REST"]["accountChange"]["region"], "eu-west-1");
        let out = render(&f, Format::AmplifyOutputs);
        assert_eq!(out["version"], "1.3");
        assert_eq!(out["auth"]["aws_region"], "eu-west-1");
        assert_eq!(out["auth"]["mfa_methods"], json!(["SMS", "TOTP"]));
        assert_eq!(out["auth"]["mfa_configuration"], "OPTIONAL");
        assert_eq!(out["auth"]["user_verification_types"], json!(["email"]));
        assert_eq!(
            out["custom"]["account_change_api"]["endpoint"],
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        );
        let both = render(&f, Format::Both);
        assert_eq!(both["amplify_v6"], v6);
        assert_eq!(both["amplify_outputs"], out);
        let email_login = PoolFacts {
            username_attributes: vec!["email".into()],
            account_change_url: None,
            ..f
        };
        let v6 = render(&email_login, Format::AmplifyV6);
        assert_eq!(v6["Auth"]["Cognito"]["loginWith"], json!({"email": true}));
        assert!(v6.get("API").is_none());
        assert!(
            render(&email_login, Format::AmplifyOutputs)
                .get("custom")
                .is_none()
        );
    }
}
