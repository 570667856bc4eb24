//! The limits in one DynamoDB table: string key `pk`, a number `n`, the TTL
//! attribute `expires_at` (unix seconds) and, on de-duplication records,
//! `memo`. Every write is one conditional item operation, which DynamoDB
//! applies atomically: fifty concurrent sends against a limit of five make
//! exactly five conditional `ADD`s succeed.
//!
//! DynamoDB's TTL deletes expired items lazily (within days), so the
//! conditions also compare `expires_at` with now; counters need not, since
//! every window has its own key.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::{
    Admission, EXPIRY_GRACE_SECS, Limiter, LimiterError, Limits, Outgoing, code_failure_key,
    counter_key, dedup_pk,
};

/// The limiter over one table; built once at init from the shared SDK
/// configuration (so `AWS_ENDPOINT_URL` and the time budget apply).
#[derive(Debug, Clone)]
pub struct DynamoLimiter {
    client: Client,
    table: String,
    limits: Limits,
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// Whether the error is DynamoDB's refusal of the condition.
fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// An error for the caller: the code (or the kind of failure), never the
/// message (which may quote key values).
fn unavailable<E: ProvideErrorMetadata, R>(operation: &str, e: &SdkError<E, R>) -> LimiterError {
    let what = match e {
        SdkError::ServiceError(se) => se.err().code().unwrap_or("an unknown error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) => "could not connect".to_owned(),
        SdkError::ResponseError(_) => "an unreadable response".to_owned(),
        _ => "the request could not be made".to_owned(),
    };
    LimiterError::Unavailable(format!("{operation}: {what}"))
}

impl DynamoLimiter {
    /// `None` when `limits` names no table (no limit is set).
    pub fn new(client: Client, limits: Limits) -> Option<Self> {
        let table = limits.table.clone()?;
        Some(Self {
            client,
            table,
            limits,
        })
    }

    /// A limiter with a DynamoDB client built from `sdk`, or `None` (and no
    /// client built, which would cost the init for nothing) when `limits`
    /// names no table.
    pub fn from_config(sdk: &sdk_config::aws_config::SdkConfig, limits: Limits) -> Option<Self> {
        limits.table.as_ref()?;
        Self::new(Client::new(sdk), limits)
    }

    /// Puts the de-duplication record unless an unexpired one exists;
    /// returns the existing record's memo (as `Some(memo)`) when it does.
    async fn record_send(
        &self,
        key: &str,
        out: &Outgoing<'_>,
    ) -> Result<Option<Option<String>>, LimiterError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(dedup_pk(key)))
            .item("expires_at", n(out.now + out.dedup_ttl))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(out.now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(memo) = &out.memo {
            put = put.item("memo", s(memo.clone()));
        }
        match put.send().await {
            Ok(_) => Ok(None),
            Err(e) if condition_failed(&e) => {
                let memo = match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => c
                        .item()
                        .and_then(|item| item.get("memo"))
                        .and_then(|v| v.as_s().ok())
                        .map(|m| m.to_owned()),
                    _ => None,
                };
                Ok(Some(memo))
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }
}

impl Limiter for DynamoLimiter {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn admit(&self, out: &Outgoing<'_>) -> Result<Admission, LimiterError> {
        if let Some(key) = &out.dedup
            && let Some(memo) = self.record_send(key, out).await?
        {
            return Ok(Admission::Duplicate { memo });
        }
        for (kind, spec) in self.limits.send_limits() {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(counter_key(kind, out, spec)))
                .update_expression("ADD #n :one SET expires_at = :expires")
                .condition_expression("attribute_not_exists(#n) OR #n < :limit")
                .expression_attribute_names("#n", "n")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(u64::from(spec.count)))
                .expression_attribute_values(
                    ":expires",
                    n(spec.window_end(out.now) + EXPIRY_GRACE_SECS),
                )
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if condition_failed(&e) => {
                    // Judged again when the event is retried.
                    let _ = self.forget(out).await;
                    return Ok(Admission::Limited(kind, spec));
                }
                Err(e) => {
                    let _ = self.forget(out).await;
                    return Err(unavailable("UpdateItem", &e));
                }
            }
        }
        Ok(Admission::Send)
    }

    async fn forget(&self, out: &Outgoing<'_>) -> Result<(), LimiterError> {
        let Some(key) = &out.dedup else {
            return Ok(());
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(dedup_pk(key)))
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", &e))?;
        Ok(())
    }

    async fn code_failures(&self, pool: &str, user: &str, now: u64) -> Result<u32, LimiterError> {
        let Some(spec) = self.limits.code_failures_per_user else {
            return Ok(0);
        };
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(code_failure_key(pool, user, spec, now)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("n"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    async fn record_code_failure(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> Result<u32, LimiterError> {
        let Some(spec) = self.limits.code_failures_per_user else {
            return Ok(0);
        };
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_failure_key(pool, user, spec, now)))
            .update_expression("ADD #n :one SET expires_at = :expires")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(spec.window_end(now) + EXPIRY_GRACE_SECS))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", &e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get("n"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }
}
