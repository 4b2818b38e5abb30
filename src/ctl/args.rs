//! The command line of `qbo-sync ctl`.

use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::config::parse_duration;

const CTL_HELP: &str = "\
Examples:
  export QBO_SYNC_ADDR=http://127.0.0.1:50051 QBO_SYNC_TOKEN=… QBO_SYNC_TENANT=t1
  qbo-sync ctl sync                          # full sync, live progress, summary at the end
  qbo-sync ctl sync --dry-run                # the plan as a table; nothing changes
  qbo-sync ctl status d-42                   # where customer d-42 stands, and why
  qbo-sync ctl validate d-42 --repair        # the invoice preflight, fixing what it can
  qbo-sync ctl review list
  qbo-sync ctl review accept ITEM QBO_ID
  qbo-sync ctl --json history d-42 | jq '.events[0]'

Exit codes:
  0  done
  1  any other failure (the gRPC code and message are printed)
  2  usage: a bad flag or argument (INVALID_ARGUMENT, OUT_OF_RANGE from the server too)
  3  not found: no such customer, run, review item or connection (NOT_FOUND)
  4  unavailable: the server cannot be reached, sheds load, or the deadline passed
     (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED)
  5  refused: FAILED_PRECONDITION, PERMISSION_DENIED, UNAUTHENTICATED
  6  the answer is no: `validate` found a problem, or a followed sync run ended
     FAILED or CANCELLED";

/// Talk to a running qbo-sync: sync, inspect and fix links, resolve reviews.
#[derive(Debug, Args)]
#[command(after_help = CTL_HELP)]
pub struct CtlArgs {
    #[command(flatten, next_help_heading = "Connection and output (any subcommand)")]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// Flags every subcommand takes (before or after its name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The server's gRPC address; https:// turns TLS on.
    #[arg(
        long,
        global = true,
        env = "QBO_SYNC_ADDR",
        default_value = "http://127.0.0.1:50051"
    )]
    pub addr: String,
    /// The caller's token, sent as `authorization: Bearer <token>`.
    #[arg(long, global = true, env = "QBO_SYNC_TOKEN", hide_env_values = true)]
    pub token: Option<SecretString>,
    /// The tenant (Digit company) to act on. Required.
    #[arg(long, global = true, env = "QBO_SYNC_TENANT")]
    pub tenant: Option<String>,
    /// Print the answer as JSON (one document on stdout) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Deadline of each call (sent to the server); a followed sync run is not bounded by it.
    #[arg(long, global = true, env = "QBO_SYNC_CTL_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// PEM file of the CA that signed the server's certificate (default: the public web roots).
    #[arg(long, global = true, env = "QBO_SYNC_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM certificate for mutual TLS (with --key-file).
    #[arg(long, global = true, env = "QBO_SYNC_CERT_FILE", requires = "key_file")]
    pub cert_file: Option<std::path::PathBuf>,
    /// PEM private key for mutual TLS (with --cert-file).
    #[arg(long, global = true, env = "QBO_SYNC_KEY_FILE", requires = "cert_file")]
    pub key_file: Option<std::path::PathBuf>,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Connect the tenant to its QuickBooks company (an OAuth code or a refresh token).
    Connect(ConnectArgs),
    /// Record Digit customers.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// Start a sync run and follow it with a progress bar to its summary (or --watch one).
    Sync(SyncArgs),
    /// Stop a sync run: a queued one at once, a running one at its next boundary.
    Cancel {
        /// The run's id.
        run: String,
    },
    /// Where a Digit customer stands, why, and which QBO customers may be the same.
    Status {
        /// Digit's id of the customer.
        customer: String,
    },
    /// Link a Digit customer to a QBO customer by hand.
    Link(LinkArgs),
    /// Remove a Digit customer's link.
    Unlink(UnlinkArgs),
    /// The audit trail of link changes, newest first.
    History(HistoryArgs),
    /// The review queue: list it, accept a candidate, reject them all, or create in QBO.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// The invoice preflight: can an invoice for this customer go to QBO now? (exit 6 if not)
    Validate {
        /// Digit's id of the customer on the invoice.
        customer: String,
        /// Try to fix NOT_LINKED or PENDING_PUSH within the deadline.
        #[arg(long)]
        repair: bool,
    },
}

/// The QBO environment of a company.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Environment {
    Sandbox,
    Production,
}

