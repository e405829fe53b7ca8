//! Where each node of a YAML document sits in its file, keyed by JSON pointer.
//!
//! serde_yaml gives values but no positions; yaml-rust2's event parser gives
//! positions (byte index, 1-based line and column) but no serde. This module
//! replays yaml-rust2's events into a pointer -> position index, so a finding's
//! JSON pointer becomes a `file:line:col`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

/// A position in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Byte offset.
    pub offset: usize,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
}

/// Block scalars keep their text line for line, so a position inside the
/// embedded document maps onto the file; other styles map to their start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Block,
    /// A quoted scalar, or an alias.
    Inline,
    /// An unquoted scalar: its text is resolved by type (`0644` is octal).
    Plain,
    Collection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSpan {
    /// The key, for a mapping value.
    pub key: Option<Mark>,
    /// The node itself.
    pub value: Mark,
    pub style: Style,
}

impl NodeSpan {
    /// Where a person looks: the key of a mapping value, else the node.
    pub fn anchor(&self) -> Mark {
        self.key.unwrap_or(self.value)
    }
}

/// Pointer -> span for one document.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    nodes: HashMap<String, NodeSpan>,
    /// Where the document's content starts.
    pub start: Option<Mark>,
}

impl SpanIndex {
    pub fn get(&self, pointer: &str) -> Option<&NodeSpan> {
        self.nodes.get(pointer)
    }

    /// The span at `pointer`, or at its nearest ancestor that exists (a
    /// finding about a missing field points at the object that lacks it).
    /// The flag says whether the match was exact.
    pub fn locate(&self, pointer: &str) -> Option<(&NodeSpan, bool)> {
        let mut p = pointer;
        let mut exact = true;
        loop {
            if let Some(span) = self.nodes.get(p) {
                return Some((span, exact));
            }
            exact = false;
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }

    /// Every pointer in the document with its span.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &NodeSpan)> {
        self.nodes.iter()
    }
}

enum Frame {
    Map {
        pointer: String,
        key: Option<(String, Mark)>,
        keys: usize,
    },
    Seq {
        pointer: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    docs: Vec<SpanIndex>,
    current: SpanIndex,
    stack: Vec<Frame>,
    /// The first duplicated key: Kubernetes (sigs.k8s.io/yaml) and yaml.v3
    /// both refuse them, while serde_json would silently keep the last.
    duplicate: Option<(String, Mark)>,
}

/// What a new node is, relative to its parent.
enum Slot {
    Key,
    Node(String),
}

fn push(base: &str, token: &str) -> String {
    lkguard_policy_sdk::pointer::push(base, token)
}

impl Builder {
    fn slot(&mut self, mark: Mark, style: Style, key_text: Option<&str>) -> Slot {
        let (pointer, key) = match self.stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Map { pointer, key, keys }) => match key.take() {
                None => {
                    let text = key_text.unwrap_or("?").to_string();
                    let child = push(pointer, &text);
                    if self.current.nodes.contains_key(&child)
                        && self.duplicate.is_none()
                        && text != "?"
                    {
                        self.duplicate = Some((text.clone(), mark));
                    }
                    // A block mapping starts at its first key; yaml-rust2
                    // marks it one character later.
                    if *keys == 0 {
                        if let Some(node) = self.current.nodes.get_mut(pointer.as_str()) {
                            node.value = mark;
                        }
                        if pointer.is_empty() {
                            self.current.start = Some(mark);
                        }
                    }
                    *keys += 1;
                    *key = Some((text, mark));
                    return Slot::Key;
                }
                Some((k, key_mark)) => (push(pointer, &k), Some(key_mark)),
            },
            Some(Frame::Seq { pointer, next }) => {
                let p = push(pointer, &next.to_string());
                *next += 1;
                (p, None)
            }
        };
        if self.current.start.is_none() {
            self.current.start = Some(mark);
        }
        self.current.nodes.insert(
            pointer.clone(),
            NodeSpan {
                key,
                value: mark,
                style,
            },
        );
        Slot::Node(pointer)
    }

    fn open(&mut self, mark: Mark, seq: bool) {
        let pointer = match self.slot(mark, Style::Collection, None) {
            // A collection used as a mapping key: its children get no useful
            // pointers, which is fine, since JSON has no such keys.
            Slot::Key => "/?".to_string(),
            Slot::Node(p) => p,
        };
        self.stack.push(if seq {
            Frame::Seq { pointer, next: 0 }
        } else {
            Frame::Map {
                pointer,
                key: None,
                keys: 0,
            }
        });
    }
}

