//! `qbo-sync ctl`: the operator's client. Each subcommand makes one or a few gRPC calls to a
//! running server and prints the answer for people (tables, colour on a terminal) or, with
//! `--json`, as one JSON document for scripts. Errors print their gRPC code and message, and
//! the exit code says what kind of failure it was (see [`Exit`]).

mod args;
mod client;
mod customers;
mod exit;
mod json;
mod links;
mod names;
mod progress;
mod review;
mod style;
mod sync;
mod table;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

pub use args::{CtlArgs, CtlCommand, GlobalArgs};
pub use exit::{CtlError, Exit};
pub use style::Style;

pub use client::Session;

/// What a command has to say: the JSON document, the text for people, and how to exit.
#[derive(Debug)]
pub struct Report {
    /// Printed with `--json`.
    pub json: serde_json::Value,
    /// Printed otherwise (ends with a newline when not empty).
    pub human: String,
    /// [`Exit::Ok`], or [`Exit::No`] when the command worked but the answer is no.
    pub exit: Exit,
}

impl Report {
    /// A report that exits 0.
    fn ok(json: serde_json::Value, human: String) -> Self {
        Self {
            json,
            human,
            exit: Exit::Ok,
        }
    }
}

/// Runs `qbo-sync ctl` on a runtime of its own and returns the process's exit code.
#[must_use]
pub fn main(args: CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("qbo-sync ctl: cannot start the async runtime: {error}");
            return ExitCode::from(Exit::Other.code());
        }
    };
    let json = args.global.json;
    let exit = match runtime.block_on(run(args)) {
        Ok(report) => print(&report, json),
        Err(error) => {
            eprint!("{}", error.render());
            error.exit()
        }
    };
    ExitCode::from(exit.code())
}

/// Connects and runs one command.
///
/// # Errors
/// Any [`CtlError`]: a refused call, a server out of reach, or a bad argument.
pub async fn run(args: CtlArgs) -> Result<Report, CtlError> {
    let style = Style::for_stdout();
    let session = Session::connect(&args.global).await?;
    let json = args.global.json;
    match args.command {
        CtlCommand::Connect(a) => customers::connect(&session, a, style).await,
        CtlCommand::Customers(c) => customers::run(&session, c, style).await,
        CtlCommand::Sync(a) => sync::run(&session, a, style, json).await,
        CtlCommand::Cancel { run } => sync::cancel(&session, run, style).await,
        CtlCommand::Status { customer } => links::status(&session, customer, style).await,
        CtlCommand::Link(a) => links::link(&session, a, style).await,
        CtlCommand::Unlink(a) => links::unlink(&session, a, style).await,
        CtlCommand::History(a) => links::history(&session, a, style).await,
        CtlCommand::Review(c) => review::run(&session, c, style).await,
        CtlCommand::Validate { customer, repair } => {
            links::validate(&session, customer, repair, style).await
        }
    }
}

/// Writes the report to stdout; a closed pipe (`| head`) is not an error worth a message.
fn print(report: &Report, json: bool) -> Exit {
    let mut stdout = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut stdout, &report.json)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        stdout.write_all(report.human.as_bytes())
    };
    match written.and_then(|()| stdout.flush()) {
        Ok(()) => report.exit,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => report.exit,
        Err(e) => {
            eprintln!("qbo-sync ctl: cannot write the answer: {e}");
            Exit::Other
        }
    }
}

/// Whether progress should be drawn as a live bar (stderr is a terminal) or as lines.
fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}
