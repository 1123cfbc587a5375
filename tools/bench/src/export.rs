//! An export of 100 images (issue 18): the training-export function's release bootstrap,
//! handed its message by the SQS driver (Lambda's event source mapping, played against the
//! runtime interface emulator), writes the zip of 100 kept images of 2 MiB; its peak memory
//! (VmHWM of the bootstrap process) and its time are set beside a baseline measured in the same
//! run against the same S3 (the same moto): every image read with `GetObject` and the same
//! bytes written once, as one multipart upload of the same 8 MiB parts sent one after another
//! (a plain copy, nothing overlapped). Rounds alternate which of the two goes first.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use serde_json::{Map, Value, json};
use testkit::{
    BUCKET, CapturedLog, EventSourceSettings, Moto, SeedProfile, SqsEventSource, TrainingSetQueues,
    status_and_body,
};
use tokio::task::JoinSet;

use crate::function_log::{messages, reported_durations};
use crate::procfs::{children, cpu_us, kib_field};
use crate::report::{mib, ms, table};
use crate::stack::{Environment, with_lambda_env};
use crate::stats::Samples;

/// The size from which the zip's buffer is sent as a part: shared's `s3_archive::PART_BYTES`,
/// which the baseline's parts follow (the export's own part count is read back from its ETag).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// The memory target: the export function's peak under 64 MB (Lambda's MB, which are
/// MiB: Lambda reports and bills memory in units of 1,048,576 bytes).
const PEAK_MEMORY_TARGET: u64 = 64 * 1024 * 1024;
/// The time target: within 1.25× of the baseline.
const TIME_TARGET: f64 = 1.25;
/// The actor exported.
const ACTOR: &str = "0500_bench_export_30_female";
/// Set in the queue's environment only, to tell its bootstrap from the routes' in /proc.
const MARKER: (&str, &str) = ("BENCH_ENVIRONMENT", "export-queue");
/// The most payload one JPEG comment segment carries (its length field counts itself).
const MAX_COMMENT: usize = 65_533;
/// Images stored at once while seeding.
const SEEDING_AT_ONCE: usize = 4;

/// How big a run.
pub struct ExportRun {
    /// Kept images in the manifest (all exported).
    pub images: usize,
    /// Bytes of each image (about: its JPEG markers round it).
    pub image_bytes: usize,
    /// Exports, and baselines: one of each per round.
    pub rounds: usize,
    /// Whether unmet targets fail the run (not on `--quick`'s debug builds).
    pub check_targets: bool,
    /// Set in the function's environment besides the deployed one (`--export-env NAME=VALUE`),
    /// to measure a setting before it goes into the template.
    pub extra_env: Vec<(String, String)>,
}

/// The printed section, and the targets it did not meet.
pub struct ExportFigures {
    pub report: String,
    pub unmet: Vec<String>,
}

/// S3 and DynamoDB on one moto, the exports' queues on another (the driver's long polls never
/// wait in the queue the export's calls wait in), seeded with the actor's images and manifest.
struct ExportStack {
    moto: Moto,
    sdk: SdkConfig,
    queue_moto: Moto,
    queue_sdk: SdkConfig,
    queues: TrainingSetQueues,
    /// The images' keys, in the manifest's order.
    keys: Vec<String>,
    /// Their bytes, summed.
    image_bytes: u64,
}

impl ExportStack {
    async fn start(run: &ExportRun) -> Self {
        let moto = Moto::start().await;
        let sdk = moto.sdk_config().await;
        testkit::create_table_and_bucket(&sdk).await;
        let base_image_key = format!("system_actors/base_images/{ACTOR}.jpg");
        testkit::put_profile(
            &sdk,
            &SeedProfile {
                actor_id: ACTOR,
                actor_name: ACTOR,
                sex: Some("female"),
                base_image_key: &base_image_key,
            },
        )
        .await;
        let (keys, image_bytes) = seed_images(&sdk, run).await;
        let queue_moto = Moto::start().await;
        let queue_sdk = queue_moto.sdk_config().await;
        let queues = testkit::create_export_queues(&queue_sdk).await;
        Self {
            moto,
            sdk,
            queue_moto,
            queue_sdk,
            queues,
            keys,
            image_bytes,
        }
    }

