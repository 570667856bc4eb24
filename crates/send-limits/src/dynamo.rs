//! The limits in one DynamoDB table: string key `pk`, a number `n`, the TTL
//! attribute `expires_at` (unix seconds) and, on de-duplication records,
//! `memo`.
//!
//! A send's decision is one `TransactWriteItems`: the record's conditional
//! `Put`, one conditional `ADD` per counter and, for a sign-in code, a
//! `ConditionCheck` of the wrong-code counter. DynamoDB applies it whole or
//! not at all and serializes it against every other transaction on the same
//! items, so fifty concurrent sends against a limit of five make exactly five
//! pass, and a refused send leaves every counter as it was. A transaction
//! that meets another one on the same item is cancelled with
//! `TransactionConflict` and retried here a few times (with jitter) within
//! the trigger's budget.
//!
//! DynamoDB's TTL deletes expired items lazily (within days), so the
//! conditions also compare `expires_at` with now; counters need not, since
//! every window has its own key.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use challenge_code::HashingSecret;

use crate::{
    ALLOWANCE_TTL_SECS, ALLOWED, AccountChange, Admission, Channel, ContactCheck,
    EXPIRY_GRACE_SECS, HELD, LimitKind, LimitSpec, Limiter, LimiterError, Limits, Outgoing,
    Reservation, account_changes_key, code_failure_key, contact_key, counter_key, record_pk,
};

/// Attempts of one decision when transactions conflict.
const CONFLICT_ATTEMPTS: u32 = 4;

/// The limiter over one table; built once at init from the shared SDK
/// configuration (so `AWS_ENDPOINT_URL` and the time budget apply).
#[derive(Debug, Clone)]
pub struct DynamoLimiter {
    client: Client,
    table: String,
    limits: Limits,
    key: std::sync::Arc<HashingSecret>,
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

fn build_error(e: impl std::fmt::Display) -> LimiterError {
    LimiterError::Unavailable(format!("a request could not be built: {e}"))
}

/// What each item of a send's transaction stands for, in order.
#[derive(Debug, Clone, Copy)]
enum Role {
    Record,
    Limit(LimitKind, LimitSpec),
    Lockout,
    Contact,
    Grant,
}

impl DynamoLimiter {
    /// The service the limiter calls, for the init phase's warm-up.
    pub fn service(&self, sdk: &sdk_config::aws_config::SdkConfig) -> sdk_config::Service {
        sdk_config::Service::new("dynamodb", "dynamodb", "DYNAMODB", sdk)
    }

    /// `None` when `limits` names no table (no limit is set). `key` is the
    /// limiter's key (`HashingSecret::load_limit_key`).
    pub fn new(client: Client, limits: Limits, key: HashingSecret) -> Option<Self> {
        let table = limits.table.clone()?;
        Some(Self {
            client,
            table,
            limits,
            key: std::sync::Arc::new(key),
        })
    }

    /// A limiter with a DynamoDB client built from `sdk`, or `None` (and no
    /// client built, which would cost the init for nothing) when `limits`
    /// names no table.
    pub fn from_config(
        sdk: &sdk_config::aws_config::SdkConfig,
        limits: Limits,
        key: HashingSecret,
    ) -> Option<Self> {
        limits.table.as_ref()?;
        Self::new(Client::new(sdk), limits, key)
    }

    /// The limiter a function runs with: `None` when `limits` names no
    /// table; otherwise its key is loaded
    /// ([`HashingSecret::load_limit_key`]: `LIMIT_KEY_SECRET_ARN`, or the
    /// challenge secret under its own label), and a missing or unreadable
    /// key fails the init phase.
    pub async fn load(
        sdk: &sdk_config::aws_config::SdkConfig,
        limits: Limits,
        source: &(impl auth_policy::ConfigSource + ?Sized),
    ) -> Result<Option<Self>, challenge_code::SecretError> {
        if limits.table.is_none() {
            return Ok(None);
        }
        let key = HashingSecret::load_limit_key(source, Some(sdk)).await?;
        Ok(Self::from_config(sdk, limits, key))
    }

