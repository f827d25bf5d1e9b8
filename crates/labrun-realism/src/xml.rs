//! Just enough XML for AWS query-protocol answers: an element index with byte ranges, so ids can
//! be read and state values rewritten in place. Never fails: malformed input yields fewer elements.

use std::ops::Range;

#[derive(Debug, Clone)]
struct Elem {
    /// Local name (namespace prefix dropped), as a range into the source.
    name: Range<usize>,
    parent: Option<usize>,
    /// End of the start tag (just past `>`).
    open_end: usize,
    /// Start of the end tag (`</`), equal to `open_end` for `<x/>`; `None` when never closed.
    close_start: Option<usize>,
}

/// An index of the elements of an XML text.
pub(crate) struct Doc<'a> {
    src: &'a str,
    elems: Vec<Elem>,
}

impl<'a> Doc<'a> {
    pub fn parse(src: &'a str) -> Self {
        let mut elems: Vec<Elem> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut i = 0;
        while let Some(off) = src.get(i..).and_then(|s| s.find('<')) {
            let lt = i + off;
            let rest = &src[lt..];
            let skip_to = |end: &str, from: usize| src.get(from..).and_then(|s| s.find(end)).map(|p| from + p + end.len());
            let next = if rest.starts_with("<!--") {
                skip_to("-->", lt + 4)
            } else if rest.starts_with("<![CDATA[") {
                skip_to("]]>", lt + 9)
            } else if rest.starts_with("<?") {
                skip_to("?>", lt + 2)
            } else if rest.starts_with("<!") {
                skip_to(">", lt + 2)
            } else {
                let Some(gt) = tag_end(src, lt + 1) else { break };
                let inner = &src[lt + 1..gt];
                if let Some(closing) = inner.strip_prefix('/') {
                    let name = local(closing.trim());
                    // Close the innermost open element of that name (and anything left open inside it).
                    if let Some(pos) = stack.iter().rposition(|&e| &src[elems[e].name.clone()] == name) {
                        let e = stack[pos];
                        elems[e].close_start = Some(lt);
                        stack.truncate(pos);
                    }
                } else {
                    let self_closing = inner.ends_with('/');
                    let raw = inner.trim_end_matches('/');
                    let name_len = raw.find(|c: char| c.is_whitespace()).unwrap_or(raw.len());
                    let qualified = &raw[..name_len];
                    let local_name = local(qualified);
                    let start = lt + 1 + (qualified.len() - local_name.len());
                    let idx = elems.len();
                    elems.push(Elem {
                        name: start..start + local_name.len(),
                        parent: stack.last().copied(),
                        open_end: gt + 1,
                        close_start: self_closing.then_some(gt + 1),
                    });
                    if !self_closing {
                        stack.push(idx);
                    }
                }
                Some(gt + 1)
            };
            match next {
                Some(n) => i = n,
                None => break,
            }
        }
        Doc { src, elems }
    }

    fn name(&self, e: usize) -> &str {
        &self.src[self.elems[e].name.clone()]
    }

    /// Elements named `name`.
    pub fn named(&self, name: &'a str) -> impl Iterator<Item = usize> + '_ {
        (0..self.elems.len()).filter(move |&e| self.name(e) == name)
    }

    pub fn parent(&self, e: usize) -> Option<usize> {
        self.elems[e].parent
    }

    pub fn parent_named(&self, e: usize, name: &str) -> bool {
        self.parent(e).is_some_and(|p| self.name(p) == name)
    }

    /// The first direct child named `name`.
    pub fn child(&self, e: usize, name: &str) -> Option<usize> {
        (e + 1..self.elems.len()).find(|&c| self.elems[c].parent == Some(e) && self.name(c) == name)
    }

    /// The byte range of the element's text, whitespace trimmed.
    pub fn text_range(&self, e: usize) -> Option<Range<usize>> {
        let el = &self.elems[e];
        let end = el.close_start?;
        let raw = self.src.get(el.open_end..end)?;
        let lead = raw.len() - raw.trim_start().len();
        let trimmed = raw.trim();
        Some(el.open_end + lead..el.open_end + lead + trimmed.len())
    }

    pub fn text(&self, e: usize) -> Option<&'a str> {
        self.text_range(e).and_then(|r| self.src.get(r))
    }

