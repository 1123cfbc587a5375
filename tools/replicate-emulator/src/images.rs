//! The outputs the emulator serves: a real JPEG derived from the input image, or a padded
//! one made without reading the input (for benchmarks), and the route that serves them.

use std::io::Cursor;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::routes::problem;
use crate::state::AppState;

/// The output of a prediction: the input image, decoded (from a data URI or fetched from its
/// URL), toned sepia so it is visibly new, and encoded as a JPEG. An input it cannot read
/// makes the prediction fail, as the real model would.
pub(crate) async fn derive_output(
    fetcher: &reqwest::Client,
    image_ref: &str,
) -> Result<Vec<u8>, String> {
    let bytes = if let Some(data) = image_ref.strip_prefix("data:") {
        let (_, encoded) = data
            .split_once(";base64,")
            .ok_or("input_image: not a base64 data URI")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "input_image: invalid base64".to_owned())?
    } else {
        let response = fetcher
            .get(image_ref)
            .send()
            .await
            .map_err(|e| format!("input_image: cannot fetch the URL: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "input_image: fetching the URL gave {}",
                response.status()
            ));
        }
        response
            .bytes()
            .await
            .map_err(|e| format!("input_image: {e}"))?
            .to_vec()
    };
    tokio::task::spawn_blocking(move || sepia_jpeg(&bytes))
        .await
        .map_err(|e| format!("image worker failed: {e}"))?
}

fn sepia_jpeg(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut image = image::load_from_memory(bytes)
        .map_err(|e| format!("input_image: not a readable image: {e}"))?
        .to_rgb8();
    for pixel in image.pixels_mut() {
        let [r, g, b] = pixel.0.map(f32::from);
        let tone = |a: f32, b2: f32, c: f32| (a * r + b2 * g + c * b).min(255.0) as u8;
        pixel.0 = [
            tone(0.393, 0.769, 0.189),
            tone(0.349, 0.686, 0.168),
            tone(0.272, 0.534, 0.131),
        ];
    }
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .map_err(|e| format!("cannot encode the output: {e}"))?;
    Ok(out.into_inner())
}

/// A small JPEG padded with comment segments to at least `size` bytes: still a valid JPEG,
/// and cheap to make (nothing is encoded).
pub fn padded_jpeg(size: usize) -> Bytes {
    /// The most payload one COM segment carries (its length field counts itself).
    const MAX_COMMENT: usize = 65_533;
    static SMALL: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let small = SMALL.get_or_init(|| {
        let image =
            image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 4, y as u8 * 4, 128]));
        let mut out = Cursor::new(Vec::new());
        // Encoding a 64×64 image into memory cannot fail.
        let _ = image.write_to(&mut out, image::ImageFormat::Jpeg);
        out.into_inner()
    });
    let mut jpeg = Vec::with_capacity(size.max(small.len()) + 4);
    jpeg.extend_from_slice(&small[..2]);
    let mut missing = size.saturating_sub(small.len());
    while missing > 0 {
        let payload = missing.saturating_sub(4).min(MAX_COMMENT);
        jpeg.extend_from_slice(&[0xFF, 0xFE]);
        jpeg.extend_from_slice(&((payload + 2) as u16).to_be_bytes());
        jpeg.resize(jpeg.len() + payload, b' ');
        missing = missing.saturating_sub(payload + 4);
    }
    jpeg.extend_from_slice(&small[2..]);
    Bytes::from(jpeg)
}

pub(crate) fn reencode(jpeg: &[u8], format: image::ImageFormat) -> Option<Vec<u8>> {
    let image = image::load_from_memory(jpeg).ok()?;
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).ok()?;
    Some(out.into_inner())
}

/// `GET /files/{id}.jpg`: a prediction's output, as the switches have it (slow, gone,
/// redirected, not a JPEG). No token is needed; those that come are counted as leaks.
pub(crate) async fn output_file(
    State(shared): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let inner = {
        let mut inner = shared.lock();
        inner.counts.file_requests += 1;
        if headers.contains_key(header::AUTHORIZATION) {
            inner.counts.file_requests_with_authorization += 1;
        }
        let id = file.trim_end_matches(".jpg").to_owned();
        let faults = inner.faults.clone();
        let bytes = inner
            .predictions
            .get(&id)
            .and_then(|p| p.output.as_ref().ok().cloned());
        (faults, bytes)
    };
    let (faults, bytes) = inner;
    if faults.output_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.output_latency_ms)).await;
    }
    let Some(bytes) = bytes else {
        return problem(StatusCode::NOT_FOUND, "Not found", "no such file");
    };
    if faults.output_gone {
        return problem(StatusCode::NOT_FOUND, "Not found", "the file has expired");
    }
    if faults.output_redirect {
        let location = format!("{}/files/{file}?redirected=1", shared.base_url);
        return (StatusCode::FOUND, [(header::LOCATION, location)]).into_response();
    }
    if faults.output_not_jpeg {
        let png = reencode(&bytes, image::ImageFormat::Png).unwrap_or_default();
        return ([(header::CONTENT_TYPE, "image/png")], png).into_response();
    }
    ([(header::CONTENT_TYPE, "image/jpeg")], bytes).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_output_is_a_readable_jpeg_of_the_asked_size() {
        for size in [0, 1_000, 70_000, 5 * 1024 * 1024] {
            let jpeg = padded_jpeg(size);
            assert!(jpeg.len() >= size, "{} < {size}", jpeg.len());
            assert!(jpeg.len() < size + 4_000, "{} far above {size}", jpeg.len());
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
            assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
            let image = image::load_from_memory(&jpeg).expect("a decodable JPEG");
            assert_eq!((image.width(), image.height()), (64, 64));
        }
    }
}
