//! `sync` (trigger, follow, summarize; a dry run's plan as a table; `--watch RUN`) and
//! `cancel RUN`.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;
use tonic::Code;

use super::{
    CtlError, Exit, Report,
    args::SyncArgs,
    client::Session,
    json::{self as js, to_datetime},
    names::short,
    progress::Progress,
    style::{Style, Tone},
    table::{Table, cell},
};
use crate::proto::v1 as pb;

/// How often a broken watch stream is opened again before giving up (a replica restarting
/// under a long run should not end the operator's view of it).
const WATCH_RETRIES: u32 = 5;

/// `sync`.
///
/// # Errors
/// The calls' refusals; a watch that keeps breaking.
pub async fn run(s: &Session, a: SyncArgs, style: Style, json: bool) -> Result<Report, CtlError> {
    let (run, already_running) = match &a.watch {
        Some(run_id) => (get_run(s, run_id).await?, false),
        None => trigger(s, &a).await?,
    };
    if a.no_wait {
        return Ok(Report::ok(
            sync_json(&run, already_running),
            started_text(&run, already_running, style),
        ));
    }
    if already_running && !json {
        eprintln!(
            "a run was already active for the tenant: following {}",
            run.run_id
        );
    }
    let mut progress = Progress::new(json);
    let followed = follow(s, run, &mut progress).await;
    progress.finish();
    let run = followed?;
    let exit = if run.state() == pb::SyncRunState::Succeeded {
        Exit::Ok
    } else {
        Exit::No
    };
    Ok(Report {
        json: sync_json(&run, already_running),
        human: summary_text(&run, style),
        exit,
    })
}

async fn trigger(s: &Session, a: &SyncArgs) -> Result<(pb::SyncRun, bool), CtlError> {
    let mode = if a.incremental {
        pb::SyncMode::Incremental
    } else {
        pb::SyncMode::Full
    };
    let request = pb::TriggerSyncRequest {
        tenant_id: s.tenant.clone(),
        mode: mode.into(),
        dry_run: a.dry_run,
        link_only: a.link_only,
        idempotency_key: a.key.clone().unwrap_or_default(),
    };
    let answer = s
        .customers
        .clone()
        .trigger_sync(s.request(request))
        .await?
        .into_inner();
    let run = answer
        .run
        .ok_or_else(|| CtlError::Rpc(tonic::Status::internal("TriggerSync returned no run")))?;
    Ok((run, answer.already_running))
}

async fn get_run(s: &Session, run_id: &str) -> Result<pb::SyncRun, CtlError> {
    let request = pb::GetSyncRunRequest {
        tenant_id: s.tenant.clone(),
        run_id: run_id.to_owned(),
    };
    let answer = s
        .customers
        .clone()
        .get_sync_run(s.request(request))
        .await?
        .into_inner();
    answer
        .run
        .ok_or_else(|| CtlError::Rpc(tonic::Status::internal("GetSyncRun returned no run")))
}

/// Follows the run with WatchSyncRun until it ends, showing each update; a stream broken by
/// the network or a restarting replica is opened again (at most [`WATCH_RETRIES`] times).
async fn follow(
    s: &Session,
    mut run: pb::SyncRun,
    progress: &mut Progress,
) -> Result<pb::SyncRun, CtlError> {
    progress.update(&run);
    let mut retries = 0;
    while !is_finished(&run) {
        match watch_until_end(s, &mut run, progress).await {
            Ok(()) => {
                // The stream ends after the final state; if something between us ended it
                // early, look again after a pause rather than reopening it in a tight loop.
                if !is_finished(&run) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    run = get_run(s, &run.run_id).await?;
                    progress.update(&run);
                }
            }
            Err(status) if retries < WATCH_RETRIES && is_transient(status.code()) => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(500 * u64::from(retries))).await;
            }
            Err(status) => return Err(status.into()),
        }
    }
    Ok(run)
}

