//! training-export through its real binary: its routes under the runtime interface emulator,
//! its queue handed to it by the SQS driver (as Lambda's event source mapping does), over
//! moto. The zip is read back by Python's `zipfile`; faults come from a proxy in front of S3.

mod kit;

use std::time::{Duration, Instant};

use kit::{ACTOR, ExportFunction, download_and_read, exports_left, seed_images, sha256_hex};
use lambda_http::http::Method;
use serde_json::{Value, json};
use shared::domain::caption::trigger_word;
use testkit::{FaultRule, GenerationStack, TrainingSetQueues};

const MB: usize = 1024 * 1024;

/// The stack, the exports' queues, and the function's environment.
async fn stack() -> (GenerationStack, TrainingSetQueues, Vec<(String, String)>) {
    over(GenerationStack::start().await).await
}

/// The same over `stack`.
async fn over(
    stack: GenerationStack,
) -> (GenerationStack, TrainingSetQueues, Vec<(String, String)>) {
    let queues = testkit::create_export_queues(&stack.sdk).await;
    let mut env = stack.function_env();
    testkit::set_env(&mut env, "EXPORT_QUEUE_URL", queues.queue_url.clone());
    (stack, queues, env)
}

/// `(name, "kept")` for each of `names`.
fn kept(names: &[String]) -> Vec<(&str, &str)> {
    names.iter().map(|name| (name.as_str(), "kept")).collect()
}

#[tokio::test]
async fn an_export_of_the_kept_images_opens_in_zipfile_with_each_caption_and_its_dataset() {
    let (stack, queues, env) = stack().await;
    let names: Vec<String> = std::iter::once("old_1.jpg".to_owned())
        .chain((1..=10).map(|n| format!("{ACTOR}_{n}.jpg")))
        .collect();
    let mut statuses = kept(&names);
    let rejected = format!("{ACTOR}_11.jpg");
    statuses.push((&rejected, "rejected"));
    let images = seed_images(&stack, 12, 300 * 1024, &statuses).await;
    let function = ExportFunction::start(&stack, &queues, &env).await;
    let word = trigger_word(None, SAMPLE_NAME);

    let (status, accepted) = function.start_export(&json!({"include": "kept"})).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "running");
    assert_eq!(accepted["trigger_word"], word.as_str());
    let id = accepted["export_id"]
        .as_str()
        .expect("an export id")
        .to_owned();
    assert!(
        accepted["status_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/exports/{id}"))
    );

    let done = function.ended(&id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["count"], 11);
    assert_eq!(
        done["key"],
        format!("system_actors/training_exports/{ACTOR}/{id}.zip")
    );
    assert_eq!(done["url_expires_in"], 3600);
    let (bytes, zip) = download_and_read(done["url"].as_str().expect("a URL")).await;
    assert_eq!(done["size"], bytes.len());
    assert_eq!(zip.corrupt, Value::Null, "every member's CRC holds");

    let exported: Vec<_> = images
        .iter()
        .filter(|i| names.contains(&i.filename))
        .collect();
    let mut expected_names = Vec::new();
    for image in &exported {
        let stem = image.filename.trim_end_matches(".jpg");
        expected_names.push(image.filename.clone());
        expected_names.push(format!("{stem}.txt"));
        assert_eq!(
            zip.sha256[&image.filename],
            sha256_hex(&image.bytes),
            "{} is the stored JPEG, byte for byte",
            image.filename
        );
        let caption = image.caption.as_deref().unwrap_or("[trigger]");
        assert_eq!(
            zip.texts[&format!("{stem}.txt")],
            caption.replace("[trigger]", &word),
            "{stem}'s caption, from the manifest, with the word in"
        );
    }
    expected_names.push("dataset.json".to_owned());
    assert_eq!(zip.names, expected_names, "each image beside its caption");

    let dataset = &zip.dataset;
    assert_eq!(dataset["count"], 11);
    assert_eq!(dataset["actor_id"], ACTOR);
    assert_eq!(dataset["trigger_word"], word.as_str());
    assert_eq!(dataset["files"][0]["image"], "old_1.jpg");
    assert_eq!(dataset["files"][0]["prediction_id"], Value::Null);
    assert_eq!(
        dataset["files"][3],
        json!({
            "image": format!("{ACTOR}_3.jpg"),
            "caption_file": format!("{ACTOR}_3.txt"),
            "caption": format!("{word}, ink sketch number 3, plain background"),
            "prompt_id": "bw_pen_ink",
            "seed": 103,
            "prediction_id": "pred-3",
        })
    );

    // Every image not rejected, with the caller's own word.
    let (status, accepted) = function
        .start_export(&json!({"include": "not_rejected", "trigger_word": "TOK"}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let done = function
        .ended(accepted["export_id"].as_str().unwrap())
        .await;
    assert_eq!(done["count"], 12, "{done}");
    let (_, zip) = download_and_read(done["url"].as_str().unwrap()).await;
    assert!(!zip.names.contains(&rejected));
    assert!(zip.names.contains(&format!("{ACTOR}_12.jpg")), "undecided");
    assert_eq!(
        zip.texts[&format!("{ACTOR}_12.txt")],
        "TOK, ink sketch number 12, plain background"
    );
}

/// The sample actor's name (its folder, and what its trigger word is made from).
const SAMPLE_NAME: &str = testkit::SAMPLE_ACTOR.actor_name;

#[tokio::test]
async fn too_few_images_or_a_bad_request_is_refused_and_nothing_is_written() {
    let (stack, queues, env) = stack().await;
    let three: Vec<String> = (1..=3).map(|n| format!("{ACTOR}_{n}.jpg")).collect();
    seed_images(&stack, 12, 20 * 1024, &kept(&three)).await;
    let function = ExportFunction::start(&stack, &queues, &env).await;

    let (status, refused) = function.start_export(&json!({"include": "kept"})).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "too_few_images");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains('3') && message.contains("10"), "{message}");
    let mut bodyless = testkit::event("training-export-start-http-v2.json");
    bodyless.as_object_mut().unwrap().remove("body");
    let (status, body) = testkit::status_and_body(&function.http.invoke(&bodyless).await);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("too_few_images")),
        "no body asks for the kept images: {body}"
    );
    for bad in [
        json!({"include": "everything"}),
        json!({"trigger_word": "two words"}),
        json!({"include": "kept", "format": "tar"}),
        json!(["kept"]),
    ] {
        let (status, body) = function.start_export(&bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request");
    }
    for id in ["01KBEXP0RT0000000000000000", "not-an-id"] {
        let (status, body) = function.status(id).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "export_not_found");
    }
    let mut get_collection = testkit::event("training-export-start-http-v2.json");
    get_collection["requestContext"]["http"]["method"] = json!("GET");
    let (status, _) = testkit::status_and_body(&function.http.invoke(&get_collection).await);
    assert_eq!(status, 405);

    let table = testkit::table_keys(&stack.sdk).await;
    assert!(
        !table.iter().any(|key| key.contains("EXPORT#")),
        "{table:?}"
    );
    assert_eq!(exports_left(&stack).await, (Vec::new(), 0));
    assert_eq!(
        testkit::queue_depth(&stack.sdk, &queues.queue_url).await,
        (0, 0)
    );

    // The minimum is the deployment's: three kept images are enough at three.
    function.stop().await;
    let mut lower = env.clone();
    testkit::set_env(&mut lower, "EXPORT_MIN_IMAGES", "3");
    let function = ExportFunction::start(&stack, &queues, &lower).await;
    let (status, accepted) = function.start_export(&json!({})).await;
    assert_eq!(status, 202, "{accepted}");
    let done = function
        .ended(accepted["export_id"].as_str().unwrap())
        .await;
    assert_eq!(
        (done["status"].as_str(), done["count"].as_u64()),
        (Some("done"), Some(3)),
        "{done}"
    );
}

