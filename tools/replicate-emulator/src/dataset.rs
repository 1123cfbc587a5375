//! A training's `input_images`, as the trainer's input validation sees it: a zip fetched from
//! its URL, that opens, holds at least one image, and (without autocaption) a same-stem
//! `.txt` caption for each image. What it held is kept for `GET /admin/trainings`.

use std::collections::BTreeMap;
use std::io::{Cursor, Read};

use serde_json::{Value, json};

/// What an input zip held.
#[derive(Debug)]
pub(crate) struct ZipSummary {
    /// Every entry's name, in the archive's order.
    pub(crate) names: Vec<String>,
    /// How many entries are images (`.jpg`, `.jpeg`, `.png`).
    pub(crate) images: usize,
    /// Each `.txt` entry's text, by entry name.
    pub(crate) captions: BTreeMap<String, String>,
    /// `dataset.json` (at the top of the zip), parsed; `None` when absent or not JSON.
    pub(crate) dataset: Option<Value>,
}

impl ZipSummary {
    /// Its JSON for `GET /admin/trainings`.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "names": self.names,
            "images": self.images,
            "captions": self.captions,
            "dataset": self.dataset,
        })
    }
}

/// Fetches the zip at `url` and checks it as the trainer does; the error is the detail of a
/// 422 ("input_images: ...").
pub(crate) async fn fetch_and_check(
    fetcher: &reqwest::Client,
    url: &str,
    autocaption: bool,
) -> Result<ZipSummary, String> {
    let response = fetcher
        .get(url)
        .send()
        .await
        .map_err(|e| format!("input_images: could not fetch {url}: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "input_images: could not fetch {url} (status {})",
            status.as_u16()
        ));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("input_images: could not fetch {url}: {e}"))?;
    tokio::task::spawn_blocking(move || inspect(&bytes, autocaption))
        .await
        .map_err(|e| format!("input_images: the zip worker failed: {e}"))?
}

/// Whether an entry name is an image the trainer uses.
fn is_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [".jpg", ".jpeg", ".png"]
        .iter()
        .any(|extension| lower.ends_with(extension))
}

/// Opens `bytes` as a zip and checks its images and captions.
fn inspect(bytes: &[u8], autocaption: bool) -> Result<ZipSummary, String> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| "input_images: not a zip")?;
    let mut summary = ZipSummary {
        names: Vec::with_capacity(archive.len()),
        images: 0,
        captions: BTreeMap::new(),
        dataset: None,
    };
    let mut images = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| format!("input_images: entry {index} cannot be read: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("input_images: entry {index} has a bad name: {e}"))?
            .into_owned();
        summary.names.push(name.clone());
        if entry.is_dir() {
            continue;
        }
        if is_image(&name) {
            // The images' bytes are not read: the trainer would fail later, not at validation.
            images.push(name);
            continue;
        }
        let caption = name.to_ascii_lowercase().ends_with(".txt");
        if !caption && name != "dataset.json" {
            continue;
        }
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .map_err(|e| format!("input_images: {name} cannot be read: {e}"))?;
        if caption {
            let text = String::from_utf8_lossy(&content).into_owned();
            summary.captions.insert(name, text);
        } else {
            summary.dataset = serde_json::from_slice(&content).ok();
        }
    }
    if images.is_empty() {
        return Err("input_images: the zip holds no images (.jpg, .jpeg, .png)".to_owned());
    }
    if !autocaption {
        for image in &images {
            let stem = image
                .rsplit_once('.')
                .map_or(image.as_str(), |(stem, _)| stem);
            let caption = format!("{stem}.txt");
            if !summary.captions.contains_key(&caption) {
                return Err(format!("input_images: {image} has no caption {caption}"));
            }
        }
    }
    summary.images = images.len();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, content) in entries {
            writer.start_file(*name, options).expect("start entry");
            writer.write_all(content.as_bytes()).expect("write entry");
        }
        writer.finish().expect("finish zip").into_inner()
    }

    #[test]
    fn captions_are_needed_only_without_autocaption() {
        let zip = zip_of(&[("a.jpg", "x"), ("a.txt", "TOK a"), ("b.PNG", "y")]);
        assert_eq!(
            inspect(&zip, false).err().as_deref(),
            Some("input_images: b.PNG has no caption b.txt")
        );
        let summary = inspect(&zip, true).expect("autocaption needs no captions");
        assert_eq!(summary.images, 2);
        assert_eq!(summary.names, ["a.jpg", "a.txt", "b.PNG"]);
        assert_eq!(summary.captions["a.txt"], "TOK a");
    }

    #[test]
    fn not_a_zip_and_no_images_are_refused() {
        assert_eq!(
            inspect(b"not a zip", true).err().as_deref(),
            Some("input_images: not a zip")
        );
        let only_text = zip_of(&[("a.txt", "TOK")]);
        assert!(inspect(&only_text, true).is_err_and(|e| e.contains("no images")));
    }

    #[test]
    fn dataset_json_is_kept_parsed() {
        let zip = zip_of(&[("a.jpg", "x"), ("dataset.json", r#"{"n": 1}"#)]);
        let summary = inspect(&zip, true).expect("a good zip");
        assert_eq!(summary.dataset, Some(json!({"n": 1})));
    }
}
