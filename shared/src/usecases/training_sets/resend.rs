//! Sending stuck items again: an unfinished item whose hold has passed (its message lost, in
//! the dead letters, or its claimer gone) gets a new message. Its hold moves first, by a
//! conditional write, so one pass sends it once and the next waits another bound.

use std::time::Duration;

use crate::ports::{Clock, ItemMessage, ItemQueue, StoreError, TrainingSets};

/// What a pass of [`resend_stuck`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResendReport {
    /// Items found past their hold.
    pub stuck: usize,
    /// Items whose message was sent again.
    pub resent: usize,
}

/// Sends the messages of up to `limit` stuck items again, holding each for `stuck_after`
/// more. A duplicate of a message still in the queue is harmless: the item's state decides.
pub async fn resend_stuck(
    sets: &impl TrainingSets,
    queue: &impl ItemQueue,
    clock: &impl Clock,
    stuck_after: Duration,
    limit: usize,
) -> Result<ResendReport, StoreError> {
    let now_ms = clock.now_epoch_ms();
    let stuck = sets.stuck(now_ms, limit).await?;
    let mut report = ResendReport {
        stuck: stuck.len(),
        resent: 0,
    };
    let until_ms = now_ms + u64::try_from(stuck_after.as_millis()).unwrap_or(u64::MAX / 2);
    let mut messages = Vec::new();
    for (set_id, position, held_until_ms) in stuck {
        if sets
            .hold(&set_id, position, held_until_ms, until_ms)
            .await?
        {
            tracing::warn!(%set_id, position, "item stuck past its hold; its message is sent again");
            messages.push(ItemMessage::next_step(set_id, position));
        }
    }
    queue.send(&messages).await?;
    report.resent = messages.len();
    Ok(report)
}
