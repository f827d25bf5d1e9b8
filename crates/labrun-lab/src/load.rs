//! Loads a workshop directory into the model: chapters, their steps, settings and checks
//! that need the whole tree (prerequisites, cycles, EN/VI drift).

use crate::diag::{Diagnostic, SourceFile, display_path};
use crate::limits::MAX_DIR_DEPTH;
use crate::model::{Chapter, Step, Workshop};
use crate::page::{self, FrontMatter};
use crate::steps::{Scope, Sink, read_steps};
use crate::yaml::{self, Kind, Node, Span};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const WORKSHOP_FILE: &str = "workshop.yaml";
const EN_PAGE: &str = "_index.md";
const VI_PAGE: &str = "_index.vi.md";
const LAB_YAML: &str = "lab.yaml";
const DEFAULT_REGION: &str = "ap-southeast-1";

/// The result of loading: the workshop (as far as it could be read) and every problem found.
#[derive(Debug)]
pub struct Loaded {
    pub workshop: Workshop,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The error for a path that is not a workshop or chapter at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no chapter numbered {number} under {root}")]
    NoChapter { root: PathBuf, number: String, suggestion: Option<String> },
}

/// A chapter (or a whole workshop) addressed on the command line.
#[derive(Debug)]
pub struct Selection {
    pub loaded: Loaded,
    /// Indices into `workshop.chapters`: the addressed chapter and its sub-chapters, in order.
    pub chapters: Vec<usize>,
}

/// Resolves `labs/`, `labs/3.2` (a number under a workshop) or `labs/3-x/3.2-y` (a path).
pub fn select(target: &Path) -> Result<Selection, LoadError> {
    if target.is_dir() {
        let target = std::fs::canonicalize(target).map_err(|source| LoadError::Io { path: target.into(), source })?;
        let root = workshop_root(&target);
        let loaded = load(&root)?;
        let mut chapters = subtree(&loaded.workshop, |c| c.dir == target);
        if chapters.is_empty() {
            // A folder that is not a chapter itself (a workshop root without a home page).
            chapters = (0..loaded.workshop.chapters.len()).filter(|&i| loaded.workshop.chapters[i].dir.starts_with(&target)).collect();
        }
        return Ok(Selection { loaded, chapters });
    }
    // `labs/3.2`: a chapter number under an existing directory.
    let (Some(parent), Some(number)) = (target.parent(), target.file_name().and_then(|n| n.to_str())) else {
        return Err(LoadError::NotFound(target.into()));
    };
    let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
    if !parent.is_dir() || page::number_from_dir(number).as_deref() != Some(number.trim_end_matches('.')) {
        return Err(LoadError::NotFound(target.into()));
    }
    let parent = std::fs::canonicalize(parent).map_err(|source| LoadError::Io { path: parent.into(), source })?;
    let root = workshop_root(&parent);
    let loaded = load(&root)?;
    let number = number.trim_end_matches('.');
    let chapters = subtree(&loaded.workshop, |c| c.number.as_deref() == Some(number) && c.dir.starts_with(&parent));
    if chapters.is_empty() {
        let suggestion =
            crate::catalog::did_you_mean(number, loaded.workshop.chapters.iter().filter_map(|c| c.number.as_deref())).map(str::to_string);
        return Err(LoadError::NoChapter { root: display_path(&parent), number: number.into(), suggestion });
    }
    Ok(Selection { loaded, chapters })
}

