//! Who is calling: the JWT's subject (or the IAM caller), for scoping idempotency keys and
//! recording who asked for a set; and the `Idempotency-Key` header, checked and scoped.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use super::http::ApiError;

/// The longest idempotency key accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The request's `Idempotency-Key`, checked and scoped to its caller.
pub fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    match request.headers().get("idempotency-key") {
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| ApiError::InvalidIdempotencyKey)?;
            Ok(Some(scoped_key(&caller(request), key)?))
        }
        None => Ok(None),
    }
}

/// Who is calling, for scoping idempotency keys: the JWT's subject, the IAM caller's ARN, or
/// `public` when the API has no authorizer (local runs).
pub fn caller(request: &Request) -> String {
    let authorizer = request
        .request_context_ref()
        .and_then(RequestContext::authorizer);
    let jwt_subject = authorizer
        .and_then(|a| a.jwt.as_ref())
        .and_then(|jwt| jwt.claims.get("sub"))
        .map(|sub| format!("jwt:{sub}"));
    let iam_caller = authorizer
        .and_then(|a| a.iam.as_ref())
        .and_then(|iam| iam.user_arn.as_ref())
        .map(|arn| format!("iam:{arn}"));
    jwt_subject
        .or(iam_caller)
        .unwrap_or_else(|| "public".to_owned())
}

/// The key as stored: `{scope}#{key}`, after checking it is 1 to 255 printable ASCII
/// characters.
pub fn scoped_key(scope: &str, key: &str) -> Result<String, ApiError> {
    let valid = !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    Ok(format!("{scope}#{key}"))
}
