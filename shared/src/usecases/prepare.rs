//! The prepare step: the request checked completely (its fields, the actor's profile, the
//! base photo) before anything is written or paid for. Every refusal comes from here.
//!
//! The profile is read concurrently with the base photo when the request names one the actor
//! may use; the photo's start is read with its size in one ranged GET, and checked (there,
//! an image, within the cap) before anything is paid for.

use std::time::Duration;

use super::UseCaseError;
use super::concurrently::both;
use super::generate_image::{GenerateImage, ImageOrder, PreparedGeneration};
use crate::domain::actor::{ActorId, choose_descriptor};
use crate::domain::base_photo::image_type;
use crate::domain::request::{ImageRequest, RequestError, resolve_actor};
use crate::ports::{ActorProfiles, InputImage, ObjectStart, ObjectStore, PredictionRequest};

/// How long a presigned URL of the base photo lives (the model fetches it once).
const INPUT_URL_LIFETIME: Duration = Duration::from_secs(600);
/// The most of a base photo read: all of one whose data URI fits (with the longest MIME type,
/// `image/jpeg`), else enough to tell an image by its first bytes and send it by URL.
const INLINE_READ_BYTES: u64 =
    ((InputImage::MAX_DATA_URI_LEN - "data:image/jpeg;base64,".len()) / 4 * 3) as u64;

impl<P: ActorProfiles, O: ObjectStore, C, G, K, R> GenerateImage<P, O, C, G, K, R> {
    /// Checks the request completely (its fields, the profile, the base photo) without writing or paying
    /// anything: every refusal comes from here.
    pub async fn prepare(
        &self,
        actor_id: &ActorId,
        request: &ImageRequest,
    ) -> Result<PreparedGeneration, UseCaseError> {
        let checked = request.check(&self.settings.bucket)?;
        let requested_by = request.requested_by.clone();
        // A photo named in the request is read concurrently with the profile only when it is allowed for
        // the actor's id, and the request claims no other name: the usual case (actors named by
        // their id). Any other key is read once the profile has allowed it, so a key refused
        // for the actor is never read on a caller's word.
        let claims_another_name = checked
            .actor_name
            .as_deref()
            .is_some_and(|name| name != actor_id.as_str());
        let early_key = checked.base_image_key.as_deref().filter(|key| {
            !claims_another_name
                && self
                    .settings
                    .base_image_prefixes
                    .allows(actor_id.as_str(), key)
        });
        let early_photo = async {
            match early_key {
                Some(key) => self.objects.read_start(key, INLINE_READ_BYTES).await,
                None => Ok(None),
            }
        };
        let (profile, early_photo) = both(self.profiles.profile(actor_id), early_photo).await;
        let profile = profile?;
        let actor = resolve_actor(
            actor_id,
            &checked,
            profile.as_ref(),
            &self.settings.bucket,
            &self.settings.base_image_prefixes,
        )?;
        // The early read, when there was one, is of the resolved key: the request's.
        let photo = match early_key {
            Some(_) => early_photo?,
            None => {
                self.objects
                    .read_start(&actor.base_image_key, INLINE_READ_BYTES)
                    .await?
            }
        };
        let input_image = self.input_image(&actor.base_image_key, photo).await?;
        let (descriptor, _) = choose_descriptor(actor_id, profile.as_ref());
        let prompt = checked.choose_prompt(descriptor);
        let request = PredictionRequest {
            prompt: prompt.text.clone(),
            input_image,
            seed: checked.seed,
            webhook: None,
        };
        Ok(PreparedGeneration {
            order: ImageOrder {
                actor,
                prompt,
                seed: checked.seed,
                requested_by,
            },
            request,
        })
    }

    /// The photo, checked (there, within the cap, starting like an image): inline when it was
    /// read whole and its data URI fits, else by a presigned URL.
    async fn input_image(
        &self,
        key: &str,
        photo: Option<ObjectStart>,
    ) -> Result<InputImage, UseCaseError> {
        let photo = photo.ok_or_else(|| RequestError::BaseImageNotFound(key.to_owned()))?;
        if photo.size > self.settings.max_base_image_bytes {
            return Err(RequestError::BaseImageTooLarge {
                key: key.to_owned(),
                size: photo.size,
                limit: self.settings.max_base_image_bytes,
            }
            .into());
        }
        let content_type = image_type(&photo.bytes)
            .ok_or_else(|| RequestError::BaseImageNotAnImage(key.to_owned()))?;
        let whole = photo.bytes.len() as u64 == photo.size;
        let fits = usize::try_from(photo.size).is_ok_and(|size| {
            InputImage::data_uri_len(content_type, size) <= InputImage::MAX_DATA_URI_LEN
        });
        if whole && fits {
            return Ok(InputImage::Inline {
                content_type: content_type.to_owned(),
                bytes: photo.bytes,
            });
        }
        Ok(InputImage::Url(
            self.objects.presigned_get(key, INPUT_URL_LIFETIME).await?,
        ))
    }
}
