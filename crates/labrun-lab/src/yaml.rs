//! A YAML tree that remembers where every node came from.
//!
//! Lab files are small, and every diagnostic must point at a byte range, so we build our own
//! spanned tree from saphyr-parser's event stream instead of deserialising straight into
//! structs. Scalars follow the YAML 1.2 core schema: only `true`/`false` are booleans, so a
//! value like `no` or `off` stays a string (the YAML 1.1 trap serde_yaml users know).

use crate::limits::{YAML_MAX_DEPTH, YAML_MAX_NODES, YAML_MAX_TEXT};
use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};
use std::collections::HashMap;

/// Byte range inside one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end: end.max(start) }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

/// A YAML problem with the place it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// Diagnostic code, e.g. `labrun::yaml`.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    pub label: String,
    /// Where the first of two duplicate keys stands.
    pub related: Option<Span>,
}

impl Node {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }
    /// Looks a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }
    /// The plain JSON value of this node (spans dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.key_text(), v.to_json())).collect()),
        }
    }
    /// A mapping key as text (non-string keys are written as YAML would print them).
    pub fn key_text(&self) -> String {
        match &self.kind {
            Kind::Str(s) => s.clone(),
            Kind::Null => "null".into(),
            Kind::Bool(b) => b.to_string(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            _ => "<complex key>".into(),
        }
    }
}

/// Parses one YAML document. `base` is added to every span (the byte offset of the YAML text
/// inside a larger file, e.g. a fenced block in Markdown). An empty document is `Null`.
pub fn parse(text: &str, base: usize) -> Result<Node, YamlError> {
    let offsets = CharOffsets::new(text, base);
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder { stack: Vec::new(), anchors: HashMap::new(), root: None, offsets: &offsets, nodes: 0, text: 0 };
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| {
            let at = offsets.byte(e.marker().index());
            YamlError {
                code: "labrun::yaml",
                message: format!("YAML syntax error: {}", e.info()),
                span: Span::new(at, at + 1),
                label: "here".into(),
                related: None,
            }
        })?;
        match event {
            Event::DocumentStart(_) if builder.root.is_some() => {
                let at = offsets.byte(span.start.index());
                return Err(YamlError {
                    code: "labrun::yaml",
                    message: "a lab block holds one YAML document; found a second `---`".into(),
                    span: Span::new(at, at + 3),
                    label: "second document starts here".into(),
                    related: None,
                });
            }
            Event::StreamEnd => break,
            other => builder.event(other, span)?,
        }
    }
    Ok(builder.root.unwrap_or(Node { kind: Kind::Null, span: Span::new(base, base) }))
}

/// saphyr reports character indices; diagnostics need byte offsets.
struct CharOffsets {
    bytes: Vec<usize>,
    base: usize,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str, base: usize) -> Self {
        let bytes = if text.is_ascii() { Vec::new() } else { text.char_indices().map(|(b, _)| b).collect() };
        CharOffsets { bytes, base, len: text.len() }
    }
    fn byte(&self, char_index: usize) -> usize {
        let local = if self.bytes.is_empty() { char_index.min(self.len) } else { self.bytes.get(char_index).copied().unwrap_or(self.len) };
        self.base + local
    }
    fn span(&self, s: YSpan) -> Span {
        Span::new(self.byte(s.start.index()), self.byte(s.end.index()))
    }
}

/// What a subtree costs once aliases are expanded: values, text bytes, and nesting height.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    text: usize,
    height: usize,
}

impl Size {
    fn add(&mut self, child: Size) {
        self.nodes += child.nodes;
        self.text += child.text;
        self.height = self.height.max(child.height + 1);
    }
}

enum Frame {
    Seq { items: Vec<Node>, start: usize, anchor: usize, size: Size },
    Map { entries: Vec<(Node, Node)>, pending_key: Option<Node>, keys: Keys, start: usize, anchor: usize, size: Size },
}

/// The keys of one mapping so far, by type and text (a list or mapping key by its JSON form),
/// so duplicate detection takes linear time.
#[derive(Default)]
struct Keys(HashMap<(u8, String), Span>);

impl Keys {
    /// The span of an earlier equal key, or records this one.
    fn insert(&mut self, key: &Node) -> Option<Span> {
        let id = match &key.kind {
            Kind::Null => (0, String::new()),
            Kind::Bool(_) => (1, key.key_text()),
            Kind::Int(_) => (2, key.key_text()),
            Kind::Float(_) => (3, key.key_text()),
            Kind::Str(s) => (4, s.clone()),
            Kind::Seq(_) | Kind::Map(_) => (5, key.to_json().to_string()),
        };
        match self.0.entry(id) {
            std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(key.span);
                None
            }
        }
    }
}