/// The nearest directory at or above `dir` holding workshop.yaml; without one, the folder
/// above the outermost chapter that contains `dir` (so siblings and prerequisites are found).
fn workshop_root(dir: &Path) -> PathBuf {
    if let Some(d) = dir.ancestors().find(|d| d.join(WORKSHOP_FILE).is_file()) {
        return d.to_path_buf();
    }
    let is_chapter = |d: &Path| [EN_PAGE, VI_PAGE, LAB_YAML].iter().any(|f| d.join(f).is_file());
    let mut top = dir;
    while let Some(parent) = top.parent().filter(|p| is_chapter(p)) {
        top = parent;
    }
    match top.parent() {
        Some(parent) if is_chapter(top) => parent.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// The first chapter matching `pick`, followed by all chapters below it.
pub fn subtree(w: &Workshop, pick: impl Fn(&Chapter) -> bool) -> Vec<usize> {
    let Some(top) = w.chapters.iter().position(pick) else { return Vec::new() };
    let mut out = vec![top];
    for (i, c) in w.chapters.iter().enumerate().skip(top + 1) {
        if is_descendant(w, i, top) {
            out.push(i);
        } else if c.depth <= w.chapters[top].depth {
            break;
        }
    }
    out
}

fn is_descendant(w: &Workshop, mut i: usize, ancestor: usize) -> bool {
    while let Some(p) = w.chapters[i].parent {
        if p == ancestor {
            return true;
        }
        i = p;
    }
    false
}

/// Loads the workshop rooted at `root`.
pub fn load(root: &Path) -> Result<Loaded, LoadError> {
    if !root.is_dir() {
        return Err(LoadError::NotFound(root.into()));
    }
    let mut diags = Vec::new();
    let mut workshop = Workshop {
        root: root.to_path_buf(),
        id: root.file_name().and_then(|n| n.to_str()).unwrap_or("workshop").to_string(),
        title: None,
        region: DEFAULT_REGION.into(),
        vars: Map::new(),
        accounts: Vec::new(),
        chapters: Vec::new(),
    };
    let settings = root.join(WORKSHOP_FILE);
    if settings.is_file() {
        let source = read_source(&settings)?;
        read_workshop_settings(&source, &mut workshop, &mut diags);
    }
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut walk = Walk { visited: HashSet::from([real_root.clone()]), ancestors: vec![real_root.clone()], root: real_root };
    load_dir(root, None, 0, &mut workshop, &mut diags, &mut walk)?;
    check_prerequisites(&mut workshop, &mut diags);
    Ok(Loaded { workshop, diagnostics: diags })
}

fn read_source(path: &Path) -> Result<Arc<SourceFile>, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.into(), source })?;
    Ok(SourceFile::new(display_path(path), text))
}

fn read_workshop_settings(source: &Arc<SourceFile>, w: &mut Workshop, diags: &mut Vec<Diagnostic>) {
    let node = match yaml::parse(&source.text, 0) {
        Ok(n) => n,
        Err(e) => return diags.push(page::yaml_diag(source, e)),
    };
    let Some(entries) = node.as_map() else {
        if !matches!(node.kind, Kind::Null) {
            diags.push(Diagnostic::error("labrun::wrong-type", "workshop.yaml must be a mapping").at(
                source,
                node.span,
                "expected a mapping",
            ));
        }
        return;
    };
    const FIELDS: &[&str] = &["workshop", "title", "region", "vars", "accounts"];
    for (k, v) in entries {
        let key = k.key_text();
        match (key.as_str(), &v.kind) {
            ("workshop", Kind::Str(s)) => w.id = s.clone(),
            ("title", Kind::Str(s)) => w.title = Some(s.clone()),
            ("region", Kind::Str(s)) => w.region = s.clone(),
            ("vars", Kind::Map(_)) => {
                if let Value::Object(m) = v.to_json() {
                    w.vars = m;
                }
            }
            ("accounts", Kind::Seq(items)) => {
                for i in items {
                    let text = match &i.kind {
                        Kind::Str(s) => s.clone(),
                        Kind::Int(n) => format!("{n:012}"),
                        _ => String::new(),
                    };
                    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
                        w.accounts.push(text);
                    } else {
                        diags.push(Diagnostic::error("labrun::bad-value", "an account id is 12 digits, quoted").at(
                            source,
                            i.span,
                            "not an account id",
                        ));
                    }
                }
            }
            (f, _) if FIELDS.contains(&f) => {
                diags.push(Diagnostic::error("labrun::wrong-type", format!("`{f}` has the wrong type ({})", v.type_name())).at(
                    source,
                    v.span,
                    "wrong type",
                ))
            }
            (other, _) => {
                let mut d = Diagnostic::error("labrun::unknown-field", format!("unknown workshop setting `{other}`")).at(
                    source,
                    k.span,
                    "not a workshop setting",
                );
                d.help = Some(match crate::catalog::did_you_mean(other, FIELDS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("workshop settings are: {}", FIELDS.join(", ")),
                });
                diags.push(d);
            }
        }
    }
}

