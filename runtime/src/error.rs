//! The runtime's errors: what a user function or connector reports (`OperatorError`), and what a
//! job reports to its caller (`JobError`), which always names the operator and shard involved.

use std::fmt;

/// A failure inside one operator instance: raised by connectors and built-in operators.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. the file and the operation.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Input that cannot be processed, with where it was found.
    #[error("bad input at {location}: {message}")]
    BadInput {
        /// File and line, or source and offset.
        location: String,
        /// What is wrong with it.
        message: String,
    },
    /// Any other failure, described.
    #[error("{0}")]
    Failed(String),
}

impl OperatorError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        OperatorError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result of an operator step.
pub type OpResult = Result<(), OperatorError>;

/// Which shard something happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub usize);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Why a job did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The configuration is invalid; nothing ran.
    #[error("invalid job configuration: {0}")]
    Config(String),
    /// The job graph is invalid; nothing ran.
    #[error("invalid job graph: {0}")]
    Graph(String),
    /// An operator returned an error.
    #[error("operator '{operator}' failed on shard {shard}: {source}")]
    Operator {
        /// The operator's name.
        operator: String,
        /// The shard it ran on.
        shard: ShardId,
        /// What it reported.
        #[source]
        source: OperatorError,
    },
    /// A user function or operator panicked.
    #[error("operator '{operator}' panicked on shard {shard}: {message}")]
    Panic {
        /// The operator's name (or "shard runtime" if no operator was running).
        operator: String,
        /// The shard it ran on.
        shard: ShardId,
        /// The panic message.
        message: String,
    },
    /// A shard thread could not be started.
    #[error("could not start shard {shard}: {message}")]
    Spawn {
        /// The shard.
        shard: ShardId,
        /// Why.
        message: String,
    },
    /// Taking, completing or restoring a checkpoint failed.
    #[error("checkpointing failed: {0}")]
    Checkpoint(String),
    /// The job was cancelled before it finished.
    #[error("job was cancelled")]
    Cancelled,
}
