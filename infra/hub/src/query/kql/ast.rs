//! A parsed query: terms, comparisons, and/or/not.

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    All,
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    /// `field:value` (`None` field = any field).
    Match {
        field: Option<String>,
        value: Term,
    },
    Exists(String),
    Range {
        field: String,
        op: Op,
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Word(String),
    Phrase(String),
    Wildcard(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query: {message} at column {column}")]
pub struct ParseError {
    pub message: String,
    /// 1-based character column.
    pub column: usize,
}