    /// The function's environment, as deployed (JSON logs, 128 MB), its queue on the other moto.
    fn function_env(&self) -> Vec<(String, String)> {
        let mut env = with_lambda_env(self.moto.function_env(), "training-export");
        testkit::set_env(&mut env, "AWS_ENDPOINT_URL_SQS", self.queue_moto.endpoint());
        testkit::set_env(&mut env, "EXPORT_QUEUE_URL", self.queues.queue_url.clone());
        env
    }
}

/// A real JPEG of about `size` bytes, different for each `seed`, that does not compress (as a
/// photo does not): a start marker, comment segments of pseudo-random bytes, then a small
/// encoded picture, to its end marker.
fn incompressible_jpeg(size: usize, seed: u64) -> Vec<u8> {
    let picture = testkit::sample_jpeg(16 + (seed % 16) as u32, 16);
    let mut out = Vec::with_capacity(size + 8);
    out.extend_from_slice(&picture[..2]);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = size.saturating_sub(picture.len());
    while left > 4 {
        let payload = (left - 4).min(MAX_COMMENT);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
        let end = out.len() + payload;
        while out.len() < end {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let take = (end - out.len()).min(8);
            out.extend_from_slice(&state.to_le_bytes()[..take]);
        }
        left -= payload + 4;
    }
    out.extend_from_slice(&picture[2..]);
    assert!(
        out.starts_with(&[0xFF, 0xD8]) && out.ends_with(&[0xFF, 0xD9]),
        "a JPEG from its start marker to its end marker"
    );
    out
}

/// Stores `run.images` images and a manifest that lists them all, each with a caption, every
/// one kept in its curation map; their keys in order and their bytes summed.
async fn seed_images(sdk: &SdkConfig, run: &ExportRun) -> (Vec<String>, u64) {
    let folder = format!("system_actors/training_data/{ACTOR}/");
    let mut entries = Vec::with_capacity(run.images);
    let mut curation = Map::new();
    let mut keys = Vec::with_capacity(run.images);
    let mut total = 0u64;
    let mut storing = JoinSet::new();
    for n in 1..=run.images {
        let filename = format!("{ACTOR}_{n}.jpg");
        let key = format!("{folder}{filename}");
        let bytes = incompressible_jpeg(run.image_bytes, n as u64);
        total += bytes.len() as u64;
        entries.push(json!({
            "index": n,
            "filename": filename,
            "s3_key": key,
            "s3_url": format!("https://{BUCKET}.s3.amazonaws.com/{key}"),
            "prompt_id": "color_watercolor",
            "caption": format!("[trigger], portrait study number {n}, soft window light, plain background"),
            "seed": 1_000 + n,
            "prediction_id": format!("bench-pred-{n}"),
            "model": "black-forest-labs/flux-kontext-pro",
            "created_at": "2026-12-03T10:00:00Z",
        }));
        curation.insert(filename, json!({"status": "kept"}));
        if storing.len() >= SEEDING_AT_ONCE {
            storing
                .join_next()
                .await
                .expect("a store")
                .expect("PutObject");
        }
        let (sdk, image_key) = (sdk.clone(), key.clone());
        storing
            .spawn(async move { testkit::put_object(&sdk, &image_key, bytes, "image/jpeg").await });
        keys.push(key);
    }
    while let Some(stored) = storing.join_next().await {
        stored.expect("PutObject");
    }
    let manifest = json!({"actor": ACTOR, "images": entries, "curation": curation});
    testkit::put_object(
        sdk,
        &format!("{folder}response.json"),
        serde_json::to_vec_pretty(&manifest).expect("the manifest's JSON"),
        "application/json",
    )
    .await;
    (keys, total)
}

/// One baseline: how long, and in how many parts.
struct Baseline {
    elapsed: Duration,
    parts: usize,
}