/// `connect`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("grant").required(true).args(["code", "refresh_token"])))]
pub struct ConnectArgs {
    /// The QBO company id (realmId).
    #[arg(long)]
    pub realm: String,
    /// Intuit's sandbox or real companies.
    #[arg(long, value_enum)]
    pub environment: Environment,
    /// The authorization code from the OAuth redirect (with --redirect-uri).
    #[arg(long, requires = "redirect_uri")]
    pub code: Option<String>,
    /// The redirect URI the code was issued for.
    #[arg(long)]
    pub redirect_uri: Option<String>,
    /// A refresh token obtained elsewhere, instead of a code.
    #[arg(long, env = "QBO_SYNC_REFRESH_TOKEN", hide_env_values = true)]
    pub refresh_token: Option<SecretString>,
    /// When the tenant is linked to another company: archive those links and connect.
    #[arg(long)]
    pub reset_links: bool,
    /// The end user you act for, kept with the audit events.
    #[arg(long)]
    pub on_behalf_of: Option<String>,
}

/// `customers …`.
#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Record one customer as Digit has it now (pushed to QBO unless --skip-push).
    Upsert(UpsertArgs),
}

/// `customers upsert`.
#[derive(Debug, Args)]
pub struct UpsertArgs {
    /// Digit's id of the customer.
    pub id: String,
    /// The name shown on invoices.
    #[arg(long)]
    pub name: String,
    /// The company the customer belongs to.
    #[arg(long)]
    pub company: Option<String>,
    /// The person's given name.
    #[arg(long)]
    pub given_name: Option<String>,
    /// The person's family name.
    #[arg(long)]
    pub family_name: Option<String>,
    /// The primary e-mail address.
    #[arg(long)]
    pub email: Option<String>,
    /// The primary phone number.
    #[arg(long)]
    pub phone: Option<String>,
    /// The customer is inactive in Digit.
    #[arg(long)]
    pub inactive: bool,
    /// Only record it: do not push it to QBO now.
    #[arg(long)]
    pub skip_push: bool,
}

/// `sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Read only the QBO customers changed since the last run.
    #[arg(long, conflicts_with = "watch")]
    pub incremental: bool,
    /// Change nothing: print the plan the run would carry out.
    #[arg(long, conflicts_with = "watch")]
    pub dry_run: bool,
    /// Only link: never create customers in QBO.
    #[arg(long, conflicts_with = "watch")]
    pub link_only: bool,
    /// An idempotency key: the same key returns the same run.
    #[arg(long, conflicts_with = "watch")]
    pub key: Option<String>,
    /// Print the run and return at once instead of following it.
    #[arg(long)]
    pub no_wait: bool,
    /// Follow this existing run instead of starting one.
    #[arg(long, value_name = "RUN")]
    pub watch: Option<String>,
}

/// `link`.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Digit's id of the customer.
    pub customer: String,
    /// QBO's id of the customer to link it to.
    pub qbo_customer: String,
    /// Replace an existing link of either customer instead of refusing.
    #[arg(long)]
    pub replace: bool,
    /// Why; kept in the audit trail.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// The end user you act for, kept in the audit trail.
    #[arg(long)]
    pub on_behalf_of: Option<String>,
}

/// `unlink`.
#[derive(Debug, Args)]
pub struct UnlinkArgs {
    /// Digit's id of the customer.
    pub customer: String,
    /// Why; kept in the audit trail.
    #[arg(long, default_value = "")]
    pub reason: String,
    /// The end user you act for, kept in the audit trail.
    #[arg(long)]
    pub on_behalf_of: Option<String>,
}

/// `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this Digit customer's events (default: the whole tenant's).
    pub customer: Option<String>,
    /// Events per page (1 to 500).
    #[arg(long, default_value_t = 20)]
    pub limit: i32,
    /// The page token printed under the previous page.
    #[arg(long, default_value = "")]
    pub page_token: String,
}

/// `review …`.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// The open review items, oldest first, with their candidates.
    List {
        /// Items per page (1 to 500).
        #[arg(long, default_value_t = 20)]
        limit: i32,
        /// The page token printed under the previous page.
        #[arg(long, default_value = "")]
        page_token: String,
    },
    /// Link the item's customer to one of its candidates.
    Accept {
        /// The review item's id.
        item: String,
        /// QBO's id of the chosen candidate.
        qbo_customer: String,
        /// Why; kept in the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// None of the candidates is the same customer; they are never proposed again.
    Reject {
        /// The review item's id.
        item: String,
        /// Why; kept in the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Create the item's customer in QBO as a new customer.
    Create {
        /// The review item's id.
        item: String,
        /// Why; kept in the audit trail.
        #[arg(long, default_value = "")]
        reason: String,
    },
}
