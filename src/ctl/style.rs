//! Colour for people at a terminal, and none anywhere else.

use std::io::IsTerminal;

/// The colours a piece of text can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Plain text.
    Plain,
    /// Bold: headings.
    Bold,
    /// Green: done, linked, ok.
    Good,
    /// Yellow: waiting for something or someone.
    Warn,
    /// Red: failed, refused.
    Bad,
    /// Dim: details.
    Dim,
}

/// Whether to colour the output.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty (no-color.org).
    #[must_use]
    pub fn for_stdout() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: std::io::stdout().is_terminal() && !no_color,
        }
    }

    /// Never colour (tests, files).
    #[must_use]
    pub fn plain() -> Self {
        Self { color: false }
    }

    /// Always colour.
    #[must_use]
    pub fn colored() -> Self {
        Self { color: true }
    }

    /// `text` in `tone`, with ANSI escapes when colouring.
    #[must_use]
    pub fn paint(self, tone: Tone, text: &str) -> String {
        let code = match tone {
            Tone::Plain => return text.to_owned(),
            Tone::Bold => "1",
            Tone::Good => "32",
            Tone::Warn => "33",
            Tone::Bad => "31",
            Tone::Dim => "2",
        };
        if self.color && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_is_escapes_only_when_asked() {
        assert_eq!(Style::plain().paint(Tone::Good, "linked"), "linked");
        assert_eq!(
            Style::colored().paint(Tone::Bad, "failed"),
            "\x1b[31mfailed\x1b[0m"
        );
        assert_eq!(Style::colored().paint(Tone::Plain, "x"), "x");
    }
}