/// Reads every image (`GetObject`, body collected) and writes the same bytes once: one
/// multipart upload, each image appended to a buffer that is sent as a part (and waited for)
/// once it holds [`PART_BYTES`], the rest as the last part, then the completion. Nothing
/// overlaps: a read waits for the part before it. A completion whose answer the SDK cannot
/// read (moto 5.2.1 answers it under the wrong root, as the function's adapter notes) is
/// checked with `HeadObject`, as the function checks it.
async fn baseline(s3: &aws_sdk_s3::Client, keys: &[String], target: &str, total: u64) -> Baseline {
    let started = Instant::now();
    let upload_id = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(target)
        .content_type("application/zip")
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id
        .expect("an upload id");
    let mut buffer: Vec<u8> = Vec::new();
    let mut parts: Vec<CompletedPart> = Vec::new();
    let mut sent = 0u64;
    let send = |bytes: Vec<u8>, number: i32| {
        let request = s3
            .upload_part()
            .bucket(BUCKET)
            .key(target)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(bytes));
        async move {
            let answer = request.send().await.expect("UploadPart");
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(answer.e_tag().map(str::to_owned))
                .build()
        }
    };
    for key in keys {
        let body = s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("GetObject of an image")
            .body
            .collect()
            .await
            .expect("an image's body")
            .into_bytes();
        buffer.extend_from_slice(&body);
        if buffer.len() >= PART_BYTES {
            sent += buffer.len() as u64;
            let number = parts.len() as i32 + 1;
            parts.push(send(std::mem::take(&mut buffer), number).await);
        }
    }
    if !buffer.is_empty() || parts.is_empty() {
        sent += buffer.len() as u64;
        let number = parts.len() as i32 + 1;
        parts.push(send(std::mem::take(&mut buffer), number).await);
    }
    let count = parts.len();
    let completed = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(target)
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await;
    if completed.is_err() {
        let (size, _) = head(s3, target).await;
        assert_eq!(size, sent, "the baseline's object is whole: {completed:?}");
    }
    let elapsed = started.elapsed();
    assert_eq!(sent, total, "the baseline wrote every image's bytes once");
    Baseline {
        elapsed,
        parts: count,
    }
}

/// An object's size and, from its multipart ETag (`"…-N"`), its parts.
async fn head(s3: &aws_sdk_s3::Client, key: &str) -> (u64, Option<usize>) {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("HeadObject {key}: {e:?}"));
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    let parts = head
        .e_tag()
        .and_then(|etag| etag.trim_matches('"').rsplit_once('-'))
        .and_then(|(_, n)| n.parse().ok());
    (size, parts)
}

/// One export, from its POST to its message settled by the driver.
struct Export {
    wall: Duration,
    size: u64,
    parts: Option<usize>,
}

/// The GET of `export_id`'s status.
fn status_event(export_id: &str) -> Value {
    let mut event = testkit::event_for_actor("training-export-status-http-v2.json", ACTOR);
    let path = format!("/api/actors/{ACTOR}/training-data/exports/{export_id}");
    event["rawPath"] = json!(path);
    event["requestContext"]["http"]["path"] = json!(path);
    event["pathParameters"]["exportId"] = json!(export_id);
    event
}

/// POSTs an export of the kept images, waits until the driver has settled its message (the
/// routes' status is read once, after: no read waits in moto's queue during the export), and
/// checks that it is done, whole and about the images' size.
async fn one_export(
    stack: &ExportStack,
    s3: &aws_sdk_s3::Client,
    routes: &Environment,
    queue: &SqsEventSource,
    queue_log: &CapturedLog,
    images: usize,
) -> Export {
    let settled_before = queue.stats().deleted;
    let start = testkit::with_json_body(
        testkit::event_for_actor("training-export-start-http-v2.json", ACTOR),
        &json!({"include": "kept"}),
    );
    let started = Instant::now();
    let (status, accepted) = status_and_body(&routes.emulator.invoke(&start).await);
    assert_eq!(status, 202, "the export was refused: {accepted}");
    let export_id = accepted["export_id"]
        .as_str()
        .expect("an export id")
        .to_owned();
    loop {
        let stats = queue.stats();
        assert_eq!(
            stats.function_errors,
            0,
            "the export's invocation failed: {stats:?}\n{}",
            queue_log.text()
        );
        if stats.deleted > settled_before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the export's message was not settled within 120 s: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let wall = started.elapsed();
    let (status, done) = status_and_body(&routes.emulator.invoke(&status_event(&export_id)).await);
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["status"], "done",
        "the export did not end done: {done}"
    );
    assert_eq!(done["count"], images, "every kept image exported: {done}");
    let size = done["size"].as_u64().expect("the zip's size");
    let key = done["key"].as_str().expect("the zip's key");
    let (stored, parts) = head(s3, key).await;
    assert_eq!(stored, size, "the zip in the bucket is the size reported");
    let overhead = size.checked_sub(stack.image_bytes).unwrap_or_else(|| {
        panic!(
            "the zip ({size} bytes) is smaller than its images ({} bytes)",
            stack.image_bytes
        )
    });
    assert!(
        overhead <= stack.image_bytes / 100,
        "the zip ({size} bytes) is more than 1% over its images ({} bytes): not stored?",
        stack.image_bytes
    );
    // Kept no longer than its check: moto holds every object in memory.
    delete(s3, key).await;
    Export { wall, size, parts }
}

