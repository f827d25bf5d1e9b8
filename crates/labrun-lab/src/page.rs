//! Hugo pages: front matter (YAML `---` or TOML `+++`, leading whitespace allowed as Hugo allows
//! it) and the `labrun` fenced code blocks of the body.

use crate::diag::{Diagnostic, SourceFile};
use crate::yaml::{self, Kind, Node, Span};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Front matter, reduced to what labrun reads.
#[derive(Debug, Default, Clone)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub weight: Option<i64>,
    pub pre: Option<String>,
    /// The `labrun:` section: chapter settings.
    pub labrun: Option<Node>,
    /// Where the front matter ends (the body starts).
    pub body_start: usize,
}

/// A fenced block whose info string names labrun (```` ```labrun ```` or ```` ```yaml {labrun} ````).
#[derive(Debug, Clone)]
pub struct LabBlock {
    /// The block's content, with the fence's indentation removed.
    pub text: String,
    /// Byte offset in the file of each content line (to map spans back).
    pub line_starts: Vec<(usize, usize)>,
    pub span: Span,
}

pub fn front_matter(source: &Arc<SourceFile>, diags: &mut Vec<Diagnostic>) -> FrontMatter {
    let text = &source.text;
    let lead = text.len() - text.trim_start().len();
    let rest = &text[lead..];
    let (delim, is_toml) = if rest.starts_with("---") {
        ("---", false)
    } else if rest.starts_with("+++") {
        ("+++", true)
    } else {
        return FrontMatter::default();
    };
    let open_end = lead + rest.find('\n').map_or(rest.len(), |i| i + 1);
    // The closing delimiter is a line of its own.
    let mut pos = open_end;
    let mut close = None;
    for line in text[open_end..].split_inclusive('\n') {
        if line.trim_end() == delim {
            close = Some((pos, pos + line.len()));
            break;
        }
        pos += line.len();
    }
    let Some((close_start, close_end)) = close else {
        diags.push(
            Diagnostic::error("labrun::front-matter", format!("front matter opened with `{delim}` is never closed"))
                .at(source, Span::new(lead, lead + 3), "opened here")
                .with_help(format!("end it with a line holding only `{delim}`")),
        );
        return FrontMatter::default();
    };
    let body = &text[open_end..close_start];
    let mut fm = FrontMatter { body_start: close_end, ..Default::default() };
    if is_toml {
        match toml::from_str::<toml::Table>(body) {
            Ok(table) => {
                fm.title = table.get("title").and_then(|v| v.as_str()).map(str::to_string);
                fm.weight = table.get("weight").and_then(|v| v.as_integer());
                fm.pre = table.get("pre").and_then(|v| v.as_str()).map(str::to_string);
                if let Some(section) = table.get("labrun") {
                    // TOML settings are rare; carry them as an unspanned node pointing at the header.
                    let json = serde_json::to_value(section).unwrap_or(Value::Null);
                    fm.labrun = Some(json_to_node(&json, Span::new(open_end, close_start)));
                }
            }
            Err(e) => {
                let span = e.span().map_or(Span::new(open_end, open_end + 1), |r| Span::new(open_end + r.start, open_end + r.end));
                diags.push(
                    Diagnostic::error("labrun::front-matter", "TOML front matter does not parse")
                        .at(source, span, "here")
                        .with_help(e.message().to_string()),
                );
            }
        }
    } else {
        match yaml::parse(body, open_end) {
            Ok(node) => {
                fm.title = node.get("title").and_then(Node::as_str).map(str::to_string);
                fm.weight = node.get("weight").and_then(|n| if let Kind::Int(i) = n.kind { Some(i) } else { None });
                fm.pre = node.get("pre").and_then(Node::as_str).map(str::to_string);
                fm.labrun = node.get("labrun").cloned();
            }
            Err(e) => diags.push(yaml_diag(source, e)),
        }
    }
    fm
}

pub fn yaml_diag(source: &Arc<SourceFile>, e: yaml::YamlError) -> Diagnostic {
    let mut d = Diagnostic::error(e.code, e.message).at(source, e.span, e.label);
    if let Some(r) = e.related {
        d = d.with_related(r, "first set here");
    }
    d
}

