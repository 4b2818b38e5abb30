//! Properties of query building: any value, quoted, placed in a statement and percent-encoded
//! into the `query=` parameter, reads back as itself (less the control characters `quote`
//! drops) in the simulator's query parser, so no value can end its literal early or add a
//! clause.

use proptest::prelude::*;
use qbo_sim::{QueryCondition, QueryLiteral, QueryOp, read_query_conditions};

use super::*;
use crate::props::{config, hostile_text};

/// The conditions of `filters`, as the simulator reads the encoded statement.
fn read_back(filters: &[String]) -> Result<Vec<QueryCondition>, TestCaseError> {
    let statement = select("Customer", filters, 1, 1000);
    let encoded = encode_statement(&statement);
    prop_assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)),
        "unencoded byte in {encoded}"
    );
    read_query_conditions(&format!("minorversion=75&query={encoded}"))
        .map_err(|e| TestCaseError::fail(format!("{e}: {statement}")))
}

fn without_controls(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

fn strings(values: &[&str]) -> Vec<QueryLiteral> {
    values
        .iter()
        .map(|v| QueryLiteral::Str((*v).to_owned()))
        .collect()
}

proptest! {
    #![proptest_config(config(1_000))]

    #[test]
    fn a_quoted_value_reads_back_as_itself(value in hostile_text()) {
        let conditions = read_back(&[
            string_filter("DisplayName", &value),
            ACTIVE_OR_INACTIVE.to_owned(),
        ])?;
        prop_assert_eq!(conditions.len(), 2);
        let condition = &conditions[0];
        prop_assert_eq!(condition.field.as_str(), "DisplayName");
        let sent = without_controls(&value);
        if has_smart_quote(&value) {
            let pattern: String = sent
                .chars()
                .map(|c| if SMART_QUOTES.contains(&c) { '%' } else { c })
                .collect();
            prop_assert_eq!(condition.op, QueryOp::Like);
            prop_assert_eq!(&condition.values, &strings(&[&pattern]));
        } else {
            prop_assert_eq!(condition.op, QueryOp::Eq);
            prop_assert_eq!(&condition.values, &strings(&[&sent]));
        }
        prop_assert_eq!(&conditions[1].values, &vec![QueryLiteral::Bool(true), QueryLiteral::Bool(false)]);
        let _ = super::super::name_key(&value);
    }

    #[test]
    fn a_list_of_values_reads_back_as_itself(values in prop::collection::vec(hostile_text(), 1..6)) {
        let Some(filter) = in_filter("DisplayName", values.iter().map(String::as_str)) else {
            prop_assert!(values.iter().all(|v| has_smart_quote(v)));
            return Ok(());
        };
        let conditions = read_back(&[filter])?;
        let sent: Vec<String> = values
            .iter()
            .filter(|v| !has_smart_quote(v))
            .map(|v| without_controls(v))
            .collect();
        let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
        prop_assert_eq!(conditions[0].op, QueryOp::In);
        prop_assert_eq!(&conditions[0].values, &strings(&sent));
    }

    #[test]
    fn a_like_pattern_reads_back_as_itself(word in hostile_text()) {
        // As the similar-customers search writes it: `%` and control characters left out.
        let word: String = word.chars().filter(|c| *c != '%' && !c.is_control()).collect();
        let pattern = format!("%{word}%");
        let conditions = read_back(&[format!("DisplayName LIKE {}", quote(&pattern))])?;
        prop_assert_eq!(conditions[0].op, QueryOp::Like);
        prop_assert_eq!(&conditions[0].values, &strings(&[&pattern]));
    }
}
