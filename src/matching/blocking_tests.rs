use super::*;

fn qbo(id: &str, name: &str) -> QboCustomerRecord {
    QboCustomerRecord {
        id: id.into(),
        display_name: name.into(),
        active: true,
        ..QboCustomerRecord::default()
    }
}

fn digit(id: &str, name: &str) -> DigitCustomerRecord {
    DigitCustomerRecord {
        id: id.into(),
        display_name: name.into(),
        ..DigitCustomerRecord::default()
    }
}

/// Whether the Digit customer's lookups reach the QBO customer.
fn reaches(d: &DigitCustomerRecord, q: &QboCustomerRecord) -> bool {
    let keys = digit_blocking_keys(d);
    let filed = qbo_blocking_keys(q);
    keys.lookup
        .iter()
        .chain(&keys.fuzzy)
        .any(|k| filed.contains(k))
}

#[test]
fn a_digit_customer_reaches_the_qbo_customers_the_batch_pairs_it_with() {
    for (d, q) in [
        ("Intl Trading Co", "International Trading Company"),
        ("Müller GmbH", "Mueller GmbH"),
        ("Mueller GmbH", "Müller GmbH"),
        ("Acme Tech", "Acme Technology"),
        ("Jonh Smith", "John Smith"),
        ("Smith, John", "John Smith"),
        ("Acme Corp - Kitchen", "Kitchen"),
    ] {
        let mut q = qbo("1", q);
        if d.contains(" - ") {
            q.fully_qualified_name = Some("Acme Corp:Kitchen".into());
            q.is_job = true;
        }
        assert!(reaches(&digit("d", d), &q), "{d} / {}", q.display_name);
    }
    let mut by_mail = qbo("1", "Zebra Logistics");
    by_mail.email = Some("Ops@Zebra.test".into());
    let mut d = digit("d", "Unrelated Name");
    d.email = Some("ops@zebra.test".into());
    assert!(reaches(&d, &by_mail));
    assert!(!reaches(&digit("d", "Unrelated Name"), &by_mail));
}

#[test]
fn keys_are_tagged_by_index_and_only_fuzzy_ones_say_so() {
    let keys = digit_blocking_keys(&digit("d", "Acme Plumbing"));
    assert!(!keys.fuzzy.is_empty() && keys.fuzzy.iter().all(|k| k.is_fuzzy()));
    assert!(keys.lookup.iter().all(|k| !k.is_fuzzy()));
    assert!(keys.filed.iter().all(|k| keys.stored.contains(k)));
    // The same hash in two indexes is two keys.
    assert_ne!(
        BlockingKey::new(Role::Name, 7).as_u64(),
        BlockingKey::new(Role::Core, 7).as_u64()
    );
    assert_eq!(BlockingKey::new(Role::Fuzzy, 7).hash(), 7);
    // A QBO customer's automatic-link keys are among the keys it is filed under.
    let q = qbo("1", "Acme Plumbing");
    let filed = qbo_blocking_keys(&q);
    assert!(qbo_auto_link_keys(&q).iter().all(|k| filed.contains(k)));
}
