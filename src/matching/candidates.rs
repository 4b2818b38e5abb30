//! Review candidates: everything the indexes found, scored, explained and ranked.

use super::abbrev::ambiguous_reading;
use super::evidence::{Evidence, GROUP_CAP};
use super::explain::same_name_reason;
use super::hierarchy::full_name_reason;
use super::index::{FUZZY_POSTING_CAP, fuzzy_keys};
use super::prepare::{DigitSide, QboSide, contact_hash};
use super::score::{MIN_NAME_SIMILARITY, is_generation, name_similarity, review_score};
use super::types::Candidate;

/// How many candidates a review item shows at most.
pub const MAX_CANDIDATES: usize = 5;
/// How many fuzzy hits are scored at most for one customer, to bound the worst case.
const MAX_FUZZY_HITS: usize = 256;

#[derive(Debug)]
struct Entry {
    pos: u32,
    name_sim: f64,
    email: bool,
    phone: bool,
    /// Kept even when the name is not similar (marker, e-mail, twin).
    strong: bool,
    /// The id marker outranks every name rule, numbers included.
    marker: bool,
    /// Found by its full name (`Parent:Job`), whose numbers agree by construction even when the
    /// job's own name lacks the parent's.
    full_name: bool,
    reasons: Vec<String>,
}

/// Candidates being collected for one Digit customer.
pub(crate) struct Pool<'s, 'a> {
    q: &'s QboSide<'a>,
    d: &'s DigitSide<'a>,
    i: usize,
    entries: Vec<Entry>,
}

impl<'s, 'a> Pool<'s, 'a> {
    pub fn new(q: &'s QboSide<'a>, d: &'s DigitSide<'a>, i: usize) -> Self {
        Self {
            q,
            d,
            i,
            entries: Vec::new(),
        }
    }

    fn entry(&mut self, pos: u32) -> Option<&mut Entry> {
        let rejected = self.d.rejected.contains(&(
            self.d.recs[self.i].id.as_str(),
            self.q.recs[pos as usize].id.as_str(),
        ));
        if rejected {
            return None; // a person said "not the same": never proposed again
        }
        if let Some(k) = self.entries.iter().position(|e| e.pos == pos) {
            return Some(&mut self.entries[k]);
        }
        let name_sim = name_similarity(&self.d.prep[self.i].name, &self.q.prep[pos as usize].name);
        self.entries.push(Entry {
            pos,
            name_sim,
            email: false,
            phone: false,
            strong: false,
            marker: false,
            full_name: false,
            reasons: Vec::new(),
        });
        self.entries.last_mut()
    }

    fn add(&mut self, pos: u32, strong: bool, reason: Option<String>) {
        if let Some(e) = self.entry(pos) {
            e.strong |= strong;
            e.reasons.extend(reason);
        }
    }

    /// Adds every QBO customer the evidence names, with the reason it was found.
    pub fn add_evidence(&mut self, ev: &Evidence) {
        let digit_name = self.d.recs[self.i].display_name.clone();
        for &p in &ev.marker {
            self.add(
                p,
                true,
                Some("carries this Digit customer's id marker".into()),
            );
            if let Some(e) = self.entry(p) {
                e.marker = true;
            }
        }
        for &p in &ev.email {
            self.add(p, true, None);
            if let Some(e) = self.entry(p) {
                e.email = true;
            }
        }
        for &p in &ev.exact {
            let reason = if ev.full_name.contains(&p) {
                let job = &self.q.recs[p as usize].display_name;
                full_name_reason(job, self.q.full_name(p))
            } else {
                same_name_reason(&digit_name, &self.q.recs[p as usize].display_name)
            };
            self.add(p, true, Some(reason));
        }
        self.add_full_name(ev);
        for &p in &ev.reordered {
            let other = &self.q.recs[p as usize].display_name;
            let reason = format!("same words in another order: '{digit_name}' ~ '{other}'");
            self.add(p, true, Some(reason));
        }
        for &p in &ev.twins {
            let other = &self.q.recs[p as usize].display_name;
            self.add(
                p,
                true,
                Some(format!(
                    "names differ only by a qualifier: '{digit_name}' vs '{other}'"
                )),
            );
        }
        for &p in &ev.other_legal {
            let other = &self.q.recs[p as usize].display_name;
            self.add(
                p,
                true,
                Some(format!(
                    "same name except the legal form: '{digit_name}' vs '{other}'"
                )),
            );
        }
    }

    /// Jobs found by their full name score as the same name; twins by full name are proposed.
    fn add_full_name(&mut self, ev: &Evidence) {
        let digit_name = self.d.recs[self.i].display_name.clone();
        for &p in &ev.full_name_twins {
            let reason = format!(
                "full names differ only by a qualifier: '{digit_name}' vs '{}'",
                self.q.full_name(p)
            );
            self.add(p, true, Some(reason));
        }
        for &p in ev.full_name.iter().chain(&ev.full_name_twins) {
            if let Some(e) = self.entry(p) {
                e.full_name = true;
                if ev.full_name.contains(&p) {
                    e.name_sim = 1.0;
                }
            }
        }
    }