struct Builder<'a> {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, Size)>,
    root: Option<Node>,
    offsets: &'a CharOffsets,
    /// Values and text built so far, aliases counted at their expanded size.
    nodes: usize,
    text: usize,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, span: YSpan) -> Result<(), YamlError> {
        let sp = self.offsets.span(span);
        match event {
            Event::Scalar(value, style, anchor, _tag) => {
                let size = Size { nodes: 1, text: value.len(), height: 0 };
                self.spend(size, sp)?;
                let node = Node { kind: scalar_kind(&value, style), span: sp };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.push(node, size)
            }
            Event::Alias(id) => {
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    return Err(YamlError {
                        code: "labrun::yaml",
                        message: "unknown YAML alias".into(),
                        span: sp,
                        label: "no anchor with this name before here".into(),
                        related: None,
                    });
                };
                // Counted before the copy is made: an alias bomb stops here, not in the allocator.
                self.spend(size, sp).map_err(|e| YamlError { label: "this alias crosses the limit".into(), ..e })?;
                let node = self.anchors[&id].0.clone();
                self.push(Node { span: sp, ..node }, size)
            }
            Event::SequenceStart(anchor, _) => {
                self.open(sp)?;
                self.stack.push(Frame::Seq { items: Vec::new(), start: sp.start, anchor, size: Size { nodes: 1, text: 0, height: 1 } });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.open(sp)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    pending_key: None,
                    keys: Keys::default(),
                    start: sp.start,
                    anchor,
                    size: Size { nodes: 1, text: 0, height: 1 },
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(YamlError {
                        code: "labrun::yaml",
                        message: "YAML syntax error: unbalanced end of a list or mapping".into(),
                        span: sp,
                        label: "here".into(),
                        related: None,
                    });
                };
                let (kind, start, anchor, size) = match frame {
                    Frame::Seq { items, start, anchor, size } => (Kind::Seq(items), start, anchor, size),
                    Frame::Map { entries, start, anchor, size, .. } => (Kind::Map(entries), start, anchor, size),
                };
                let end = match &kind {
                    Kind::Seq(items) => items.last().map(|n| n.span.end),
                    Kind::Map(entries) => entries.last().map(|(_, v)| v.span.end),
                    _ => None,
                }
                .unwrap_or(sp.end)
                .max(start);
                let node = Node { kind, span: Span::new(start, end) };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.push(node, size)
            }
            _ => Ok(()),
        }
    }

    /// A list or mapping starts: one more level of nesting, one more value.
    fn open(&mut self, sp: Span) -> Result<(), YamlError> {
        if self.stack.len() >= YAML_MAX_DEPTH {
            return Err(too_deep(sp));
        }
        self.spend(Size { nodes: 1, ..Size::default() }, sp)
    }

    /// Counts a value (with everything an alias brings along) against the document's budget.
    fn spend(&mut self, size: Size, sp: Span) -> Result<(), YamlError> {
        if self.stack.len() + size.height > YAML_MAX_DEPTH {
            return Err(too_deep(sp));
        }
        self.nodes = self.nodes.saturating_add(size.nodes);
        self.text = self.text.saturating_add(size.text);
        if self.nodes > YAML_MAX_NODES || self.text > YAML_MAX_TEXT {
            return Err(YamlError {
                code: "labrun::yaml-too-large",
                message: format!(
                    "this YAML document expands to more than labrun allows ({YAML_MAX_NODES} values or {} MiB of text, aliases counted at their full size)",
                    YAML_MAX_TEXT >> 20
                ),
                span: sp,
                label: "the limit is crossed here".into(),
                related: None,
            });
        }
        Ok(())
    }

    fn push(&mut self, node: Node, size: Size) -> Result<(), YamlError> {
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Frame::Seq { items, size: total, .. }) => {
                total.add(size);
                items.push(node);
                Ok(())
            }
            Some(Frame::Map { entries, pending_key, keys, size: total, .. }) => {
                total.add(size);
                match pending_key.take() {
                    None => {
                        if let Some(first) = keys.insert(&node) {
                            return Err(YamlError {
                                code: "labrun::duplicate-key",
                                message: format!("duplicate key `{}`", node.key_text()),
                                span: node.span,
                                label: "this key is already set".into(),
                                related: Some(first),
                            });
                        }
                        *pending_key = Some(node);
                    }
                    Some(key) => entries.push((key, node)),
                }
                Ok(())
            }
        }
    }
}

