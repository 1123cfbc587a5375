//! An actor's curated images for the export and training tests: real JPEGs of a chosen
//! size in the actor's folder, and a manifest that lists them (one legacy entry first) with
//! their captions and the curation statuses asked for.

use serde_json::{Map, Value, json};

use crate::{GenerationStack, SAMPLE_ACTOR};

/// The actor the images are seeded for.
const ACTOR: &str = SAMPLE_ACTOR.actor_id;

/// The actor's training-data folder.
pub fn folder() -> String {
    format!("system_actors/training_data/{ACTOR}/")
}

/// The actor's manifest's key.
pub fn manifest_key() -> String {
    format!("{}response.json", folder())
}

/// A real JPEG of about `size` bytes: a small encoded picture with comment segments of
/// pseudo-random bytes after its start marker (so it does not compress, as photos do not),
/// different for each `seed`.
pub fn jpeg_of_size(size: usize, seed: u64) -> Vec<u8> {
    let picture = crate::sample_jpeg(16 + (seed % 16) as u32, 16);
    let mut out = picture[..2].to_vec();
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = size.saturating_sub(picture.len());
    while left > 4 {
        let payload = (left - 4).min(65_533);
        out.extend_from_slice(&[0xFF, 0xFE]);
        out.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
        for _ in 0..payload {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push(state as u8);
        }
        left -= payload + 4;
    }
    out.extend_from_slice(&picture[2..]);
    out
}

/// One seeded image: its file name, bytes and manifest caption.
#[derive(Debug, Clone)]
pub struct SeededImage {
    /// `{actor}_{n}.jpg`, or a legacy name.
    pub filename: String,
    /// Its bytes as stored.
    pub bytes: Vec<u8>,
    /// Its caption in the manifest, when it has one.
    pub caption: Option<String>,
    /// Its seed in the manifest.
    pub seed: Option<u64>,
}

/// The manifest entry of image `n` (1-based) of `image`.
fn entry(n: usize, image: &SeededImage) -> Value {
    let key = format!("{}{}", folder(), image.filename);
    json!({
        "index": n,
        "filename": image.filename,
        "s3_key": key,
        "s3_url": format!("https://story-boards-assets.s3.amazonaws.com/{key}"),
        "prompt_id": "bw_pen_ink",
        "caption": image.caption,
        "seed": image.seed,
        "prediction_id": format!("pred-{n}"),
        "model": "black-forest-labs/flux-kontext-pro",
        "created_at": "2026-12-03T10:00:00Z",
    })
}

/// Stores `count` images of about `size` bytes and a manifest that lists them (and, first,
/// one legacy URL string without a caption, `old_1.jpg`), with the statuses in `statuses`
/// (by file name) in its curation map; the images in manifest order.
pub async fn seed_images(
    stack: &GenerationStack,
    count: usize,
    size: usize,
    statuses: &[(&str, &str)],
) -> Vec<SeededImage> {
    let mut images = vec![SeededImage {
        filename: "old_1.jpg".to_owned(),
        bytes: jpeg_of_size(size, 1_000),
        caption: None,
        seed: None,
    }];
    for n in 1..=count {
        images.push(SeededImage {
            filename: format!("{ACTOR}_{n}.jpg"),
            bytes: jpeg_of_size(size, n as u64),
            caption: Some(format!(
                "[trigger], ink sketch number {n}, plain background"
            )),
            seed: Some(100 + n as u64),
        });
    }
    for image in &images {
        let key = format!("{}{}", folder(), image.filename);
        crate::put_object(&stack.sdk, &key, image.bytes.clone(), "image/jpeg").await;
    }
    let mut entries = vec![json!(format!(
        "https://story-boards-assets.s3.amazonaws.com/{}old_1.jpg",
        folder()
    ))];
    entries.extend(
        images[1..]
            .iter()
            .enumerate()
            .map(|(i, image)| entry(i + 1, image)),
    );
    let curation: Map<String, Value> = statuses
        .iter()
        .map(|(name, status)| ((*name).to_owned(), json!({"status": status})))
        .collect();
    write_manifest(
        stack,
        &json!({"actor": ACTOR, "images": entries, "curation": curation}),
    )
    .await;
    images
}

/// Writes the actor's manifest.
pub async fn write_manifest(stack: &GenerationStack, manifest: &Value) {
    crate::put_object(
        &stack.sdk,
        &manifest_key(),
        serde_json::to_vec_pretty(manifest).unwrap(),
        "application/json",
    )
    .await;
}
