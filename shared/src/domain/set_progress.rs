//! How far a training set got: each item's state, the set's counts by state, and the set's
//! status told from them.

/// How far an item got. `Creating` is claimed (a create may be on its way), `Uncertain` a
/// create whose answer was lost: never created again automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemState {
    /// Waiting for a worker.
    Queued,
    /// A worker claimed it and is creating its prediction.
    Creating,
    /// Its prediction runs.
    Predicting,
    /// Its prediction succeeded; its image is being stored.
    Storing,
    /// Its image is stored and listed.
    Stored,
    /// It ended without an image.
    Failed,
    /// Its set was canceled before it finished.
    Canceled,
    /// Its create may have started a prediction nobody knows the id of.
    Uncertain,
}

impl ItemState {
    /// Every state, in the order of [`SetCounts`].
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::Creating,
        Self::Predicting,
        Self::Storing,
        Self::Stored,
        Self::Failed,
        Self::Canceled,
        Self::Uncertain,
    ];

    /// The state's name, as stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Creating => "creating",
            Self::Predicting => "predicting",
            Self::Storing => "storing",
            Self::Stored => "stored",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
            Self::Uncertain => "uncertain",
        }
    }

    /// The state of a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == value)
    }

    /// Whether nothing more happens to the item by itself (an operator or a retry may still
    /// move a failed or uncertain one).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Stored | Self::Failed | Self::Canceled | Self::Uncertain
        )
    }

    fn slot(self) -> usize {
        Self::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// How many of a set's items are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetCounts([u64; 8]);

impl SetCounts {
    /// The counts of a new set: everything queued.
    pub fn all_queued(total: u64) -> Self {
        let mut counts = Self::default();
        counts.0[ItemState::Queued.slot()] = total;
        counts
    }

    /// How many items are in `state`.
    pub fn of(&self, state: ItemState) -> u64 {
        self.0[state.slot()]
    }

    /// Sets how many items are in `state`.
    pub fn set(&mut self, state: ItemState, count: u64) {
        self.0[state.slot()] = count;
    }

    /// All the items.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// A set's status, from its items' counts and whether it was canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetStatus {
    /// No item started yet.
    Queued,
    /// Some item is on its way.
    Running,
    /// Every item is final and at least one is stored.
    Done,
    /// Every item is final and none is stored.
    Failed,
    /// An artist canceled it before it finished: what had not started never will.
    Canceled,
}

impl SetStatus {
    /// The status of a set with these counts.
    pub fn of(counts: &SetCounts, canceled: bool) -> Self {
        let unfinished = ItemState::ALL
            .into_iter()
            .filter(|state| !state.is_final())
            .map(|state| counts.of(state))
            .sum::<u64>();
        // A set canceled after it finished keeps its outcome: the cancel stopped nothing.
        if canceled && (unfinished > 0 || counts.of(ItemState::Canceled) > 0) {
            return Self::Canceled;
        }
        if unfinished == 0 {
            return if counts.of(ItemState::Stored) == 0 {
                Self::Failed
            } else {
                Self::Done
            };
        }
        if counts.of(ItemState::Queued) == counts.total() {
            Self::Queued
        } else {
            Self::Running
        }
    }

    /// The status's name, as answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_is_done_when_every_item_is_final_and_failed_only_when_none_stored() {
        let mut counts = SetCounts::all_queued(3);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Queued);
        counts.set(ItemState::Queued, 2);
        counts.set(ItemState::Predicting, 1);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Running);
        counts.set(ItemState::Queued, 0);
        counts.set(ItemState::Predicting, 0);
        counts.set(ItemState::Failed, 3);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Failed);
        counts.set(ItemState::Failed, 2);
        counts.set(ItemState::Stored, 1);
        assert_eq!(SetStatus::of(&counts, false), SetStatus::Done);
        assert_eq!(
            SetStatus::of(&counts, true),
            SetStatus::Done,
            "canceled once done"
        );
        counts.set(ItemState::Failed, 1);
        counts.set(ItemState::Canceled, 1);
        assert_eq!(SetStatus::of(&counts, true), SetStatus::Canceled);
        counts.set(ItemState::Canceled, 0);
        counts.set(ItemState::Predicting, 1);
        assert_eq!(
            SetStatus::of(&counts, true),
            SetStatus::Canceled,
            "canceled while running"
        );
        assert_eq!(counts.total(), 3);
        for state in ItemState::ALL {
            assert_eq!(ItemState::parse(state.as_str()), Some(state));
        }
    }
}