    /// One counter's conditional `ADD` in a transaction: refused once the
    /// window's count is reached.
    fn count_one(
        &self,
        key: String,
        spec: LimitSpec,
        now: u64,
    ) -> Result<TransactWriteItem, LimiterError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(key))
            .update_expression("ADD #n :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(#n) OR #n < :limit")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(u64::from(spec.count)))
            .expression_attribute_values(":expires", n(spec.window_end(now) + EXPIRY_GRACE_SECS))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The transaction's items for `out`, with what each stands for.
    fn items(
        &self,
        out: &Outgoing<'_>,
    ) -> Result<(Vec<TransactWriteItem>, Vec<Role>), LimiterError> {
        let mut items = Vec::new();
        let mut roles = Vec::new();
        let condition = match out.contact {
            ContactCheck::None => None,
            ContactCheck::Allowance => Some("#state = :allowed AND expires_at >= :now"),
            ContactCheck::NotHeld => {
                Some("attribute_not_exists(pk) OR #state = :allowed OR expires_at < :now")
            }
        };
        if let Some(condition) = condition {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(
                    "pk",
                    s(contact_key(
                        &self.key,
                        out.channel,
                        out.pool,
                        out.user,
                        out.destination,
                    )),
                )
                .condition_expression(condition)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":allowed", s(ALLOWED))
                .expression_attribute_values(":now", n(out.now))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
            roles.push(Role::Contact);
        }
        if let (Some(pk), Some(dedup)) = (record_pk(&self.key, out), &out.dedup) {
            let mut put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(pk))
                .item("expires_at", n(out.now + dedup.ttl))
                .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                .expression_attribute_values(":now", n(out.now))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            if let Some(memo) = &dedup.memo {
                put = put.item("memo", s(memo.clone()));
            }
            items.push(
                TransactWriteItem::builder()
                    .put(put.build().map_err(build_error)?)
                    .build(),
            );
            roles.push(Role::Record);
        }
        for (kind, spec) in self.limits.send_limits(out.channel) {
            let key = counter_key(&self.key, kind, out, spec);
            items.push(self.count_one(key, spec, out.now)?);
            roles.push(Role::Limit(kind, spec));
        }
        if out.check_lockout
            && let Some(spec) = self.limits.code_failures_per_user
        {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key(
                    "pk",
                    s(code_failure_key(
                        &self.key, out.pool, out.user, spec, out.now,
                    )),
                )
                .condition_expression("attribute_not_exists(#n) OR #n < :limit")
                .expression_attribute_names("#n", "n")
                .expression_attribute_values(":limit", n(u64::from(spec.count)))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
            roles.push(Role::Lockout);
        }
        Ok((items, roles))
    }

    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        roles: &[Role],
    ) -> Result<Admission, LimiterError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(Admission::Send),
                Err(e) => e,
            };
            let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                e.as_service_error()
            else {
                return Err(unavailable("TransactWriteItems", &e));
            };
            let reasons = c.cancellation_reasons();
            let failed = |i: usize| {
                reasons
                    .get(i)
                    .and_then(|r| r.code())
                    .is_some_and(|code| code == "ConditionalCheckFailed")
            };
            // The lockout first (a locked-out user gets no code, not even
            // the one already sent), then the record (a retry of a send made
            // already), then the narrowest limit.
            let rank = |role: &Role| match role {
                Role::Contact => 0,
                Role::Lockout => 1,
                Role::Record => 2,
                Role::Limit(..) | Role::Grant => 3,
            };
            let mut order: Vec<usize> = (0..roles.len()).collect();
            order.sort_by_key(|&i| rank(&roles[i]));
            for i in order {
                if !failed(i) {
                    continue;
                }
                let role = &roles[i];
                return Ok(match *role {
                    Role::Record => Admission::Duplicate {
                        memo: reasons
                            .get(i)
                            .and_then(|r| r.item())
                            .and_then(|item| item.get("memo"))
                            .and_then(|v| v.as_s().ok())
                            .map(ToOwned::to_owned),
                    },
                    Role::Limit(kind, spec) => Admission::Limited(kind, spec),
                    Role::Lockout => Admission::LockedOut,
                    Role::Contact => Admission::ContactChangeRefused,
                    // An unconditional put never fails its condition.
                    Role::Grant => continue,
                });
            }
            let conflict = reasons
                .iter()
                .any(|r| r.code() == Some("TransactionConflict"));
            if !conflict || attempt >= CONFLICT_ATTEMPTS {
                return Err(unavailable("TransactWriteItems", &e));
            }
            // Another instance's transaction held one of the items: try
            // again shortly, spread out.
            let wait = 5 * u64::from(attempt) + fastrand::u64(0..=10);
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    async fn add_to_code_failures(
        &self,
        pool: &str,
        user: &str,
        now: u64,
        spec: LimitSpec,
        delta: i64,
        condition: Option<u32>,
    ) -> Result<Option<u32>, LimiterError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(code_failure_key(&self.key, pool, user, spec, now)))
            .update_expression("ADD #n :delta SET expires_at = :expires")
            .expression_attribute_names("#n", "n")
            .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
            .expression_attribute_values(":expires", n(spec.window_end(now) + EXPIRY_GRACE_SECS))
            .return_values(ReturnValue::UpdatedNew);
        match condition {
            Some(limit) => {
                update = update
                    .condition_expression("attribute_not_exists(#n) OR #n < :limit")
                    .expression_attribute_values(":limit", n(u64::from(limit)));
            }
            None if delta < 0 => {
                update = update
                    .condition_expression("#n > :zero")
                    .expression_attribute_values(":zero", n(0));
            }
            None => {}
        }
        match update.send().await {
            Ok(out) => Ok(Some(
                out.attributes()
                    .and_then(|a| a.get("n"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            Err(e) if condition_failed(&e) => Ok(None),
            Err(e) => Err(unavailable("UpdateItem", &e)),
        }
    }
}

impl Limiter for DynamoLimiter {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn record_key(&self, out: &Outgoing<'_>) -> Option<String> {
        record_pk(&self.key, out)
    }

    async fn admit(&self, out: &Outgoing<'_>) -> Result<Admission, LimiterError> {
        let (items, roles) = self.items(out)?;
        if items.is_empty() {
            return Ok(Admission::Send);
        }
        self.transact(items, &roles).await
    }

    async fn change_account(&self, change: &AccountChange<'_>) -> Result<Admission, LimiterError> {
        let mut items = Vec::new();
        let mut roles = Vec::new();
        if let Some(spec) = self.limits.account_changes_per_user {
            let key = account_changes_key(&self.key, change.pool, change.user, spec, change.now);
            items.push(self.count_one(key, spec, change.now)?);
            roles.push(Role::Limit(LimitKind::AccountChanges, spec));
        }
        if let Some((channel, address)) = change.allowance {
            let put = Put::builder()
                .table_name(&self.table)
                .item(
                    "pk",
                    s(contact_key(
                        &self.key,
                        channel,
                        change.pool,
                        change.user,
                        address,
                    )),
                )
                .item("state", s(ALLOWED))
                .item("expires_at", n(change.now + ALLOWANCE_TTL_SECS))
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().put(put).build());
            roles.push(Role::Grant);
        }
        if items.is_empty() {
            return Ok(Admission::Send);
        }
        self.transact(items, &roles).await
    }

    async fn hold_contact(
        &self,
        channel: Channel,
        pool: &str,
        user: &str,
        address: &str,
        now: u64,
    ) -> Result<bool, LimiterError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                s(contact_key(&self.key, channel, pool, user, address)),
            )
            .item("state", s(HELD))
            .item("expires_at", n(now + crate::HOLD_TTL_SECS))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    async fn forget(&self, out: &Outgoing<'_>) -> Result<(), LimiterError> {
        let Some(pk) = record_pk(&self.key, out) else {
            return Ok(());
        };
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
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
            .key("pk", s(code_failure_key(&self.key, pool, user, spec, now)))
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
        Ok(self
            .add_to_code_failures(pool, user, now, spec, 1, None)
            .await?
            .unwrap_or(0))
    }

    async fn reserve_code_attempt(
        &self,
        pool: &str,
        user: &str,
        now: u64,
    ) -> Result<Reservation, LimiterError> {
        let Some(spec) = self.limits.code_failures_per_user else {
            return Ok(Reservation::Unlimited);
        };
        Ok(
            match self
                .add_to_code_failures(pool, user, now, spec, 1, Some(spec.count))
                .await?
            {
                Some(_) => Reservation::Reserved,
                None => Reservation::LockedOut,
            },
        )
    }

    async fn return_code_attempt(
        &self,
        pool: &str,
        user: &str,
        now: u64,
        record: Option<&str>,
    ) -> Result<(), LimiterError> {
        let give_back = async {
            match self.limits.code_failures_per_user {
                Some(spec) => self
                    .add_to_code_failures(pool, user, now, spec, -1, None)
                    .await
                    .map(drop),
                None => Ok(()),
            }
        };
        let delete = async {
            match record.filter(|r| crate::is_challenge_record(r)) {
                Some(pk) => self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(pk))
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| unavailable("DeleteItem", &e)),
                None => Ok(()),
            }
        };
        let (a, b) = tokio::join!(give_back, delete);
        a.and(b)
    }
}