/// Where the folder walk has been, so that each real directory is loaded once however many
/// symlinks lead to it, and a symlink back up the tree does not send the walk round in circles.
struct Walk {
    /// The workshop root, resolved.
    root: PathBuf,
    /// Every directory loaded so far, resolved.
    visited: HashSet<PathBuf>,
    /// The resolved directories from the root down to the one being read.
    ancestors: Vec<PathBuf>,
}

impl Walk {
    /// Whether `real` (a resolved path) is a folder the walk reaches by its own path: inside the
    /// root and not under a hidden folder.
    fn reaches(&self, real: &Path) -> bool {
        real.strip_prefix(&self.root).is_ok_and(|rel| !rel.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.')))
    }

    /// Whether to descend into `path` (resolved: `real`); a warning says why not.
    fn admit(&self, path: &Path, real: &Path, is_link: bool, diags: &mut Vec<Diagnostic>) -> bool {
        let shown = display_path(path);
        if self.ancestors.iter().any(|a| a == real) {
            diags.push(
                Diagnostic::error(
                    "labrun::symlink-loop",
                    format!(
                        "`{}` links back to `{}`, a folder it is inside; labrun does not follow it",
                        shown.display(),
                        display_path(real).display()
                    ),
                )
                .with_help("remove the link, or point it at a folder outside this workshop")
                .warning(),
            );
            return false;
        }
        if is_link && (self.visited.contains(real) || self.reaches(real)) {
            diags.push(
                Diagnostic::error(
                    "labrun::symlink-duplicate",
                    format!(
                        "`{}` links to `{}`, which is loaded from its own place; labrun does not load it twice",
                        shown.display(),
                        display_path(real).display()
                    ),
                )
                .with_help("remove the link: chapters are found by walking the workshop's folders")
                .warning(),
            );
            return false;
        }
        if self.visited.contains(real) {
            return false;
        }
        if self.ancestors.len() > MAX_DIR_DEPTH {
            diags.push(Diagnostic::error(
                "labrun::too-deep",
                format!("`{}` is nested more than {MAX_DIR_DEPTH} folders deep in the workshop; it is not loaded", shown.display()),
            ));
            return false;
        }
        true
    }
}

/// Loads `dir` (a chapter, or a plain folder holding chapters) and everything below it, appending
/// to `w.chapters` in reading order: siblings by weight, then number.
fn load_dir(
    dir: &Path,
    parent: Option<usize>,
    depth: usize,
    w: &mut Workshop,
    diags: &mut Vec<Diagnostic>,
    walk: &mut Walk,
) -> Result<(), LoadError> {
    let is_chapter = [EN_PAGE, VI_PAGE, LAB_YAML].iter().any(|f| dir.join(f).is_file());
    let (parent, depth) = if is_chapter {
        let chapter = load_chapter(dir, parent, depth, w, diags)?;
        w.chapters.push(chapter);
        (Some(w.chapters.len() - 1), depth + 1)
    } else {
        (parent, depth)
    };
    let mut subdirs: Vec<(PathBuf, bool)> = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Io { path: dir.into(), source })?
        .filter_map(Result::ok)
        .map(|e| (e.path(), e.file_type().is_ok_and(|t| t.is_symlink())))
        .filter(|(p, _)| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    subdirs.sort();
    // Each child subtree is loaded into its own list, then the lists are ordered and appended.
    // (sort key: weight, then number parts) → the child's subtree.
    type Subtree = ((i64, Vec<u32>), Vec<Chapter>);
    let mut children: Vec<Subtree> = Vec::new();
    for (sub, is_link) in subdirs {
        let Ok(real) = std::fs::canonicalize(&sub) else { continue };
        if !walk.admit(&sub, &real, is_link, diags) {
            continue;
        }
        walk.visited.insert(real.clone());
        walk.ancestors.push(real);
        let mut scratch = Workshop { chapters: Vec::new(), ..w.clone_settings() };
        let loaded = load_dir(&sub, None, depth, &mut scratch, diags, walk);
        walk.ancestors.pop();
        loaded?;
        if let Some(first) = scratch.chapters.first() {
            let key = (first.weight, first.number.as_deref().map(number_key).unwrap_or_default());
            children.push((key, scratch.chapters));
        }
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, subtree) in children {
        let offset = w.chapters.len();
        for mut c in subtree {
            c.parent = match c.parent {
                Some(p) => Some(p + offset),
                None => parent,
            };
            w.chapters.push(c);
        }
    }
    Ok(())
}

impl Workshop {
    fn clone_settings(&self) -> Workshop {
        Workshop {
            root: self.root.clone(),
            id: self.id.clone(),
            title: self.title.clone(),
            region: self.region.clone(),
            vars: self.vars.clone(),
            accounts: self.accounts.clone(),
            chapters: Vec::new(),
        }
    }
}

fn number_key(n: &str) -> Vec<u32> {
    n.split('.').filter_map(|p| p.parse().ok()).collect()
}

fn load_chapter(dir: &Path, parent: Option<usize>, depth: usize, w: &Workshop, diags: &mut Vec<Diagnostic>) -> Result<Chapter, LoadError> {
    let en = dir.join(EN_PAGE);
    let vi = dir.join(VI_PAGE);
    let lab_yaml = dir.join(LAB_YAML);
    let mut chapter = Chapter {
        number: None,
        dir: dir.to_path_buf(),
        title: dir.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string(),
        title_vi: None,
        weight: 0,
        requires: Vec::new(),
        vars: w.vars.clone(),
        steps: Vec::new(),
        parent,
        depth,
        teardown: false,
        requires_src: Vec::new(),
    };
    let mut fm_number = None;
    let mut en_steps: Option<(Vec<Step>, Arc<SourceFile>, Span)> = None;
    let mut vi_steps: Option<(Vec<Step>, Arc<SourceFile>, Span)> = None;
    let mut settings: Vec<(Node, Arc<SourceFile>)> = Vec::new();

    let mut pages = Vec::new();
    for (path, is_vi) in [(&en, false), (&vi, true)] {
        if path.is_file() {
            let source = read_source(path)?;
            let fm = page::front_matter(&source, diags);
            pages.push((source, fm, is_vi));
        }
    }
    // Settings first: templates in steps may use the chapter's vars.
    for (source, fm, is_vi) in &pages {
        apply_front_matter(&mut chapter, fm, *is_vi, &mut fm_number);
        if let Some(s) = &fm.labrun {
            settings.push((s.clone(), source.clone()));
        }
    }
    for (node, source) in &settings {
        let settings = page::chapter_settings(node, source, diags);
        // Both language pages may carry settings; the first that names prerequisites wins.
        if chapter.requires_src.is_empty() {
            chapter.requires_src = settings.requires.into_iter().map(|(n, s)| (n, s, source.clone())).collect();
        }
        chapter.teardown |= settings.teardown;
        chapter.vars.extend(settings.vars);
    }
    let scope_vars: std::collections::HashSet<String> = chapter.vars.keys().cloned().collect();
    for (source, fm, is_vi) in &pages {
        let blocks = page::lab_blocks(&source.text, fm.body_start);
        if blocks.is_empty() {
            continue;
        }
        let mut scope = Scope { vars: scope_vars.clone(), ..Default::default() };
        let mut steps = Vec::new();
        for block in &blocks {
            match block.parse() {
                Ok(node) => steps.extend(read_steps(&node, &mut Sink { source, diags }, &mut scope)),
                Err(e) => diags.push(page::yaml_diag(source, e)),
            }
        }
        let slot = if *is_vi { &mut vi_steps } else { &mut en_steps };
        *slot = Some((steps, source.clone(), blocks[0].span));
    }
    if lab_yaml.is_file() {
        let source = read_source(&lab_yaml)?;
        if let Some(steps) = read_lab_yaml(&source, &mut chapter, &scope_vars, diags) {
            if let Some((_, other, _)) = en_steps.as_ref().or(vi_steps.as_ref()) {
                diags.push(
                    Diagnostic::error("labrun::steps-twice", "this chapter has steps in lab.yaml and in a Markdown page")
                        .at(&source, Span::new(0, 0), "steps here")
                        .with_help(format!("keep the steps in one place; {} has labrun blocks too", other.path.display())),
                );
            }
            en_steps = Some((steps, source, Span::new(0, 0)));
        }
    }
    chapter.number = page::number_from_dir(dir.file_name().and_then(|n| n.to_str()).unwrap_or("")).or(fm_number);
    match (en_steps, vi_steps) {
        (Some((en, _, _)), Some((vi, vi_src, vi_span))) => {
            if let Some(diff) = drift(&en, &vi) {
                diags.push(
                    Diagnostic::error("labrun::language-drift", "the Vietnamese page's steps differ from the English page's")
                        .at(&vi_src, vi_span, "these steps")
                        .with_help(format!("{diff}; keep the steps in one language file, or make both equal")),
                );
            }
            chapter.steps = en;
        }
        (Some((s, _, _)), None) | (None, Some((s, _, _))) => chapter.steps = s,
        (None, None) => {}
    }
    Ok(chapter)
}

fn apply_front_matter(chapter: &mut Chapter, fm: &FrontMatter, is_vi: bool, number: &mut Option<String>) {
    if let Some(t) = &fm.title {
        if is_vi {
            chapter.title_vi = Some(t.clone());
        } else {
            chapter.title = t.clone();
        }
    }
    if let Some(wt) = fm.weight
        && (!is_vi || chapter.weight == 0)
    {
        chapter.weight = wt;
    }
    if number.is_none() {
        *number = fm.pre.as_deref().and_then(page::number_from_pre);
    }
}

/// `lab.yaml`: a list of steps, or a mapping with title/weight/requires/vars/steps.
fn read_lab_yaml(
    source: &Arc<SourceFile>,
    chapter: &mut Chapter,
    vars: &std::collections::HashSet<String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Step>> {
    let node = match yaml::parse(&source.text, 0) {
        Ok(n) => n,
        Err(e) => {
            diags.push(page::yaml_diag(source, e));
            return None;
        }
    };
    let mut scope = Scope { vars: vars.clone(), ..Default::default() };
    let steps_node = match &node.kind {
        Kind::Map(entries) => {
            let mut settings = Vec::new();
            for (k, v) in entries {
                match k.key_text().as_str() {
                    "title" => chapter.title = v.as_str().unwrap_or_default().to_string(),
                    "title_vi" => chapter.title_vi = v.as_str().map(str::to_string),
                    "weight" => chapter.weight = if let Kind::Int(i) = v.kind { i } else { 0 },
                    "steps" => {}
                    "requires" | "vars" | "teardown" => settings.push((k.clone(), v.clone())),
                    other => diags.push(
                        Diagnostic::error("labrun::unknown-field", format!("unknown lab.yaml field `{other}`"))
                            .at(source, k.span, "not a lab.yaml field")
                            .with_help("lab.yaml fields are: title, title_vi, weight, requires, vars, teardown, steps"),
                    ),
                }
            }
            if !settings.is_empty() {
                let node = Node { kind: Kind::Map(settings), span: node.span };
                let settings = page::chapter_settings(&node, source, diags);
                for k in settings.vars.keys() {
                    scope.vars.insert(k.clone());
                }
                chapter.vars.extend(settings.vars);
                chapter.teardown |= settings.teardown;
                chapter.requires_src.extend(settings.requires.into_iter().map(|(n, s)| (n, s, source.clone())));
            }
            node.get("steps").cloned().unwrap_or(Node { kind: Kind::Null, span: node.span })
        }
        _ => node,
    };
    Some(read_steps(&steps_node, &mut Sink { source, diags }, &mut scope))
}

/// Describes the first difference between two step lists, ignoring titles and hints (prose
/// that is translated) and source positions.
fn drift(en: &[Step], vi: &[Step]) -> Option<String> {
    if en.len() != vi.len() {
        return Some(format!("English has {} steps, Vietnamese {}", en.len(), vi.len()));
    }
    for (a, b) in en.iter().zip(vi) {
        let strip = |s: &Step| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            if let Value::Object(m) = &mut v {
                for k in ["title", "hint", "location"] {
                    m.remove(k);
                }
                for k in ["expect", "until"] {
                    if let Some(Value::Array(items)) = m.get_mut(k) {
                        for i in items {
                            if let Value::Object(im) = i {
                                im.remove("location");
                            }
                        }
                    }
                }
            }
            v
        };
        if strip(a) != strip(b) {
            return Some(if a.id == b.id {
                format!("step `{}` differs", a.id)
            } else {
                format!("step `{}` stands where English has `{}`", b.id, a.id)
            });
        }
    }
    None
}

fn check_prerequisites(w: &mut Workshop, diags: &mut Vec<Diagnostic>) {
    // Where each chapter's `requires` was written, for the cycle diagnostic below.
    let mut written: Vec<Option<(Span, Arc<SourceFile>)>> = vec![None; w.chapters.len()];
    for (ci, first) in written.iter_mut().enumerate() {
        for (number, span, source) in std::mem::take(&mut w.chapters[ci].requires_src) {
            first.get_or_insert_with(|| (span, source.clone()));
            if w.chapters.iter().any(|c| c.number.as_deref() == Some(number.as_str())) {
                if !w.chapters[ci].requires.contains(&number) {
                    w.chapters[ci].requires.push(number);
                }
            } else {
                let known: Vec<&str> = w.chapters.iter().filter_map(|c| c.number.as_deref()).collect();
                let mut d = Diagnostic::error("labrun::unknown-chapter", format!("no chapter numbered `{number}` in this workshop")).at(
                    &source,
                    span,
                    "required here",
                );
                if let Some(s) = crate::catalog::did_you_mean(&number, known.iter().copied()) {
                    d.help = Some(format!("did you mean `{s}`?"));
                }
                diags.push(d);
            }
        }
    }
    // Cycles: follow `requires` (and the implied "a sub-chapter needs what its parent needs").
    for (start, first) in written.iter().enumerate() {
        if let Some(cycle) = find_cycle(w, start) {
            let c = &w.chapters[start];
            if cycle.first().map(String::as_str) != c.number.as_deref() {
                continue;
            }
            // Report each cycle once, at its smallest member.
            if cycle.iter().min() != c.number.as_ref() {
                continue;
            }
            let path = [&cycle[..], &cycle[..1]].concat().join(" → ");
            let mut d = Diagnostic::error("labrun::prerequisite-cycle", format!("chapters require each other in a cycle: {path}"))
                .with_help("remove one of the `requires` entries");
            if let Some((span, source)) = first {
                d = d.at(source, *span, "required here");
            }
            diags.push(d);
        }
    }
}

fn find_cycle(w: &Workshop, start: usize) -> Option<Vec<String>> {
    fn visit(w: &Workshop, i: usize, stack: &mut Vec<usize>, start: usize) -> bool {
        for r in &w.chapters[i].requires {
            let Some(j) = w.chapters.iter().position(|c| c.number.as_deref() == Some(r.as_str())) else { continue };
            if j == start {
                return true;
            }
            if stack.contains(&j) {
                continue;
            }
            stack.push(j);
            if visit(w, j, stack, start) {
                return true;
            }
            stack.pop();
        }
        false
    }
    let mut stack = vec![start];
    visit(w, start, &mut stack, start).then(|| stack.iter().map(|&i| w.chapters[i].label().to_string()).collect())
}

/// Prerequisite chapters of a selection, in the order they must run, excluding the selection.
pub fn prerequisites(w: &Workshop, selection: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    fn add(w: &Workshop, i: usize, out: &mut Vec<usize>, selection: &[usize], seen: &mut Vec<usize>) {
        if seen.contains(&i) {
            return;
        }
        seen.push(i);
        // A chapter's ancestors' prerequisites apply to it too.
        let mut reqs: Vec<&String> = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            reqs.extend(w.chapters[c].requires.iter());
            cur = w.chapters[c].parent;
        }
        for r in reqs {
            let Some(top) = w.chapters.iter().position(|c| c.number.as_deref() == Some(r.as_str())) else { continue };
            for j in subtree(w, |c| std::ptr::eq(c, &w.chapters[top])) {
                add(w, j, out, selection, seen);
                if !selection.contains(&j) && !out.contains(&j) {
                    out.push(j);
                }
            }
        }
    }
    let mut seen = Vec::new();
    for &i in selection {
        add(w, i, &mut out, selection, &mut seen);
    }
    out
}
