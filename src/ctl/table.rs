//! Aligned text tables, written by hand: columns padded to their widest cell, two spaces
//! apart, the last one unpadded so long reasons can run on. Widths count characters, which is
//! right for the Latin names customers have (wide CJK glyphs would push a row out a little).

use super::style::{Style, Tone};

/// One cell: its text and its colour.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    tone: Tone,
}

/// A cell in a colour.
pub fn cell(text: impl Into<String>, tone: Tone) -> Cell {
    Cell {
        text: text.into(),
        tone,
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        cell(text, Tone::Plain)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        cell(text, Tone::Plain)
    }
}

/// Rows under an optional bold header.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table whose first row is `header`, in bold.
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| cell(*h, Tone::Bold)).collect()],
        }
    }

    /// A table without a header (label and value pairs).
    pub fn bare() -> Self {
        Self::default()
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<Cell>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    /// The table as lines of text, each ending with a newline.
    #[must_use]
    pub fn render(&self, style: Style) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, c) in row.iter().enumerate() {
                widths[i] = widths[i].max(c.text.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(&style.paint(c.tone, &c.text));
                if i + 1 < row.len() {
                    let pad = widths[i] - c.text.chars().count();
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_on_the_text_and_not_on_the_escapes() {
        let mut table = Table::new(&["ID", "STATE", "NAME"]);
        table
            .row(vec![
                "d-1".into(),
                cell("linked", Tone::Good),
                "Café Zoë".into(),
            ])
            .row(vec!["d-200".into(), "unlinked".into(), "Acme".into()]);
        assert_eq!(
            table.render(Style::plain()),
            "ID     STATE     NAME\nd-1    linked    Café Zoë\nd-200  unlinked  Acme\n"
        );
        let colored = table.render(Style::colored());
        assert!(
            colored.contains("\x1b[32mlinked\x1b[0m    Café"),
            "{colored}"
        );
    }

    #[test]
    fn an_empty_last_cell_leaves_no_trailing_spaces() {
        let mut table = Table::bare();
        table
            .row(vec!["error".into(), "".into()])
            .row(vec!["run".into(), "r-1".into()]);
        assert_eq!(table.render(Style::plain()), "error\nrun    r-1\n");
    }
}
