//! Container image references, split the way the container runtime reads them.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Registry and repository, e.g. `docker.io/livekit/livekit-server`.
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

pub fn parse(image: &str) -> ImageRef<'_> {
    let image = image.trim();
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    // A colon after the last slash is a tag; one before it is a registry port.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    ImageRef { name, tag, digest }
}

impl ImageRef<'_> {
    /// Whether this is `repository`, on Docker Hub or behind any registry or
    /// mirror prefix (`myacr.azurecr.io/livekit/livekit-server`).
    pub fn is_repository(&self, repository: &str) -> bool {
        let repository = repository.trim_matches('/');
        self.name == repository
            || self
                .name
                .strip_suffix(repository)
                .is_some_and(|prefix| prefix.ends_with('/'))
    }
}

impl ImageRef<'_> {
    /// The release a tag names: `v1.9.1`, `1.9.1`, `v1.13.3-rc1` (the
    /// pre-release suffix ignored). `None` for `latest`, a digest alone, or
    /// anything else: the caller then assumes the newest behaviour it knows.
    pub fn version(&self) -> Option<(u32, u32, u32)> {
        let tag = self.tag?;
        let tag = tag.strip_prefix('v').unwrap_or(tag);
        let core = tag.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let version = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then_some(version)
    }
}

/// Why a digest is not a usable pin, or `None` when it is one.
pub fn digest_problem(digest: &str) -> Option<String> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return Some(format!("digest `{digest}` is not a sha256 digest"));
    };
    if hex.len() != 64 {
        return Some(format!(
            "digest `{digest}` has {} hex digits, not 64",
            hex.len()
        ));
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Some(format!("digest `{digest}` is not lowercase hex"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_registry_port_tag_and_digest() {
        let r = parse("localhost:5000/livekit/livekit-server:v1.9@sha256:abc");
        assert_eq!(r.name, "localhost:5000/livekit/livekit-server");
        assert_eq!(r.tag, Some("v1.9"));
        assert_eq!(r.digest, Some("sha256:abc"));
        let r = parse("livekit/livekit-server");
        assert_eq!(
            (r.name, r.tag, r.digest),
            ("livekit/livekit-server", None, None)
        );
    }

    #[test]
    fn matches_repository_behind_prefixes_only_on_a_path_boundary() {
        assert!(
            parse("docker.io/livekit/livekit-server:v1").is_repository("livekit/livekit-server")
        );
        assert!(parse("livekit/livekit-server").is_repository("livekit/livekit-server"));
        assert!(!parse("evil-livekit/livekit-server").is_repository("livekit/livekit-server"));
        assert!(!parse("livekit/livekit-server-sdk").is_repository("livekit/livekit-server"));
    }

    #[test]
    fn digest_must_be_sha256_with_64_lowercase_hex() {
        assert_eq!(digest_problem(&format!("sha256:{}", "a".repeat(64))), None);
        assert!(digest_problem(&format!("sha256:{}", "a".repeat(63))).is_some());
        assert!(digest_problem(&format!("sha256:{}", "A".repeat(64))).is_some());
        assert!(digest_problem(&format!("sha512:{}", "a".repeat(128))).is_some());
    }

    #[test]
    fn versions_come_from_release_tags_only() {
        let v = |i: &str| parse(i).version();
        assert_eq!(v("livekit/livekit-server:v1.9.1"), Some((1, 9, 1)));
        assert_eq!(
            v("livekit/livekit-server:1.13.3@sha256:ab"),
            Some((1, 13, 3))
        );
        assert_eq!(
            v("reg:5000/livekit/livekit-server:v1.8.4-rc1"),
            Some((1, 8, 4))
        );
        assert_eq!(v("livekit/livekit-server:latest"), None);
        assert_eq!(v("livekit/livekit-server:v1.9"), None);
        assert_eq!(v("livekit/livekit-server@sha256:ab"), None);
    }
}