fn json_to_node(v: &Value, span: Span) -> Node {
    let kind = match v {
        Value::Null => Kind::Null,
        Value::Bool(b) => Kind::Bool(*b),
        Value::Number(n) => n.as_i64().map(Kind::Int).unwrap_or_else(|| Kind::Float(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Kind::Str(s.clone()),
        Value::Array(items) => Kind::Seq(items.iter().map(|i| json_to_node(i, span)).collect()),
        Value::Object(m) => Kind::Map(m.iter().map(|(k, v)| (Node { kind: Kind::Str(k.clone()), span }, json_to_node(v, span))).collect()),
    };
    Node { kind, span }
}

/// Finds the labrun blocks of a Markdown body. Fences may be indented (inside list items).
pub fn lab_blocks(text: &str, from: usize) -> Vec<LabBlock> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, bool, LabBlock)> = None; // (fence, indent, is_lab, block)
    let mut pos = from;
    for line in text[from..].split_inclusive('\n') {
        let line_start = pos;
        pos += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let indent = content.len() - content.trim_start_matches([' ', '\t']).len();
        let trimmed = &content[indent..];
        match &mut open {
            None => {
                let fence_len = trimmed.chars().take_while(|&c| c == '`' || c == '~').count();
                if fence_len >= 3 && trimmed[..fence_len].chars().all(|c| c == trimmed.as_bytes()[0] as char) {
                    let info = trimmed[fence_len..].trim();
                    let is_lab = info == "labrun"
                        || info.split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',').any(|w| w == "labrun");
                    let block = LabBlock { text: String::new(), line_starts: Vec::new(), span: Span::new(line_start, pos) };
                    open = Some((trimmed[..fence_len].to_string(), indent, is_lab, block));
                }
            }
            Some((fence, fence_indent, is_lab, block)) => {
                if trimmed.starts_with(fence.as_str()) && trimmed.trim_end().chars().all(|c| c == fence.as_bytes()[0] as char) {
                    block.span.end = pos;
                    if *is_lab {
                        blocks.push(block.clone());
                    }
                    open = None;
                } else if *is_lab {
                    // Remove up to the fence's indentation, as CommonMark does.
                    let strip = indent.min(*fence_indent);
                    block.line_starts.push((block.text.len(), line_start + strip));
                    block.text.push_str(&line[strip..]);
                }
            }
        }
    }
    blocks
}

impl LabBlock {
    /// Maps a byte offset in `text` back to the file.
    pub fn to_file(&self, local: usize) -> usize {
        let i = self.line_starts.partition_point(|(start, _)| *start <= local).saturating_sub(1);
        match self.line_starts.get(i) {
            Some((start, file)) => file + (local - start),
            None => self.span.start,
        }
    }

    /// Parses the block, with spans in file offsets.
    pub fn parse(&self) -> Result<Node, yaml::YamlError> {
        let node = yaml::parse(&self.text, 0);
        match node {
            Ok(mut n) => {
                remap(&mut n, self);
                Ok(n)
            }
            Err(mut e) => {
                e.span = Span::new(self.to_file(e.span.start), self.to_file(e.span.end));
                e.related = e.related.map(|r| Span::new(self.to_file(r.start), self.to_file(r.end)));
                Err(e)
            }
        }
    }
}

fn remap(node: &mut Node, block: &LabBlock) {
    node.span = Span::new(block.to_file(node.span.start), block.to_file(node.span.end));
    match &mut node.kind {
        Kind::Seq(items) => items.iter_mut().for_each(|i| remap(i, block)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            remap(k, block);
            remap(v, block);
        }),
        _ => {}
    }
}

