//! The error of a failed direct invocation, as Lambda reports it: `errorType` is the error's
//! code (`base_image_not_found`, `budget_exhausted`, ...) and `errorMessage` the same JSON
//! body an HTTP caller gets, so a failure destination or a Step Functions `Catch` can tell
//! failures apart without parsing text.

use lambda_http::lambda_runtime::Diagnostic;

use super::http::ApiError;

/// A direct invocation that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationError {
    /// The error's code, Lambda's `errorType`.
    pub code: String,
    /// The JSON error body, Lambda's `errorMessage`.
    pub body: String,
}

impl InvocationError {
    /// The invocation error of an API error, logged here once.
    pub fn from_api(error: &ApiError) -> Self {
        tracing::error!(status = error.status().as_u16(), code = error.code(), %error, "direct invocation failed");
        Self {
            code: error.code().to_owned(),
            body: error.body().to_string(),
        }
    }

    /// The invocation error of an answer kept on an idempotency record: its code is the one
    /// in its body.
    pub fn from_stored_body(body: String) -> Self {
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| value["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "stored_failure".to_owned());
        Self { code, body }
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Self {
        Self {
            error_type: error.code,
            error_message: error.body,
        }
    }
}
