//! JSON pointers (RFC 6901), the currency findings use to say where.

/// Appends one reference token, escaping `~` and `/`.
pub fn push(base: &str, token: impl AsRef<str>) -> String {
    let token = token.as_ref().replace('~', "~0").replace('/', "~1");
    format!("{base}/{token}")
}

/// Reads one reference token back.
pub fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Joins tokens into a pointer.
pub fn join<I, S>(tokens: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    tokens
        .into_iter()
        .fold(String::new(), |acc, t| push(&acc, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_tokens() {
        assert_eq!(push("/data", "livekit.yaml"), "/data/livekit.yaml");
        assert_eq!(
            push("/metadata/annotations", "a/b~c"),
            "/metadata/annotations/a~1b~0c"
        );
        assert_eq!(join(["spec", "ports", "0"]), "/spec/ports/0");
    }
}