/// `" <b> 3.2.1 </b> "` → `3.2.1`.
pub fn number_from_pre(pre: &str) -> Option<String> {
    let mut text = String::new();
    let mut in_tag = false;
    for c in pre.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let n = text.trim().trim_end_matches('.').trim();
    (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.')).then(|| n.to_string())
}

/// `3.2.1-enablevpcdns` → `3.2.1`; `2-Prerequiste` → `2`.
pub fn number_from_dir(name: &str) -> Option<String> {
    let end = name.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(name.len());
    let n = name[..end].trim_end_matches('.');
    (!n.is_empty() && n.starts_with(|c: char| c.is_ascii_digit())).then(|| n.to_string())
}

/// Settings of a chapter's `labrun:` front-matter section.
#[derive(Debug, Default)]
pub struct Settings {
    pub requires: Vec<(String, Span)>,
    pub vars: Map<String, Value>,
    pub teardown: bool,
}

pub fn chapter_settings(node: &Node, source: &Arc<SourceFile>, diags: &mut Vec<Diagnostic>) -> Settings {
    let mut out = Settings::default();
    let Some(entries) = node.as_map() else {
        diags.push(Diagnostic::error("labrun::wrong-type", "the `labrun:` front-matter section must be a mapping").at(
            source,
            node.span,
            "expected a mapping",
        ));
        return out;
    };
    let (requires, vars) = (&mut out.requires, &mut out.vars);
    for (k, v) in entries {
        match k.key_text().as_str() {
            "requires" => match &v.kind {
                Kind::Seq(items) => {
                    for i in items {
                        match &i.kind {
                            Kind::Str(s) => requires.push((s.clone(), i.span)),
                            Kind::Int(n) => requires.push((n.to_string(), i.span)),
                            Kind::Float(_) => requires.push((source.text[i.span.start..i.span.end].trim().to_string(), i.span)),
                            _ => diags.push(
                                Diagnostic::error("labrun::wrong-type", "a required chapter is named by its number, e.g. \"2\" or \"3.1\"")
                                    .at(source, i.span, "expected a chapter number"),
                            ),
                        }
                    }
                }
                _ => diags.push(Diagnostic::error("labrun::wrong-type", "`requires` takes a list of chapter numbers").at(
                    source,
                    v.span,
                    "expected a list",
                )),
            },
            "teardown" => match v.kind {
                Kind::Bool(b) => out.teardown = b,
                _ => diags.push(Diagnostic::error("labrun::wrong-type", "`teardown` must be true or false").at(
                    source,
                    v.span,
                    "expected a boolean",
                )),
            },
            "vars" => match v.to_json() {
                Value::Object(m) => *vars = m,
                _ => {
                    diags.push(Diagnostic::error("labrun::wrong-type", "`vars` must be a mapping").at(source, v.span, "expected a mapping"))
                }
            },
            other => diags.push(
                Diagnostic::error("labrun::unknown-field", format!("unknown chapter setting `{other}`"))
                    .at(source, k.span, "not a chapter setting")
                    .with_help("chapter settings are: requires, vars, teardown"),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number_from_pre(" <b> 3.2.1 </b> ").as_deref(), Some("3.2.1"));
        assert_eq!(number_from_pre("<b>6. </b>").as_deref(), Some("6"));
        assert_eq!(number_from_dir("3.2.2.1-endpointssm").as_deref(), Some("3.2.2.1"));
        assert_eq!(number_from_dir("2-Prerequiste").as_deref(), Some("2"));
        assert_eq!(number_from_dir("images"), None);
    }

    #[test]
    fn indented_blocks_map_back_to_the_file() {
        let text = "intro\n1. list\n   ```labrun\n   - id: a\n     call: sts:GetCallerIdentity\n   ```\n```bash\nx\n```\n";
        let blocks = lab_blocks(text, 0);
        assert_eq!(blocks.len(), 1);
        let node = blocks[0].parse().unwrap();
        let first = &node.as_seq_first();
        let id = first.get("id").unwrap();
        assert_eq!(&text[id.span.start..id.span.end], "a");
    }

    impl Node {
        fn as_seq_first(&self) -> Node {
            match &self.kind {
                Kind::Seq(items) => items[0].clone(),
                _ => panic!(),
            }
        }
    }

    #[test]
    fn front_matter_with_leading_space_and_toml() {
        let src = SourceFile::new("a.md", "  ---\ntitle : \"Update IAM Role\"\nweight : 1\n---\nbody");
        let mut d = Vec::new();
        let fm = front_matter(&src, &mut d);
        assert!(d.is_empty());
        assert_eq!(fm.title.as_deref(), Some("Update IAM Role"));
        let src = SourceFile::new("b.md", "+++\ntitle = \"Clean up\"\nweight = 6\npre = \"<b>6. </b>\"\n+++\n");
        let fm = front_matter(&src, &mut d);
        assert_eq!(fm.weight, Some(6));
        assert_eq!(number_from_pre(fm.pre.as_deref().unwrap()).as_deref(), Some("6"));
    }
}
