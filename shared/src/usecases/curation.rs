//! The artist's view of an actor's training data: [`GenerateImage::list_images`] lists the
//! manifest's images newest first with their decisions and previews, a page at a time;
//! [`GenerateImage::decide`] records a keep, a reject or a corrected caption in the
//! manifest's `curation` map (an `If-Match` read-modify-write, like every writer of the
//! manifest, so that concurrent decisions and generations lose nothing) and rewrites the
//! caption file from the corrected caption.

use std::time::Duration;

use super::UseCaseError;
use super::caption_file::CaptionWrite;
use super::generate_image::GenerateImage;
use super::manifest_rewrite::{RewriteError, rewrite_manifest};
use crate::domain::actor::ActorId;
use crate::domain::caption::trigger_word;
use crate::domain::curation::{
    CuratedImage, CurationError, Decision, curated_images, record_decision,
};
use crate::domain::naming::manifest_key;
use crate::ports::{ActorProfiles, Clock, ImageMetadata, ObjectStore};

/// The most images one page lists.
pub const MAX_PAGE_SIZE: usize = 100;

/// How long a listed image's `preview_url` lives.
const PREVIEW_LIFETIME: Duration = Duration::from_secs(3_600);

/// One page of an actor's images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagesPage {
    /// The actor's name (its folder).
    pub actor_name: String,
    /// The word that stands for `[trigger]` in the captions (the profile's `trigger_word`,
    /// else one derived from the actor's name).
    pub trigger_word: String,
    /// The page's images, newest first, each with its preview URL (none if it could not be
    /// signed or the entry names no key).
    pub images: Vec<(CuratedImage, Option<String>)>,
    /// Every image's status, counted over all pages, in the order of
    /// [`ImageStatus::ALL`](crate::domain::curation::ImageStatus::ALL).
    pub counts: [usize; 3],
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<usize>,
}

/// The actor's name (its profile's, else its id) and trigger word (the profile's, else one
/// derived from the name).
pub(super) async fn actor_words(
    profiles: &impl ActorProfiles,
    actor_id: &ActorId,
) -> Result<(String, String), UseCaseError> {
    let profile = profiles.profile(actor_id).await?.unwrap_or_default();
    let actor_name = profile
        .actor_name
        .unwrap_or_else(|| actor_id.as_str().to_owned());
    let word = trigger_word(profile.trigger_word.as_deref(), &actor_name);
    Ok((actor_name, word))
}

impl<P: ActorProfiles, O: ObjectStore, C, G, K: Clock, R> GenerateImage<P, O, C, G, K, R> {
    /// A presigned GET of the image, when its entry names a key and it can be signed.
    async fn preview(&self, image: &CuratedImage) -> Option<String> {
        let key = image.s3_key.as_deref()?;
        self.objects.presigned_get(key, PREVIEW_LIFETIME).await.ok()
    }

    /// The actor's name and trigger word.
    async fn actor_words(&self, actor_id: &ActorId) -> Result<(String, String), UseCaseError> {
        actor_words(&self.profiles, actor_id).await
    }

    /// A page of `limit` images, newest first, starting below position `cursor` (the
    /// previous page's `next_cursor`; the newest when `None`).
    pub async fn list_images(
        &self,
        actor_id: &ActorId,
        limit: usize,
        cursor: Option<usize>,
    ) -> Result<ImagesPage, UseCaseError> {
        let (actor_name, trigger_word) = self.actor_words(actor_id).await?;
        let manifest = self
            .objects
            .read_versioned(&manifest_key(&actor_name))
            .await?;
        let images = curated_images(manifest.as_ref().map(|m| m.bytes.as_slice()))
            .map_err(CurationError::from)?;
        let mut counts = [0; 3];
        for image in &images {
            counts[image.status.rank()] += 1;
        }
        let below = cursor.unwrap_or(usize::MAX);
        let mut newest_first = images.into_iter().rev().filter(|i| i.position < below);
        let page: Vec<CuratedImage> = newest_first.by_ref().take(limit).collect();
        let next_cursor = match (newest_first.next(), page.last()) {
            (Some(_), Some(last)) => Some(last.position),
            _ => None,
        };
        let mut images = Vec::with_capacity(page.len());
        for image in page {
            let preview = self.preview(&image).await;
            images.push((image, preview));
        }
        Ok(ImagesPage {
            actor_name,
            trigger_word,
            images,
            counts,
            next_cursor,
        })
    }

