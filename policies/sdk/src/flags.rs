//! livekit-server's command line, read the way urfave/cli reads it.
//!
//! `--name value`, `--name=value`, and the single-dash forms; a boolean flag
//! takes no separate value (`--dev`, `--dev=false`). A word that is neither
//! a flag nor a flag's value is skipped (the caller passes the words after
//! the one that starts livekit-server); `--` ends the options. Later
//! occurrences of a flag win.

use crate::env::Word;
use crate::place::Place;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    /// `None` for a boolean flag given bare (`--dev`), which reads as true.
    pub value: Option<String>,
    /// The word holding the value (or the bare flag).
    pub place: Place,
}

/// Parses the words after the program name. `is_bool` says which names are
/// boolean flags (they never consume the next word).
pub fn parse(words: &[Word], is_bool: impl Fn(&str) -> bool) -> Vec<Flag> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i].text;
        if w == "--" {
            break;
        }
        let Some(bare) = w.strip_prefix("--").or_else(|| w.strip_prefix('-')) else {
            i += 1;
            continue;
        };
        if bare.is_empty() {
            i += 1;
            continue;
        }
        match bare.split_once('=') {
            Some((name, value)) => out.push(Flag {
                name: name.to_string(),
                value: Some(value.to_string()),
                place: words[i].place.clone(),
            }),
            None if is_bool(bare) => out.push(Flag {
                name: bare.to_string(),
                value: None,
                place: words[i].place.clone(),
            }),
            None => {
                let value = words.get(i + 1);
                out.push(Flag {
                    name: bare.to_string(),
                    value: value.map(|v| v.text.clone()),
                    place: value.map_or_else(|| words[i].place.clone(), |v| v.place.clone()),
                });
                i += 1;
            }
        }
        i += 1;
    }
    out
}

/// The last occurrence of a flag.
pub fn last<'f>(flags: &'f [Flag], name: &str) -> Option<&'f Flag> {
    flags.iter().rev().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<Word> {
        ws.iter()
            .enumerate()
            .map(|(i, w)| Word {
                text: w.to_string(),
                place: Place::new(0, format!("/args/{i}")),
            })
            .collect()
    }

    #[test]
    fn reads_urfave_forms() {
        let f = parse(
            &words(&[
                "--config",
                "/etc/a.yaml",
                "--dev",
                "-node-ip=1.2.3.4",
                "--udp-port",
                "7882",
            ]),
            |n| n == "dev",
        );
        let got: Vec<(&str, Option<&str>, &str)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.value.as_deref(), f.place.path.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("config", Some("/etc/a.yaml"), "/args/1"),
                ("dev", None, "/args/2"),
                ("node-ip", Some("1.2.3.4"), "/args/3"),
                ("udp-port", Some("7882"), "/args/5"),
            ]
        );
    }

    #[test]
    fn later_wins_and_double_dash_ends() {
        let f = parse(
            &words(&["--bind", "a", "--bind=b", "--", "--bind", "c"]),
            |_| false,
        );
        assert_eq!(last(&f, "bind").and_then(|f| f.value.as_deref()), Some("b"));
    }
}
