//! Reading and writing item attributes, and telling a failed condition from a fault: what
//! every DynamoDB adapter of the service needs alike.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::ports::StoreError;

/// An item as the SDK gives it.
pub type Item = HashMap<String, AttributeValue>;

/// A number attribute.
pub fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A string attribute.
pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// A string attribute's value, if the item has one by that name.
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// A number attribute's value, if the item has one by that name that fits a `u64`.
pub fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// A fault of the named call, with the SDK's whole error chain as its detail (for logs).
pub fn fault(operation: &'static str, error: impl std::error::Error + 'static) -> StoreError {
    StoreError {
        operation,
        detail: DisplayErrorContext(error).to_string(),
    }
}

/// Whether the call failed only because its condition did not hold.
pub fn is_condition_failure<E: ProvideCondition>(error: &SdkError<E, HttpResponse>) -> bool {
    error
        .as_service_error()
        .is_some_and(ProvideCondition::is_condition_failure)
}

/// Service errors that can say "the condition did not hold".
pub trait ProvideCondition {
    /// Whether this is `ConditionalCheckFailedException`.
    fn is_condition_failure(&self) -> bool;
}

impl ProvideCondition for aws_sdk_dynamodb::operation::put_item::PutItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ProvideCondition for aws_sdk_dynamodb::operation::update_item::UpdateItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}

impl ProvideCondition for aws_sdk_dynamodb::operation::delete_item::DeleteItemError {
    fn is_condition_failure(&self) -> bool {
        self.is_conditional_check_failed_exception()
    }
}