    /// Adds QBO customers with the same phone number or a similar name (fuzzy blocking).
    pub fn add_similar(&mut self) {
        let me = &self.d.prep[self.i];
        if let Some(phone) = &me.phone {
            let key = contact_hash("p", phone);
            let hits: Vec<u32> = self.q.by_phone.get(key).take(GROUP_CAP).collect();
            for p in hits
                .into_iter()
                .filter(|p| self.q.prep[*p as usize].phone.as_ref() == Some(phone))
            {
                if let Some(e) = self.entry(p) {
                    e.phone = true;
                }
            }
        }
        if me.name.core.is_empty() {
            return;
        }
        let mut hits: Vec<u32> = Vec::new();
        fuzzy_keys(&me.name, |k| {
            if !self.q.crowded.contains(&k) {
                hits.extend(self.q.fuzzy.get_unless_over(k, FUZZY_POSTING_CAP));
            }
        });
        hits.sort_unstable();
        hits.dedup();
        for p in hits.into_iter().take(MAX_FUZZY_HITS) {
            let other = &self.q.prep[p as usize].name;
            // `Tech` may be Technology or Technical: proposed with the reading, never linked.
            let reason = ambiguous_reading(&me.name.core, &other.core).map(|(abbr, full)| {
                format!(
                    "same name if '{abbr}' stands for '{full}' (an abbreviation with several \
                     meanings): '{}' ~ '{}'",
                    self.d.recs[self.i].display_name, self.q.recs[p as usize].display_name
                )
            });
            self.add(p, reason.is_some(), reason);
        }
    }

    /// Scores, filters and ranks the pool into at most [`MAX_CANDIDATES`] candidates.
    pub fn into_candidates(mut self) -> Vec<Candidate> {
        let me = &self.d.prep[self.i];
        let mut out: Vec<Candidate> = Vec::new();
        let entries = std::mem::take(&mut self.entries);
        for e in entries {
            let other = &self.q.prep[e.pos as usize];
            let twin = me.name.core == other.name.core
                && (me.name.qualifier.is_none() || other.name.qualifier.is_none());
            // Numbers must agree (`Store #1234` is never `Store #1235`), except between twins.
            let numbers_agree =
                twin || e.marker || e.full_name || me.name.numbers() == other.name.numbers();
            let keep = e.strong || e.phone || e.name_sim >= MIN_NAME_SIMILARITY;
            if numbers_agree && keep {
                out.push(self.q.candidate(
                    e.pos,
                    review_score(e.name_sim, e.email, e.phone),
                    self.describe(e),
                ));
            }
        }
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.qbo_id.cmp(&b.qbo_id))
        });
        out.truncate(MAX_CANDIDATES);
        out
    }

    fn describe(&self, e: Entry) -> Vec<String> {
        let mut reasons = e.reasons;
        let qrec = &self.q.recs[e.pos as usize];
        let (me, other) = (&self.d.prep[self.i].name, &self.q.prep[e.pos as usize].name);
        if me.core == other.core
            && me.qualifier != other.qualifier
            && (is_generation(me) || is_generation(other))
        {
            reasons.push(format!(
                "same name but another generation ('{}' vs '{}'): maybe two people",
                me.qualifier.as_deref().unwrap_or("none"),
                other.qualifier.as_deref().unwrap_or("none")
            ));
        } else if reasons.is_empty() || (e.name_sim < 1.0 && !e.strong) {
            let digit_name = &self.d.recs[self.i].display_name;
            reasons.push(format!(
                "similar name ({:.2}): '{digit_name}' ~ '{}'",
                e.name_sim, qrec.display_name
            ));
        }
        if e.email {
            reasons.push("same e-mail address".into());
        }
        if e.phone {
            reasons.push("same phone number".into());
        }
        reasons.extend(self.q.flags(e.pos));
        reasons
    }
}

impl QboSide<'_> {
    /// Why this QBO customer cannot be linked automatically, if it cannot.
    pub fn flags(&self, pos: u32) -> Vec<String> {
        let rec = &self.recs[pos as usize];
        let mut flags = Vec::new();
        if !rec.active {
            flags.push("inactive in QBO".to_string());
        }
        if rec.is_job {
            let parent = rec
                .fully_qualified_name
                .as_deref()
                .or(rec.parent_id.as_deref())
                .unwrap_or("?");
            flags.push(format!("sub-customer (job): {parent}"));
        }
        if let Some(digit) = self.linked_to.get(rec.id.as_str()) {
            flags.push(format!("already linked to Digit customer {digit}"));
        }
        flags
    }

    /// The `FullyQualifiedName` of a sub-customer (it holds a `:`), else the display name.
    pub fn full_name(&self, pos: u32) -> &str {
        let rec = &self.recs[pos as usize];
        match &rec.fully_qualified_name {
            Some(fqn) if fqn.contains(':') => fqn,
            _ => &rec.display_name,
        }
    }

    pub fn candidate(&self, pos: u32, score: f64, reasons: Vec<String>) -> Candidate {
        let rec = &self.recs[pos as usize];
        Candidate {
            qbo_id: rec.id.clone(),
            display_name: rec.display_name.clone(),
            active: rec.active,
            linked_to: self
                .linked_to
                .get(rec.id.as_str())
                .map(|d| (*d).to_string()),
            score,
            reasons,
        }
    }
}
