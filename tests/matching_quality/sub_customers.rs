//! Sub-customers (jobs) named by their full name, and job names shared by several parents.
//!
//! Generated after every other case, so adding them left the earlier records unchanged.

use super::generator::{Class, Gen};
use super::vocab::{LAST, WORDS};

/// A job name no other customer holds yet.
fn job_name(g: &mut Gen) -> Option<String> {
    let name = format!("{} {} Project", g.pick(WORDS), g.pick(LAST));
    g.reserve(&name).then_some(name)
}

pub fn sub_customers(g: &mut Gen) {
    // `Parent:Job` spelled with `:`, a spaced dash or a slash, in another case, with our suffix.
    for k in 0..40 {
        let legal = g.chance(0.5);
        let e = g.company(legal);
        let parent_name = e.display();
        let parent = g.add_qbo(&parent_name, &e, true, &[]);
        let Some(job) = job_name(g) else { continue };
        let job_id = g.add_job(&job, &parent, &parent_name);
        let digit_name = match k % 4 {
            0 => format!("{parent_name}:{job}"),
            1 => format!("{} - {job}", parent_name.to_uppercase()),
            2 => format!("{parent_name} / {}", job.to_lowercase()),
            _ => format!("{parent_name}: {job} (c)"),
        };
        g.add_digit(
            &digit_name,
            None,
            0,
            ("job_full_name", Class::Safe, Some(job_id)),
        );
    }
    // Two parents with a job of the same name: the job's name alone is ambiguous.
    for _ in 0..20 {
        let Some(job) = job_name(g) else { continue };
        let mut jobs = Vec::new();
        for _ in 0..2 {
            let e = g.company(false);
            let parent_name = e.display();
            let parent = g.add_qbo(&parent_name, &e, true, &[]);
            jobs.push(g.add_job(&job, &parent, &parent_name));
        }
        g.add_digit(
            &job,
            None,
            0,
            ("job_name_shared_by_parents", Class::Ambiguous, None),
        );
        g.last_label().related = jobs;
    }
}
