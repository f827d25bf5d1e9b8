//! Renders step parameters: minijinja with strict undefined. A string that is exactly one
//! `{{ expression }}` becomes the expression's native value (a list stays a list), so
//! `SubnetIds: "{{ steps.find.ids }}"` works; any other template renders to a string.
//!
//! Every render is bounded (see `labrun_lab::limits`): a fuel budget of instructions, a
//! recursion limit, and a cap on the size of what it produces. A render that crosses one fails
//! with a message saying so, which becomes the step's failure.

use base64::Engine as _;
use labrun_lab::limits::{TEMPLATE_FUEL, TEMPLATE_MAX_OUTPUT, TEMPLATE_RECURSION};
use minijinja::{Environment, Expression, Template, UndefinedBehavior};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
    /// The template text that failed.
    pub template: String,
}

/// Everything a template may see.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Context {
    pub vars: Map<String, Value>,
    /// Step id → outputs.
    pub steps: Map<String, Value>,
    pub lab: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<Value>,
}

/// One environment for every render: it holds settings and filters, no per-run state.
static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_recursion_limit(TEMPLATE_RECURSION);
    // Blob members take base64, as the AWS CLI does: `{{ '{"n": 1}' | b64encode }}`.
    env.add_filter("b64encode", |s: String| base64::engine::general_purpose::STANDARD.encode(s));
    env.add_filter("b64decode", |s: String| -> Result<String, minijinja::Error> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, format!("b64decode: not base64 ({e})")))?;
        String::from_utf8(bytes)
            .map_err(|_| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "b64decode: the decoded bytes are not UTF-8 text"))
    });
    env
});

/// A template or a whole-value expression, compiled once per distinct text.
#[derive(Clone)]
enum Compiled {
    Expression(Arc<Expression<'static, 'static>>),
    Template(Arc<Template<'static, 'static>>),
}

/// Renders templates, compiling each distinct text once: a step's parameters are rendered for
/// every `for_each` item and a `when`/`until` on every poll, and none of that parses again.
#[derive(Default)]
pub struct Renderer {
    compiled: Mutex<HashMap<String, Result<Compiled, RenderError>>>,
}

impl Renderer {
    pub fn new() -> Self {
        Renderer::default()
    }

    /// The compiled form of `text` (a template, or with `expression` the inside of a
    /// `{{ ... }}`), from the cache or compiled now.
    fn compiled(&self, text: &str, expression: bool) -> Result<Compiled, RenderError> {
        let key = format!("{}{text}", if expression { 'e' } else { 't' });
        let mut cache = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.get(&key) {
            return c.clone();
        }
        let err = |e: minijinja::Error| RenderError { message: describe(&e), template: text.to_string() };
        let made = if expression {
            ENV.compile_expression_owned(text.to_string()).map(|e| Compiled::Expression(Arc::new(e))).map_err(err)
        } else {
            // A template borrows its source: each distinct text is kept for the process's life.
            let source: &'static str = Box::leak(text.to_string().into_boxed_str());
            ENV.template_from_str(source).map(|t| Compiled::Template(Arc::new(t))).map_err(err)
        };
        cache.insert(key, made.clone());
        made
    }

