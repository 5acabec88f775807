//! The CLI's one error type: a single line for the user and the exit code that goes with it.

use std::fmt;
use std::process::ExitCode;

/// Why the command failed, which decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Bad usage or unreadable input (missing file, unsupported format, corrupt audio, missing
    /// credentials, bad endpoint): exit code 2.
    Input,
    /// The service or the signature check said no, or the connection failed: exit code 1.
    Service,
    /// The user pressed Ctrl-C: exit code 130 (128 + SIGINT), as shells report it.
    Interrupted,
}

/// A failure to report: one line on stderr, then the exit code of its [`Kind`].
#[derive(Debug)]
pub struct Fail {
    pub kind: Kind,
    pub message: String,
}

impl Fail {
    /// Bad usage or unreadable input (exit code 2).
    pub fn input(message: impl Into<String>) -> Fail {
        Fail {
            kind: Kind::Input,
            message: message.into(),
        }
    }

    /// A service, signature or connection error (exit code 1).
    pub fn service(message: impl Into<String>) -> Fail {
        Fail {
            kind: Kind::Service,
            message: message.into(),
        }
    }

    /// Interrupted by the user (exit code 130).
    pub fn interrupted(message: impl Into<String>) -> Fail {
        Fail {
            kind: Kind::Interrupted,
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    pub fn code(&self) -> u8 {
        match self.kind {
            Kind::Input => 2,
            Kind::Service => 1,
            Kind::Interrupted => 130,
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always one line, whatever the message carried.
        let mut first = true;
        for line in self
            .message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(line)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind() {
        assert_eq!(Fail::input("x").code(), 2);
        assert_eq!(Fail::service("x").code(), 1);
        assert_eq!(Fail::interrupted("x").code(), 130);
    }

    #[test]
    fn display_is_always_one_line() {
        let fail = Fail::service("first\n\n  second  \nthird");
        assert_eq!(fail.to_string(), "first second third");
    }
}
