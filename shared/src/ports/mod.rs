//! The ports: what the use cases need from the outside world, one trait per file. The
//! adapters implement them; the use cases' unit tests implement them in memory.

mod actor_profiles;
mod clock;
mod exports;
mod idempotency_store;
mod image_generator;
mod index_counter;
mod item_queue;
mod object_store;
mod prediction_error;
mod prediction_records;
mod spend_guard;
mod store_error;
mod training_sets;
mod trainings;

pub use actor_profiles::ActorProfiles;
pub use clock::Clock;
pub use exports::{
    ArchiveUpload, ArchiveUploads, ExportClaim, ExportEnd, ExportQueue, ExportRecords,
};
pub use idempotency_store::{IdempotencyBegin, IdempotencyStore, KeySeen, StoredAnswer};
pub use image_generator::{
    AtDeadline, GeneratedImage, ImageGenerator, InputImage, PredictionRequest, StartedPrediction,
    SucceededPrediction,
};
pub use index_counter::IndexCounter;
pub use item_queue::{ItemMessage, ItemQueue};
pub use object_store::{
    ImageMetadata, ObjectInfo, ObjectStart, ObjectStore, VersionedObject, WriteCondition,
    WriteOutcome,
};
pub use prediction_error::PredictionError;
pub use prediction_records::{
    ImagePlace, PlaceClaim, PredictionRecord, PredictionRecords, PredictionState,
};
pub use spend_guard::{Admission, SpendGuard, SpendRefusal};
pub use store_error::StoreError;
pub use training_sets::{
    ItemChange, ItemExpectation, ItemImage, SetItem, TrainingSet, TrainingSets,
};
pub use trainings::{
    CopyError, RemoteTraining, Trainer, TrainerError, TrainingEnd, TrainingInput, TrainingQueue,
    TrainingRecords, WeightsCopier,
};