impl Builder {
    /// One parser event, at its position (a byte offset already).
    fn event(&mut self, ev: Event, mark: Mark) {
        match ev {
            Event::DocumentStart => {
                self.current = SpanIndex::default();
                self.stack.clear();
            }
            Event::DocumentEnd => self.docs.push(std::mem::take(&mut self.current)),
            Event::Scalar(text, style, ..) => {
                let style = match style {
                    TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                    TScalarStyle::Plain => Style::Plain,
                    _ => Style::Inline,
                };
                let _ = self.slot(mark, style, Some(&text));
            }
            Event::Alias(_) => {
                let _ = self.slot(mark, Style::Inline, Some("*"));
            }
            Event::SequenceStart(..) => self.open(mark, true),
            Event::MappingStart(..) => self.open(mark, false),
            Event::SequenceEnd | Event::MappingEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Why a stream could not be indexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexError {
    /// With the byte offset of the error (the scanner's own index counts
    /// characters).
    Syntax(ScanError, usize),
    DuplicateKey {
        key: String,
        at: Mark,
    },
}

/// Deeper than serde_yaml goes (it refuses past 128 levels), so a document
/// this refuses would not have loaded anyway.
const MAX_DEPTH: usize = 128;

/// yaml-rust2's `Marker::index` counts characters, not bytes: in a file with
/// an `é` or a `→` before a node, using it as a byte offset moved every later
/// position back (ten arrows in a comment: a whole line). The byte offset is
/// rebuilt from the marker's line and character column.
struct ByteOffsets<'t> {
    text: &'t str,
    /// `None` for ASCII text, where characters are bytes.
    line_starts: Option<Vec<usize>>,
}

impl<'t> ByteOffsets<'t> {
    fn new(text: &'t str) -> Self {
        let line_starts = (!text.is_ascii()).then(|| {
            std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        ByteOffsets { text, line_starts }
    }

    fn offset(&self, m: &Marker) -> usize {
        let Some(starts) = &self.line_starts else {
            return m.index();
        };
        let start = starts
            .get(m.line().saturating_sub(1))
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..]
            .char_indices()
            .nth(m.col())
            .map_or(self.text.len(), |(i, _)| start + i)
    }

    fn mark(&self, m: Marker) -> Mark {
        Mark {
            offset: self.offset(&m),
            line: m.line(),
            col: m.col() + 1,
        }
    }
}

/// Indexes every document of a YAML stream.
///
/// Events are pulled one by one rather than through yaml-rust2's `load`,
/// which recurses once per level of nesting: 10,000 nested block sequences
/// (`- - - ... x`, 20 KB) overflowed the stack and aborted the process.
pub fn index(text: &str) -> Result<Vec<SpanIndex>, IndexError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    let bytes = ByteOffsets::new(text);
    loop {
        let (ev, marker) = parser.next_token().map_err(|e| {
            let at = bytes.offset(e.marker());
            IndexError::Syntax(e, at)
        })?;
        match ev {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let at = bytes.offset(&marker);
                    return Err(IndexError::Syntax(
                        ScanError::new(marker, "recursion limit exceeded"),
                        at,
                    ));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            Event::StreamEnd => break,
            _ => {}
        }
        builder.event(ev, bytes.mark(marker));
    }
    if let Some((key, at)) = builder.duplicate {
        return Err(IndexError::DuplicateKey { key, at });
    }
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_items_and_documents_get_their_lines() {
        let text = "a: 1\nb:\n  - name: x\n    value: y\n---\nkind: Z\n";
        let docs = index(text).unwrap();
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.get("/a").unwrap().anchor().line, 1);
        assert_eq!(d.get("/b/0").unwrap().anchor().line, 3);
        let v = d.get("/b/0/value").unwrap();
        assert_eq!((v.anchor().line, v.anchor().col), (4, 5));
        assert_eq!(&text[v.value.offset..v.value.offset + 1], "y");
        assert_eq!(docs[1].get("/kind").unwrap().anchor().line, 6);
        assert_eq!(
            d.start.unwrap(),
            Mark {
                offset: 0,
                line: 1,
                col: 1
            }
        );
        assert_eq!(d.get("/b/0").unwrap().value.col, 5);
    }

    #[test]
    fn offsets_are_bytes_after_non_ascii_text() {
        let text = "# →→→→→→→→→→ é\nkind: Zé\nspec:\n  name: x\n";
        let d = &index(text).unwrap()[0];
        let v = d.get("/spec/name").unwrap();
        assert_eq!((v.anchor().line, v.anchor().col), (4, 3));
        assert_eq!(&text[v.value.offset..v.value.offset + 1], "x");
        assert_eq!(&text[v.anchor().offset..v.anchor().offset + 4], "name");
        // A syntax error's offset is a byte offset too.
        let bad = "# é→\na: [\n";
        let Err(IndexError::Syntax(_, at)) = index(bad) else {
            panic!("a syntax error")
        };
        assert!(
            bad.is_char_boundary(at) && at > bad.find('a').unwrap(),
            "{at}"
        );
    }

    #[test]
    fn missing_fields_fall_back_to_the_nearest_ancestor() {
        let docs = index("spec:\n  ports: []\n").unwrap();
        let (span, exact) = docs[0].locate("/spec/externalTrafficPolicy").unwrap();
        assert!(!exact);
        assert_eq!(span.anchor().line, 1);
    }

    #[test]
    fn block_scalars_are_marked_at_their_first_text_line() {
        let docs = index("data:\n  a.yaml: |\n    x: 1\n  b: |-\n\n    y\n").unwrap();
        let a = docs[0].get("/data/a.yaml").unwrap();
        assert_eq!((a.style, a.value.line, a.value.col), (Style::Block, 3, 5));
        // Leading blank lines are skipped by the mark, kept by the text.
        assert_eq!(docs[0].get("/data/b").unwrap().value.line, 6);
    }
}