/// One WatchSyncRun stream, read to its end. No deadline: a run takes as long as it takes.
async fn watch_until_end(
    s: &Session,
    run: &mut pb::SyncRun,
    progress: &mut Progress,
) -> Result<(), tonic::Status> {
    let request = pb::WatchSyncRunRequest {
        tenant_id: s.tenant.clone(),
        run_id: run.run_id.clone(),
    };
    let mut stream = s
        .customers
        .clone()
        .watch_sync_run(request)
        .await?
        .into_inner();
    while let Some(update) = stream.message().await? {
        if let Some(now) = update.run {
            progress.update(&now);
            *run = now;
        }
    }
    Ok(())
}

fn is_transient(code: Code) -> bool {
    matches!(code, Code::Unavailable | Code::Unknown | Code::Internal)
}

fn is_finished(run: &pb::SyncRun) -> bool {
    !matches!(
        run.state(),
        pb::SyncRunState::Queued | pb::SyncRunState::Running | pb::SyncRunState::Unspecified
    )
}

/// `cancel RUN`.
///
/// # Errors
/// The call's refusal (FAILED_PRECONDITION, reason SYNC_RUN_FINISHED, for an ended run).
pub async fn cancel(s: &Session, run_id: String, style: Style) -> Result<Report, CtlError> {
    let request = pb::CancelSyncRunRequest {
        tenant_id: s.tenant.clone(),
        run_id,
    };
    let answer = s
        .customers
        .clone()
        .cancel_sync_run(s.request(request))
        .await?
        .into_inner();
    let run = answer
        .run
        .ok_or_else(|| CtlError::Rpc(tonic::Status::internal("CancelSyncRun returned no run")))?;
    let text = if run.state() == pb::SyncRunState::Cancelled {
        format!(
            "sync run {}: {}\n",
            run.run_id,
            style.paint(Tone::Warn, "cancelled")
        )
    } else {
        format!(
            "sync run {}: {}, stops at its next page or chunk (follow it: qbo-sync ctl sync --watch {})\n",
            run.run_id,
            short::<pb::SyncRunState>(run.state),
            run.run_id
        )
    };
    Ok(Report::ok(json!({ "run": js::sync_run(&run) }), text))
}

fn sync_json(run: &pb::SyncRun, already_running: bool) -> serde_json::Value {
    json!({ "already_running": already_running, "run": js::sync_run(run) })
}

fn started_text(run: &pb::SyncRun, already_running: bool, style: Style) -> String {
    let what = if already_running {
        "was already active"
    } else {
        "started"
    };
    format!(
        "sync run {} {what}: {}\nfollow it: qbo-sync ctl sync --watch {}\n",
        style.paint(Tone::Bold, &run.run_id),
        short::<pb::SyncRunState>(run.state),
        run.run_id
    )
}

fn state_tone(state: pb::SyncRunState) -> Tone {
    match state {
        pb::SyncRunState::Succeeded => Tone::Good,
        pb::SyncRunState::Failed => Tone::Bad,
        pb::SyncRunState::Cancelled
        | pb::SyncRunState::Queued
        | pb::SyncRunState::Running
        | pb::SyncRunState::Unspecified => Tone::Warn,
    }
}

/// The end of a followed run: its outcome, its counters, and a dry run's plan.
fn summary_text(run: &pb::SyncRun, style: Style) -> String {
    let mut text = format!(
        "sync run {}: {} ({}{}){}\n",
        run.run_id,
        style.paint(
            state_tone(run.state()),
            &short::<pb::SyncRunState>(run.state)
        ),
        short::<pb::SyncMode>(run.mode),
        if run.dry_run { ", dry run" } else { "" },
        took(run).map(|d| format!(" in {d}")).unwrap_or_default(),
    );
    if !run.error.is_empty() {
        let _ = writeln!(text, "{}: {}", style.paint(Tone::Bad, "error"), run.error);
    }
    if run.dry_run {
        text.push_str("nothing was changed; the counts are what a run would do\n");
    }
    text.push_str(&counters_table(run).render(style));
    if run.dry_run {
        text.push_str(&plan_text(run, style));
    }
    text
}

fn counters_table(run: &pb::SyncRun) -> Table {
    let mut table = Table::bare();
    for (label, value) in [
        ("QBO customers read", run.qbo_customers_read),
        ("Digit customers considered", run.digit_customers_considered),
        ("already linked", run.already_linked),
        ("linked automatically", run.auto_linked),
        ("queued for review", run.queued_for_review),
        ("created in QBO", run.pushed_to_qbo),
        ("conflicts", run.conflicts),
        ("errors", run.errors),
    ] {
        let tone = match label {
            "errors" | "conflicts" if value > 0 => Tone::Bad,
            "queued for review" if value > 0 => Tone::Warn,
            _ => Tone::Plain,
        };
        table.row(vec![
            format!("  {label}").into(),
            cell(value.to_string(), tone),
        ]);
    }
    table
}

