//! Builds batches from YAML for the policies' native unit tests.

use crate::model::{Batch, Origin, Resource};

/// One origin's manifests.
pub struct Source<'s> {
    pub name: &'s str,
    pub deployable: bool,
    pub complete: bool,
    pub yaml: &'s str,
}

/// A deployable, complete render (what an overlay render or `kubectl apply -f` sees).
pub fn render(yaml: &str) -> Batch {
    batch(&[Source {
        name: "render",
        deployable: true,
        complete: true,
        yaml,
    }])
}

pub fn batch(sources: &[Source]) -> Batch {
    let mut out = Batch::default();
    for (o, src) in sources.iter().enumerate() {
        out.origins.push(Origin {
            name: src.name.to_string(),
            deployable: src.deployable,
            complete: src.complete,
        });
        for doc in serde_yaml::Deserializer::from_str(src.yaml) {
            let value: serde_json::Value =
                serde::Deserialize::deserialize(doc).expect("test YAML parses");
            if value.is_null() {
                continue;
            }
            let s = |p: &str| {
                value
                    .pointer(p)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            out.resources.push(Resource {
                api_version: s("/apiVersion").unwrap_or_default(),
                kind: s("/kind").unwrap_or_default(),
                name: s("/metadata/name").unwrap_or_default(),
                namespace: s("/metadata/namespace"),
                origin: o as u32,
                json: value.to_string(),
            });
        }
    }
    out
}