    /// Texts of the elements named `name` whose parent is named `parent`
    /// (`None`: whose parent is the root element).
    pub fn texts_under(&self, name: &'a str, parent: Option<&str>) -> Vec<String> {
        self.named(name)
            .filter(|&e| match parent {
                Some(p) => self.parent_named(e, p),
                None => self.parent(e).is_some_and(|p| self.parent(p).is_none()),
            })
            .filter_map(|e| self.text(e))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The position of the `>` ending a tag that starts before `from`, skipping quoted attribute values.
fn tag_end(src: &str, from: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, &b) in src.as_bytes().iter().enumerate().skip(from) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return Some(i),
            None => {}
        }
    }
    None
}

fn local(qualified: &str) -> &str {
    qualified.rsplit(':').next().unwrap_or(qualified)
}

/// Applies non-overlapping replacements of byte ranges.
pub(crate) fn apply(src: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
    let mut out = src.to_string();
    let mut limit = usize::MAX;
    for (range, text) in edits {
        if range.end <= limit && range.start <= range.end && out.is_char_boundary(range.start) && out.is_char_boundary(range.end) {
            limit = range.start;
            out.replace_range(range, &text);
        }
    }
    out
}

/// Escapes text for XML content.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBNET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CreateSubnetResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>r-1</requestId>
    <!-- <subnetId>subnet-comment</subnetId> -->
    <subnet>
        <subnetId> subnet-new </subnetId>
        <vpcId>vpc-old</vpcId>
        <tagSet/>
    </subnet>
</CreateSubnetResponse>"#;

    #[test]
    fn reads_ids_by_parent() {
        let d = Doc::parse(SUBNET);
        assert_eq!(d.texts_under("subnetId", Some("subnet")), vec!["subnet-new"]);
        assert!(d.texts_under("vpcId", Some("vpc")).is_empty());
        assert_eq!(d.texts_under("requestId", None), vec!["r-1"]);
        let tag_set = d.named("tagSet").next().unwrap_or_else(|| panic!("no tagSet"));
        assert_eq!(d.text(tag_set), Some(""));
    }

    #[test]
    fn malformed_input_does_not_panic() {
        for s in ["<", "<a", "<a><b></a>", "</x>", "<a x='>'>t</a>", "<!--", "<![CDATA[", "<?x", "<a:b>v</a:b>", "é<é>ü</é>", "<>"] {
            let d = Doc::parse(s);
            for e in d.named("a") {
                let _ = (d.text(e), d.parent(e), d.child(e, "b"));
            }
        }
        let d = Doc::parse("<a x='>'>t</a>");
        assert_eq!(d.named("a").next().and_then(|e| d.text(e)), Some("t"));
        let d = Doc::parse("<p:a>v</p:a>");
        assert_eq!(d.named("a").next().and_then(|e| d.text(e)), Some("v"));
        // An unclosed element inside a closed one.
        let d = Doc::parse("<r><a><b>x</r>");
        assert_eq!(d.named("r").next().and_then(|e| d.text_range(e)).map(|r| r.start), Some(3));
    }

    #[test]
    fn apply_edits() {
        assert_eq!(apply("abcdef", vec![(1..2, "X".into()), (4..6, "YZW".into())]), "aXcdYZW");
        // Overlaps are skipped, not applied twice.
        assert_eq!(apply("abcdef", vec![(1..4, "X".into()), (2..3, "Y".into())]), "abYdef");
        assert_eq!(escape("a<'&>\""), "a&lt;&apos;&amp;&gt;&quot;");
    }
}
