//! Renders step parameters: minijinja with strict undefined. A string that is exactly one
//! `{{ expression }}` becomes the expression's native value (a list stays a list), so
//! `SubnetIds: "{{ steps.find.ids }}"` works; any other template renders to a string.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
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

pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        Renderer { env }
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
            let compiled = self.env.compile_expression(expr).map_err(err)?;
            let v = compiled.eval(ctx).map_err(err)?;
            if v.is_undefined() {
                return Err(RenderError { message: format!("`{}` is undefined", expr.trim()), template: s.to_string() });
            }
            return serde_json::to_value(&v).map_err(|e| RenderError { message: e.to_string(), template: s.to_string() });
        }
        self.env.render_str(s, ctx).map(Value::String).map_err(err)
    }

    /// Evaluates a `when:` condition.
    pub fn truthy(&self, expr: &str, ctx: &Context) -> Result<bool, RenderError> {
        let inner = single_expression(expr).unwrap_or(expr);
        let err = |e: minijinja::Error| RenderError { message: describe(&e), template: expr.to_string() };
        let compiled = self.env.compile_expression(inner).map_err(err)?;
        Ok(compiled.eval(ctx).map_err(err)?.is_true())
    }
}

/// `"{{ a.b }}"` → `Some(" a.b ")`; anything with other text or several tags → None.
fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

fn describe(e: &minijinja::Error) -> String {
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

    #[test]
    fn conditions() {
        let r = Renderer::new();
        assert!(r.truthy("steps.find.ids | length == 2", &ctx()).unwrap());
        assert!(!r.truthy("{{ steps.find.vpc == 'x' }}", &ctx()).unwrap());
    }
}
