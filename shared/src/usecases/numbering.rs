//! The numbering rule: an actor's images are numbered by its counter, seeded from the bucket
//! on first use (the highest `{actor_name}_{n}.jpg` there, plus one). An index is taken only
//! once a prediction has succeeded (docs/design.md, invariant 2) and is claimed on the
//! prediction's record, so one prediction has one place. A name found taken (a stray file,
//! files copied in by hand, a restored table) raises the counter past the bucket's highest
//! index and takes the next one, rather than overwrite anything.

use std::sync::Arc;

use super::generate_image::{GenerateImage, ImageOrder};
use crate::domain::naming::{image_key, index_of_key, training_folder};
use crate::ports::{
    Clock, ImageMetadata, ImagePlace, IndexCounter, ObjectStore, PlaceClaim, PredictionRecords,
    StoreError, WriteCondition, WriteOutcome,
};

/// How many names an image may try before giving up (each taken name raises the counter
/// past the bucket first, so only writers racing for the same names need more than two).
const MAX_IMAGE_NAME_ATTEMPTS: u32 = 8;

impl<P, O, C, G, K, R> GenerateImage<P, O, C, G, K, R>
where
    O: ObjectStore,
    C: IndexCounter,
    K: Clock,
    R: PredictionRecords,
{
    /// Writes the image in `place`, or in a place nobody has: each name found taken moves
    /// the image's claim to a new index.
    ///
    /// A 412 can also answer the SDK's own retry of a write whose first reply was lost, or
    /// another collector of the same prediction: the object's `prediction-id` metadata tells
    /// this prediction's image from someone else's.
    pub(super) async fn write_numbered(
        &self,
        order: &ImageOrder,
        mut place: ImagePlace,
        bytes: Arc<Vec<u8>>,
        metadata: &ImageMetadata,
        hold_until_ms: u64,
    ) -> Result<ImagePlace, StoreError> {
        let actor_name = &order.actor.actor_name;
        let prediction_id = &metadata.prediction_id;
        for _attempt in 1..=MAX_IMAGE_NAME_ATTEMPTS {
            let outcome = self
                .objects
                .write(
                    &place.key,
                    bytes.clone(),
                    "image/jpeg",
                    WriteCondition::IfAbsent,
                    Some(metadata),
                )
                .await?;
            if outcome == WriteOutcome::Written {
                return Ok(place);
            }
            let existing = self.objects.head(&place.key).await?;
            if existing.as_ref().and_then(|info| info.written_by()) == Some(prediction_id) {
                return Ok(place);
            }
            tracing::warn!(
                actor_name,
                index = place.index,
                ?outcome,
                "image name taken; raising the counter past the bucket"
            );
            self.raise_past_bucket(actor_name).await?;
            let index = self.take_index(actor_name).await?;
            let moved = ImagePlace {
                index,
                key: image_key(actor_name, index),
            };
            place = self
                .claim(
                    order,
                    &metadata.model,
                    prediction_id,
                    moved,
                    Some(place.index),
                    hold_until_ms,
                )
                .await?;
        }
        Err(StoreError {
            operation: "S3 PutObject (image)",
            detail: format!("{MAX_IMAGE_NAME_ATTEMPTS} image names in a row were taken"),
        })
    }

    /// Takes the actor's next index and claims it for the prediction's image; when another
    /// collector of the same prediction claimed one first, that one is the image's.
    pub(super) async fn claim_new_place(
        &self,
        order: &ImageOrder,
        model: &str,
        prediction_id: &str,
        hold_until_ms: u64,
    ) -> Result<ImagePlace, StoreError> {
        let actor_name = &order.actor.actor_name;
        let index = self.take_index(actor_name).await?;
        let place = ImagePlace {
            index,
            key: image_key(actor_name, index),
        };
        self.claim(order, model, prediction_id, place, None, hold_until_ms)
            .await
    }

    /// Claims `place` (in place of the index `replacing`, if any) on the prediction's
    /// record, opening the record first if its first write was lost.
    async fn claim(
        &self,
        order: &ImageOrder,
        model: &str,
        prediction_id: &str,
        place: ImagePlace,
        replacing: Option<u64>,
        hold_until_ms: u64,
    ) -> Result<ImagePlace, StoreError> {
        let mut claim = self
            .records
            .claim_place(prediction_id, &place, replacing)
            .await?;
        if claim == PlaceClaim::NoRecord {
            self.records
                .open(prediction_id, order, model, hold_until_ms)
                .await?;
            claim = self
                .records
                .claim_place(prediction_id, &place, replacing)
                .await?;
        }
        match claim {
            PlaceClaim::Claimed => Ok(place),
            PlaceClaim::Taken(theirs) => {
                tracing::info!(
                    prediction_id,
                    unused_index = place.index,
                    index = theirs.index,
                    "another collector claimed the image's place first"
                );
                Ok(theirs)
            }
            PlaceClaim::NoRecord => Err(StoreError {
                operation: "DynamoDB UpdateItem (prediction place)",
                detail: "the prediction record is missing right after it was opened".to_owned(),
            }),
        }
    }

    /// The next index; on first use the counter is seeded from the highest index in the bucket.
    pub(super) async fn take_index(&self, actor_name: &str) -> Result<u64, StoreError> {
        if let Some(index) = self.counter.take_next(actor_name).await? {
            return Ok(index);
        }
        let highest = self.highest_in_bucket(actor_name).await?;
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

    /// Raises the counter past the highest index in the bucket.
    async fn raise_past_bucket(&self, actor_name: &str) -> Result<(), StoreError> {
        let highest = self.highest_in_bucket(actor_name).await?;
        self.counter.raise(actor_name, highest).await
    }

    /// The highest `{actor_name}_{n}.jpg` in the actor's folder, 0 when there is none.
    async fn highest_in_bucket(&self, actor_name: &str) -> Result<u64, StoreError> {
        let keys = self.objects.list_keys(&training_folder(actor_name)).await?;
        Ok(keys
            .iter()
            .filter_map(|key| index_of_key(actor_name, key))
            .max()
            .unwrap_or(0))
    }
}