/// An export of `images` kept images of 1 MB whose part `part` S3 refuses every time: it
/// fails, and leaves no object and no open multipart upload.
async fn s3_failing_on_part(part: u32, images: usize) {
    let (stack, queues, env) = stack().await;
    let all: Vec<String> = (1..=images).map(|n| format!("{ACTOR}_{n}.jpg")).collect();
    seed_images(&stack, images, MB, &kept(&all)).await;
    let (proxy, function) =
        ExportFunction::behind_proxy(&stack, &queues, &env, kit::queue_settings()).await;
    proxy.inject(FaultRule::s3_internal_error(
        Method::PUT,
        &format!("partNumber={part}"),
        100,
    ));

    let (status, accepted) = function.start_export(&json!({})).await;
    assert_eq!(status, 202, "{accepted}");
    let failed = function
        .ended(accepted["export_id"].as_str().unwrap())
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("nothing was kept"),
        "{failed}"
    );
    assert_eq!(failed.get("url"), None);
    assert!(proxy.injected() >= 1, "part {part} was refused");
    assert_eq!(
        exports_left(&stack).await,
        (Vec::new(), 0),
        "no object and no open multipart upload"
    );
}

#[tokio::test]
async fn s3_failing_mid_upload_leaves_no_object_and_no_open_upload() {
    // 20 MB: the first part's failure is seen when the second is sent, mid-stream.
    s3_failing_on_part(1, 20).await;
}

#[tokio::test]
async fn s3_failing_on_the_last_part_leaves_no_object_and_no_open_upload() {
    // 12 MB: the first part (8 MiB) is stored; the rest, sent on finishing, is refused.
    s3_failing_on_part(2, 12).await;
}