async fn delete(s3: &aws_sdk_s3::Client, key: &str) {
    s3.delete_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObject {key}: {e:?}"));
}

/// The queue environment's bootstrap: the child of the emulator this process started with
/// [`MARKER`] in its environment.
fn queue_function_pid() -> u32 {
    let marker = format!("{}={}", MARKER.0, MARKER.1);
    let marked = |pid: &u32| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .map(|environ| {
                environ
                    .split(|byte| *byte == 0)
                    .any(|entry| entry == marker.as_bytes())
            })
            .unwrap_or(false)
    };
    let functions: Vec<u32> = children(std::process::id())
        .into_iter()
        .filter(marked)
        .flat_map(children)
        .collect();
    assert_eq!(
        functions.len(),
        1,
        "one bootstrap under the queue's emulator: {functions:?}"
    );
    functions[0]
}

/// The run: seeding, then `run.rounds` rounds of one baseline and one export (alternating
/// which goes first), then the peak memory of the function's process.
pub async fn export(bootstrap: &std::path::Path, run: &ExportRun) -> ExportFigures {
    let stack = ExportStack::start(run).await;
    let mut env = stack.function_env();
    for (name, value) in &run.extra_env {
        testkit::set_env(&mut env, name, value.clone());
    }
    let routes = Environment::start(bootstrap, &env, "export-routes").await;
    let queue_log = CapturedLog::new("bench-export-queue");
    let mut queue_env = env.clone();
    testkit::set_env(&mut queue_env, MARKER.0, MARKER.1);
    let queue = SqsEventSource::start(
        &stack.queue_sdk,
        &stack.queues,
        bootstrap,
        &queue_env,
        EventSourceSettings {
            // The template's: one export per invocation.
            batch_size: 1,
            concurrency: 1,
            log: Some(queue_log.path().to_owned()),
            ..EventSourceSettings::default()
        },
    )
    .await;
    let s3 = testkit::s3_client(&stack.sdk);
    let mut baselines = Vec::with_capacity(run.rounds);
    let mut exports = Vec::with_capacity(run.rounds);
    for round in 0..run.rounds {
        let target = format!("system_actors/training_exports/{ACTOR}/baseline-{round}.bin");
        for export_first in [round % 2 == 1, round % 2 == 0] {
            if export_first {
                exports
                    .push(one_export(&stack, &s3, &routes, &queue, &queue_log, run.images).await);
            } else {
                baselines.push(baseline(&s3, &stack.keys, &target, stack.image_bytes).await);
                delete(&s3, &target).await;
            }
        }
    }
    let pid = queue_function_pid();
    let peak = {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .expect("the function's /proc status");
        kib_field(&status, "VmHWM:").expect("VmHWM") * 1024
    };
    let cpu = cpu_us(pid);
    let stats = queue.stop().await;
    assert_eq!(stats.function_errors, 0, "{stats:?}");
    assert_eq!(
        stats.invocations, run.rounds as u64,
        "one invocation per export: {stats:?}"
    );
    let lines = queue_log.lines();
    let own: Vec<u64> = messages(&lines, "export done")
        .iter()
        .map(|line| {
            line.pointer("/fields/elapsed_ms")
                .and_then(Value::as_u64)
                .expect("export done has elapsed_ms")
                * 1000
        })
        .collect();
    let invocations = reported_durations(&lines);
    assert_eq!(own.len(), run.rounds, "one `export done` line per export");
    assert_eq!(invocations.len(), run.rounds, "one REPORT line per export");
    let max_memory_reported = lines
        .iter()
        .filter(|line| line.starts_with("REPORT RequestId"))
        .filter_map(|line| line.split("Max Memory Used: ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .max();
    let rounds: Vec<Round> = (0..run.rounds)
        .map(|round| Round {
            export_first: round % 2 == 1,
            own_us: own[round],
            baseline_us: baselines[round].elapsed.as_micros() as u64,
        })
        .collect();
    report(
        run,
        &stack,
        &Figures {
            rounds,
            own: Samples::new(own),
            invocation: Samples::new(invocations),
            wall: Samples::of(&exports.iter().map(|e| e.wall).collect::<Vec<_>>()),
            baseline: Samples::of(&baselines.iter().map(|b| b.elapsed).collect::<Vec<_>>()),
            baseline_parts: baselines.first().map_or(0, |b| b.parts),
            export: exports.last().expect("an export"),
            peak,
            cpu,
            max_memory_reported,
        },
    )
}

/// One round: which went first, the export's own time and the baseline's, in microseconds.
struct Round {
    export_first: bool,
    own_us: u64,
    baseline_us: u64,
}

/// What the run gave.
struct Figures<'a> {
    rounds: Vec<Round>,
    /// The function's own `export done` elapsed_ms, in microseconds.
    own: Samples,
    /// The runtime emulator's REPORT durations of the exports' invocations.
    invocation: Samples,
    /// From each POST to its message settled.
    wall: Samples,
    baseline: Samples,
    baseline_parts: usize,
    export: &'a Export,
    peak: u64,
    cpu: u64,
    max_memory_reported: Option<u64>,
}

fn report(run: &ExportRun, stack: &ExportStack, figures: &Figures<'_>) -> ExportFigures {
    let row = |label: &str, samples: &Samples| {
        vec![
            label.to_owned(),
            samples.len().to_string(),
            ms(samples.median()),
            ms(samples.percentile(0.0)),
            ms(samples.max()),
        ]
    };
    let images = run.images;
    let total = stack.image_bytes;
    let parts = figures
        .export
        .parts
        .map_or_else(|| "1 part (not multipart)".to_owned(), parts_of);
    let rows = vec![
        row(
            &format!(
                "export: the function's own time (its `export done` line: manifest, upload begun, {images} reads, the zip's parts, completion)"
            ),
            &figures.own,
        ),
        row(
            "export: its invocation (runtime emulator's REPORT duration: the claim, the above, the record's end)",
            &figures.invocation,
        ),
        row(
            "export: from the POST to its message settled (the SQS driver's receive and delete included)",
            &figures.wall,
        ),
        row(
            &format!(
                "**baseline**: {images} `GetObject`s, the same bytes written once ({} of {} MiB, one after another)",
                parts_of(figures.baseline_parts),
                PART_BYTES / (1024 * 1024)
            ),
            &figures.baseline,
        ),
    ];
    let round_rows: Vec<Vec<String>> = figures
        .rounds
        .iter()
        .enumerate()
        .map(|(i, round)| {
            vec![
                (i + 1).to_string(),
                if round.export_first {
                    "export"
                } else {
                    "baseline"
                }
                .to_owned(),
                ms(round.own_us),
                ms(round.baseline_us),
                format!(
                    "{:.2}×",
                    round.own_us as f64 / round.baseline_us.max(1) as f64
                ),
            ]
        })
        .collect();
    let ratio = figures.own.median() as f64 / figures.baseline.median().max(1) as f64;
    let invocation_ratio =
        figures.invocation.median() as f64 / figures.baseline.median().max(1) as f64;
    let memory_met = figures.peak < PEAK_MEMORY_TARGET;
    let time_met = ratio <= TIME_TARGET;
    let yes_no = |met: bool| if met { "yes" } else { "**no**" };
    let targets = vec![
        vec![
            format!(
                "peak memory of the export function's process (VmHWM) under {} MiB",
                PEAK_MEMORY_TARGET / (1024 * 1024)
            ),
            mib(figures.peak),
            yes_no(memory_met).to_owned(),
        ],
        vec![
            format!("the export's time within {TIME_TARGET}× of the baseline's (medians)"),
            format!(
                "{ratio:.2}× ({} against {}; its whole invocation: {invocation_ratio:.2}×)",
                ms(figures.own.median()),
                ms(figures.baseline.median())
            ),
            yes_no(time_met).to_owned(),
        ],
    ];
    let mut unmet = Vec::new();
    if !memory_met {
        unmet.push(format!(
            "peak memory {} is not under {}",
            mib(figures.peak),
            mib(PEAK_MEMORY_TARGET)
        ));
    }
    if !time_met {
        unmet.push(format!(
            "the export took {ratio:.2}× the baseline (target: at most {TIME_TARGET}×)"
        ));
    }
    let verdict = match (unmet.is_empty(), run.check_targets) {
        (true, _) => "**Both targets are met.**".to_owned(),
        (false, true) => format!("**Targets not met**: {}.", unmet.join("; ")),
        (false, false) => format!(
            "Targets not met ({}), not checked on a `--quick` run.",
            unmet.join("; ")
        ),
    };
    let reported = figures.max_memory_reported.map_or_else(String::new, |mb| {
        format!(" (the runtime emulator's REPORT says `Max Memory Used: {mb} MB`, which it does not measure)")
    });
    let extra = if run.extra_env.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = run
            .extra_env
            .iter()
            .map(|(name, value)| format!("`{name}={value}`"))
            .collect();
        format!(
            " The function's environment also sets {} (`--export-env`).",
            names.join(", ")
        )
    };
    let throughput = total as f64 / (1024.0 * 1024.0) / (figures.own.median().max(1) as f64 / 1e6);
    let report = format!(
        "## An export of {images} images of {} each (issue 18)\n\n\
         {images} distinct JPEGs ({} in all, pseudo-random comment segments: they do not compress), every one kept in the manifest with a caption. The training-export release bootstrap under the runtime interface emulator, its message handed to it by the SQS driver (batches of 1, as the template); S3 and DynamoDB on one moto, the queue on another. {} rounds of one export and one baseline, alternating which goes first; the baseline runs in the benchmark's process against the same moto.{extra}\n\n{}\nRound by round (the export's own time):\n\n{}\n{}\nThe zip: {} ({} over the images: headers, captions, `dataset.json`), {}, every image in it; the function wrote it at {throughput:.0} MiB/s. CPU time of the function's process over the run (init and {} exports): {}.\n\nPeak memory: VmHWM of the function's process (`/proc/<pid>/status`) after the {} exports{reported}.\n\n{verdict}\n",
        format_bytes(run.image_bytes as u64),
        mib(total),
        run.rounds,
        table(&["measured", "n", "median", "min", "max"], &rows),
        table(
            &["round", "first", "export", "baseline", "export / baseline"],
            &round_rows
        ),
        table(&["target", "measured", "met"], &targets),
        mib(figures.export.size),
        format_bytes(figures.export.size - total),
        parts,
        run.rounds,
        ms(figures.cpu),
        run.rounds,
    );
    ExportFigures { report, unmet }
}

/// `n parts`, or `1 part`.
fn parts_of(n: usize) -> String {
    if n == 1 {
        "1 part".to_owned()
    } else {
        format!("{n} parts")
    }
}

/// Bytes, in KiB under a MiB.
fn format_bytes(bytes: u64) -> String {
    if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        mib(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_images_are_distinct_jpegs_of_the_size_asked() {
        let (a, b) = (
            incompressible_jpeg(300_000, 1),
            incompressible_jpeg(300_000, 2),
        );
        assert_ne!(a, b);
        for jpeg in [&a, &b] {
            assert!(jpeg.len().abs_diff(300_000) <= 4, "{}", jpeg.len());
            let decoded = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
                .expect("a JPEG that decodes");
            assert_eq!(decoded.height(), 16);
        }
    }
}
