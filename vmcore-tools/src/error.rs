//! Errors: parsers report an offset and what they expected; the caller
//! attaches the file name.

use std::path::PathBuf;

/// A parse failure inside one input: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset:#x}: {expected}")]
pub struct ParseError {
    /// Byte offset in the input (file offset for dump files).
    pub offset: u64,
    /// What was expected at that offset, and what was found.
    pub expected: String,
}

impl ParseError {
    /// A new error at `offset`.
    pub fn new(offset: u64, expected: impl Into<String>) -> Self {
        ParseError {
            offset,
            expected: expected.into(),
        }
    }
}

/// Any failure of the library, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or mapped.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not what its format requires.
    #[error("{path}: {err}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and what.
        err: ParseError,
    },
    /// Something the analysis needs is absent or inconsistent.
    #[error("{path}: {msg}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is missing.
        msg: String,
    },
}

impl Error {
    /// Wraps a parse error with its file.
    pub fn parse(path: impl Into<PathBuf>, err: ParseError) -> Self {
        Error::Parse {
            path: path.into(),
            err,
        }
    }
}
