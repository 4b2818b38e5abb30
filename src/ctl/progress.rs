//! A followed sync run's progress on stderr: a live spinner with the counters on a terminal;
//! elsewhere (logs, CI, tests) one line each time the state or a counter changes. The server
//! does not know a run's total ahead of time, so the bar counts up rather than filling.

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::names::short;
use crate::proto::v1 as pb;

/// How progress is shown.
pub enum Progress {
    /// A spinner redrawn in place, with elapsed time and the counters.
    Bar(ProgressBar),
    /// One line per change; `last` is the previous line, to print only changes.
    Lines { last: String },
    /// Nothing (`--json` away from a terminal: stdout carries the answer, stderr stays quiet).
    Silent,
}

impl Progress {
    /// A bar when stderr is a terminal; lines otherwise, unless `json`.
    #[must_use]
    pub fn new(json: bool) -> Self {
        if super::stderr_is_terminal() {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            Self::Bar(bar)
        } else if json {
            Self::Silent
        } else {
            Self::Lines {
                last: String::new(),
            }
        }
    }

    /// Shows the run as it is now.
    pub fn update(&mut self, run: &pb::SyncRun) {
        let line = progress_line(run);
        match self {
            Self::Bar(bar) => bar.set_message(line),
            Self::Lines { last } => {
                if *last != line {
                    // A closed stderr must not stop the run being followed.
                    let _ = writeln!(std::io::stderr(), "{line}");
                    *last = line;
                }
            }
            Self::Silent => {}
        }
    }

    /// Clears the bar, so the summary stands alone.
    pub fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// `running   read 1200 QBO · considered 800 · already 30 · linked 1 · review 2 · …`.
#[must_use]
pub fn progress_line(run: &pb::SyncRun) -> String {
    format!(
        "{:<9} read {} QBO · considered {} · already {} · linked {} · review {} · pushed {} · errors {}",
        short::<pb::SyncRunState>(run.state),
        run.qbo_customers_read,
        run.digit_customers_considered,
        run.already_linked,
        run.auto_linked,
        run.queued_for_review,
        run.pushed_to_qbo,
        run.errors
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_the_state_and_the_counters() {
        let run = pb::SyncRun {
            state: pb::SyncRunState::Running.into(),
            qbo_customers_read: 1200,
            digit_customers_considered: 800,
            already_linked: 30,
            auto_linked: 1,
            queued_for_review: 2,
            pushed_to_qbo: 5,
            ..Default::default()
        };
        assert_eq!(
            progress_line(&run),
            "running   read 1200 QBO · considered 800 · already 30 · linked 1 · review 2 · pushed 5 · errors 0"
        );
    }
}
