use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "qbo-sync", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Preview a migration offline: match Digit customers to QBO customers and print a JSON plan.
    Match {
        /// QBO customers: a JSON array of Customer objects, or a whole query response.
        #[arg(long, value_name = "FILE")]
        qbo: PathBuf,
        /// Digit customers: a JSON array of {id, display_name, company_name?, ...}.
        #[arg(long, value_name = "FILE")]
        digit: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Match { qbo, digit } => {
            let mut stdout = std::io::stdout().lock();
            match qbo_sync::matching::cli::run_match(&qbo, &digit, &mut stdout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("qbo-sync match: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
