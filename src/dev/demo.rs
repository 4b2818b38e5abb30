//! The demo company dev mode seeds: QBO customers and a vendor in the simulator, and the
//! Digit customers that meet them, telling the story qbo-sync exists for.

use std::path::Path;

use anyhow::Context;
use qbo_sim::Simulator;
use serde_json::{Value, json};

/// The demo tenant.
pub const TENANT: &str = "demo";
/// The demo company's realm id.
pub const REALM: &str = "9341450000000001";
/// How many ordinary customers both sides hold (created in both, linked by the first sync).
const ORDINARY: usize = 250;
/// Customers only QuickBooks has (left alone).
const QBO_ONLY: [&str; 3] = [
    "Pemberton Clockworks",
    "Saffron Lane Tea House",
    "Quill & Ink Stationers",
];
/// Customers only Digit has (pushed to QuickBooks by the sync).
const DIGIT_ONLY: [&str; 4] = [
    "Zanzibar Sailmakers",
    "Marigold Kite Company",
    "Obsidian Glassworks",
    "Tumbleweed Pottery Studio",
];

/// Words the ordinary customers' names are made of (deterministic, so every start agrees).
/// 30 × 10 pairs: every ordinary customer has a pair of its own, so no two differ only by
/// their legal form (which the matcher would rightly send to review).
const FIRST: [&str; 30] = [
    "Alder",
    "Birch",
    "Cedar",
    "Dune",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Linden",
    "Maple",
    "Nimbus",
    "Orchard",
    "Pinecrest",
    "Quarry",
    "Redwood",
    "Sable",
    "Tamarack",
    "Umber",
    "Vale",
    "Willow",
    "Yarrow",
    "Zephyr",
    "Aspen",
    "Bramble",
    "Cobalt",
    "Driftwood",
    "Elmwood",
];
const SECOND: [&str; 10] = [
    "Bakery",
    "Builders",
    "Consulting",
    "Dental",
    "Electric",
    "Florist",
    "Garage",
    "Hardware",
    "Insurance",
    "Joinery",
];
const LEGAL: [&str; 3] = ["LLC", "Inc", "Co"];

/// One ordinary customer's name (`i` < 300 gives distinct first-and-trade pairs).
fn ordinary_name(i: usize) -> String {
    format!(
        "{} {} {}",
        FIRST[i % FIRST.len()],
        SECOND[(i / FIRST.len()) % SECOND.len()],
        LEGAL[i % LEGAL.len()]
    )
}

/// The story's customers: (Digit id, Digit name), and what QBO holds for them.
pub const STORY: [(&str, &str, &str); 4] = [
    // Created in QuickBooks first, then in Digit with other capitalisation: linked by a sync.
    (
        "acme",
        "ACME corp",
        "QuickBooks has 'Acme Corp': a sync links them",
    ),
    // A sibling: same words but the city; never linked to 'Northwind Traders (Seattle)'.
    (
        "northwind-portland",
        "Northwind Traders (Portland)",
        "QuickBooks has only the Seattle branch: proposed to a person, never linked by itself",
    ),
    // A vendor holds the name: QuickBooks answers "Duplicate Name Exists" to the push.
    (
        "bolt",
        "Bolt Supply",
        "a QuickBooks vendor holds the name: created as 'Bolt Supply (c)'",
    ),
    // The QuickBooks customer is inactive: a person decides whether to reactivate it.
    (
        "old-mill",
        "Old Mill Bakery",
        "the QuickBooks customer is inactive: queued for review",
    ),
];

/// Seeds the simulator: the saved company of an earlier run when there is one (so the ids
/// the database holds still mean the same customers), or the demo company.
///
/// # Errors
/// When the saved company cannot be read or seeded.
pub fn seed_company(sim: &Simulator, saved: &Path) -> anyhow::Result<bool> {
    sim.create_realm(REALM);
    if let Ok(text) = std::fs::read_to_string(saved) {
        let company: Value = serde_json::from_str(&text)
            .with_context(|| format!("reading the saved company {}", saved.display()))?;
        sim.seed_customers(REALM, company["customers"].clone())?;
        for vendor in company["vendors"].as_array().into_iter().flatten() {
            let name = vendor["DisplayName"].as_str().unwrap_or_default();
            sim.add_vendor(REALM, name, vendor["Active"].as_bool().unwrap_or(true));
        }
        return Ok(true);
    }
    let mut customers = vec![
        json!({"DisplayName": "Acme Corp", "CompanyName": "Acme Corp", "Active": true}),
        json!({"DisplayName": "Northwind Traders (Seattle)", "Active": true}),
        json!({"DisplayName": "Old Mill Bakery", "Active": false}),
    ];
    customers.extend((0..ORDINARY).map(|i| json!({"DisplayName": ordinary_name(i)})));
    customers.extend(QBO_ONLY.iter().map(|name| json!({"DisplayName": name})));
    sim.seed_customers(REALM, Value::Array(customers))?;
    sim.add_vendor(REALM, "Bolt Supply", true);
    Ok(false)
}

/// Writes the simulator's company so the next start seeds the same one.
///
/// # Errors
/// When the file cannot be written.
pub fn save_company(sim: &Simulator, saved: &Path) -> anyhow::Result<()> {
    let company = json!({
        "customers": sim.customers(REALM),
        "vendors": sim.vendors(REALM),
    });
    let temp = saved.with_extension("json.tmp");
    std::fs::write(&temp, serde_json::to_vec(&company)?)
        .with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, saved).with_context(|| format!("writing {}", saved.display()))?;
    Ok(())
}

/// The Digit customers: the story's, and the ordinary ones.
pub fn digit_customers() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = STORY
        .iter()
        .map(|(id, name, _)| ((*id).to_owned(), (*name).to_owned()))
        .collect();
    all.extend((0..ORDINARY).map(|i| (format!("c{i:03}"), ordinary_name(i))));
    all.extend(
        DIGIT_ONLY
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("new{i}"), (*name).to_owned())),
    );
    all
}
