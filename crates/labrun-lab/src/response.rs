//! Checks the JMESPath expressions of a step's `outputs`, `expect` and `until` against what its
//! operation answers (the output shape of its service model).
//!
//! The expression's syntax tree is walked with the type of the value at each point: fields,
//! sub-expressions and pipes, indexes and slices, projections (`[*]`, `[]`, `*`), flattening,
//! and filters (whose conditions are checked against the element type). Names are checked
//! inside comparisons, `&&`, `||`, `!`, multi-selects and function arguments too, as each is
//! evaluated against the current value. The walk stops, accepting, wherever the type is not
//! known: a function's result, a literal, an expression reference, an open document, or a
//! recursive shape cut short.

use crate::catalog::{self, Operation, Ty};
use crate::steps::Sink;
use crate::yaml::{Kind, Node, Span};
use jmespath::ast::Ast;

/// The static type of a value inside the walk.
#[derive(Clone)]
enum T {
    Unknown,
    Is(&'static Ty),
    /// The result of a projection: a list of these.
    ListOf(Box<T>),
}

struct Problem {
    message: String,
    help: Option<String>,
}

/// Reports every field that the operation's response cannot have.
pub(crate) fn check(op: &Operation, step: &Node, sink: &mut Sink<'_>) {
    if op.synthetic {
        return;
    }
    let Some(root) = catalog::response(op) else { return };
    if let Some(Kind::Map(entries)) = step.get("outputs").map(|n| &n.kind) {
        for (_, v) in entries {
            if let Kind::Str(expr) = &v.kind {
                check_expr(expr, root, v.span, op, sink);
            }
        }
    }
    for field in ["expect", "until"] {
        if let Some(Kind::Map(entries)) = step.get(field).map(|n| &n.kind) {
            for (k, _) in entries {
                check_expr(&k.key_text(), root, k.span, op, sink);
            }
        }
    }
}

fn check_expr(expr: &str, root: &'static Ty, span: Span, op: &Operation, sink: &mut Sink<'_>) {
    if expr.contains("{{") {
        return;
    }
    // Syntax and size problems are reported where the expression is read.
    let Ok(compiled) = crate::limits::compile_jmespath(expr) else { return };
    let mut walk = Walk { root, op, problems: Vec::new(), last: None };
    walk.walk(compiled.as_ast(), T::Is(root));
    for p in walk.problems {
        sink.error("labrun::unknown-member", span, p.message, "not in the response").help = p.help;
    }
}

struct Walk<'o> {
    root: &'static Ty,
    op: &'o Operation,
    problems: Vec<Problem>,
    /// The member named last: what a field on a list or a scalar was looked up in.
    last: Option<&'static str>,
}

