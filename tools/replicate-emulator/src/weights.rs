//! A succeeded training's weights, served as Replicate delivers them: `trained_model.tar`, a
//! ustar archive of `lora.safetensors` (deterministic bytes derived from the training id, a
//! valid safetensors file when there is room for its header) and `config.yaml`.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::routes::problem;
use crate::state::AppState;
use crate::training_state::StoredTraining;

/// The default size of `lora.safetensors`: 256 KiB.
pub(crate) const DEFAULT_WEIGHTS_BYTES: usize = 256 * 1024;
/// The size of a tar block (and of its headers).
const BLOCK: usize = 512;
/// The safetensors header's length: fixed, so that the data's size follows from the file's.
const SAFETENSORS_HEADER: usize = 256;

/// `GET /files/trainings/{id}/trained_model.tar`: the weights of a succeeded training; 404
/// otherwise, or when the `training_weights_gone` switch is on. No token is needed (nor
/// should one be sent: those that come are counted as leaks).
pub(crate) async fn trained_model_tar(
    State(shared): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (faults, parts) = {
        let mut inner = shared.lock();
        inner.counts.weights_requests += 1;
        if headers.contains_key(header::AUTHORIZATION) {
            inner.counts.weights_requests_with_authorization += 1;
        }
        let parts = inner
            .training(&id)
            .filter(|training| training.status() == "succeeded")
            .map(TarParts::of);
        (inner.faults.clone(), parts)
    };
    if faults.output_latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.output_latency_ms)).await;
    }
    let Some(parts) = parts else {
        return problem(StatusCode::NOT_FOUND, "Not found", "no such file");
    };
    if faults.training_weights_gone {
        return problem(StatusCode::NOT_FOUND, "Not found", "the file has expired");
    }
    match tokio::task::spawn_blocking(move || parts.tar()).await {
        Ok(body) => ([(header::CONTENT_TYPE, "application/x-tar")], body).into_response(),
        Err(_) => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the tar worker failed",
        ),
    }
}

/// What a training's `trained_model.tar` is made of, taken out of the lock.
#[derive(Debug)]
struct TarParts {
    id: String,
    weights_bytes: usize,
    config: String,
    /// The files' modification time: when the training finished, in Unix seconds.
    mtime: u64,
}

impl TarParts {
    /// The parts of `training`'s tar.
    fn of(training: &StoredTraining) -> Self {
        let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
        let config = format!(
            "# made by replicate-emulator\njob: extension\nconfig:\n  name: flux_train_replicate\n  \
             training_id: {}\n  trigger_word: {}\n  steps: {}\n  destination: {}\n",
            quoted(&training.id),
            quoted(&training.trigger_word),
            training.steps,
            quoted(&training.destination),
        );
        let mtime = (training.created_at + training.finish_after.max(training.starting))
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        Self {
            id: training.id.clone(),
            weights_bytes: training.weights_bytes,
            config,
            mtime,
        }
    }

    /// The archive's bytes.
    fn tar(&self) -> Vec<u8> {
        let lora = lora_safetensors(&self.id, self.weights_bytes);
        tar(
            &[
                ("lora.safetensors", &lora),
                ("config.yaml", self.config.as_bytes()),
            ],
            self.mtime,
        )
    }
}

/// `size` bytes derived from `id`: a safetensors file holding one `U8` tensor when the size
/// leaves room for its header, else the bare bytes.
pub(crate) fn lora_safetensors(id: &str, size: usize) -> Vec<u8> {
    let seed = Sha256::digest(format!("lora:{id}"));
    let mut state = u64::from_le_bytes(seed[..8].try_into().unwrap_or_default());
    let mut out = Vec::with_capacity(size);
    if let Some(data) = size.checked_sub(8 + SAFETENSORS_HEADER).filter(|d| *d > 0) {
        let header = format!(
            r#"{{"__metadata__":{{"format":"pt","training_id":{}}},"lora_unet.weight":{{"dtype":"U8","shape":[{data}],"data_offsets":[0,{data}]}}}}"#,
            serde_json::to_string(id).unwrap_or_default()
        );
        if header.len() <= SAFETENSORS_HEADER {
            out.extend_from_slice(&(SAFETENSORS_HEADER as u64).to_le_bytes());
            out.extend_from_slice(header.as_bytes());
            // The format allows trailing spaces in the header.
            out.resize(8 + SAFETENSORS_HEADER, b' ');
        }
    }
    while out.len() < size {
        // splitmix64: cheap, and the same bytes for the same id.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let take = (size - out.len()).min(8);
        out.extend_from_slice(&z.to_le_bytes()[..take]);
    }
    out
}

/// A ustar archive of regular files (names under 100 bytes), as `tar` writes it.
pub(crate) fn tar(files: &[(&str, &[u8])], mtime: u64) -> Vec<u8> {
    let total: usize = files
        .iter()
        .map(|(_, content)| BLOCK + content.len().div_ceil(BLOCK) * BLOCK)
        .sum();
    let mut out = Vec::with_capacity(total + 2 * BLOCK);
    for (name, content) in files {
        let mut header = [0u8; BLOCK];
        let mut put = |at: usize, field: &[u8]| header[at..at + field.len()].copy_from_slice(field);
        put(0, &name.as_bytes()[..name.len().min(100)]);
        put(100, b"0000644\0");
        put(108, b"0000000\0");
        put(116, b"0000000\0");
        put(124, format!("{:011o}\0", content.len()).as_bytes());
        put(136, format!("{:011o}\0", mtime).as_bytes());
        put(148, b"        ");
        put(156, b"0");
        put(257, b"ustar\0");
        put(263, b"00");
        put(265, b"root");
        put(297, b"root");
        let checksum: u32 = header.iter().map(|byte| u32::from(*byte)).sum();
        header[148..156].copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_entries_have_checksummed_ustar_headers() {
        let tar = tar(
            &[("a.bin", b"hello"), ("b.yaml", &[7u8; 600])],
            1_700_000_000,
        );
        assert_eq!(tar.len(), 512 + 512 + 512 + 1024 + 1024);
        let header = &tar[..512];
        assert_eq!(&header[..5], b"a.bin");
        assert_eq!(&header[257..263], b"ustar\0");
        assert_eq!(&header[124..136], b"00000000005\0");
        let stored = std::str::from_utf8(&header[148..154]).expect("octal");
        let sum: u32 = header
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(*b)
                }
            })
            .sum();
        assert_eq!(u32::from_str_radix(stored, 8), Ok(sum));
        assert_eq!(&tar[512..517], b"hello");
        assert_eq!(&tar[1024..1030], b"b.yaml");
    }

    #[test]
    fn lora_bytes_are_sized_and_derived_from_the_id() {
        let a = lora_safetensors("trn1", 4096);
        assert_eq!(a.len(), 4096);
        assert_eq!(a, lora_safetensors("trn1", 4096));
        assert_ne!(a, lora_safetensors("trn2", 4096));
        let header_len = u64::from_le_bytes(a[..8].try_into().expect("8 bytes")) as usize;
        let header: serde_json::Value =
            serde_json::from_slice(&a[8..8 + header_len]).expect("a safetensors header");
        assert_eq!(
            header["lora_unet.weight"]["data_offsets"][1],
            4096 - 8 - header_len
        );
        assert_eq!(lora_safetensors("trn1", 10).len(), 10);
    }
}
