//! Which checkpoint a restarted job resumes from, agreed by every shard.
//!
//! Candidates are the manifests that verify, newest first. A manifest verifying is not enough:
//! the shards' stores must verify at the positions it names too, and a corrupt segment is only
//! found by the shard that reads it. So every shard verifies its store at the candidate
//! (read-only: `VerifiedShardStore::verify` changes no file) and votes; when all have voted the
//! round is decided for everyone:
//!
//! - every shard verified → the candidate is chosen, each shard opens its verified store;
//! - some store is corrupt → the next older candidate is tried (its positions are still intact,
//!   because nothing was cut yet, and retained checkpoints keep their segments);
//! - a shard hit an error that is not corruption (I/O, permissions) → the job fails with it.
//!
//! Choosing an older checkpoint renames the newer manifests to `*.rejected` (kept for
//! inspection, never listed again), so the checkpoints this run takes, numbered after the
//! chosen one, do not collide with them. The file sink deletes the files it committed for the
//! rejected checkpoints and writes them again; a sink whose commits cannot be taken back (a
//! Kafka transaction) repeats that span, so the fallback is reported loudly: it trades
//! exactly-once for the rejected checkpoints' span against not losing the job. When no candidate verifies the job fails and names
//! why each was rejected: starting empty would repeat output that sinks already committed.
//!
//! Invariant: each shard calls [`RestoreChoice::vote`] once per candidate, in order, until a
//! round accepts or fails, so a round is decided exactly when it has one vote per shard.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::checkpoint::CheckpointControl;
use crate::checkpoint::manifest::{self, Manifest};
use crate::error::JobError;

/// A shard's verdict on one candidate.
#[derive(Debug)]
pub enum Verdict {
    /// The shard's store verified at the candidate's position (or it has none to verify).
    Intact,
    /// The store does not verify there: why, naming file and offset.
    Corrupt(String),
    /// An error no older checkpoint would avoid.
    Fatal(String),
}

/// What all shards decided for one candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Resume from this candidate.
    Accept,
    /// Try the next older candidate.
    Next,
    /// The job fails with this message.
    Fail(String),
}

#[derive(Debug, Default)]
struct Rounds {
    /// Votes for the candidate being decided.
    votes: usize,
    corrupt: Vec<String>,
    fatal: Option<String>,
    /// Decisions so far, one per candidate, in order.
    decided: Vec<Decision>,
    /// Why each rejected candidate was rejected (for the final error).
    rejections: Vec<String>,
}

/// The candidates and the shards' votes on them.
#[derive(Debug)]
pub struct RestoreChoice {
    candidates: Vec<Arc<Manifest>>,
    shards: usize,
    manifest_dir: PathBuf,
    /// Told the chosen checkpoint before any shard learns the decision, so new checkpoint ids
    /// continue after it.
    control: Arc<CheckpointControl>,
    rounds: Mutex<Rounds>,
    decided: Condvar,
}

/// How often a waiting shard checks whether the job is stopping (a shard that failed to start
/// never votes).
const STOP_POLL: Duration = Duration::from_millis(50);

impl RestoreChoice {
    /// The candidates (verified manifests, newest first) for a job of `shards` shards.
    pub fn new(
        candidates: Vec<Arc<Manifest>>,
        shards: usize,
        manifest_dir: PathBuf,
        control: Arc<CheckpointControl>,
    ) -> Self {
        debug_assert!(
            candidates
                .windows(2)
                .all(|w| w[0].checkpoint > w[1].checkpoint),
            "candidates are newest first"
        );
        RestoreChoice {
            candidates,
            shards,
            manifest_dir,
            control,
            rounds: Mutex::default(),
            decided: Condvar::new(),
        }
    }

    /// The candidates, newest first.
    pub fn candidates(&self) -> &[Arc<Manifest>] {
        &self.candidates
    }

