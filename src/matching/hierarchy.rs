//! Sub-customers by their full name: a QBO job's `FullyQualifiedName` (`Acme Corp:Kitchen
//! Remodel`) against a Digit name that spells the same path (`Acme Corp - Kitchen Remodel`).
//!
//! A path is compared segment by segment, each segment normalized on its own, so legal forms
//! and qualifiers keep their meaning inside the path. A Digit name is read as a path only when
//! it carries an explicit separator: without one, `Smith Plumbing Supply` could be a company of
//! its own rather than the job `Plumbing Supply` of `Smith`, and precision comes first.

use std::collections::HashMap;

use super::index::{KeyIndex, hash_key};
use super::normalize::{NormalizedName, collapse_spaces, compose_nfkc, normalize_name};

/// A customer name read as a hierarchy, parent first; always at least two segments.
pub(crate) type Path = Vec<NormalizedName>;

/// Separators people write between a parent and a job. Dashes and the slash count only with
/// spaces around them, so `Smith-Jones` or `A/C Services` stay single names.
const DIGIT_SEPARATORS: [&str; 4] = [" - ", " / ", " – ", " — "];

/// Splits already-split segments into a path; `None` unless there are two or more segments and
/// every one of them keeps a word.
fn to_path<'s>(segments: impl Iterator<Item = &'s str>) -> Option<Path> {
    let path: Path = segments.map(normalize_name).collect();
    (path.len() >= 2 && path.iter().all(|s| !s.core.is_empty())).then_some(path)
}

/// A QBO `FullyQualifiedName` as a path (QBO separates levels with `:`, which names cannot hold).
pub(crate) fn qbo_path(fully_qualified_name: &str) -> Option<Path> {
    // Most customers are top-level: skip normalizing their name a second time.
    if !fully_qualified_name.contains(':') {
        return None;
    }
    to_path(fully_qualified_name.split(':'))
}

/// A Digit name as a path, when it spells one with `:` or a spaced dash or slash: every
/// separator read as a level.
#[cfg(test)]
pub(crate) fn digit_path(display_name: &str) -> Option<Path> {
    digit_paths(display_name).into_iter().next()
}

/// Most readings of one Digit name as a path: a parent's own name may hold ` - ` (`Smith - Jones
/// Plumbing:Kitchen`), so beyond a few dashes and slashes only the first readings are tried.
const MAX_READINGS: usize = 16;

/// Every reading of a Digit name as a path. `:` always separates levels (QBO names cannot hold
/// one); a spaced dash or slash separates levels or belongs to a name (`Smith - Jones Plumbing -
/// Kitchen` is `Smith:Jones Plumbing:Kitchen` or `Smith - Jones Plumbing:Kitchen`…). The reading
/// with every separator as a level comes first.
pub(crate) fn digit_paths(display_name: &str) -> Vec<Path> {
    // The common case, an ASCII name without any separator, costs one scan.
    if display_name.is_ascii() && !display_name.contains([':', '-', '/']) {
        return Vec::new();
    }
    let mut text = collapse_spaces(&compose_nfkc(display_name));
    for sep in DIGIT_SEPARATORS {
        text = text.replace(sep, "\u{1f}");
    }
    if !text.contains([':', '\u{1f}']) {
        return Vec::new();
    }
    // Levels are the pieces between `:`; inside a piece, each soft separator may be a level.
    let soft: Vec<usize> = text.match_indices('\u{1f}').map(|(at, _)| at).collect();
    let combos = 1usize << soft.len().min(4);
    let mut out: Vec<Path> = Vec::new();
    for mask in 0..combos.min(MAX_READINGS) {
        // Bit k set: the k-th soft separator joins two words of one name instead of two levels.
        let mut reading = String::with_capacity(text.len());
        let mut k = 0;
        for c in text.chars() {
            if c == '\u{1f}' {
                let joins = k < 4 && mask & (1 << k) != 0;
                reading.push(if joins { ' ' } else { ':' });
                k += 1;
            } else {
                reading.push(c);
            }
        }
        if let Some(path) = to_path(reading.split(':'))
            && !out.contains(&path)
        {
            out.push(path);
        }
    }
    out
}

pub(crate) fn path_hash(path: &[NormalizedName]) -> u32 {
    let keys: Vec<String> = path.iter().map(NormalizedName::name_key).collect();
    let mut parts: Vec<&str> = vec!["path"];
    parts.extend(keys.iter().map(String::as_str));
    hash_key(&parts)
}

pub(crate) fn path_core_hash(path: &[NormalizedName]) -> u32 {
    let mut parts: Vec<&str> = vec!["pathcore"];
    parts.extend(path.iter().map(|s| s.core.as_str()));
    hash_key(&parts)
}

/// Twin paths: the same words level by level, and at least one level where the names differ only
/// by a qualifier (`John Smith:Bathroom` / `John Smith 2:Bathroom`). Legal forms are ignored, as
/// for twin names.
pub(crate) fn is_twin_path(a: &[NormalizedName], b: &[NormalizedName]) -> bool {
    let mut differs = false;
    for (x, y) in a.iter().zip(b) {
        if x.core != y.core {
            return false;
        }
        if x.qualifier != y.qualifier {
            if x.qualifier.is_some() && y.qualifier.is_some() {
                return false;
            }
            differs = true;
        }
    }
    a.len() == b.len() && differs
}

