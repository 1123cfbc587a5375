//! Replicate's webhook signatures (the Standard Webhooks scheme): HMAC-SHA256, keyed by the
//! base64-decoded part of the `whsec_` secret, over `{webhook-id}.{webhook-timestamp}.{body}`;
//! `webhook-signature` holds space-separated `v1,<base64>` entries, any of which may match.
//! Each is compared in constant time, and a timestamp more than five minutes off is refused
//! (a replayed delivery).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use std::sync::Arc;

use crate::adapters::operations;
use crate::adapters::ssm::SecureParameter;
use crate::ports::StoreError;

/// How far a delivery's timestamp may be from the clock, either way.
pub const TIMESTAMP_TOLERANCE_SECS: u64 = 5 * 60;

/// The account's webhook signing secret. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl WebhookSecret {
    /// Reads `whsec_<base64>` (the prefix optional, as Replicate's libraries accept it);
    /// `None` when the rest is not base64 or is empty.
    pub fn parse(secret: &str) -> Option<Self> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        let key = STANDARD
            .decode(encoded)
            .ok()
            .filter(|key| !key.is_empty())?;
        Some(Self { key })
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Where the signing secret comes from: the environment (local use), or an SSM
/// SecureString read on the first delivery and kept for the execution environment.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// A secret given at start.
    Static(WebhookSecret),
    /// The parameter that holds it.
    Parameter(Arc<SecureParameter>),
}

impl SecretSource {
    /// The secret; a failed read is a fault (the delivery is answered 5xx and comes again).
    pub async fn secret(&self) -> Result<WebhookSecret, StoreError> {
        match self {
            Self::Static(secret) => Ok(secret.clone()),
            Self::Parameter(parameter) => {
                let value = parameter.value().await?;
                WebhookSecret::parse(&value).ok_or_else(|| StoreError {
                    operation: operations::TOKEN_READ,
                    detail: "the webhook secret parameter does not hold a whsec_ secret".to_owned(),
                })
            }
        }
    }
}

/// The signature headers of a delivery, as received (`None` when absent).
#[derive(Debug, Clone, Copy)]
pub struct SignatureHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`, seconds since the epoch.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

impl SignatureHeaders<'_> {
    /// Whether each header is there, before anything else is done with the delivery.
    pub fn require_present(&self) -> Result<(), SignatureError> {
        present(self.id, "webhook-id")?;
        present(self.timestamp, "webhook-timestamp")?;
        present(self.signature, "webhook-signature")?;
        Ok(())
    }
}

/// Why a delivery is not taken as Replicate's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// A signature header is missing or empty.
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// `webhook-timestamp` is not a number of seconds.
    #[error("the webhook-timestamp header is not a number of seconds")]
    BadTimestamp,
    /// The timestamp is more than five minutes from the clock.
    #[error("the delivery's timestamp is more than 5 minutes off")]
    Stale,
    /// No `v1` entry matches the body.
    #[error("no signature matches the delivery")]
    Mismatch,
}

/// Checks that `body` with `headers` was signed with `secret`, at `now_epoch_secs`.
pub fn verify(
    secret: &WebhookSecret,
    headers: SignatureHeaders<'_>,
    body: &[u8],
    now_epoch_secs: u64,
) -> Result<(), SignatureError> {
    let id = present(headers.id, "webhook-id")?;
    let timestamp = present(headers.timestamp, "webhook-timestamp")?;
    let signatures = present(headers.signature, "webhook-signature")?;
    let sent_at: u64 = timestamp
        .parse()
        .map_err(|_| SignatureError::BadTimestamp)?;
    if sent_at.abs_diff(now_epoch_secs) > TIMESTAMP_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&secret.key) else {
        return Err(SignatureError::Mismatch);
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|candidate| mac.clone().verify_slice(&candidate).is_ok());
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// A header's trimmed value, or why it is missing.
fn present<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, SignatureError> {
    value
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or(SignatureError::Missing(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A vector of the Standard Webhooks specification's own test suite.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    const NOW: u64 = 1_614_265_330;

    fn headers(signature: &str) -> SignatureHeaders<'_> {
        SignatureHeaders {
            id: Some(ID),
            timestamp: Some(TIMESTAMP),
            signature: Some(signature),
        }
    }

    fn secret() -> WebhookSecret {
        WebhookSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn the_specifications_vector_verifies() {
        assert_eq!(verify(&secret(), headers(SIGNATURE), BODY, NOW), Ok(()));
        let among_others = format!("v2,abc v1,bm90IGl0 {SIGNATURE}");
        assert_eq!(verify(&secret(), headers(&among_others), BODY, NOW), Ok(()));
    }

    #[test]
    fn tampered_forged_stale_and_unsigned_deliveries_are_refused() {
        let mismatch = Err(SignatureError::Mismatch);
        assert_eq!(
            verify(&secret(), headers(SIGNATURE), br#"{"test": 1}"#, NOW),
            mismatch
        );
        let other = WebhookSecret::parse("whsec_c2VjcmV0LW9mLXNvbWVvbmUtZWxzZQ==").unwrap();
        assert_eq!(verify(&other, headers(SIGNATURE), BODY, NOW), mismatch);
        let v2_only = SIGNATURE.replacen("v1,", "v2,", 1);
        assert_eq!(verify(&secret(), headers(&v2_only), BODY, NOW), mismatch);
        let cut = &SIGNATURE[..SIGNATURE.len() - 4];
        assert_eq!(verify(&secret(), headers(cut), BODY, NOW), mismatch);
        let moved_id = SignatureHeaders {
            id: Some("msg_other"),
            ..headers(SIGNATURE)
        };
        assert_eq!(verify(&secret(), moved_id, BODY, NOW), mismatch);

        let tolerance = TIMESTAMP_TOLERANCE_SECS;
        assert_eq!(
            verify(&secret(), headers(SIGNATURE), BODY, NOW + tolerance),
            Ok(())
        );
        assert_eq!(
            verify(&secret(), headers(SIGNATURE), BODY, NOW - tolerance),
            Ok(())
        );
        for now in [NOW + tolerance + 1, NOW - tolerance - 1] {
            let stale = verify(&secret(), headers(SIGNATURE), BODY, now);
            assert_eq!(stale, Err(SignatureError::Stale));
        }
        let bad_time = SignatureHeaders {
            timestamp: Some("soon"),
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&secret(), bad_time, BODY, NOW),
            Err(SignatureError::BadTimestamp)
        );
        let unsigned = SignatureHeaders {
            signature: None,
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&secret(), unsigned, BODY, NOW),
            Err(SignatureError::Missing("webhook-signature"))
        );
        let no_id = SignatureHeaders {
            id: Some(" "),
            ..headers(SIGNATURE)
        };
        assert_eq!(
            verify(&secret(), no_id, BODY, NOW),
            Err(SignatureError::Missing("webhook-id"))
        );
    }

    #[test]
    fn secrets_are_read_with_or_without_their_prefix_and_never_printed() {
        assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_some());
        assert!(WebhookSecret::parse("whsec_").is_none());
        assert!(WebhookSecret::parse("whsec_not base64!").is_none());
        assert_eq!(format!("{:?}", secret()), "WebhookSecret(..)");
    }
}
