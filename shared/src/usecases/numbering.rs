//! The numbering rule: an actor's images are numbered by its counter, seeded from the bucket
//! on first use (the highest `{actor_name}_{n}.jpg` there, plus one). An index is taken only
//! once a prediction has succeeded (docs/design.md, invariant 2), and a name found taken (a
//! stray file, a legacy one) takes the next index rather than overwrite anything.

use std::sync::Arc;

use super::generate_image::GenerateImage;
use crate::domain::naming::{image_key, index_of_key, training_folder};
use crate::ports::{IndexCounter, ObjectStore, StoreError, WriteCondition, WriteOutcome};

/// How many names an image may try before giving up (each taken name takes a new index).
const MAX_IMAGE_NAME_ATTEMPTS: u32 = 8;

impl<P, O: ObjectStore, C: IndexCounter, G, K> GenerateImage<P, O, C, G, K> {
    /// Writes the image under `index`'s name, or under a name nobody has: each name found
    /// taken (a stray file, a legacy one) takes a new index.
    ///
    /// A 412 can also answer the SDK's own retry of a write whose first reply was lost: the
    /// object's `prediction-id` metadata tells our own image from someone else's.
    pub(super) async fn write_numbered(
        &self,
        actor_name: &str,
        mut index: u64,
        bytes: Arc<Vec<u8>>,
        prediction_id: &str,
    ) -> Result<(u64, String), StoreError> {
        for attempt in 1..=MAX_IMAGE_NAME_ATTEMPTS {
            if attempt > 1 {
                index = self.take_index(actor_name).await?;
            }
            let key = image_key(actor_name, index);
            let outcome = self
                .objects
                .write(
                    &key,
                    bytes.clone(),
                    "image/jpeg",
                    WriteCondition::IfAbsent,
                    Some(prediction_id),
                )
                .await?;
            if outcome == WriteOutcome::Written {
                return Ok((index, key));
            }
            let existing = self.objects.head(&key).await?;
            if existing.and_then(|info| info.written_by).as_deref() == Some(prediction_id) {
                return Ok((index, key));
            }
            tracing::warn!(
                actor_name,
                index,
                ?outcome,
                "image name taken; taking the next index"
            );
        }
        Err(StoreError {
            operation: "S3 PutObject (image)",
            detail: format!("{MAX_IMAGE_NAME_ATTEMPTS} image names in a row were taken"),
        })
    }

    /// The next index; on first use the counter is seeded from the highest index in the bucket.
    pub(super) async fn take_index(&self, actor_name: &str) -> Result<u64, StoreError> {
        if let Some(index) = self.counter.take_next(actor_name).await? {
            return Ok(index);
        }
        let keys = self.objects.list_keys(&training_folder(actor_name)).await?;
        let highest = keys
            .iter()
            .filter_map(|key| index_of_key(actor_name, key))
            .max()
            .unwrap_or(0);
        tracing::info!(
            actor_name,
            highest,
            "seeding the image counter from the bucket"
        );
        self.counter.seed(actor_name, highest).await?;
        self.counter
            .take_next(actor_name)
            .await?
            .ok_or_else(|| StoreError {
                operation: "DynamoDB UpdateItem (counter)",
                detail: "the counter is missing right after it was seeded".to_owned(),
            })
    }
}