    /// Records `verdict` of one shard on candidate `index` and blocks until every shard voted on
    /// it; returns the decision. Blocking is fine: the shard has nothing else to run before it
    /// knows its checkpoint.
    ///
    /// # Errors
    /// [`JobError::Cancelled`] when the job stops while waiting (another shard failed).
    pub fn vote(
        &self,
        index: usize,
        verdict: Verdict,
        stopping: &AtomicBool,
    ) -> Result<Decision, JobError> {
        let mut rounds = self.rounds.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(
            rounds.decided.len(),
            index,
            "a shard voted on candidate {index} out of turn"
        );
        match verdict {
            Verdict::Intact => {}
            Verdict::Corrupt(why) => rounds.corrupt.push(why),
            Verdict::Fatal(why) => {
                rounds.fatal.get_or_insert(why);
            }
        }
        rounds.votes += 1;
        if rounds.votes == self.shards {
            let decision = self.decide(index, &mut rounds);
            rounds.decided.push(decision);
            rounds.votes = 0;
            rounds.corrupt.clear();
            self.decided.notify_all();
        }
        while rounds.decided.len() <= index {
            if stopping.load(Ordering::Acquire) {
                return Err(JobError::Cancelled);
            }
            rounds = self
                .decided
                .wait_timeout(rounds, STOP_POLL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(rounds.decided[index].clone())
    }

    fn decide(&self, index: usize, rounds: &mut Rounds) -> Decision {
        let candidate = &self.candidates[index];
        if let Some(fatal) = &rounds.fatal {
            return Decision::Fail(format!(
                "restoring checkpoint {}: {fatal}",
                candidate.checkpoint
            ));
        }
        if rounds.corrupt.is_empty() {
            if index > 0 {
                self.reject_newer(candidate.checkpoint, &rounds.rejections);
                self.control.resume_after(candidate.checkpoint);
            }
            return Decision::Accept;
        }
        let why = format!(
            "checkpoint {}: {}",
            candidate.checkpoint,
            rounds.corrupt.join("; ")
        );
        eprintln!(
            "corestrom: checkpoint {} cannot be restored: {why}",
            candidate.checkpoint
        );
        rounds.rejections.push(why);
        if index + 1 == self.candidates.len() {
            return Decision::Fail(format!(
                "no retained checkpoint can be restored (starting empty would repeat committed \
                 output): {}",
                rounds.rejections.join(" | ")
            ));
        }
        Decision::Next
    }

    /// Renames every manifest newer than `chosen` out of the way (see the module doc).
    fn reject_newer(&self, chosen: u64, rejections: &[String]) {
        eprintln!(
            "corestrom: resuming from checkpoint {chosen}, older than the newest, because {}",
            rejections.join(" | ")
        );
        if let Err(e) = reject_manifests_after(&self.manifest_dir, chosen) {
            eprintln!("corestrom: {e}");
        }
    }
}

/// Renames the manifests in `dir` of checkpoints after `chosen` (verifying or not) to
/// `NAME.rejected`, then fsyncs the directory.
///
/// # Errors
/// The directory cannot be listed, a file renamed, or the directory synced.
pub fn reject_manifests_after(dir: &Path, chosen: u64) -> Result<(), JobError> {
    let failed = |what: String, e: &dyn std::fmt::Display| {
        JobError::Checkpoint(format!(
            "rejecting checkpoints newer than {chosen}: {what}: {e}"
        ))
    };
    let listed =
        manifest::list(dir).map_err(|e| failed(format!("listing {}", dir.display()), &e))?;
    let mut renamed = false;
    for newer in listed.iter().filter(|m| m.checkpoint > chosen) {
        let mut target = newer.path.clone().into_os_string();
        target.push(".rejected");
        std::fs::rename(&newer.path, &target)
            .map_err(|e| failed(format!("renaming {}", newer.path.display()), &e))?;
        renamed = true;
    }
    if renamed {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| failed(format!("fsync {}", dir.display()), &e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::CheckpointConfig;

    fn manifest(checkpoint: u64) -> Arc<Manifest> {
        Arc::new(Manifest {
            checkpoint,
            finished: false,
            shards: 1,
            max_key_groups: 128,
            created_ms: 0,
            per_shard: Vec::new(),
        })
    }

    fn choice(shards: usize) -> (Arc<RestoreChoice>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let candidates = vec![manifest(3), manifest(2), manifest(1)];
        let control = Arc::new(CheckpointControl::new(
            CheckpointConfig::new(Duration::from_secs(1), dir.path()),
            shards,
            128,
            3,
        ));
        let choice = RestoreChoice::new(candidates, shards, dir.path().to_path_buf(), control);
        (Arc::new(choice), dir)
    }

    /// Runs one thread per shard; shard `s` gives `verdict(s, candidate)`; returns each shard's
    /// (chosen index or failure).
    fn run(
        choice: &Arc<RestoreChoice>,
        shards: usize,
        verdict: fn(usize, usize) -> Verdict,
    ) -> Vec<Result<usize, String>> {
        let stopping = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..shards)
            .map(|shard| {
                let choice = Arc::clone(choice);
                let stopping = Arc::clone(&stopping);
                std::thread::spawn(move || {
                    for index in 0..choice.candidates().len() {
                        match choice.vote(index, verdict(shard, index), &stopping) {
                            Ok(Decision::Accept) => return Ok(index),
                            Ok(Decision::Next) => continue,
                            Ok(Decision::Fail(why)) => return Err(why),
                            Err(e) => return Err(e.to_string()),
                        }
                    }
                    Err("ran out of candidates without a decision".to_string())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("shard thread"))
            .collect()
    }

    #[test]
    fn all_intact_accepts_the_newest() {
        let (choice, _dir) = choice(3);
        let outcome = run(&choice, 3, |_, _| Verdict::Intact);
        assert_eq!(outcome, vec![Ok(0), Ok(0), Ok(0)]);
    }

    #[test]
    fn one_corrupt_shard_moves_every_shard_to_the_previous_checkpoint() {
        let (choice, dir) = choice(3);
        assert_eq!(choice.control.completed(), 3);
        for id in 1..=3 {
            manifest::write(dir.path(), &manifest(id)).expect("write manifest");
        }
        let outcome = run(&choice, 3, |shard, index| {
            if shard == 2 && index == 0 {
                Verdict::Corrupt("segment 7 offset 4096: crc".into())
            } else {
                Verdict::Intact
            }
        });
        assert_eq!(outcome, vec![Ok(1), Ok(1), Ok(1)]);
        assert_eq!(
            choice.control.completed(),
            2,
            "new checkpoints continue after the chosen one"
        );
        let left: Vec<u64> = manifest::list(dir.path())
            .expect("list")
            .iter()
            .map(|m| m.checkpoint)
            .collect();
        assert_eq!(left, vec![1, 2], "checkpoint 3's manifest is renamed away");
        assert!(
            dir.path()
                .join(format!("{}.rejected", manifest::manifest_file_name(3)))
                .exists()
        );
    }

    #[test]
    fn every_candidate_corrupt_fails_and_names_each() {
        let (choice, _dir) = choice(2);
        let outcome = run(&choice, 2, |_, index| {
            Verdict::Corrupt(format!("bad {index}"))
        });
        for result in outcome {
            let why = result.expect_err("no checkpoint can be restored");
            for id in 1..=3 {
                assert!(why.contains(&format!("checkpoint {id}:")), "{why}");
            }
        }
    }

    #[test]
    fn a_fatal_error_fails_at_once() {
        let (choice, _dir) = choice(2);
        let outcome = run(&choice, 2, |shard, _| {
            if shard == 0 {
                Verdict::Fatal("permission denied".into())
            } else {
                Verdict::Intact
            }
        });
        for result in outcome {
            assert!(result.expect_err("fatal").contains("permission denied"));
        }
    }

    #[test]
    fn a_stopping_job_releases_waiting_shards() {
        let (choice, _dir) = choice(2);
        let stopping = AtomicBool::new(true);
        // Only one of two shards votes: the other never started.
        let result = choice.vote(0, Verdict::Intact, &stopping);
        assert!(matches!(result, Err(JobError::Cancelled)));
    }
}
