//! The name of every remote call the adapters make. One name both times a call (its entry in
//! the `invocation timed` log line, which the benchmark reads) and names it in a fault, so a
//! slow call and a failed one are found under the same words.

/// An actor's profile read.
pub const PROFILE_READ: &str = "DynamoDB GetItem (profile)";
/// An index taken from an actor's counter.
pub const COUNTER_TAKE: &str = "DynamoDB UpdateItem (counter)";
/// A counter seeded from the bucket.
pub const COUNTER_SEED: &str = "DynamoDB PutItem (counter seed)";
/// A counter raised past the bucket's highest index.
pub const COUNTER_RAISE: &str = "DynamoDB UpdateItem (counter raise)";
/// An idempotency record read.
pub const IDEMPOTENCY_READ: &str = "DynamoDB GetItem (idempotency)";
/// An idempotency key taken by a new run.
pub const IDEMPOTENCY_BEGIN: &str = "DynamoDB PutItem (idempotency)";
/// An expired hold on a key taken over.
pub const IDEMPOTENCY_TAKE_OVER: &str = "DynamoDB UpdateItem (idempotency take-over)";
/// A paid prediction noted on its key's record.
pub const IDEMPOTENCY_PREDICTION: &str = "DynamoDB UpdateItem (idempotency prediction)";
/// A run's answer kept on its key's record.
pub const IDEMPOTENCY_COMPLETE: &str = "DynamoDB UpdateItem (idempotency complete)";
/// A key released (nothing was paid).
pub const IDEMPOTENCY_RELEASE: &str = "DynamoDB DeleteItem (idempotency)";
/// A run's hold ended, its prediction kept for a resume.
pub const IDEMPOTENCY_INTERRUPT: &str = "DynamoDB UpdateItem (idempotency interrupt)";
/// A paid prediction's record opened.
pub const PREDICTION_RECORD_OPEN: &str = "DynamoDB PutItem (prediction record)";
/// A paid prediction's record read.
pub const PREDICTION_RECORD_READ: &str = "DynamoDB GetItem (prediction record)";
/// An image's place claimed on its prediction's record.
pub const PREDICTION_RECORD_CLAIM: &str = "DynamoDB UpdateItem (prediction place)";
/// A prediction's record closed (stored or failed).
pub const PREDICTION_RECORD_CLOSE: &str = "DynamoDB UpdateItem (prediction closed)";
/// A prediction's record held (taken by a collector, or handed to the reconciler).
pub const PREDICTION_RECORD_HOLD: &str = "DynamoDB UpdateItem (prediction hold)";
/// The open prediction records past their hold, queried.
pub const PREDICTION_RECORDS_DUE: &str = "DynamoDB Query (open predictions)";
/// The kill switch read (when no cap is counted).
pub const KILL_SWITCH_READ: &str = "DynamoDB GetItem (kill switch)";
/// A generation counted against the daily caps.
pub const BUDGET_COUNT: &str = "DynamoDB TransactWriteItems (budget)";
/// A generation's unit given back.
pub const BUDGET_REFUND: &str = "DynamoDB TransactWriteItems (budget refund)";
/// The Replicate token read from SSM.
pub const TOKEN_READ: &str = "SSM GetParameter";
/// An object's metadata read.
pub const OBJECT_HEAD: &str = "S3 HeadObject";
/// A base photo's start read (a ranged GET).
pub const PHOTO_READ: &str = "S3 GetObject";
/// A base photo's body received.
pub const PHOTO_BODY: &str = "S3 GetObject body";
/// A presigned URL signed (no request is sent).
pub const PRESIGN: &str = "S3 presign";
/// An actor's folder listed.
pub const FOLDER_LIST: &str = "S3 ListObjectsV2";
/// A manifest read with its ETag.
pub const MANIFEST_READ: &str = "S3 GetObject (manifest)";
/// A manifest's body received.
pub const MANIFEST_BODY: &str = "S3 GetObject body (manifest)";
/// A new object written (`If-None-Match: *`): an image, or a first manifest.
pub const OBJECT_CREATE: &str = "S3 PutObject (If-None-Match)";
/// A manifest rewritten (`If-Match`).
pub const OBJECT_REWRITE: &str = "S3 PutObject (If-Match)";
/// A prediction created (the call that costs money).
pub const PREDICTION_CREATE: &str = "Replicate create";
/// A create's answer received.
pub const PREDICTION_CREATE_ANSWER: &str = "Replicate create (answer)";
/// A prediction read.
pub const PREDICTION_READ: &str = "Replicate get";
/// The pause between two reads of a prediction.
pub const PREDICTION_POLL_PAUSE: &str = "Replicate poll pause";
/// A prediction canceled.
pub const PREDICTION_CANCEL: &str = "Replicate cancel";
/// A prediction's output downloaded.
pub const OUTPUT_DOWNLOAD: &str = "Replicate download";
/// Writing a training set and its items.
pub const SET_WRITE: &str = "DynamoDB BatchWriteItem/PutItem (training set)";
/// Reading a training set with its items.
pub const SET_READ: &str = "DynamoDB Query (training set)";
/// Reading a training set and one item.
pub const SET_ITEM_READ: &str = "DynamoDB BatchGetItem (training set item)";
/// An item's state change with its set's counts.
pub const SET_ITEM_CHANGE: &str = "DynamoDB TransactWriteItems (item state)";
/// Finding unfinished items past their hold.
pub const SET_ITEMS_STUCK: &str = "DynamoDB Query (stuck items)";
/// Moving an item's hold.
pub const SET_ITEM_HOLD: &str = "DynamoDB UpdateItem (item hold)";
/// Marking a set canceled.
pub const SET_CANCEL: &str = "DynamoDB UpdateItem (set canceled)";
/// Listing an actor's sets.
pub const SET_LIST: &str = "DynamoDB Query/BatchGetItem (actor's sets)";
/// Sending items' messages.
pub const ITEMS_SEND: &str = "SQS SendMessageBatch (items)";
/// Changing a message's visibility (its item's next step).
pub const ITEM_DELAY: &str = "SQS ChangeMessageVisibility (item)";
/// A whole object read (an export's image).
pub const OBJECT_READ: &str = "S3 GetObject (object)";
/// Its body.
pub const OBJECT_BODY: &str = "S3 GetObject body (object)";
/// An export recorded.
pub const EXPORT_CREATE: &str = "DynamoDB PutItem (export)";
/// An export read.
pub const EXPORT_READ: &str = "DynamoDB GetItem (export)";
/// An export claimed by its run.
pub const EXPORT_CLAIM: &str = "DynamoDB UpdateItem (export claim)";
/// An export ended.
pub const EXPORT_END: &str = "DynamoDB UpdateItem (export end)";
/// An export's message sent.
pub const EXPORT_SEND: &str = "SQS SendMessage (export)";
/// An actor's training lock taken.
pub const TRAINING_LOCK: &str = "DynamoDB PutItem (training lock)";
/// An actor's training lock read (who holds it).
pub const TRAINING_LOCK_READ: &str = "DynamoDB GetItem (training lock)";
/// An actor's training lock given back.
pub const TRAINING_UNLOCK: &str = "DynamoDB DeleteItem (training lock)";
/// A training recorded.
pub const TRAINING_CREATE: &str = "DynamoDB PutItem (training)";
/// A training read.
pub const TRAINING_READ: &str = "DynamoDB GetItem (training)";
/// A training's state changed.
pub const TRAINING_UPDATE: &str = "DynamoDB UpdateItem (training)";
/// A training ended.
pub const TRAINING_END: &str = "DynamoDB UpdateItem (training end)";
/// The pointer from Replicate's training id written.
pub const TRAINING_POINTER: &str = "DynamoDB PutItem (training pointer)";
/// The pointer from Replicate's training id read.
pub const TRAINING_POINTER_READ: &str = "DynamoDB GetItem (training pointer)";
/// The open trainings due for a look.
pub const TRAININGS_DUE: &str = "DynamoDB Query (open trainings)";
/// An actor's LoRA record written.
pub const LORA_WRITE: &str = "DynamoDB PutItem (LoRA record)";
/// A training's message sent.
pub const TRAINING_SEND: &str = "SQS SendMessage (training)";
/// A training's message delayed (its export still running).
pub const TRAINING_DELAY: &str = "SQS ChangeMessageVisibility (training)";
/// A trained model's weights downloaded.
pub const WEIGHTS_DOWNLOAD: &str = "HTTP GET (training weights)";
/// A trained model's weights stored.
pub const WEIGHTS_STORE: &str = "S3 PutObject/UploadPart (training weights)";
/// A zip's multipart upload started.
pub const ARCHIVE_BEGIN: &str = "S3 CreateMultipartUpload";
/// A part of a zip sent.
pub const ARCHIVE_PART: &str = "S3 UploadPart";
/// A zip's upload completed into its object.
pub const ARCHIVE_COMPLETE: &str = "S3 CompleteMultipartUpload";
/// A zip's upload given up.
pub const ARCHIVE_ABORT: &str = "S3 AbortMultipartUpload";
/// Uploads a killed run left on a zip's key, listed.
pub const ARCHIVE_LEFT_UPLOADS: &str = "S3 ListMultipartUploads";
