//! Loads `helm/qbo-sync`, merges values as Helm does, renders every template and parses each
//! manifest's YAML.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::Value;

use super::{
    parse::{Node, parse},
    render::{Engine, Val},
};

/// The chart, parsed once.
pub struct Chart {
    pub dir: PathBuf,
    pub defaults: Value,
    pub schema: Value,
    meta: Val,
    defines: HashMap<String, Vec<Node>>,
    /// Manifest templates and NOTES.txt, by file name.
    templates: BTreeMap<String, Vec<Node>>,
}

/// One rendered object and the template it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub source: String,
    pub doc: Value,
}

impl Manifest {
    pub fn kind(&self) -> &str {
        self.doc["kind"].as_str().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.doc["metadata"]["name"].as_str().unwrap_or("")
    }
}

/// A rendered release.
pub struct Release {
    pub values: Value,
    pub manifests: Vec<Manifest>,
    pub notes: String,
}

impl Release {
    /// The one manifest of `kind` whose name ends with `suffix`.
    pub fn one(&self, kind: &str, suffix: &str) -> &Manifest {
        let found: Vec<_> = self
            .manifests
            .iter()
            .filter(|m| m.kind() == kind && m.name().ends_with(suffix))
            .collect();
        assert_eq!(found.len(), 1, "one {kind} named *{suffix}: {found:?}");
        found[0]
    }

    pub fn all(&self, kind: &str) -> Vec<&Manifest> {
        self.manifests.iter().filter(|m| m.kind() == kind).collect()
    }
}

pub const NAMESPACE: &str = "digit";

impl Chart {
    pub fn load() -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("helm/qbo-sync");
        let read = |path: &str| {
            std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        let chart: Value = serde_yaml_ng::from_str(&read("Chart.yaml")).expect("Chart.yaml");
        let meta = Val::Map(BTreeMap::from([
            ("Name".to_owned(), Val::from_json(&chart["name"])),
            ("Version".to_owned(), Val::from_json(&chart["version"])),
            (
                "AppVersion".to_owned(),
                Val::from_json(&chart["appVersion"]),
            ),
        ]));
        let defaults = yaml(&read("values.yaml")).expect("values.yaml");
        let schema = serde_json::from_str(&read("values.schema.json")).expect("values.schema.json");
        let mut defines = HashMap::new();
        let mut templates = BTreeMap::new();
        let mut names: Vec<_> = std::fs::read_dir(dir.join("templates"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names {
            let parsed = parse(&read(&format!("templates/{name}")))
                .unwrap_or_else(|e| panic!("templates/{name}: {e}"));
            for (define, body) in parsed.defines {
                assert!(
                    defines.insert(define.clone(), body).is_none(),
                    "{define} defined twice"
                );
            }
            // Helm renders neither partials (`_*`) nor anything but manifests and NOTES.txt.
            if !name.starts_with('_') {
                templates.insert(name, parsed.nodes);
            }
        }
        Self {
            dir,
            defaults,
            schema,
            meta,
            defines,
            templates,
        }
    }

    /// values.yaml with each override file merged over it in turn, as `-f a -f b` does.
    pub fn values(&self, overrides: &[&str]) -> Value {
        let mut values = self.defaults.clone();
        for text in overrides {
            merge(&mut values, yaml(text).expect("override values"));
        }
        values
    }

    pub fn example(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("examples").join(name)).expect("example values")
    }

    /// Renders every template for release `name` in [`NAMESPACE`] and parses the manifests.
    pub fn render(&self, values: &Value, name: &str) -> Result<Release, String> {
        let files = |path: &str| std::fs::read_to_string(self.dir.join(path)).ok();
        let engine = Engine {
            defines: &self.defines,
            files: &files,
        };
        let release = Val::Map(BTreeMap::from([
            ("Name".to_owned(), Val::Str(name.to_owned())),
            ("Namespace".to_owned(), Val::Str(NAMESPACE.to_owned())),
            ("Service".to_owned(), Val::Str("Helm".to_owned())),
        ]));
        let data = Val::Map(BTreeMap::from([
            ("Values".to_owned(), Val::from_json(values)),
            ("Release".to_owned(), release),
            ("Chart".to_owned(), self.meta.clone()),
        ]));
        let mut manifests = Vec::new();
        let mut notes = String::new();
        for (file, nodes) in &self.templates {
            let text = engine
                .render(nodes, &data)
                .map_err(|e| format!("templates/{file}: {e}"))?;
            if file == "NOTES.txt" {
                notes = text;
                continue;
            }
            for document in serde_yaml_ng::Deserializer::from_str(&text) {
                let doc = Value::deserialize(document)
                    .map_err(|e| format!("templates/{file}: {e}\n{text}"))?;
                if !doc.is_null() {
                    manifests.push(Manifest {
                        source: file.clone(),
                        doc,
                    });
                }
            }
        }
        Ok(Release {
            values: values.clone(),
            manifests,
            notes,
        })
    }
}

pub fn yaml(text: &str) -> Result<Value, String> {
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    Ok(if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    })
}

/// Helm's coalescing: maps merge key by key, anything else replaces, null deletes.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                if value.is_null() {
                    base.remove(&key);
                } else if let Some(slot) = base.get_mut(&key) {
                    merge(slot, value);
                } else {
                    base.insert(key, value);
                }
            }
        }
        (slot, value) => *slot = value,
    }
}
