//! An image's caption file, `{actor_name}_{n}.txt` beside it: what LoRA trainers read. The
//! manifest entry's `caption` is the authority and the file is written from it, with the
//! image's metadata so that it is known to be the service's. A file the service did not
//! write is never overwritten: the caption stays in the manifest, and an export writes it.

use std::sync::Arc;

use super::generate_image::GenerateImage;
use crate::domain::naming::caption_key;
use crate::ports::{ImageMetadata, ObjectStore, WriteCondition, WriteOutcome};

/// The caption file's content type.
const CAPTION_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// Whether a caption file the service wrote before is written over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionWrite {
    /// Only a new file: the store step's (a second collector of the image, which may come
    /// after an artist corrected the caption, must not write the first caption back).
    New,
    /// Over the service's own file too: an artist's correction.
    Correction,
}

/// How a caption file's write ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionFile {
    /// The file holds the caption.
    Written,
    /// A file the service did not write is there, and is left as it is.
    Foreign,
}

impl<P, O: ObjectStore, C, G, K, R> GenerateImage<P, O, C, G, K, R> {
    /// Writes the caption beside `image_key`: a new file, or (for a [`CaptionWrite::Correction`])
    /// over the one written for this image before. Tried again on a concurrent write (409).
    pub(super) async fn write_caption_file(
        &self,
        image_key: &str,
        caption: &str,
        image: &ImageMetadata,
        mode: CaptionWrite,
    ) -> Result<CaptionFile, String> {
        let key = caption_key(image_key);
        let bytes = Arc::new(caption.as_bytes().to_vec());
        let mut condition = WriteCondition::IfAbsent;
        for _ in 0..4 {
            let written = self
                .objects
                .write(
                    &key,
                    Arc::clone(&bytes),
                    CAPTION_CONTENT_TYPE,
                    condition.clone(),
                    Some(image),
                )
                .await
                .map_err(|error| error.to_string())?;
            match written {
                WriteOutcome::Written => return Ok(CaptionFile::Written),
                WriteOutcome::Conflict => continue,
                WriteOutcome::PreconditionFailed => {}
            }
            // There is a file: rewritten only when this image's prediction wrote it, and
            // only if it is still that one.
            let Some(current) = self
                .objects
                .head(&key)
                .await
                .map_err(|error| error.to_string())?
            else {
                condition = WriteCondition::IfAbsent;
                continue;
            };
            if current.written_by() != Some(image.prediction_id.as_str()) {
                return Ok(CaptionFile::Foreign);
            }
            if mode == CaptionWrite::New {
                return Ok(CaptionFile::Written);
            }
            condition = WriteCondition::IfMatch(current.etag);
        }
        Err(format!(
            "{key}: the caption file kept changing while it was written"
        ))
    }
}