    /// Records `decision` on the image named `filename` for `decided_by`, and rewrites its
    /// caption file when the caption changed; the image as listed after it, with its
    /// preview.
    pub async fn decide(
        &self,
        actor_id: &ActorId,
        filename: &str,
        decision: &Decision,
        decided_by: &str,
    ) -> Result<(CuratedImage, Option<String>), UseCaseError> {
        let (actor_name, _) = self.actor_words(actor_id).await?;
        let key = manifest_key(&actor_name);
        let written = self
            .write_decision(&key, filename, decision, decided_by)
            .await?;
        let image = curated_images(Some(&written))
            .map_err(CurationError::from)?
            .into_iter()
            .find(|image| image.filename == filename)
            .ok_or_else(|| CurationError::UnknownImage(filename.to_owned()))?;
        if let (Some(caption), Some(image_key)) = (&decision.caption, &image.s3_key) {
            let writer = caption_writer(&image, &self.clock.now_rfc3339());
            let written = self
                .write_caption_file(image_key, caption, &writer, CaptionWrite::Correction)
                .await;
            match written {
                Ok(_) => {}
                // The manifest has it: an export writes the caption from there.
                Err(error) => {
                    tracing::error!(actor = %actor_id, filename, %error, "caption decided but its file not rewritten");
                }
            }
        }
        tracing::info!(actor = %actor_id, filename, status = image.status.as_str(), decided_by, "image decided");
        let preview = self.preview(&image).await;
        Ok((image, preview))
    }

    /// The decision merged into the manifest at `key` under `If-Match`, merged again over a
    /// fresh read when another writer got there first; the manifest written.
    async fn write_decision(
        &self,
        key: &str,
        filename: &str,
        decision: &Decision,
        decided_by: &str,
    ) -> Result<Vec<u8>, UseCaseError> {
        let merge = |current: Option<&[u8]>| match current {
            Some(bytes) => record_decision(
                bytes,
                filename,
                decision,
                decided_by,
                &self.clock.now_rfc3339(),
            ),
            None => Err(CurationError::UnknownImage(filename.to_owned())),
        };
        match rewrite_manifest(&self.objects, &self.clock, key, merge).await {
            Ok(written) => Ok(written),
            Err(RewriteError::Merge(error)) => Err(error.into()),
            Err(RewriteError::Store(error)) => Err(error.into()),
        }
    }
}

/// The writer of a legacy entry's caption file: ASCII, as object metadata must be.
fn legacy_writer(filename: &str) -> String {
    let printable = filename.bytes().all(|b| b.is_ascii_graphic());
    if printable {
        format!("curation:{filename}")
    } else {
        let hex: String = filename.bytes().map(|b| format!("{b:02x}")).collect();
        format!("curation:{hex}")
    }
}

/// Who writes a decided caption's file: the image's prediction when the entry names it (so
/// the file the store step wrote is rewritten), else a writer of the legacy entry's own.
fn caption_writer(image: &CuratedImage, now: &str) -> ImageMetadata {
    ImageMetadata {
        prediction_id: image
            .prediction_id
            .clone()
            .unwrap_or_else(|| legacy_writer(&image.filename)),
        prompt_id: image.prompt_id.clone(),
        prompt: None,
        seed: None,
        model: String::new(),
        created_at: image.created_at.clone().unwrap_or_else(|| now.to_owned()),
    }
}