    /// Renders every string in `value`.
    pub fn render(&self, value: &Value, ctx: &Context) -> Result<Value, RenderError> {
        Ok(match value {
            Value::String(s) => self.render_str(s, ctx)?,
            Value::Array(items) => Value::Array(items.iter().map(|i| self.render(i, ctx)).collect::<Result<_, _>>()?),
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.render(v, ctx)?);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn render_str(&self, s: &str, ctx: &Context) -> Result<Value, RenderError> {
        if !s.contains("{{") && !s.contains("{%") {
            return Ok(Value::String(s.to_string()));
        }
        let err = |e: minijinja::Error| RenderError { message: describe(&e), template: s.to_string() };
        if let Some(expr) = single_expression(s) {
            let Compiled::Expression(compiled) = self.compiled(expr, true).map_err(|e| RenderError { template: s.to_string(), ..e })?
            else {
                unreachable!("an expression compiles to an expression")
            };
            let v = compiled.eval(ctx).map_err(err)?;
            if v.is_undefined() {
                return Err(RenderError { message: format!("`{}` is undefined", expr.trim()), template: s.to_string() });
            }
            // Measured as JSON before it is kept: a value may be built cheaply and still be huge.
            let mut size = Capped::default();
            if serde_json::to_writer(&mut size, &v).is_err() && size.over {
                return Err(RenderError { message: too_large(), template: s.to_string() });
            }
            return serde_json::to_value(&v).map_err(|e| RenderError { message: e.to_string(), template: s.to_string() });
        }
        let Compiled::Template(template) = self.compiled(s, false)? else { unreachable!("a template compiles to a template") };
        let mut out = Capped::default();
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => Ok(Value::String(String::from_utf8_lossy(&out.bytes).into_owned())),
            Err(_) if out.over => Err(RenderError { message: too_large(), template: s.to_string() }),
            Err(e) => Err(err(e)),
        }
    }

    /// Evaluates a `when:` condition.
    pub fn truthy(&self, expr: &str, ctx: &Context) -> Result<bool, RenderError> {
        let inner = single_expression(expr).unwrap_or(expr);
        let err = |e: minijinja::Error| RenderError { message: describe(&e), template: expr.to_string() };
        let Compiled::Expression(compiled) = self.compiled(inner, true).map_err(|e| RenderError { template: expr.to_string(), ..e })?
        else {
            unreachable!("an expression compiles to an expression")
        };
        Ok(compiled.eval(ctx).map_err(err)?.is_true())
    }
}

/// A writer that keeps at most `TEMPLATE_MAX_OUTPUT` bytes and fails past that.
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > TEMPLATE_MAX_OUTPUT {
            self.over = true;
            return Err(std::io::Error::other("template output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn too_large() -> String {
    format!("template produces more than labrun allows ({} MiB)", TEMPLATE_MAX_OUTPUT >> 20)
}

/// `"{{ a.b }}"` → `Some(" a.b ")`; anything with other text or several tags → None.
fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

fn describe(e: &minijinja::Error) -> String {
    if e.kind() == minijinja::ErrorKind::OutOfFuel {
        return format!("template does more work than labrun allows ({TEMPLATE_FUEL} instructions per render); make its loops smaller");
    }
    if e.detail().is_some_and(|d| d.contains("recursion limit")) {
        return "template nests or recurses deeper than labrun allows".into();
    }
    let mut msg = e.detail().map(str::to_string).unwrap_or_else(|| e.kind().to_string());
    if e.kind() == minijinja::ErrorKind::UndefinedError && e.detail().is_none() {
        msg = "a value used here is undefined (an output of a skipped step, or a missing variable)".into();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        let mut c = Context::default();
        c.vars.insert("region".into(), json!("ap-southeast-1"));
        c.steps.insert("find".into(), json!({"ids": ["subnet-1", "subnet-2"], "vpc": "vpc-1"}));
        c.steps.insert("lab-vpc".into(), json!({"vpc_id": "vpc-9"}));
        c
    }

    #[test]
    fn each_distinct_text_is_compiled_once() {
        let r = Renderer::new();
        let mut c = ctx();
        for item in ["a", "b", "c"] {
            c.item = Some(json!(item));
            assert_eq!(r.render(&json!("{{ item }}-{{ vars.region }}"), &c).unwrap(), json!(format!("{item}-ap-southeast-1")));
            assert_eq!(r.render(&json!("{{ steps.find.ids }}"), &c).unwrap(), json!(["subnet-1", "subnet-2"]));
            assert!(r.truthy("{{ item != 'z' }}", &c).unwrap());
        }
        assert_eq!(r.compiled.lock().unwrap().len(), 3, "one template, two expressions");
    }

    #[test]
    fn base64_filters_encode_blobs_and_refuse_what_is_not_base64() {
        let r = Renderer::new();
        assert_eq!(r.render(&json!("{{ '{\"n\": 1}' | b64encode }}"), &ctx()).unwrap(), json!("eyJuIjogMX0="));
        assert_eq!(r.render(&json!("{{ 'eyJuIjogMX0=' | b64decode }}"), &ctx()).unwrap(), json!("{\"n\": 1}"));
        let e = r.render(&json!("{{ 'not base64!' | b64decode }}"), &ctx()).unwrap_err();
        assert!(e.message.contains("b64decode: not base64"), "{}", e.message);
    }

    #[test]
    fn whole_expression_keeps_type() {
        let r = Renderer::new();
        assert_eq!(r.render(&json!("{{ steps.find.ids }}"), &ctx()).unwrap(), json!(["subnet-1", "subnet-2"]));
        assert_eq!(r.render(&json!("{{ steps['lab-vpc'].vpc_id }}"), &ctx()).unwrap(), json!("vpc-9"));
        assert_eq!(r.render(&json!("com.amazonaws.{{ vars.region }}.ssm"), &ctx()).unwrap(), json!("com.amazonaws.ap-southeast-1.ssm"));
    }

    #[test]
    fn strict_undefined_is_an_error() {
        let r = Renderer::new();
        assert!(r.render(&json!("{{ steps.find.nope }}"), &ctx()).is_err());
        assert!(r.render(&json!("x-{{ vars.missing }}"), &ctx()).is_err());
    }

    /// Runs `f` on a thread with a 2 MiB stack, as tokio's workers have.
    use labrun_lab::limits::fuzz::{Rng, on_small_stack};

    #[test]
    fn runaway_templates_fail_with_a_reason_instead_of_hanging() {
        let started = std::time::Instant::now();
        let cases: &[(&str, &str)] = &[
            // Ten billion iterations: runs out of fuel in milliseconds.
            ("{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}", "does more work than labrun allows"),
            ("{% for i in range(100000) %}{% endfor %}", "does more work than labrun allows"),
            ("{{ range(100000) | join(',') ~ range(100000) | join(',') }}", "produces more than labrun allows (1 MiB)"),
            ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "recurses deeper than labrun allows"),
            ("{{ 'x' * 2000000 }}", "produces more than labrun allows (1 MiB)"),
            ("a{{ 'x' * 2000000 }}", "produces more than labrun allows (1 MiB)"),
            (
                "{{ ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))) }}",
                "recurses deeper than labrun allows",
            ),
        ];
        for (template, needle) in cases {
            let t = template.to_string();
            let r = on_small_stack(move || Renderer::new().render(&json!(t), &ctx()));
            let message = r.as_ref().map_or_else(|e| e.message.clone(), |v| format!("rendered {} bytes", v.to_string().len()));
            assert!(message.contains(needle), "{template}: {message}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }

    #[test]
    fn ordinary_loops_stay_within_the_budget() {
        let mut c = ctx();
        c.item = Some(json!((0..1000).map(|i| format!("subnet-{i}")).collect::<Vec<_>>()));
        let out = Renderer::new().render(&json!("{% for s in item %}{{ s }},{% endfor %}"), &c).unwrap();
        assert_eq!(out.as_str().unwrap().matches("subnet-").count(), 1000);
    }

    /// Generated templates (odd syntax, deep nesting, loops, filters, huge numbers) always end,
    /// with a value or an error, on a small stack and quickly.
    #[test]
    fn generated_templates_always_end() {
        on_small_stack(|| {
            let mut rng = Rng::new(0x2545_F491_4F6C_DD1D);
            let mut next = move |n: usize| rng.below(n);
            const PIECES: &[&str] = &[
                "{{ ",
                " }}",
                "{% for i in range(100000) %}",
                "{% endfor %}",
                "{% if x %}",
                "{% endif %}",
                "{% set x = x ~ x %}",
                "steps.find.ids",
                "vars.region",
                "item",
                "(",
                ")",
                "[",
                "]",
                "|join(',')",
                "|length",
                "|upper",
                " * 99999999",
                " ~ ",
                "'✓ ạ 🚀'",
                "99999999999999999999999",
                "range(100000)",
                "{#",
                "#}",
                "{%",
                "%}",
                "{{",
                "}}",
                "x",
                "{% macro m(a) %}{{ m(a ~ a) }}{% endmacro %}",
                "m('ab')",
                "|map('string')",
                " if ",
                " else ",
            ];
            let r = Renderer::new();
            let started = std::time::Instant::now();
            let mut failures = 0;
            for case in 0..400 {
                let mut t = String::new();
                for _ in 0..1 + next(12) {
                    let piece = PIECES[next(PIECES.len())];
                    t.push_str(&piece.repeat(if next(10) == 0 { 1 + next(300) } else { 1 }));
                }
                let one = std::time::Instant::now();
                let result = r.render(&json!(t), &ctx());
                assert!(one.elapsed() < std::time::Duration::from_secs(2), "case {case} took {:?}: {t}", one.elapsed());
                if let Ok(v) = &result {
                    assert!(serde_json::to_string(v).unwrap().len() <= 2 * TEMPLATE_MAX_OUTPUT, "case {case}: {t}");
                }
                failures += usize::from(result.is_err());
            }
            assert!(failures > 0 && failures < 400, "{failures}");
            assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
        });
    }

    #[test]
    fn conditions() {
        let r = Renderer::new();
        assert!(r.truthy("steps.find.ids | length == 2", &ctx()).unwrap());
        assert!(!r.truthy("{{ steps.find.vpc == 'x' }}", &ctx()).unwrap());
    }
}