impl Walk<'_> {
    fn walk(&mut self, ast: &Ast, t: T) -> T {
        match ast {
            Ast::Identity { .. } => t,
            Ast::Field { name, .. } => self.field(name, t),
            Ast::Subexpr { lhs, rhs, .. } => {
                let l = self.walk(lhs, t);
                self.walk(rhs, l)
            }
            Ast::Index { .. } => match t {
                T::Is(Ty::List(inner)) => T::Is(inner),
                T::ListOf(inner) => *inner,
                _ => T::Unknown,
            },
            Ast::Slice { .. } => match t {
                T::Is(Ty::List(_)) | T::ListOf(_) => t,
                _ => T::Unknown,
            },
            Ast::Projection { lhs, rhs, .. } => {
                let element = match self.walk(lhs, t) {
                    T::Is(Ty::List(inner)) => T::Is(inner),
                    T::ListOf(inner) => *inner,
                    _ => return T::Unknown,
                };
                T::ListOf(Box::new(self.walk(rhs, element)))
            }
            Ast::Flatten { node, .. } => match self.walk(node, t) {
                T::Is(Ty::List(Ty::List(inner))) => T::ListOf(Box::new(T::Is(inner))),
                T::Is(Ty::List(inner)) => T::ListOf(Box::new(T::Is(inner))),
                T::ListOf(inner) => match *inner {
                    T::Is(Ty::List(x)) => T::ListOf(Box::new(T::Is(x))),
                    T::ListOf(x) => T::ListOf(x),
                    other => T::ListOf(Box::new(other)),
                },
                _ => T::Unknown,
            },
            Ast::ObjectValues { node, .. } => match self.walk(node, t) {
                T::Is(Ty::Map(_, value)) => T::ListOf(Box::new(T::Is(value))),
                _ => T::Unknown,
            },
            Ast::Condition { predicate, then, .. } => {
                self.walk(predicate, t.clone());
                self.walk(then, t)
            }
            Ast::Comparison { lhs, rhs, .. } | Ast::Or { lhs, rhs, .. } => {
                self.walk(lhs, t.clone());
                self.walk(rhs, t);
                T::Unknown
            }
            Ast::And { lhs, rhs, .. } => {
                self.walk(lhs, t.clone());
                self.walk(rhs, t)
            }
            Ast::Not { node, .. } => {
                self.walk(node, t);
                T::Unknown
            }
            Ast::MultiList { elements, .. } => {
                for e in elements {
                    self.walk(e, t.clone());
                }
                T::Unknown
            }
            Ast::MultiHash { elements, .. } => {
                for kv in elements {
                    self.walk(&kv.value, t.clone());
                }
                T::Unknown
            }
            Ast::Function { args, .. } => {
                for a in args.iter().filter(|a| !matches!(a, Ast::Expref { .. })) {
                    self.walk(a, t.clone());
                }
                T::Unknown
            }
            Ast::Literal { .. } | Ast::Expref { .. } => T::Unknown,
        }
    }

    fn field(&mut self, name: &str, t: T) -> T {
        let ty = match t {
            T::Unknown => return T::Unknown,
            T::ListOf(_) => &Ty::List(&Ty::Any),
            T::Is(ty) => ty,
        };
        let (owner, help) = match ty {
            Ty::Struct(fields) => {
                if let Some(p) = fields.iter().find(|p| p.name == name) {
                    self.last = Some(p.name);
                    return T::Is(&p.ty);
                }
                let owner = if std::ptr::eq(ty, self.root) {
                    format!("the response of `{}`", self.op.name)
                } else {
                    match crate::derive::shape_name(fields) {
                        Some(n) => format!("`{n}`"),
                        None => "this structure".to_string(),
                    }
                };
                let help = match catalog::did_you_mean(name, fields.iter().map(|p| p.name)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if fields.is_empty() => "it has no members".to_string(),
                    None => format!("its members are: {}", list(fields.iter().map(|p| p.name))),
                };
                (owner, Some(help))
            }
            Ty::Map(_, value) => return T::Is(value),
            Ty::Any | Ty::Doc => return T::Unknown,
            Ty::StrListMap => return T::Is(&Ty::List(&Ty::Str)),
            Ty::List(_) => (
                self.last.map_or("a list".to_string(), |l| format!("`{l}`, a list")),
                Some(format!("take one item (`[0].{name}`) or every item (`[].{name}`) first")),
            ),
            Ty::Str | Ty::Enum(_) => (self.scalar("a string"), None),
            Ty::Bool => (self.scalar("a boolean"), None),
            Ty::Int | Ty::Float => (self.scalar("a number"), None),
            Ty::Timestamp => (self.scalar("a timestamp"), None),
            Ty::Blob => (self.scalar("a blob"), None),
        };
        self.problems.push(Problem { message: format!("no member `{name}` in {owner}"), help });
        T::Unknown
    }
}

impl Walk<'_> {
    fn scalar(&self, what: &str) -> String {
        self.last.map_or(what.to_string(), |l| format!("`{l}`, {what}"))
    }
}

/// At most 12 names, then how many more.
fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.len() <= 12 { names.join(", ") } else { format!("{}, … ({} more)", names[..12].join(", "), names.len() - 12) }
}