fn plan_text(run: &pb::SyncRun, style: Style) -> String {
    if run.planned_actions.is_empty() {
        return "plan: nothing to do\n".into();
    }
    let mut table = Table::new(&["CUSTOMER", "ACTION", "QBO", "METHOD", "SCORE", "REASONS"]);
    for a in &run.planned_actions {
        let kind = a.kind();
        let tone = match kind {
            pb::PlannedActionKind::Link => Tone::Good,
            pb::PlannedActionKind::Review => Tone::Warn,
            pb::PlannedActionKind::Push
            | pb::PlannedActionKind::Keep
            | pb::PlannedActionKind::Unspecified => Tone::Plain,
        };
        let method = if a.method == 0 {
            String::new()
        } else {
            short::<pb::LinkMethod>(a.method)
        };
        table.row(vec![
            a.digit_customer_id.clone().into(),
            cell(short::<pb::PlannedActionKind>(a.kind), tone),
            a.qbo_customer_id.clone().into(),
            method.into(),
            format!("{:.2}", a.score).into(),
            a.reasons.join("; ").into(),
        ]);
    }
    let mut text = format!("plan:\n{}", table.render(style));
    let shown = i64::try_from(run.planned_actions.len()).unwrap_or(i64::MAX);
    if run.planned_actions_total > shown {
        let _ = writeln!(
            text,
            "(the first {shown} of {} actions; --json holds the same)",
            run.planned_actions_total
        );
    }
    text
}

/// How long the run took, from start (or request) to end, as `1.4s` or `3m 20s`.
fn took(run: &pb::SyncRun) -> Option<String> {
    let start = run.started_at.as_ref().or(run.created_at.as_ref())?;
    let end = run.finished_at.as_ref()?;
    let millis = (to_datetime(end)? - to_datetime(start)?)
        .num_milliseconds()
        .max(0);
    Some(if millis < 60_000 {
        format!("{:.1}s", millis as f64 / 1000.0)
    } else {
        format!("{}m {}s", millis / 60_000, (millis % 60_000) / 1000)
    })
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;

    use super::*;

    fn at(seconds: i64, millis: i32) -> Option<Timestamp> {
        Some(Timestamp {
            seconds,
            nanos: millis * 1_000_000,
        })
    }

    #[test]
    fn a_dry_run_summary_shows_its_counters_and_its_plan() {
        let run = pb::SyncRun {
            run_id: "r-1".into(),
            mode: pb::SyncMode::Full.into(),
            state: pb::SyncRunState::Succeeded.into(),
            dry_run: true,
            auto_linked: 1,
            started_at: at(100, 0),
            finished_at: at(101, 400),
            planned_actions: vec![pb::PlannedAction {
                kind: pb::PlannedActionKind::Link.into(),
                digit_customer_id: "d-acme".into(),
                qbo_customer_id: "58".into(),
                method: pb::LinkMethod::AutoNormalized.into(),
                score: 0.97,
                reasons: vec!["same name once normalized".into()],
            }],
            planned_actions_total: 2,
            ..Default::default()
        };
        let text = summary_text(&run, Style::plain());
        assert!(
            text.starts_with("sync run r-1: succeeded (full, dry run) in 1.4s\n"),
            "{text}"
        );
        assert!(text.contains("  linked automatically        1\n"), "{text}");
        assert!(
            text.contains(
                "d-acme    link    58   auto normalized  0.97   same name once normalized\n"
            ),
            "{text}"
        );
        assert!(text.contains("(the first 1 of 2 actions"), "{text}");
    }

    #[test]
    fn long_runs_take_minutes() {
        let run = pb::SyncRun {
            created_at: at(0, 0),
            finished_at: at(200, 0),
            ..Default::default()
        };
        assert_eq!(took(&run).as_deref(), Some("3m 20s"));
    }
}
