//! `livekit/image-digest`: staging and production run an exact build.
//!
//! A tag can be re-pointed upstream; a pod rescheduled onto a new node then
//! pulls a different livekit-server than the one that was tested, and two pods
//! of one Deployment can run different builds.

use lkguard_policy_sdk::image;
use lkguard_policy_sdk::livekit::Target;
use lkguard_policy_sdk::{settings, workload, Batch, Finding, Metadata, Policy, RuleInfo};

pub const RULE: &str = "livekit/image-digest";

pub struct ImageDigest;

/// Why an image reference is not pinned, or `None` when it is.
pub fn pin_problem(reference: &str) -> Option<String> {
    let r = image::parse(reference);
    match (r.digest, r.tag) {
        (Some(d), _) => image::digest_problem(d),
        (None, Some("latest")) | (None, None) => Some(format!(
            "image `{reference}` follows the moving `latest` tag instead of a digest"
        )),
        (None, Some(tag)) => Some(format!(
            "image `{reference}` is pinned only by tag `{tag}`, which can be re-pointed"
        )),
    }
}

impl Policy for ImageDigest {
    fn metadata() -> Metadata {
        Metadata {
            id: "image-digest".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            rules: vec![RuleInfo {
                id: RULE.into(),
                summary: "Deployable renders pin livekit/livekit-server by @sha256 digest".into(),
                rationale: "The staging and production overlays pin livekit/livekit-server by digest so every \
                    pod runs the build that was tested. A tag (even a version tag) can be re-pointed upstream, \
                    and `latest` changes under you: a rescheduled pod silently pulls another server. \
                    tag@sha256:<64 hex> is fine; the digest decides. Init containers, StatefulSets, \
                    DaemonSets, Jobs, CronJobs and Argo Rollouts count too. Bases are exempt: the overlay's \
                    images: entry adds the digest. Topology: all."
                    .into(),
            }],
            settings_schema: settings::schema(serde_json::json!({})),
        }
    }

    fn validate(batch: &Batch, settings: &str) -> Result<Vec<Finding>, String> {
        let target: Target = settings::parse(settings)?;
        let objects = batch.objects();
        let mut findings = Vec::new();
        for template in workload::pod_templates(&objects) {
            if !template.object.origin.deployable {
                continue;
            }
            for c in template.containers() {
                let image_ref = c.container.image.as_deref().unwrap_or_default();
                let is_server = image::parse(image_ref).is_repository(&target.image);
                if !(is_server || target.matches(&c)) {
                    continue;
                }
                if let Some(problem) = pin_problem(image_ref) {
                    findings.push(
                        Finding::error(
                            RULE,
                            template.object.index,
                            format!("{}/image", c.path),
                            problem,
                        )
                        .hint("pin it with the overlay's images: entry (digest: sha256:...)"),
                    );
                }
            }
        }
        Ok(findings)
    }
}

lkguard_policy_sdk::export_policy!(ImageDigest);

#[cfg(test)]
mod tests {
    use super::*;
    use lkguard_policy_sdk::testkit::render;

    const DIGEST: &str = "sha256:4c2b8e9f0a1d3c5e7f9b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c";

    fn cronjob(init: &str, main: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: x}}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers: [{{name: i, image: \"{init}\"}}]\n          containers: [{{name: livekit, image: \"{main}\"}}]\n"
        )
    }

    #[test]
    fn pins() {
        assert_eq!(
            pin_problem(&format!("livekit/livekit-server@{DIGEST}")),
            None
        );
        assert_eq!(
            pin_problem(&format!("livekit/livekit-server:v1.9.1@{DIGEST}")),
            None
        );
        assert!(pin_problem("livekit/livekit-server:v1.9.1")
            .unwrap()
            .contains("tag"));
        assert!(pin_problem("livekit/livekit-server")
            .unwrap()
            .contains("latest"));
        assert!(pin_problem("livekit/livekit-server@sha256:abc").is_some());
    }

    #[test]
    fn finds_every_container_of_every_kind() {
        let pinned = format!("livekit/livekit-server@{DIGEST}");
        assert_eq!(
            ImageDigest::validate(&render(&cronjob(&pinned, &pinned)), "{}").unwrap(),
            vec![]
        );
        let f = ImageDigest::validate(
            &render(&cronjob("livekit/livekit-server:v1", &pinned)),
            "{}",
        )
        .unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(
            f[0].path,
            "/spec/jobTemplate/spec/template/spec/initContainers/0/image"
        );
        // The configured container name catches a mirrored image too.
        let f = ImageDigest::validate(&render(&cronjob(&pinned, "myacr.io/lk:v1")), "{}").unwrap();
        assert_eq!(
            f[0].path,
            "/spec/jobTemplate/spec/template/spec/containers/0/image"
        );
    }
}