#[tokio::test]
async fn images_added_during_an_export_wait_for_the_next_one() {
    let (stack, queues, env) = stack().await;
    let all: Vec<String> = std::iter::once("old_1.jpg".to_owned())
        .chain((1..=12).map(|n| format!("{ACTOR}_{n}.jpg")))
        .collect();
    let images = seed_images(&stack, 12, MB, &kept(&all)).await;
    let (proxy, function) =
        ExportFunction::behind_proxy(&stack, &queues, &env, kit::queue_settings()).await;
    let slow_part = Duration::from_secs(3);
    proxy.inject(FaultRule::slow(Method::PUT, "partNumber=1", slow_part, 1));

    let (status, accepted) = function.start_export(&json!({})).await;
    assert_eq!(status, 202, "{accepted}");
    let started = Instant::now();
    while proxy.injected() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the export never sent a part"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-export: two more images are stored and listed, kept.
    let mut manifest: Value = serde_json::from_slice(
        &testkit::get_object(&stack.sdk, &kit::manifest_key())
            .await
            .unwrap(),
    )
    .unwrap();
    for n in [13, 14] {
        let filename = format!("{ACTOR}_{n}.jpg");
        let key = format!("{}{filename}", kit::folder());
        testkit::put_object(&stack.sdk, &key, kit::jpeg_of_size(MB, n), "image/jpeg").await;
        manifest["images"].as_array_mut().unwrap().push(json!({
            "index": n, "filename": filename, "s3_key": key, "caption": "[trigger], late",
        }));
        manifest["curation"][&filename] = json!({"status": "kept"});
    }
    kit::write_manifest(&stack, &manifest).await;
    assert!(
        started.elapsed() < slow_part,
        "added while the first part was on its way"
    );

    let done = function
        .ended(accepted["export_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["count"], 13, "the manifest as the export read it");
    let (_, zip) = download_and_read(done["url"].as_str().unwrap()).await;
    assert_eq!(zip.corrupt, Value::Null);
    assert_eq!(zip.dataset["count"], 13);
    assert_eq!(zip.names.len(), 13 * 2 + 1);
    for image in &images {
        assert_eq!(zip.sha256[&image.filename], sha256_hex(&image.bytes));
    }

    let (_, accepted) = function.start_export(&json!({})).await;
    let next = function
        .ended(accepted["export_id"].as_str().unwrap())
        .await;
    assert_eq!(next["count"], 15, "the next export takes them: {next}");
}

#[tokio::test]
async fn a_message_delivered_twice_at_once_writes_one_zip() {
    // moto one request at a time: threaded, two conditional updates racing can both pass
    // (docs/testing.md), which DynamoDB never lets happen.
    let (stack, queues, env) = over(GenerationStack::start_serialized().await).await;
    let all: Vec<String> = (1..=12).map(|n| format!("{ACTOR}_{n}.jpg")).collect();
    let images = seed_images(&stack, 12, MB, &kept(&all)).await;
    let settings = testkit::EventSourceSettings {
        batch_size: 1,
        concurrency: 2,
        deliver_twice: true,
        ..testkit::EventSourceSettings::default()
    };
    let (proxy, function) = ExportFunction::behind_proxy(&stack, &queues, &env, settings).await;
    // Counts the uploads started (CreateMultipartUpload is a POST with `?uploads`), each
    // passed on at once.
    proxy.inject(FaultRule::slow(
        Method::POST,
        "?uploads",
        Duration::ZERO,
        100,
    ));

    let (status, accepted) = function.start_export(&json!({})).await;
    assert_eq!(status, 202, "{accepted}");
    let done = function
        .ended(accepted["export_id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        proxy.injected(),
        1,
        "one run claimed the export, the other left it"
    );
    let (keys, open_uploads) = exports_left(&stack).await;
    assert_eq!((keys.len(), open_uploads), (1, 0));
    let (_, zip) = download_and_read(done["url"].as_str().unwrap()).await;
    assert_eq!(zip.dataset["count"], 12, "the kept images, once each");
    assert_eq!(
        zip.sha256[&images[12].filename],
        sha256_hex(&images[12].bytes)
    );
}

#[tokio::test]
async fn a_run_out_of_time_aborts_its_upload_and_fails_the_export() {
    let (stack, queues, env) = stack().await;
    let all: Vec<String> = (1..=20).map(|n| format!("{ACTOR}_{n}.jpg")).collect();
    seed_images(&stack, 20, MB, &kept(&all)).await;
    let (proxy, function) =
        ExportFunction::behind_proxy(&stack, &queues, &env, kit::queue_settings()).await;
    // The first part takes 21 s of the driver's 30 s timeout: when the second is sent (and
    // waits for it), less than the run's 10 s reserve is left for the next image.
    proxy.inject(FaultRule::slow(
        Method::PUT,
        "partNumber=1",
        Duration::from_secs(21),
        1,
    ));

    let (status, accepted) = function.start_export(&json!({})).await;
    assert_eq!(status, 202, "{accepted}");
    let failed = function
        .ended(accepted["export_id"].as_str().unwrap())
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("did not fit in one run") && error.contains("of 20 images"),
        "{error}"
    );
    assert_eq!(
        exports_left(&stack).await,
        (Vec::new(), 0),
        "ended by the run itself: no object and no open upload"
    );
}