/// The paths of one side, with an index by exact path and by path words (for twins).
#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    /// The readings of each customer's name as a path (a QBO job's full name has one).
    pub paths: HashMap<u32, Vec<Path>>,
    by_path: KeyIndex,
    by_core: KeyIndex,
}

impl PathIndex {
    pub fn build(paths: HashMap<u32, Vec<Path>>) -> Self {
        let all = || {
            paths
                .iter()
                .flat_map(|(p, readings)| readings.iter().map(move |path| (*p, path)))
        };
        Self {
            by_path: KeyIndex::build(all().map(|(p, path)| (path_hash(path), p))),
            by_core: KeyIndex::build(all().map(|(p, path)| (path_core_hash(path), p))),
            paths,
        }
    }

    fn readings(&self, pos: u32) -> &[Path] {
        self.paths.get(&pos).map_or(&[], Vec::as_slice)
    }

    /// Positions whose path is exactly `path` (at most `cap` read).
    pub fn same(&self, path: &[NormalizedName], cap: usize) -> Vec<u32> {
        self.by_path
            .get(path_hash(path))
            .take(cap)
            .filter(|p| self.readings(*p).iter().any(|o| o.as_slice() == path))
            .collect()
    }

    /// Positions whose path is a twin of `path` (at most `cap` read).
    pub fn twins(&self, path: &[NormalizedName], cap: usize) -> Vec<u32> {
        self.by_core
            .get(path_core_hash(path))
            .take(cap)
            .filter(|p| self.readings(*p).iter().any(|o| is_twin_path(o, path)))
            .collect()
    }
}

/// "matches sub-customer 'Kitchen Remodel' of 'Acme Corp' by its full name 'Acme Corp:Kitchen
/// Remodel'".
pub(crate) fn full_name_reason(job_name: &str, fully_qualified_name: &str) -> String {
    let parent = fully_qualified_name
        .rsplit_once(':')
        .map_or("?", |(parent, _)| parent);
    format!(
        "matches sub-customer '{job_name}' of '{parent}' by its full name '{fully_qualified_name}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(path: Option<Path>) -> Option<Vec<String>> {
        path.map(|p| p.iter().map(NormalizedName::name_key).collect())
    }

    #[test]
    fn digit_names_are_paths_only_with_a_separator() {
        let want = Some(vec!["acme|corp".to_string(), "kitchen remodel".to_string()]);
        for raw in [
            "Acme Corp:Kitchen Remodel",
            "ACME CORP. : kitchen remodel",
            "Acme Corporation - Kitchen Remodel",
            "Acme Corp / Kitchen  Remodel (c)",
            "Acme Corp — Kitchen Remodel",
        ] {
            assert_eq!(keys(digit_path(raw)), want, "{raw}");
        }
        for raw in [
            "Acme Corp Kitchen Remodel",
            "Smith-Jones Plumbing",
            "A/C Services",
            "Acme:",
            ":Acme",
            "Acme - (c)",
        ] {
            assert_eq!(keys(digit_path(raw)), None, "{raw}");
        }
        assert_eq!(keys(qbo_path("Acme Corp")), None);
        // A parent whose own name holds ` - `: every reading of the dashes is tried.
        let readings: Vec<Vec<String>> = digit_paths("Smith - Jones Plumbing - Kitchen")
            .into_iter()
            .map(|p| p.iter().map(NormalizedName::name_key).collect())
            .collect();
        assert_eq!(
            readings,
            vec![
                vec![
                    "smith".to_string(),
                    "jones plumbing".into(),
                    "kitchen".into()
                ],
                vec!["smith jones plumbing".to_string(), "kitchen".into()],
                vec!["smith".to_string(), "jones plumbing kitchen".into()],
            ]
        );
        assert_eq!(
            keys(qbo_path("Acme:Phase 1:Roof")),
            Some(vec!["acme".into(), "phase (1)".into(), "roof".into()])
        );
    }

    #[test]
    fn twin_paths_differ_only_by_a_qualifier() {
        let p = |raw: &str| qbo_path(raw).unwrap();
        assert!(is_twin_path(
            &p("John Smith:Bathroom"),
            &p("John Smith 2:Bathroom")
        ));
        assert!(is_twin_path(&p("Acme:Roof"), &p("Acme:Roof (East)")));
        assert!(!is_twin_path(&p("Acme:Roof"), &p("Acme:Roof")));
        assert!(!is_twin_path(&p("Acme:Roof 1"), &p("Acme:Roof 2")));
        assert!(!is_twin_path(&p("Acme:Roof"), &p("Acme:Deck")));
        assert!(!is_twin_path(&p("Acme:Roof"), &p("Acme:Roof:East")));
        assert_eq!(
            full_name_reason("Kitchen Remodel", "Acme Corp:Kitchen Remodel"),
            "matches sub-customer 'Kitchen Remodel' of 'Acme Corp' by its full name \
             'Acme Corp:Kitchen Remodel'"
        );
    }
}