fn too_deep(sp: Span) -> YamlError {
    YamlError {
        code: "labrun::yaml-too-deep",
        message: format!("YAML nested more than {YAML_MAX_DEPTH} levels deep (aliases included)"),
        span: sp,
        label: "too deep here".into(),
        related: None,
    }
}

fn scalar_kind(value: &str, style: ScalarStyle) -> Kind {
    if style != ScalarStyle::Plain {
        return Kind::Str(value.to_string());
    }
    match value {
        "" | "~" | "null" | "Null" | "NULL" => Kind::Null,
        "true" | "True" | "TRUE" => Kind::Bool(true),
        "false" | "False" | "FALSE" => Kind::Bool(false),
        _ => {
            if let Some(i) = parse_int(value) {
                Kind::Int(i)
            } else if looks_like_float(value) {
                value.parse::<f64>().map(Kind::Float).unwrap_or_else(|_| Kind::Str(value.into()))
            } else {
                Kind::Str(value.to_string())
            }
        }
    }
}

fn parse_int(v: &str) -> Option<i64> {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Leading zeros keep identifiers such as account ids or "0001" suffixes as strings.
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    v.parse().ok()
}

fn looks_like_float(v: &str) -> bool {
    let body = v.strip_prefix(['-', '+']).unwrap_or(v);
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-' || b == b'+')
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && body.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_booleans_stay_strings() {
        let n = parse("a: no\nb: off\nc: true\nd: '1'\ne: 0001\nf: 12\n", 0).unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Str("no".into()));
        assert_eq!(n.get("b").unwrap().kind, Kind::Str("off".into()));
        assert_eq!(n.get("c").unwrap().kind, Kind::Bool(true));
        assert_eq!(n.get("d").unwrap().kind, Kind::Str("1".into()));
        assert_eq!(n.get("e").unwrap().kind, Kind::Str("0001".into()));
        assert_eq!(n.get("f").unwrap().kind, Kind::Int(12));
    }

    #[test]
    fn spans_are_bytes_even_after_multibyte_text() {
        let text = "tên: Tạo VPC\nid: x\n";
        let n = parse(text, 10).unwrap();
        let id = n.get("id").unwrap();
        assert_eq!(&text[id.span.start - 10..id.span.end - 10], "x");
    }

    #[test]
    fn duplicate_keys_point_at_both() {
        let e = parse("a: 1\nb: 2\na: 3\n", 0).unwrap_err();
        assert_eq!(e.span.start, 10);
        assert_eq!(e.related.unwrap().start, 0);
    }

    #[test]
    fn duplicate_keys_are_found_among_many_and_among_complex_keys() {
        // Linear time: 40,000 keys take minutes with pairwise comparison in a debug build.
        let mut text: String = (0..40_000).map(|i| format!("k{i}: {i}\n")).collect();
        text += "k777: again\n";
        let started = std::time::Instant::now();
        let e = parse(&text, 0).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!((e.code, e.message.as_str()), ("labrun::duplicate-key", "duplicate key `k777`"));
        let e = parse("? [a, 1]\n: x\n1: y\n? [a, 1]\n: z\n", 0).unwrap_err();
        assert_eq!(e.related.map(|r| r.start), Some(2));
        // `1` and `"1"` are different keys.
        assert!(parse("1: a\n'1': b\n", 0).is_ok());
    }

    #[test]
    fn aliases_count_at_their_expanded_size() {
        let ok = parse("a: &a [1, 2, 3]\nb: [*a, *a, *a]\n", 0).unwrap();
        assert_eq!(ok.get("b").unwrap().to_json(), serde_json::json!([[1, 2, 3], [1, 2, 3], [1, 2, 3]]));
        // A 1 MiB string repeated 20 times is 20 MiB of text: refused at the alias that crosses.
        let text = format!("a: &a '{}'\nb: [{}]\n", "x".repeat(1 << 20), vec!["*a"; 20].join(", "));
        let e = parse(&text, 0).unwrap_err();
        assert_eq!(e.code, "labrun::yaml-too-large");
        assert_eq!(&text[e.span.start..e.span.end], "*a");
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n", 0).unwrap_err();
        assert!(e.message.starts_with("YAML syntax error"), "{e:?}");
    }
}
