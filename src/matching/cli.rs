//! The offline `qbo-sync match --qbo QBO.json --digit DIGIT.json` command: reads both files,
//! matches, and writes the plan as JSON.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::engine::match_customers;
use super::normalize::NORMALIZER_VERSION;
use super::qbo_json::{QboCustomerJson, QueryAnswer};
use super::types::{
    Candidate, Decision, DigitCustomerRecord, LinkMethod, MatchContext, QboCustomerRecord,
};

/// Why the `match` command failed; every message names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum MatchCliError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write the plan: {0}")]
    Write(#[source] std::io::Error),
}

/// The plan written to stdout.
#[derive(Debug, Serialize, Deserialize)]
pub struct Plan {
    pub normalizer_version: u32,
    pub links: Vec<PlanLink>,
    pub review: Vec<PlanReview>,
    pub unmatched: Vec<PlanUnmatched>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanLink {
    pub digit_id: String,
    pub qbo_id: String,
    pub method: LinkMethod,
    pub score: f64,
    pub reasons: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanReview {
    pub digit_id: String,
    pub reason: String,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanUnmatched {
    pub digit_id: String,
}

fn read(path: &Path) -> Result<String, MatchCliError> {
    std::fs::read_to_string(path).map_err(|source| MatchCliError::Read {
        path: path.to_owned(),
        source,
    })
}

fn parse_error(path: &Path, e: &serde_json::Error) -> MatchCliError {
    let text = e.to_string();
    // serde_json appends " at line L column C"; the position is reported separately.
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m)
        .to_string();
    MatchCliError::Parse {
        path: path.to_owned(),
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// Reads a QBO file: an array of Customer objects, or a whole query answer.
pub fn read_qbo_file(path: &Path) -> Result<Vec<QboCustomerRecord>, MatchCliError> {
    let text = read(path)?;
    let customers: Vec<QboCustomerJson> = if text.trim_start().starts_with('{') {
        serde_json::from_str::<QueryAnswer>(&text).map(|a| a.query_response.customer)
    } else {
        serde_json::from_str(&text)
    }
    .map_err(|e| parse_error(path, &e))?;
    let records: Vec<QboCustomerRecord> = customers.into_iter().map(Into::into).collect();
    check_unique_ids(path, records.iter().map(|r| r.id.as_str()))?;
    Ok(records)
}

/// Reads a Digit file: an array of `{id, display_name, company_name?, ...}`.
pub fn read_digit_file(path: &Path) -> Result<Vec<DigitCustomerRecord>, MatchCliError> {
    let records: Vec<DigitCustomerRecord> =
        serde_json::from_str(&read(path)?).map_err(|e| parse_error(path, &e))?;
    check_unique_ids(path, records.iter().map(|r| r.id.as_str()))?;
    Ok(records)
}

fn check_unique_ids<'a>(
    path: &Path,
    ids: impl Iterator<Item = &'a str>,
) -> Result<(), MatchCliError> {
    let mut seen = HashSet::new();
    for (n, id) in ids.enumerate() {
        if id.trim().is_empty() || !seen.insert(id) {
            let message = format!(
                "customer #{} (0-based) has an empty or repeated id {id:?}",
                n
            );
            return Err(MatchCliError::Invalid {
                path: path.to_owned(),
                message,
            });
        }
    }
    Ok(())
}

/// Matches the customers of two files and builds the plan.
pub fn plan_match(qbo: &[QboCustomerRecord], digit: &[DigitCustomerRecord]) -> Plan {
    let mut plan = Plan {
        normalizer_version: NORMALIZER_VERSION,
        links: vec![],
        review: vec![],
        unmatched: vec![],
    };
    for outcome in match_customers(qbo, digit, &MatchContext::default()) {
        let digit_id = outcome.digit_id;
        match outcome.decision {
            Decision::AutoLink {
                qbo_id,
                method,
                score,
                reasons,
            } => plan.links.push(PlanLink {
                digit_id,
                qbo_id,
                method,
                score,
                reasons,
            }),
            Decision::Review { reason, candidates } => plan.review.push(PlanReview {
                digit_id,
                reason,
                candidates,
            }),
            // The offline command has no existing links, so nothing is ever already linked.
            Decision::Unmatched | Decision::AlreadyLinked { .. } => {
                plan.unmatched.push(PlanUnmatched { digit_id })
            }
        }
    }
    plan
}

/// Runs `qbo-sync match`: reads both files, matches, writes the plan as pretty JSON to `out`.
///
/// # Errors
/// A file that cannot be read or parsed (the message names the file, line and column), repeated
/// ids, or a failed write.
pub fn run_match(
    qbo_path: &Path,
    digit_path: &Path,
    out: &mut dyn Write,
) -> Result<(), MatchCliError> {
    let qbo = read_qbo_file(qbo_path)?;
    let digit = read_digit_file(digit_path)?;
    let plan = plan_match(&qbo, &digit);
    serde_json::to_writer_pretty(&mut *out, &plan).map_err(|e| MatchCliError::Write(e.into()))?;
    writeln!(out).map_err(MatchCliError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_tmp(name: &str, body: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("qbo-sync-cli-{}-{}", std::process::id(), name));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path
    }

    #[test]
    fn plans_from_a_query_answer() {
        let qbo = write_tmp(
            "q.json",
            r#"{"QueryResponse":{"Customer":[
            {"Id":"1","SyncToken":"0","DisplayName":"Acme Corporation","Active":true,"PrimaryEmailAddr":{"Address":"a@acme.com"}},
            {"Id":"2","DisplayName":"Old Co","Active":false,"Notes":"[digit-id:d9]"}],"startPosition":1}}"#,
        );
        let digit = write_tmp(
            "d.json",
            r#"[{"id":"d1","display_name":"ACME CORP."},{"id":"d2","display_name":"Nobody"},{"id":"d9","display_name":"Other"}]"#,
        );
        let mut out = Vec::new();
        run_match(&qbo, &digit, &mut out).unwrap();
        let plan: Plan = serde_json::from_slice(&out).unwrap();
        assert_eq!(plan.links.len(), 1);
        assert_eq!(
            (
                plan.links[0].digit_id.as_str(),
                plan.links[0].qbo_id.as_str()
            ),
            ("d1", "1")
        );
        assert_eq!(plan.links[0].method, LinkMethod::AutoNormalized);
        assert_eq!(plan.unmatched.len(), 1);
        assert_eq!(plan.review[0].digit_id, "d9");
        assert!(!plan.review[0].candidates[0].active);
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let bad = write_tmp("bad.json", "[\n  {\"id\": \"d1\", \"display_name\": 3}\n]");
        let err = read_digit_file(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.json:2:"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
        let dup = write_tmp(
            "dup.json",
            r#"[{"Id":"1","DisplayName":"A"},{"Id":"1","DisplayName":"B"}]"#,
        );
        assert!(
            read_qbo_file(&dup)
                .unwrap_err()
                .to_string()
                .contains("repeated id \"1\"")
        );
        let missing = read_qbo_file(Path::new("no/such/file.json"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("cannot read no/such/file.json"),
            "{missing}"
        );
    }
}
