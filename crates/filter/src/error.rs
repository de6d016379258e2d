//! The one error type of the crate: where in the input and why.

/// What kind of mistake a [`FilterError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// libpcap refused the tcpdump expression (its message is kept verbatim).
    Bpf,
    /// The text does not follow the grammar (a missing operator, a stray character...).
    Syntax,
    /// A filter expression names a block that was not defined.
    UnknownName,
    /// A block was defined twice.
    DuplicateName,
    /// A block tests a field the language does not know.
    UnknownField,
    /// A field is compared with an operator it does not support.
    BadOperator,
    /// A value cannot be read as the field's type (address, port, time, ...).
    BadValue,
    /// Parentheses do not balance.
    Unbalanced,
    /// The expression is too deeply nested or too long to evaluate without allocating.
    TooComplex,
    /// The field cannot be evaluated on these packets (`ether.fcs` on frames captured
    /// without their FCS): refused rather than answered with nothing.
    Unavailable,
}

/// A filter that could not be compiled: what went wrong and where.
///
/// `Display` prints the message and, when the position is known, the offending line of
/// the input with a caret under the byte where the problem starts:
///
/// ```text
/// unknown field `tcp.prot` (column 4)
///   x: tcp.prot == 80
///      ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct FilterError {
    kind: ErrorKind,
    message: String,
    input: String,
    offset: Option<usize>,
}

impl FilterError {
    pub(crate) fn new(
        kind: ErrorKind,
        message: impl Into<String>,
        input: &str,
        offset: Option<usize>,
    ) -> Self {
        Self {
            kind,
            message: message.into(),
            input: input.to_owned(),
            // Clamp into the input and back to a character boundary, so that rendering
            // can slice the input whatever offset a caller computed.
            offset: offset.map(|o| {
                let mut o = o.min(input.len());
                while !input.is_char_boundary(o) {
                    o -= 1;
                }
                o
            }),
        }
    }

    /// The kind of mistake.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Why, without position (for BPF: libpcap's message).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Byte offset (0-based) into the input where the problem starts, when known.
    /// libpcap does not report positions, so BPF errors have none.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }

    /// The input that failed to compile.
    pub fn input(&self) -> &str {
        &self.input
    }

    fn render(&self) -> String {
        let Some(offset) = self.offset else {
            return format!("{} in `{}`", self.message, self.input);
        };
        // Show only the line that holds the offset; the caret is placed by characters so
        // that it lines up under non-ASCII text too.
        let line_start = self.input[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.input[offset..]
            .find('\n')
            .map_or(self.input.len(), |i| offset + i);
        let line = &self.input[line_start..line_end];
        let col_chars = self.input[line_start..offset].chars().count();
        format!(
            "{} (column {})\n  {}\n  {}^",
            self.message,
            offset + 1,
            line,
            " ".repeat(col_chars)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_caret_under_the_column() {
        let e = FilterError::new(
            ErrorKind::UnknownField,
            "unknown field `tcp.prot`",
            "x: tcp.prot == 80",
            Some(3),
        );
        assert_eq!(
            e.to_string(),
            "unknown field `tcp.prot` (column 4)\n  x: tcp.prot == 80\n     ^"
        );
        let e = FilterError::new(ErrorKind::Syntax, "oops", "a: b == 1;\nc & d", Some(15));
        assert_eq!(e.to_string(), "oops (column 16)\n  c & d\n      ^");
        let e = FilterError::new(ErrorKind::Bpf, "syntax error", "tcp prt 80", None);
        assert_eq!(e.to_string(), "syntax error in `tcp prt 80`");
    }
}
