//! Exit codes and the one error type a user is shown as written: how every command fails.

/// Exit codes: 0 ok, 1 a check failed or the lab could not start, 2 usage or config error.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

/// A usage or config error: the command line or lab.toml is wrong. Commands return it inside
/// their `anyhow::Error`; `main` prints it once, as written (hints included), and exits 2.
/// Every other error exits 1, printed once with its chain (`{:#}`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

impl Usage {
    /// `lab: MESSAGE`, as an error a command returns.
    pub fn lab(message: impl std::fmt::Display) -> anyhow::Error {
        Self(format!("lab: {message}")).into()
    }
    /// The text as it is (diagnostics carry their own `lab.toml:L:C:` prefix).
    pub fn text(text: impl std::fmt::Display) -> anyhow::Error {
        Self(text.to_string()).into()
    }
}

/// The exit code of a failed command, and what to print.
pub fn exit_code_of(e: &anyhow::Error) -> (u8, Option<String>) {
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return (exit::OK, None);
    }
    match e.downcast_ref::<Usage>() {
        Some(u) => (exit::USAGE, Some(u.0.trim_end().to_owned())),
        None => (exit::FAILED, Some(format!("lab: error: {e:#}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_exits_2_as_written_and_other_errors_1_with_their_chain() {
        let u = Usage::lab("bad flag\n  = hint: try --help");
        assert_eq!(
            exit_code_of(&u),
            (
                exit::USAGE,
                Some("lab: bad flag\n  = hint: try --help".into())
            )
        );
        let e = anyhow::anyhow!("disk full").context("cannot write hub.json");
        assert_eq!(
            exit_code_of(&e),
            (
                exit::FAILED,
                Some("lab: error: cannot write hub.json: disk full".into())
            )
        );
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(exit_code_of(&pipe), (exit::OK, None));
    }
}
